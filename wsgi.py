"""The one module-level app: ``gunicorn wsgi:app`` or ``flask --app wsgi ...``."""
from exam import create_app

app = create_app()
