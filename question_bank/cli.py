"""``flask --app wsgi bank ...``: import a question file, export the bank, count it.

    flask --app wsgi bank import ngan-hang.xlsx --topic "Kiến thức chung" --dry-run
    flask --app wsgi bank export ngan-hang-2026.xlsx
    flask --app wsgi bank stats
"""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from exam.core.commands import CLI_ACTOR, require_schema, transactional
from exam.core.db import get_session, utcnow
from exam.core.errors import Refused
from question_bank import bank as rules
from question_bank import browsing
from question_bank.formats import DIFFICULTIES, EXPORTERS, export_file
from question_bank.importer import ImportReport, import_file

bank = AppGroup("bank", help="The question bank: import, export, stats.")


def _table(rows: list[tuple[str, dict[str, int], int]], totals: dict[str, int]) -> list[str]:
    width = max([len("topic")] + [len(path) for path, _, _ in rows])
    lines = [f"{'topic':<{width}}  " + "  ".join(f"{d:>6}" for d in DIFFICULTIES) + "   total"]
    for path, cells, total in rows:
        lines.append(f"{path:<{width}}  " + "  ".join(f"{cells.get(d, 0):>6}" for d in DIFFICULTIES) + f"  {total:>6}")
    lines.append(f"{'TOTAL':<{width}}  " + "  ".join(f"{totals.get(d, 0):>6}" for d in DIFFICULTIES)
                 + f"  {sum(totals.values()):>6}")
    return lines


def _print_report(name: str, report: ImportReport) -> None:
    if report.by_cell:
        for line in _table(report.table(), report.column_totals()):
            click.echo(line)
    if report.new_topics:
        click.echo("new topics: " + "; ".join(report.new_topics))
    for near in report.near_duplicates:
        click.echo(f"{name}: warning: near-duplicate: {near}")
    for error in report.errors:
        click.echo(f"{name}: {error}", err=True)


@bank.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topic", "default_topic", default=None, metavar="PATH",
              help='Topic for questions the file gives none for, e.g. "Kiến thức chung > Hiến pháp 2013".')
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; write nothing.")
@transactional
def import_command(db_session, file: Path, default_topic: str | None, dry_run: bool):
    """Import FILE (.xlsx, .csv, .json, .gift or Aiken .txt), all or nothing.

    Prints the questions per topic × difficulty, the near-duplicates (warnings) and
    every error as "FILE: row 7, difficulty: ..."; any error exits 1 with nothing written.
    """
    require_schema()
    report = import_file(db_session, file.name, file.read_bytes(), actor=CLI_ACTOR, now=utcnow(),
                         default_topic=default_topic, dry_run=dry_run)
    _print_report(str(file), report)
    if report.errors:
        raise Refused(f"{file}: {len(report.errors)} error(s); nothing imported")
    if dry_run:
        click.echo(f"dry run: {report.added} questions would be imported; nothing written")
    else:
        click.echo(f"imported {report.added} questions (ids {report.first_id}-{report.last_id}) "
                   f"from {file.name}, sha256 {report.file_sha256}")


@bank.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@transactional
def export_command(db_session, file: Path):
    """Write the current version of every active question to FILE (.xlsx, .json or .csv, by extension).

    The file imports back into an empty bank as the same questions.
    """
    require_schema()
    fmt = file.suffix.lower().lstrip(".")
    if fmt not in EXPORTERS:
        raise click.BadParameter(f"use a file name ending in {', '.join('.' + f for f in EXPORTERS)}",
                                 param_hint="FILE")
    questions = browsing.export_questions(db_session)
    content = export_file(fmt, questions)
    rules.record_export(db_session, fmt=fmt, count=len(questions), content=content, actor=CLI_ACTOR, now=utcnow())
    db_session.flush()
    file.write_bytes(content)
    click.echo(f"exported {len(questions)} questions to {file}")


@bank.command("stats")
def stats_command():
    """Active questions per topic × difficulty, and the total."""
    require_schema()
    summary = browsing.stats(get_session())
    for line in _table(summary.rows, summary.by_difficulty):
        click.echo(line)
