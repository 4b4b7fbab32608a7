"""Flask commands for what boards do in batches: ``flask --app wsgi COMMAND --help``.

Each command runs as one transaction, committed at the end; any refused input exits
non-zero with a message naming what is wrong.
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from exam import audit
from exam.core import schema
from exam.core.commands import (
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
from exam.core.db import get_database, get_session


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
    import exam.accounts.cli  # noqa: F401
    import exam.cli_attempts  # noqa: F401  (attaches its commands to the groups above)
    import exam.cli_audit  # noqa: F401
    import exam.cli_exams  # noqa: F401
    import exam.cli_results  # noqa: F401
    from exam.demo import demo
    from question_bank.cli import bank

    for command in (init_db, users, audit_cli, demo, bank, exam_cli, sitting_cli, candidates_cli, merit_cli,
                    scores_cli):
        app.cli.add_command(command)
