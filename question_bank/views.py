from flask import Blueprint

from exam.auth import role_required

bp = Blueprint("bank", __name__, url_prefix="/bank")


@bp.route("/")
@role_required("board")
def questions():
    return "bank"


@bp.route("/import")
@role_required("board")
def import_file():
    return "import"


@bp.route("/topics")
@role_required("board")
def topics():
    return "topics"
