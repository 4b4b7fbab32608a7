"""Commands about merit lists and outside scores:

    flask --app wsgi scores import R1-2026 diem-vong-2.xlsx [--component round2] [--dry-run]
    flask --app wsgi merit ranking R1-2026 [ranking.toml]
    flask --app wsgi merit build R1-2026
    flask --app wsgi merit decide R1-2026 --post "Chuyên viên pháp chế" --selected TS0012 --not-selected TS0031 \\
        --reason "Hội đồng họp ngày 02/12/2026 quyết định …"
    flask --app wsgi merit publish R1-2026 [--with-unresolved-ties]
    flask --app wsgi merit export R1-2026 [--post POST] --out danh-sach.pdf   (.csv, .xlsx or .pdf)

Every refusal exits non-zero with each problem on stderr; nothing is written then.
"""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from exam.core.commands import CLI_ACTOR, merit_cli, refuse, require_schema, scores_cli, transactional
from exam.core.db import get_session, utcnow
from exam.merit import lists as merit_lists
from exam.merit import outside_scores
from exam.merit import ranking as merit
from exam.merit.exports import EXPORTERS
from exam.merit.rule import MeritRejected
from exam.setup.exams import exam_or_exit


def _rejected(label: str, exc: MeritRejected) -> None:
    refuse(label, [str(problem) for problem in exc.problems])


def _print_lists(lists: dict[str, merit.MeritList]) -> None:
    for post, ml in lists.items():
        counts = ml.counts()
        click.echo(f"{post}\tquota {ml.quota}\tselected {counts['selected']}\ttie {counts['tie']}\t"
                   f"not selected {counts['not_selected']}\tineligible {counts['ineligible']}")
        for tie in ml.ties:
            click.echo(f"  tie at rank {tie.rank} for {tie.places} place(s), total {merit.format_points(tie.total)}: "
                       f"{', '.join(tie.registration_nos)} — the board decides (flask --app wsgi merit decide)")


# --- scores --------------------------------------------------------------------------------------

@scores_cli.command("import")
@click.argument("exam_code", metavar="EXAM")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--component", default=outside_scores.DEFAULT_COMPONENT, show_default=True,
              help="The score's name when the file has no component column (round2, interview…).")
@click.option("--dry-run", is_flag=True, help="Check every row and write nothing.")
@transactional
def scores_import(db_session, exam_code: str, file: Path, component: str, dry_run: bool):
    """Import outside scores from FILE (.xlsx or .csv): registration_no, score (empty or "vắng": absent),
    optional component and full_name columns. All or nothing."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    report = outside_scores.import_scores(db_session, exam, file.name, file.read_bytes(), actor=CLI_ACTOR,
                                          now=utcnow(), component=component, dry_run=dry_run)
    if not report.ok:
        refuse(str(file), [str(error) for error in report.errors])
    components = ", ".join(f"{name} {n}" for name, n in report.by_component())
    verb = "would import" if dry_run else "imported"
    click.echo(f"{file}: {verb} {report.imported} scores ({components}; {report.absent} absent, {report.replaced} "
               f"replacing earlier ones); sha256 {report.file_sha256}" + ("; nothing written" if dry_run else ""))


# --- merit lists ---------------------------------------------------------------------------------

@merit_cli.command("ranking")
@click.argument("exam_code", metavar="EXAM")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@transactional
def merit_ranking(db_session, exam_code: str, file: Path | None):
    """Print the exam's ranking rule as TOML, or replace it with FILE's [ranking] table."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    if file is None:
        click.echo(merit_lists.ranking_toml(exam), nl=False)
        return
    data, errors = merit_lists.read_ranking_toml(file.read_text(encoding="utf-8-sig"))
    if errors:
        refuse(str(file), [str(e) for e in errors])
    try:
        merit_lists.set_ranking(db_session, exam, data, actor=CLI_ACTOR, now=utcnow())
    except MeritRejected as exc:
        _rejected(str(file), exc)
    click.echo(f"ranking rule of {exam.code} replaced; build the list again: flask --app wsgi merit build {exam.code}")


@merit_cli.command("build")
@click.argument("exam_code", metavar="EXAM")
@transactional
def merit_build(db_session, exam_code: str):
    """Build (or rebuild) the exam's draft merit list from the latest grading and the outside scores."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    try:
        record = merit_lists.build_merit_list(db_session, exam, CLI_ACTOR, utcnow())
    except MeritRejected as exc:
        _rejected(exam.code, exc)
    _print_lists(merit_lists.lists_of(record))
    click.echo(f"draft merit list of {exam.code} built; hash {record.hash}")


@merit_cli.command("decide")
@click.argument("exam_code", metavar="EXAM")
@click.option("--post", required=True, help="The post whose tie is decided, as on the list.")
@click.option("--selected", "selected", multiple=True, metavar="REG", help="A tied candidate the board selects.")
@click.option("--not-selected", "not_selected", multiple=True, metavar="REG",
              help="A tied candidate the board does not select.")
@click.option("--reason", required=True, help="The board's written reason (recorded and audit-logged).")
@transactional
def merit_decide(db_session, exam_code: str, post: str, selected: tuple[str, ...], not_selected: tuple[str, ...],
                 reason: str):
    """Record the board's decision on a tie at a quota's last place: every tied candidate is named."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    decisions = {reg: "selected" for reg in selected}
    for reg in not_selected:
        if reg in decisions:
            refuse(exam.code, [f"{reg} is given both --selected and --not-selected"])
        decisions[reg] = "not_selected"
    record = merit_lists.draft_list(db_session, exam)
    lists = merit_lists.lists_of(record) if record is not None else {}
    found = merit_lists.find_post(lists, post)
    try:
        record = merit_lists.decide_tie(db_session, exam, post=found.post if found else post, decisions=decisions,
                                        reason=reason, actor=CLI_ACTOR, now=utcnow())
    except MeritRejected as exc:
        _rejected(exam.code, exc)
    _print_lists(merit_lists.lists_of(record))
    click.echo(f"decision recorded; hash {record.hash}")


@merit_cli.command("publish")
@click.argument("exam_code", metavar="EXAM")
@click.option("--with-unresolved-ties", is_flag=True,
              help="Publish although a tie awaits the board's decision (listed as such).")
@transactional
def merit_publish(db_session, exam_code: str, with_unresolved_ties: bool):
    """Publish (freeze) the draft merit list; its hash enters the audit chain."""
    require_schema()
    exam = exam_or_exit(db_session, exam_code)
    record = merit_lists.publish_merit_list(db_session, exam, actor=CLI_ACTOR, now=utcnow(),
                                            allow_unresolved_ties=with_unresolved_ties)
    click.echo(f"merit list of {exam.code} published; hash {record.hash}")


@merit_cli.command("export")
@click.argument("exam_code", metavar="EXAM")
@click.option("--post", default=None, help="One post only (default: every post, a sheet or section each).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=f"The file to write: {', '.join(EXPORTERS)}.")
@with_appcontext
def merit_export(exam_code: str, post: str | None, out: Path):
    """Write the merit list (the published one, else the draft) as CSV, XLSX or PDF."""
    require_schema()
    db_session = get_session()
    exam = exam_or_exit(db_session, exam_code)
    try:
        content = merit_lists.export_list(db_session, exam, out.name, post=post)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db_session.rollback()
    out.write_bytes(content)
    record = merit_lists.current_list(db_session, exam)
    state = "published" if record.status == "published" else "draft, not published"
    click.echo(f"{out}: {len(content):,} bytes ({state}; hash {record.hash})")
