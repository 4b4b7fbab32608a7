"""The one module-level app: ``bin/serve`` (granian wsgi:app) or ``flask --app wsgi ...``."""
import gc

from exam.app import create_app

app = create_app()

# What the app keeps for good (routes, mappers, settings) is put out of the cyclic collector's
# sight: its full passes over it paused requests for tens of milliseconds.
gc.collect()
gc.freeze()
