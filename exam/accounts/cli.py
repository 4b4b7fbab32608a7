"""Staff account commands: ``flask --app wsgi users create|list|disable|enable|reset-2fa``."""
from __future__ import annotations

import click
from sqlalchemy import select

from exam.accounts import staff as accounts
from exam.accounts.models import ROLES, User
from exam.core.commands import CLI_ACTOR, require_schema, transactional, users
from exam.core.db import get_session, utcnow


@users.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
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
    for user in get_session().scalars(select(User).order_by(User.username)):
        locked = "locked" if user.locked_until and user.locked_until > now else ""
        click.echo("\t".join([user.username, ",".join(sorted(user.role_set)),
                              "active" if user.active else "disabled",
                              "2fa" if user.totp_enrolled else "no-2fa", locked]).rstrip())


def _user(db_session, username: str) -> User:
    user = db_session.scalar(select(User).where(User.username == username))
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
