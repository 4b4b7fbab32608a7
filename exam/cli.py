"""Flask commands for what boards do in batches: ``flask --app wsgi COMMAND --help``.

Each command runs as one transaction, committed at the end; any refused input exits
non-zero with a message naming what is wrong.
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from exam import accounts, audit
from exam.core import schema
from exam.core.commands import (
    CLI_ACTOR,
    audit_cli,
    candidates_cli,
    exam_cli,
    merit_cli,
    require_schema,
    scores_cli,
    sitting_cli,
    transactional,
    users,
)
from exam.core.db import get_database, get_session, utcnow


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the database, or upgrade it to the current schema (keeps all data)."""
    engine = get_database().engine
    before = schema.current_revision(engine)
    schema.upgrade(engine)
    after = schema.current_revision(engine)
    if before == after:
        click.echo(f"database already at schema {after}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to schema {after}")


@users.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(accounts.ROLES),
              help="board, proctor or auditor; repeat for several roles.")
@click.option("--full-name", default="", help="Shown on pages and printed lists.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked at a prompt; or piped on stdin (one line, twice when prompted).")
@transactional
def users_create(db_session, username, roles, full_name, password):
    """Create a staff user and print the TOTP provisioning URI."""
    require_schema()
    user = accounts.create_user(db_session, username, password, roles, full_name=full_name, actor=CLI_ACTOR)
    click.echo(f"created {user.username} ({' '.join(sorted(user.role_set))})")
    click.echo(f"TOTP provisioning URI: {user.provisioning_uri()}")
    if user.needs_2fa:
        click.echo("two-factor is mandatory for this user: the first login shows the enrolment QR code")


@users.command("list")
def users_list():
    """One user per line: username, roles, active, 2FA enrolled, locked."""
    require_schema()
    now = utcnow()
    for user in get_session().scalars(select(accounts.User).order_by(accounts.User.username)):
        locked = "locked" if user.locked_until and user.locked_until > now else ""
        click.echo("\t".join([user.username, ",".join(sorted(user.role_set)),
                              "active" if user.active else "disabled",
                              "2fa" if user.totp_enrolled else "no-2fa", locked]).rstrip())


def _user(db_session, username: str) -> accounts.User:
    user = db_session.scalar(select(accounts.User).where(accounts.User.username == username))
    if user is None:
        raise accounts.AccountError(f"no user named {username!r}")
    return user


@users.command("disable")
@click.argument("username")
@transactional
def users_disable(db_session, username):
    """Disable a user and end their open sessions."""
    accounts.set_active(db_session, _user(db_session, username), False, actor=CLI_ACTOR, now=utcnow())
    click.echo(f"disabled {username}")


@users.command("enable")
@click.argument("username")
@transactional
def users_enable(db_session, username):
    """Enable a disabled user again."""
    accounts.set_active(db_session, _user(db_session, username), True, actor=CLI_ACTOR, now=utcnow())
    click.echo(f"enabled {username}")


@users.command("reset-2fa")
@click.argument("username")
@transactional
def users_reset_2fa(db_session, username):
    """Forget a user's authenticator (lost phone): they enrol again at next login."""
    user = _user(db_session, username)
    accounts.reset_totp(db_session, user, actor=CLI_ACTOR, now=utcnow())
    click.echo(f"2FA reset for {username}; new provisioning URI: {user.provisioning_uri()}")


@audit_cli.command("verify")
def audit_verify():
    """Check the whole chain and its signed checkpoints; exit 1 naming the first broken entry."""
    require_schema()
    verdict = audit.verify_database(get_session(), current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    if not verdict.ok:
        click.echo(f"BROKEN: {verdict.problem}", err=True)
        if verdict.first_bad_seq is not None:
            click.echo(f"first broken entry: {verdict.first_bad_seq}", err=True)
        sys.exit(1)
    click.echo(f"intact: {verdict.count} entries, head {verdict.head_hash}, "
               f"{verdict.checkpoints_checked} signed checkpoints checked")


@audit_cli.command("public-key")
def audit_public_key():
    """Print the installation's Ed25519 public key (PEM) that signs checkpoints."""
    click.echo(current_app.extensions["audit_key"].public_pem, nl=False)


@audit_cli.command("checkpoint")
@transactional
def audit_checkpoint(db_session):
    """Sign the current head now (e.g. before a backup or at the end of a sitting)."""
    require_schema()
    checkpoint = audit.write_checkpoint(db_session, current_app.extensions["audit_key"])
    db_session.info.setdefault("audit_checkpoints", []).append(checkpoint.as_dict())
    click.echo(f"checkpoint: {checkpoint.count} entries, head {checkpoint.head_hash}")




def register(app) -> None:
    import exam.cli_attempts  # noqa: F401  (attaches its commands to the groups above)
    import exam.cli_audit  # noqa: F401
    import exam.cli_exams  # noqa: F401
    import exam.cli_results  # noqa: F401
    from exam.demo import demo
    from question_bank.cli import bank

    for command in (init_db, users, audit_cli, demo, bank, exam_cli, sitting_cli, candidates_cli, merit_cli,
                    scores_cli):
        app.cli.add_command(command)
