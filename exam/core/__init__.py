"""What every area stands on: settings, the database, migrations, extensions, UTC times, batch work, uploads.

Nothing here imports an area of the product.
"""
