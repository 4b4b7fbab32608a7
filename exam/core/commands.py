"""What every area's commands stand on: the command groups, one transaction per command, the schema check.

The groups are defined here, not in ``exam.cli``, so each area's ``cli.py`` attaches its commands to
them by importing downward; ``exam.cli.register`` then imports every area's commands and adds the
groups to the app.
"""
from __future__ import annotations

import functools

import click
from flask.cli import AppGroup

from exam.core import schema
from exam.core.db import force_immediate, get_database, get_session
from exam.core.errors import Refused

CLI_ACTOR = "cli"

users = AppGroup("users", help="Staff accounts: create, list, disable, enable, reset 2FA.")
audit_cli = AppGroup("audit", help="The tamper-evident audit chain.")
exam_cli = AppGroup("exam", help="Exams: create from TOML, publish, papers, list.")
sitting_cli = AppGroup("sitting", help="Sittings: create, list, show the access code.")
candidates_cli = AppGroup("candidates", help="Candidates: import the roster, list, seats, admit a move.")
merit_cli = AppGroup("merit", help="Merit lists: ranking rule, build, tie decisions, publish, export.")
scores_cli = AppGroup("scores", help="Scores from outside the system (round 2, interview): import.")


def transactional(command):
    """Run the command body in one write transaction; a refusal (``Refused``) rolls it back and exits cleanly."""

    @functools.wraps(command)
    def wrapped(*args, **kwargs):
        token = force_immediate.set(True)
        db_session = get_session()
        try:
            result = command(db_session, *args, **kwargs)
            db_session.commit()
            return result
        except Refused as exc:
            db_session.rollback()
            raise click.ClickException(str(exc)) from exc
        finally:
            force_immediate.reset(token)

    return wrapped


def refuse(label: str, problems: list[str]) -> None:
    """Print every problem of an input (one line each, on stderr), then refuse it: nothing is written."""
    for problem in problems:
        click.echo(f"{label}: {problem}", err=True)
    raise Refused(f"{label}: {len(problems)} problem(s); nothing written")


def require_schema() -> None:
    engine = get_database().engine
    if schema.current_revision(engine) != schema.head_revision(engine):
        raise click.ClickException("the database is missing or not up to date: run `flask --app wsgi init-db` first")
