"""``flask --app wsgi demo``: demo staff accounts and the demo bank, loaded through the board's own import path."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from exam import accounts
from exam.cli import CLI_ACTOR, require_schema, transactional
from exam.db import utcnow

DEMO_BANK = Path(__file__).resolve().parent.parent / "question_bank" / "demo" / "demo_bank.json"
DEMO_STAFF = (
    # username, roles, full name
    ("hoidong", ("board",), "Nguyễn Văn Hội Đồng"),
    ("giamthi", ("proctor",), "Trần Thị Giám Thị"),
    ("thanhtra", ("auditor",), "Lê Văn Thanh Tra"),
)
DEMO_PASSWORD = "demo-{username}-2026"  # demo only: printed, and a board must replace these accounts


@click.command("demo")
@with_appcontext
@transactional
def demo(db_session):
    """Load demo staff accounts and the demo question bank (run init-db first; safe to run twice)."""
    from question_bank.importer import import_file
    from question_bank.models import Question

    require_schema()
    now = utcnow()
    created = []
    for username, roles, full_name in DEMO_STAFF:
        user = db_session.scalar(select(accounts.User).where(accounts.User.username == username))
        if user is None:
            password = DEMO_PASSWORD.format(username=username)
            user = accounts.create_user(db_session, username, password, roles, full_name=full_name,
                                        actor=CLI_ACTOR, now=now)
            created.append((user, password))
    if not db_session.scalar(select(func.count()).select_from(Question)):
        report = import_file(db_session, DEMO_BANK.name, DEMO_BANK.read_bytes(), actor=CLI_ACTOR, now=now)
        if report.errors:
            raise ValueError("the demo bank did not import: " + "; ".join(map(str, report.errors[:5])))
        click.echo(f"demo bank: {report.added} questions imported")
    else:
        click.echo("demo bank: the bank already holds questions, nothing imported")
    for user, password in created:
        click.echo(f"staff: {user.username} / {password}  ({', '.join(sorted(user.role_set))})")
        if user.needs_2fa:
            click.echo(f"       two-factor: the first login shows a QR code; or add this key to an "
                       f"authenticator app: {user.totp_secret}")
