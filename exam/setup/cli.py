"""Commands about exams, sittings and candidates: attached to the groups of exam.cli.

    flask --app wsgi exam create examples/round1.toml
    flask --app wsgi exam publish R1-2026
    flask --app wsgi sitting create R1-2026 --code CA1 --room "Phòng máy 1" --start "2026-12-01 08:00" --seats 40
    flask --app wsgi candidates import R1-2026 danh-sach.xlsx --dry-run
    flask --app wsgi candidates seat R1-2026 --sitting CA1
    flask --app wsgi exam papers R1-2026
    flask --app wsgi sitting code CA1

Lists print one item per line, its code first, tab-separated (``candidates list``
prints CSV). Every refusal exits non-zero with each problem on stderr.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
from sqlalchemy import func, select

from exam.core.commands import CLI_ACTOR, candidates_cli, exam_cli, refuse, require_schema, sitting_cli, transactional
from exam.core.db import get_session, utcnow
from exam.setup import candidate_lists, exams, roster, sittings
from exam.setup.exams import exam_or_exit
from exam.setup.models import Candidate, Exam, Sitting
from exam.setup.papers import generate_papers
from exam.setup.spec import SpecRejected, read_spec_toml, spec_to_toml


def _sitting(db_session, code: str, exam: Exam | None = None) -> Sitting:
    sitting = sittings.sitting_by_code(db_session, code)
    if sitting is None or (exam is not None and sitting.exam_id != exam.id):
        where = f" of exam {exam.code}" if exam is not None else ""
        raise click.ClickException(f"no sitting with code {code!r}{where}")
    return sitting




# --- exam ----------------------------------------------------------------------------------------

@exam_cli.command("create")
@click.argument("spec_file", metavar="SPEC.toml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check everything (bank included) and write nothing.")
@transactional
def exam_create(db_session, spec_file: Path, dry_run: bool):
    """Create a draft exam from SPEC.toml (see docs/exam-spec.md).

    Checks the whole file and that the bank can fill every blueprint cell; every
    problem is printed with its key, e.g. "sections[1].blueprint[2].topic: ...".
    """
    require_schema()
    reading = read_spec_toml(spec_file.read_bytes())
    errors = exams.check_reading(db_session, reading)
    if errors:
        refuse(str(spec_file), [str(e) for e in errors])
    spec = reading.spec
    if dry_run:
        click.echo(f"{spec_file}: valid; exam {spec.code} would have {len(spec.sections)} sections, "
                   f"{spec.total_questions} questions, {spec.total_minutes} minutes; nothing written")
        return
    try:
        exam = exams.create_exam(db_session, spec, CLI_ACTOR, utcnow())
    except SpecRejected as exc:
        refuse(str(spec_file), [str(e) for e in exc.errors])
    click.echo(f"created exam {exam.code} (draft): {len(spec.sections)} sections, {spec.total_questions} questions, "
               f"{spec.total_minutes} minutes")
    click.echo(f"publish it with: flask --app wsgi exam publish {exam.code}")


@exam_cli.command("publish")
@click.argument("exam_code", metavar="EXAM")
@transactional
def exam_publish(db_session, exam_code: str):
    """Publish EXAM: freeze it and the question versions it may draw (audit-logged)."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    frozen = exams.publish_exam(db_session, exam, actor=CLI_ACTOR, now=utcnow())
    click.echo(f"published {exam.code}: {frozen} question versions frozen into its pool")


@exam_cli.command("papers")
@click.argument("exam_code", metavar="EXAM")
@transactional
def exam_papers(db_session, exam_code: str):
    """Generate the paper of every candidate of EXAM who has none; check the stored ones."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    started = time.perf_counter()
    run = generate_papers(db_session, exam, actor=CLI_ACTOR, now=utcnow())
    db_session.flush()
    elapsed = time.perf_counter() - started
    forms = f", {run.forms} fixed forms" if run.forms else ""
    click.echo(f"papers of {exam.code}: {run.created} created, {run.checked} checked{forms} in {elapsed:.2f} s")


@exam_cli.command("list")
def exam_list():
    """One exam per line: CODE<TAB>status<TAB>title."""
    require_schema()
    for exam in exams.list_exams(get_session()):
        click.echo(f"{exam.code}\t{exam.status}\t{exam.title}")


@exam_cli.command("spec")
@click.argument("exam_code", metavar="EXAM")
def exam_spec(exam_code: str):
    """Print EXAM's specification as TOML (a starting point for the next exam)."""
    require_schema()
    exam = exam_or_exit(get_session(), exam_code)
    spec = exams.spec_of(exam)
    if spec is None:
        raise click.ClickException(f"exam {exam.code} has no stored specification")
    click.echo(spec_to_toml(spec), nl=False)


# --- sitting -------------------------------------------------------------------------------------

def _local(value: str | None, name: str):
    if value is None:
        return None
    try:
        return sittings.parse_local_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


@sitting_cli.command("create")
@click.argument("exam_code", metavar="EXAM")
@click.option("--code", required=True, help="The sitting's code, e.g. CA1 (unique across exams).")
@click.option("--room", required=True, help='The room, e.g. "Phòng máy 1".')
@click.option("--start", required=True, metavar="TIME", help='Local time (Asia/Ho_Chi_Minh): "2026-12-01 08:00".')
@click.option("--minutes", type=int, default=None, help="Length of the sitting (default: exam time + late entry).")
@click.option("--end", default=None, metavar="TIME", help="Or the end, as a local time.")
@click.option("--seats", type=int, required=True, help="Seats (lab machines) in the room.")
@click.option("--late-entry", "late_entry", type=int, default=15, show_default=True,
              help="Minutes after the start during which candidates may still log in.")
@transactional
def sitting_create(db_session, exam_code, code, room, start, minutes, end, seats, late_entry):
    """Create a sitting of EXAM: room, start, length or end, seats."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    if minutes is not None and end is not None:
        raise click.UsageError("give --minutes or --end, not both")
    try:
        sitting = sittings.create_sitting(
            db_session, exam, code=code, room=room, starts_at=_local(start, "--start"),
            ends_at=_local(end, "--end"), minutes=minutes, seats=seats, late_entry_minutes=late_entry,
            actor=CLI_ACTOR, now=utcnow())
    except sittings.SittingError as exc:
        refuse(f"sitting {code}", [f"{name}: {message}" for name, message in exc.problems])
    click.echo(f"created sitting {sitting.code} of {exam.code} in {sitting.room}: "
               f"{sittings.local_time(sitting.starts_at)} to {sittings.local_time(sitting.ends_at)} "
               f"(Asia/Ho_Chi_Minh), {sitting.seats} seats")


@sitting_cli.command("list")
@click.argument("exam_code", metavar="EXAM")
def sitting_list(exam_code: str):
    """One sitting per line: CODE, room, start, end (local time), seats, candidates (tab-separated)."""
    require_schema()
    db_session = get_session()
    exam = exam_or_exit(db_session, exam_code)
    counts = candidate_lists.counts_by_sitting(db_session, exam)
    for sitting in sittings.sittings_of(db_session, exam):
        click.echo("\t".join([sitting.code, sitting.room, sittings.local_time(sitting.starts_at, "%Y-%m-%d %H:%M"),
                              sittings.local_time(sitting.ends_at, "%Y-%m-%d %H:%M"), str(sitting.seats),
                              str(counts.get(sitting.id, 0))]))


@sitting_cli.command("code")
@click.argument("sitting_code", metavar="SITTING")
@click.option("--verbose", "-v", is_flag=True, help="Also print the seconds until the code changes.")
def sitting_code(sitting_code: str, verbose: bool):
    """Print SITTING's current access code (it changes every 2 minutes)."""
    require_schema()
    sitting = _sitting(get_session(), sitting_code)
    now = utcnow()
    click.echo(sittings.current_access_code(sitting, now))
    if verbose:
        click.echo(f"changes in {sittings.seconds_until_rotation(now)} s")


# --- candidates ----------------------------------------------------------------------------------

@candidates_cli.command("import")
@click.argument("exam_code", metavar="EXAM")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; write nothing.")
@transactional
def candidates_import(db_session, exam_code: str, file: Path, dry_run: bool):
    """Import EXAM's roster from FILE (.xlsx or .csv; see docs/roster-format.md), all or nothing.

    Every error is printed as "FILE: row 7, date_of_birth: ..."; any error exits 1 with nothing written.
    """
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    report = roster.import_roster(db_session, exam, file.name, file.read_bytes(), actor=CLI_ACTOR, now=utcnow(),
                                  dry_run=dry_run)
    if report.errors:
        refuse(str(file), [str(e) for e in report.errors])
    for post, n in report.by_post():
        click.echo(f"{n}\t{post}")
    if dry_run:
        click.echo(f"dry run: {report.added} candidates would be imported into {exam.code}; nothing written")
    else:
        click.echo(f"imported {report.added} candidates into {exam.code} from {file.name}, "
                   f"sha256 {report.file_sha256}")


@candidates_cli.command("list")
@click.argument("exam_code", metavar="EXAM")
@click.option("--sitting", "sitting_code", default=None, help="Only the candidates of this sitting.")
def candidates_list(exam_code: str, sitting_code: str | None):
    """EXAM's candidates as CSV: registration_no,date_of_birth,full_name,seat (date as YYYY-MM-DD)."""
    require_schema()
    db_session = get_session()
    exam = exam_or_exit(db_session, exam_code)
    listed = candidate_lists.candidates_of(db_session, exam)
    if sitting_code:
        sitting = _sitting(db_session, sitting_code, exam)
        listed = [c for c in listed if c.sitting == sitting.code]
    click.echo(candidate_lists.candidates_csv(listed), nl=False)


@candidates_cli.command("seat")
@click.argument("exam_code", metavar="EXAM")
@click.option("--sitting", "sitting_code", required=True, help="The sitting to seat candidates in.")
@transactional
def candidates_seat(db_session, exam_code: str, sitting_code: str):
    """Seat EXAM's candidates who have no seat yet in SITTING, in registration-number order.

    Takes the candidates the roster put in this sitting without a seat, and those in no
    sitting; seats already given stay. Refused when they do not all fit.
    """
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    sitting = _sitting(db_session, sitting_code, exam)
    try:
        run = sittings.assign_seats(db_session, exam, sitting, actor=CLI_ACTOR, now=utcnow())
    except sittings.SittingError as exc:
        refuse(f"sitting {sitting.code}", [message for _, message in exc.problems])
    in_sitting = db_session.scalar(select(func.count()).select_from(Candidate)
                                   .where(Candidate.sitting_id == sitting.id))
    click.echo(f"sitting {sitting.code}: {run.seated} candidates seated now, {in_sitting} of {sitting.seats} "
               "seats taken")
