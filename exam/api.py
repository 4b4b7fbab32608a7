"""The lab client JSON API (/api/v1): bearer tokens, no cookies."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
