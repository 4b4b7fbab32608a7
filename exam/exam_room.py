"""The candidate's pages: sign-in, instructions, the exam, review, result (driven by the JSON API)."""
from flask import Blueprint

bp = Blueprint("exam_room", __name__, url_prefix="/thi")
