"""Board pages for exams, sittings and rosters."""
from flask import Blueprint

bp = Blueprint("board", __name__, url_prefix="/board")
