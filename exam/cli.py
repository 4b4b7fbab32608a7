"""Flask commands for what boards do in batches: ``flask --app wsgi COMMAND --help``.

Each command runs as one transaction, committed at the end; any refused input exits
non-zero with a message naming what is wrong.
"""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from exam.accounts import cli as accounts_cli  # noqa: F401  (attaches its commands: see below)
from exam.audit import cli as audit_commands  # noqa: F401  (attaches its commands: see below)
from exam.core import schema
from exam.core.commands import audit_cli, candidates_cli, exam_cli, merit_cli, scores_cli, sitting_cli, users
from exam.core.db import get_database
from exam.demo import demo
from exam.grading import cli as grading_cli  # noqa: F401  (attaches its commands: see below)
from exam.merit import cli as merit_commands  # noqa: F401  (attaches its commands: see below)
from exam.room import cli as room_cli  # noqa: F401  (attaches its commands: see below)
from exam.setup import cli as setup_cli  # noqa: F401  (attaches its commands: see below)
from question_bank.cli import bank

# Each area's cli module, imported above, attaches its commands to the groups of exam.core.commands (an
# area's commands may sit in several groups: the room's in ``exam`` and ``candidates``).


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


def register(app) -> None:
    """Add every command group to the app; each area's ``cli`` module, imported above, has attached its
    commands to the groups of ``exam.core.commands``."""
    for command in (init_db, users, audit_cli, demo, bank, exam_cli, sitting_cli, candidates_cli, merit_cli,
                    scores_cli):
        app.cli.add_command(command)
