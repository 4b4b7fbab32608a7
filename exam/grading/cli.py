"""Commands about results: attached to the ``exam`` group of exam.cli.

    flask --app wsgi exam grade R1-2026
    flask --app wsgi exam items R1-2026 --out phan-tich.xlsx
    flask --app wsgi exam key-correct propose R1-2026 --question 123 --action rekey --correct B \\
        --reason "Đáp án theo Luật Cán bộ, công chức sửa đổi 2019" --as nguyen.van.a
    flask --app wsgi exam key-correct approve 7 --as tran.thi.b
    flask --app wsgi exam key-correct reject 7 --reason "..." --as tran.thi.b
    flask --app wsgi exam key-correct list R1-2026

Key corrections need two people, so they are made in a board member's name (``--as``,
an active user with the board role), never as the anonymous CLI user.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from exam.accounts.models import User
from exam.core.commands import CLI_ACTOR, exam_cli, require_schema, transactional
from exam.core.db import get_session, utcnow
from exam.grading import corrections, item_stats, runs
from exam.grading.arrays import ResultsError
from exam.grading.models import KeyCorrection
from exam.merit import lists as merit_lists
from exam.merit import ranking as merit_rules
from exam.setup.exams import exam_or_exit


def _board_member(db_session, username: str) -> str:
    user = db_session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or "board" not in user.role_set:
        raise click.ClickException(f"{username!r} is not an active board member")
    return user.username


def _fail(exc: ResultsError):
    raise click.ClickException(str(exc)) from exc


@exam_cli.command("grade")
@click.argument("code", metavar="EXAM")
@click.option("--no-corrections", is_flag=True, help="Grade with the key as the bank holds it (ignore approved "
                                                      "corrections).")
@click.option("--merit", is_flag=True, help="Also build the draft merit list from the new scores (same "
                                            "transaction).")
@transactional
def exam_grade(db_session, code: str, no_corrections: bool, merit: bool):
    """Grade every submitted attempt of EXAM; store the scores, the run and the item statistics.

    With --merit, also build the exam's draft merit list from the scores just graded (handed over in
    memory, not read back; ranked while the item analysis computes on the other core). Prints the
    run's summary, its hashes (also in the audit chain) and the time of each step."""
    require_schema()
    exam = exam_or_exit(db_session, code)
    started = time.perf_counter()
    now = utcnow()
    ranking = {}

    def rank(graded):
        """The merit list ranked from the scores just written, while the item analysis computes."""
        began = time.perf_counter()
        try:
            return merit_lists.draft_content(db_session, exam, scores=graded.table)
        finally:
            ranking["seconds"] = time.perf_counter() - began

    try:
        outcome = runs.grade_exam(db_session, exam, actor=CLI_ACTOR, now=now,
                                  corrections=None if no_corrections else "approved",
                                  meanwhile=rank if merit else None)
    except ResultsError as exc:
        _fail(exc)
    except (merit_rules.MeritRejected, merit_lists.MeritListError) as exc:
        raise click.ClickException(f"graded, but the merit list cannot be built (nothing saved): {exc}") from exc
    record = None
    if merit:
        stored = time.perf_counter()
        record = merit_lists.store_draft(db_session, exam, outcome.meanwhile, CLI_ACTOR, now)
        outcome.timings["merit list"] = ranking["seconds"] + time.perf_counter() - stored
    before_commit = time.perf_counter()
    db_session.commit()
    committed = time.perf_counter()
    run, summary = outcome.run, outcome.run.summary
    click.echo(f"graded {summary['candidates']} attempts of {exam.code} × {summary['questions']} questions: "
               f"run {run.id}")
    click.echo(f"passed every section: {summary['passed_all']}")
    if summary["candidates"]:
        click.echo(f"total: mean {summary['mean_total']}, min {summary['min_total']}, max {summary['max_total']}")
    for s in summary["sections"]:
        click.echo(f"  section {s['position']} {s['code']}: {s['questions']} questions, passed {s['passed']}, "
                   f"mean score {s['mean_score']}")
    applied = ", ".join(f"#{c[0]} {c[2]}" for c in summary["corrections"]) or "none"
    click.echo(f"key corrections applied: {applied}")
    test = summary.get("test")
    if test:
        rel = test["reliability"]
        value = "n/a" if rel["value"] is None else f"{rel['value']:.3f}"
        click.echo(f"reliability ({rel['method']}, {rel['basis']}): {value}; flagged questions: {test['flagged']}")
    click.echo(f"key_hash     {run.key_hash}")
    click.echo(f"inputs_hash  {run.inputs_hash}")
    click.echo(f"outputs_hash {run.outputs_hash}")
    if record is not None:
        click.echo(f"draft merit list {record.id}: hash {record.hash}")
    steps = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in outcome.timings.items())
    click.echo(f"timings: {steps}, commit {committed - before_commit:.3f} s, total {committed - started:.3f} s "
               f"({summary['compact_rows']} rows from compact columns, {summary['rebuilt_rows']} rebuilt)")


@exam_cli.command("items")
@click.argument("code", metavar="EXAM")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the analysis to FILE.xlsx (one row per question, and the test statistics).")
@click.option("--all", "show_all", is_flag=True, help="List every question, not only the flagged ones.")
def exam_items(code: str, out: Path | None, show_all: bool):
    """The item analysis of EXAM's latest grading run: test statistics and flagged questions."""
    require_schema()
    db_session = get_session()
    exam = exam_or_exit(db_session, code)
    run = runs.latest_run(db_session, exam)
    rows = item_stats.stored_items(db_session, exam)
    if run is None or not rows:
        raise click.ClickException(f"exam {exam.code} has no item analysis yet: run `flask --app wsgi exam grade "
                                   f"{exam.code}` first")
    test = run.summary.get("test")
    if test:
        rel, dist = test["reliability"], test["distribution"]
        value = "n/a" if rel["value"] is None else f"{rel['value']:.3f}"
        sem = "n/a" if rel["sem"] is None else f"{rel['sem']:.3f}"
        click.echo(f"{exam.code}: {rel['candidates']} candidates, {rel['items']} questions; "
                   f"reliability ({rel['method']}, {rel['basis']}) {value}, SEM {sem}; "
                   f"mean {dist['mean']:.3f}, SD {dist['sd']:.3f}")
    click.echo("question\tversion\tsection\tn\tp\tr_pb\tD\tflags")
    shown = 0
    for r in rows:
        s = r.stats
        if not show_all and not s.get("flags"):
            continue
        shown += 1
        click.echo("\t".join(str(x) for x in (
            r.question_id, r.version, r.section, s.get("n"), _fmt(s.get("difficulty")), _fmt(s.get("point_biserial")),
            _fmt(s.get("discrimination_index")), ",".join(s.get("flags", ())) or "-")))
    click.echo(f"{shown} of {len(rows)} questions listed" + ("" if show_all else " (flagged; --all for every one)"))
    if out is not None:
        out.write_bytes(item_stats.items_workbook(exam, rows, test))
        click.echo(f"wrote {out}")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


key_correct = AppGroup("key-correct", help="Key corrections: one board member proposes, another approves.")
exam_cli.add_command(key_correct)


@key_correct.command("propose")
@click.argument("code", metavar="EXAM")
@click.option("--question", "question_id", type=int, help="The bank's question number (its version in the exam).")
@click.option("--version", "version_id", type=int, help="Or the question version id.")
@click.option("--action", type=click.Choice(corrections.CORRECTION_ACTIONS), required=True,
              help="rekey: a new key; void_award: everyone gets the marks; void_remove: out of the test.")
@click.option("--correct", default="", help="For rekey: the correct options, e.g. B or A,C (author's order).")
@click.option("--reason", required=True, help="Why (required, written into the audit log).")
@click.option("--as", "username", required=True, help="The proposing board member's username.")
@transactional
def correction_propose(db_session, code, question_id, version_id, action, correct, reason, username):
    """Propose a key correction of a question of EXAM."""
    require_schema()
    exam = exam_or_exit(db_session, code)
    who = _board_member(db_session, username)
    if (question_id is None) == (version_id is None):
        raise click.ClickException("give either --question or --version")
    try:
        if version_id is None:
            version_id = corrections.version_for_question(db_session, exam, question_id)
        options = corrections.parse_options(correct) if action == "rekey" else None
        correction = corrections.propose_correction(db_session, exam, version_id, action, options, reason,
                                                    who, utcnow())
    except ResultsError as exc:
        _fail(exc)
    click.echo(f"proposed correction {correction.id} ({action}) of question version {version_id}; "
               f"another board member must approve it: "
               f"flask --app wsgi exam key-correct approve {correction.id} --as USER")


def _correction(db_session, correction_id: int) -> KeyCorrection:
    correction = db_session.get(KeyCorrection, correction_id)
    if correction is None:
        raise click.ClickException(f"no key correction {correction_id}")
    return correction


@key_correct.command("approve")
@click.argument("correction_id", type=int)
@click.option("--as", "username", required=True, help="The approving board member (not the proposer).")
@click.option("--note", default="", help="A note kept in the audit log.")
@transactional
def correction_approve(db_session, correction_id, username, note):
    """Approve a proposed correction (a second board member). Regrade afterwards: `exam grade`."""
    require_schema()
    who = _board_member(db_session, username)
    correction = _correction(db_session, correction_id)
    try:
        corrections.approve_correction(db_session, correction, actor=who, now=utcnow(), note=note)
    except ResultsError as exc:
        _fail(exc)
    click.echo(f"approved correction {correction.id}; scores change only when the exam is graded again")


@key_correct.command("reject")
@click.argument("correction_id", type=int)
@click.option("--reason", required=True, help="Why (required).")
@click.option("--as", "username", required=True, help="The board member rejecting it.")
@transactional
def correction_reject(db_session, correction_id, reason, username):
    """Reject a proposed correction, with a reason."""
    require_schema()
    who = _board_member(db_session, username)
    correction = _correction(db_session, correction_id)
    try:
        corrections.reject_correction(db_session, correction, actor=who, reason=reason, now=utcnow())
    except ResultsError as exc:
        _fail(exc)
    click.echo(f"rejected correction {correction.id}")


@key_correct.command("list")
@click.argument("code", metavar="EXAM")
def correction_list(code):
    """The key corrections of EXAM, newest first: id, status, action, version, proposer, decider, reason."""
    require_schema()
    db_session = get_session()
    exam = exam_or_exit(db_session, code)
    for c in corrections.corrections_of(db_session, exam):
        click.echo("\t".join([str(c.id), c.status, c.action, str(c.question_version_id),
                              corrections.letters(c.correct or ()) or "-", c.proposed_by, c.decided_by or "-",
                              c.reason.replace("\n", " ")]))
