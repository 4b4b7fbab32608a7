"""Scores from outside the system (round 2 marked on paper, an interview): import from XLSX/CSV, all-or-nothing.

A file has a header row and one row per candidate and component::

    registration_no, score, component (optional), full_name (optional)
    TS0001,          72.5,  round2
    TS0002,          vắng                      ← absent: an empty score or "vắng"

``import_scores`` checks every row (a ``RowError`` "row 7, score: ..."): the registration
number is a candidate of the exam, the score a number from 0 to ``max_score`` (a decimal
comma is read too), the component a name such as ``round2`` or ``interview`` (the
column's value, else the ``component`` argument, ``round2`` by default), the name, when
given, the candidate's own; a candidate and component appear once in the file. Only when
there is no error at all are the scores written (a score imported again replaces the old
one) with one ``scores.import`` audit entry carrying the file's SHA-256. A dry run reports
the same and writes nothing. The file readers are the roster's (``exam.setup.roster``), with the
bank import's hostile-file checks.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.merit.models import ExternalScore
from exam.merit.rule import COMPONENT_PATTERN, COMPONENT_RULE, RESERVED_COMPONENTS, ROUND2, SCORE_DECIMALS, fold
from exam.setup import roster, tabular
from exam.setup.models import Candidate, Exam
from question_bank.formats import RowError

COLUMNS = ("registration_no", "score", "component", "full_name")
REQUIRED_COLUMNS = ("registration_no", "score")
CAPTIONS_VI = {"registration_no": "Số báo danh", "score": "Điểm", "component": "Thành phần điểm",
               "full_name": "Họ và tên"}
# Other captions boards use, compared without case or accents (tabular.fold_caption).
_ALIASES = {
    "registration_no": ("sbd", "so bao danh", "registration number", "registration"),
    "score": ("diem", "diem thi", "diem vong 2", "diem phong van", "diem thuc hanh", "ket qua", "points"),
    "component": ("thanh phan", "thanh phan diem", "vong thi", "mon thi", "loai diem"),
    "full_name": ("ho ten", "ho va ten", "name", "full name"),
}
HEADER_ALIASES = {tabular.fold_caption(caption): column for column in COLUMNS
                  for caption in (column, CAPTIONS_VI[column], *_ALIASES[column])}
ABSENT_WORDS = ("vắng", "vắng thi", "vắng mặt", "v", "absent")  # compared without case or accents
DEFAULT_COMPONENT = ROUND2
DEFAULT_MAX_SCORE = 100.0
MAX_ROWS = 50_000
NUMBER_PATTERN = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")

_ABSENT = {tabular.fold_caption(word) for word in ABSENT_WORDS}


def check_component(name: str) -> str | None:
    """Why ``name`` cannot name an outside score, or None."""
    if name in RESERVED_COMPONENTS:
        return f"{name!r} is a reserved name ({', '.join(RESERVED_COMPONENTS)})"
    if not COMPONENT_PATTERN.match(name):
        return f"must be {COMPONENT_RULE} (got {name!r})"
    return None


@dataclass
class ScoreRow:
    location: str
    registration_no: str
    component: str
    score: float | None  # None: absent
    candidate_id: int = 0


@dataclass
class ScoresReport:
    filename: str
    format: str
    file_sha256: str
    dry_run: bool
    rows: list[ScoreRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    imported: int = 0  # scores written (or, on a clean dry run, that would be)
    replaced: int = 0  # of those, how many replace a score imported before

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def absent(self) -> int:
        return sum(1 for row in self.rows if row.score is None)

    def by_component(self) -> list[tuple[str, int]]:
        return sorted(Counter(row.component for row in self.rows).items())


def column_for_header(caption: str) -> str | None:
    return HEADER_ALIASES.get(tabular.fold_caption(caption))


def parse_score(value: tabular.Value, max_score: float) -> tuple[float | None, str | None]:
    """(score, None), (None, None) for absent (blank or "vắng"), or (None, reason)."""
    if value.number is not None:
        number = float(value.number)
    else:
        text = value.text.strip()
        if not text or tabular.fold_caption(text) in _ABSENT:
            return None, None
        if value.date is not None or not NUMBER_PATTERN.match(text):
            return None, f'must be a number such as 72.5 or 72,5, or empty / "vắng" when absent (got {text!r})'
        number = float(text.replace(",", "."))
    if not math.isfinite(number) or not 0 <= number <= max_score:
        return None, f"must be between 0 and {max_score:g} (got {number:g})"
    if round(number, SCORE_DECIMALS) != number:
        return None, f"has more than {SCORE_DECIMALS} decimals (got {number!r})"
    return number, None


def read_scores(filename: str, content: bytes, *, component: str = DEFAULT_COMPONENT,
                max_score: float = DEFAULT_MAX_SCORE) -> tuple[str, list[ScoreRow], list[RowError],
                                                               dict[str, str]]:
    """(format, rows, errors, names given per row location) of a scores file, each row checked on its own
    and against the others (a candidate and component given twice)."""
    errors: list[RowError] = []
    fmt, reader, problem = tabular.open_table(filename, content, roster.READERS)
    if problem is not None:
        return fmt, [], [problem], {}
    rows: list[ScoreRow] = []
    names: dict[str, str] = {}
    table = tabular.TableRows(reader, content, errors, column_for=column_for_header, columns=COLUMNS,
                              required=REQUIRED_COLUMNS, max_rows=MAX_ROWS,
                              too_many=f"has more than {MAX_ROWS:,} rows; split it into smaller files")
    for location, cells in table:
        row = _row(location, cells, table.header, errors, component, max_score, names)
        if row is not None:
            rows.append(row)
    if table.header_refused:
        return fmt, [], errors, {}
    if table.header is None and not errors:
        errors.append(RowError("file", "", "is empty: it needs a header row and at least one score row"))
    elif table.header is not None and table.count == 0:
        errors.append(RowError("file", "", "has a header row but no scores"))
    first: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row.registration_no, row.component)
        if key in first:
            errors.append(RowError(row.location, "registration_no",
                                   f"{row.registration_no} already has a {row.component} score at {first[key]}"))
        else:
            first[key] = row.location
    return fmt, rows, errors, names


def _row(location: str, cells: list[tabular.Value], header: dict[int, str], errors: list[RowError],
         default_component: str, max_score: float, names: dict[str, str]) -> ScoreRow | None:
    before = len(errors)
    values = tabular.row_values(location, cells, header, errors)
    if values is None:
        return None
    registration_no, reason = roster.parse_registration_no(values.get("registration_no", tabular.BLANK))
    if reason:
        errors.append(RowError(location, "registration_no", reason))
    score, reason = parse_score(values.get("score", tabular.BLANK), max_score)
    if reason:
        errors.append(RowError(location, "score", reason))
    component = values.get("component", tabular.BLANK).text.strip() or default_component
    reason = check_component(component)
    if reason:
        errors.append(RowError(location, "component", reason))
    name = values.get("full_name", tabular.BLANK).text.strip()
    if name:
        names[location] = name
    if len(errors) > before:
        return None
    return ScoreRow(location, registration_no, component, score)


def _against_database(session: Session, exam: Exam, rows: list[ScoreRow], names: dict[str, str],
                      errors: list[RowError]) -> None:
    candidates = {reg: (cid, name) for cid, reg, name in session.execute(
        select(Candidate.id, Candidate.registration_no, Candidate.full_name).where(Candidate.exam_id == exam.id))}
    for row in rows:
        found = candidates.get(row.registration_no)
        if found is None:
            errors.append(RowError(row.location, "registration_no",
                                   f"{row.registration_no} is not a candidate of exam {exam.code}"))
            continue
        row.candidate_id = found[0]
        given = names.get(row.location)
        if given and fold(given) != fold(found[1]):
            errors.append(RowError(row.location, "full_name", f"{given!r} is not the name of {row.registration_no} "
                                                              f"({found[1]!r}); check the row"))


def import_scores(session: Session, exam: Exam, filename: str, content: bytes, *, actor: str, now: datetime,
                  component: str = DEFAULT_COMPONENT, max_score: float = DEFAULT_MAX_SCORE,
                  dry_run: bool = False) -> ScoresReport:
    """Check a scores file and, unless ``dry_run`` or any error, write every score in it.

    Never raises for a bad file: the report carries every error and nothing is written.
    """
    content = bytes(content)
    report = ScoresReport(filename=filename, format="", file_sha256=hashlib.sha256(content).hexdigest(),
                          dry_run=dry_run)
    reason = check_component(component)
    if reason:
        report.errors = [RowError("file", "component", reason)]
        return report
    report.format, rows, errors, names = read_scores(filename, content, component=component, max_score=max_score)
    _against_database(session, exam, rows, names, errors)
    report.rows, report.errors = rows, sorted(errors, key=tabular.error_order)
    if report.errors:
        return report
    keys = [(row.candidate_id, row.component) for row in rows]
    existing = set()
    for chunk in range(0, len(keys), 500):
        part = keys[chunk:chunk + 500]
        existing.update(session.execute(select(ExternalScore.candidate_id, ExternalScore.component).where(
            tuple_(ExternalScore.candidate_id, ExternalScore.component).in_(part))).all())
    report.imported, report.replaced = len(rows), len(existing)
    if dry_run:
        return report
    for chunk in range(0, len(keys), 500):
        part = [key for key in keys[chunk:chunk + 500] if key in existing]
        if part:
            session.execute(delete(ExternalScore).where(
                tuple_(ExternalScore.candidate_id, ExternalScore.component).in_(part)))
    session.execute(insert(ExternalScore), [
        {"candidate_id": row.candidate_id, "component": row.component, "exam_id": exam.id, "score": row.score,
         "imported_at": now, "imported_by": actor, "source_sha256": report.file_sha256} for row in rows])
    session.flush()
    audit.append(session, actor=actor, action="scores.import", object_type="exam", object_id=exam.code,
                 details={"filename": filename, "sha256": report.file_sha256, "format": report.format,
                          "count": len(rows), "absent": report.absent, "replaced": report.replaced,
                          "by_component": [[name, n] for name, n in report.by_component()]}, now=now)
    return report


def scores_of(session: Session, exam: Exam) -> dict[int, dict[str, float | None]]:
    """Candidate id → {component: score (None: absent)} for every outside score of the exam."""
    scores: dict[int, dict[str, float | None]] = {}
    for candidate_id, component, score in session.execute(
            select(ExternalScore.candidate_id, ExternalScore.component, ExternalScore.score)
            .where(ExternalScore.exam_id == exam.id)):
        scores.setdefault(candidate_id, {})[component] = score
    return scores


TEMPLATE_ROWS = (("TS0001", "Nguyễn Thị Lan", "72,5"), ("TS0002", "Trần Văn Bình", "vắng"))


def template_csv() -> bytes:
    """A scores template: registration number, name (checked against the roster) and score."""
    lines = ["registration_no,full_name,score"] + [",".join(f'"{v}"' if "," in v else v for v in row)
                                                   for row in TEMPLATE_ROWS]
    return b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode("utf-8")
