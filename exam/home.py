"""The staff home page and the language switch."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_login import current_user

from exam.accounts.auth import safe_next
from exam.core.config import LANGUAGE_NAMES

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return render_template("home/index.html")


@bp.route("/lang/<code>")
def switch_language(code: str):
    if code not in LANGUAGE_NAMES:
        abort(404)
    session["lang"] = code
    return redirect(safe_next(request.args.get("next")))


@bp.route("/healthz")
def health():
    # For the load balancer and the load benchmark's baseline: no database, no session.
    return {"status": "ok"}
