"""Flask commands for what boards do in batches: ``flask --app wsgi COMMAND --help``.

Each command runs as one transaction, committed at the end; any refused input exits
non-zero with a message naming what is wrong.
"""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from exam.core import schema
from exam.core.commands import audit_cli, candidates_cli, exam_cli, merit_cli, scores_cli, sitting_cli, users
from exam.core.db import get_database


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
    import exam.accounts.cli  # noqa: F401
    import exam.audit.cli  # noqa: F401
    import exam.grading.cli  # noqa: F401
    import exam.merit.cli  # noqa: F401
    import exam.room.cli  # noqa: F401  (attaches its commands to the groups above)
    import exam.setup.cli  # noqa: F401
    from exam.demo import demo
    from question_bank.cli import bank

    for command in (init_db, users, audit_cli, demo, bank, exam_cli, sitting_cli, candidates_cli, merit_cli,
                    scores_cli):
        app.cli.add_command(command)
