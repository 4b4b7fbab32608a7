"""Auditor pages: the audit chain, read-only, with the verification of the whole chain."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import func, select

from exam import audit
from exam.auth import role_required
from exam.db import get_session

bp = Blueprint("auditor", __name__, url_prefix="/audit")
PAGE_SIZE = 100


@bp.route("/")
@role_required("auditor", "board")
def log():
    db_session = get_session()
    query = select(audit.AuditEntry)
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip()
    if action:
        query = query.where(audit.AuditEntry.action.startswith(action))
    if actor:
        query = query.where(audit.AuditEntry.actor == actor)
    before = request.args.get("before", type=int)
    if before:
        query = query.where(audit.AuditEntry.seq < before)
    entries = db_session.scalars(query.order_by(audit.AuditEntry.seq.desc()).limit(PAGE_SIZE)).all()
    total = db_session.scalar(select(func.count()).select_from(audit.AuditEntry))
    return render_template("auditor/log.html", entries=entries, total=total, action=action, actor=actor,
                           next_before=entries[-1].seq if len(entries) == PAGE_SIZE else None)


@bp.route("/verify")
@role_required("auditor", "board")
def verify():
    verdict = audit.verify_database(get_session(), current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    return render_template("auditor/verify.html", verdict=verdict,
                           public_key=current_app.extensions["audit_key"].public_pem)


@bp.route("/public-key.pem")
@role_required("auditor", "board")
def public_key():
    return current_app.extensions["audit_key"].public_pem, 200, {"Content-Type": "application/x-pem-file"}
