"""Commands about attempts: attached to the groups of exam.cli.

``flask --app wsgi exam close-overdue``      submit every attempt past its deadline (+ grace)
``flask --app wsgi candidates admit-move EXAM REGNO --reason TEXT``   let a candidate change machines
"""
from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from sqlalchemy import select

from exam.core.commands import CLI_ACTOR, candidates_cli, exam_cli, require_schema, transactional
from exam.core.db import utcnow
from exam.core.errors import Refused
from exam.room import attempts, sessions
from exam.setup.exams import exam_or_exit
from exam.setup.models import Candidate


@exam_cli.command("close-overdue")
@click.option("--grace", type=float, default=None,
              help="Seconds after a deadline before the attempt is closed (default: SAVE_GRACE_SECONDS, 10).")
@transactional
def close_overdue(db_session, grace):
    """Submit every in-progress attempt whose deadline (plus the grace) has passed, with every saved
    answer, and grade it. The running server does the same every 15 s; this is for a cron job or a
    server that was down. Prints one line per submitted attempt: registration number, attempt, score."""
    require_schema()
    grace = timedelta(seconds=grace if grace is not None else float(current_app.config.get("SAVE_GRACE_SECONDS",
                                                                                            10)))
    done = attempts.close_overdue(db_session, utcnow(), grace, limit=None)
    numbers = dict(db_session.execute(select(Candidate.id, Candidate.registration_no)
                                      .where(Candidate.id.in_({a.candidate_id for a in done}))).all()) if done else {}
    for attempt in done:
        click.echo(f"{numbers[attempt.candidate_id]}\t{attempt.public_id}\t{attempt.score['total']}")
    click.echo(f"closed {len(done)} overdue attempts", err=True)


@candidates_cli.command("admit-move")
@click.argument("exam_code")
@click.argument("registration_no")
@click.option("--reason", required=True, help="Why the candidate changes machines (kept in the audit log).")
@transactional
def admit_move(db_session, exam_code, registration_no, reason):
    """Let a candidate continue on another machine: the old machine's session ends now and the next
    login is admitted from any machine."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    candidate = db_session.scalar(select(Candidate).where(Candidate.exam_id == exam.id,
                                                         Candidate.registration_no == registration_no.strip()))
    if candidate is None:
        raise Refused(f"exam {exam.code} has no candidate with registration number {registration_no!r}")
    ended = sessions.admit_move(db_session, candidate, actor=CLI_ACTOR, reason=reason, now=utcnow())
    click.echo(f"move admitted for {candidate.registration_no}: {ended} session(s) ended; "
               f"the next login is accepted from any machine")
