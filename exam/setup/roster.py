"""The candidate roster: import from XLSX/CSV all-or-nothing, and the roster file's template.

``import_roster`` reads the file, checks every row (every problem is a ``RowError``
"row 7, date_of_birth: ..."), checks the rows against each other (duplicate
registration or citizen ID numbers, two candidates on one seat) and against the
exam's existing candidates and sittings, and writes the candidates only when there
is no error at all (one ``candidates.import`` audit entry with the file's SHA-256).
A dry run reports the same and writes nothing. The rows are read by the one XLSX/CSV
row reader (``exam.setup.tabular``: the bank import's hostile-file checks, zip bombs,
formulas, non-UTF-8 text); the columns and the rules of each field are here. The
layout is documented in docs/roster-format.md.

The lists in the board's order (seat list, door list) are ``exam.setup.candidate_lists``.
The outside scores (``exam.merit.outside_scores``) read their files with the same reader and the roster's
``READERS`` and ``parse_registration_no``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.setup import tabular
from exam.setup.models import Candidate, Exam, Sitting
from exam.setup.tabular import BLANK, Value, error_order, fold_caption, readers, row_values
from question_bank.formats import RowError
from question_bank.formats.validation import find_html

COLUMNS = ("registration_no", "full_name", "date_of_birth", "citizen_id", "post", "priority_category",
           "sitting", "seat")
REQUIRED_COLUMNS = ("registration_no", "full_name", "date_of_birth", "citizen_id", "post")
CAPTIONS_VI = {
    "registration_no": "Số báo danh", "full_name": "Họ và tên", "date_of_birth": "Ngày sinh",
    "citizen_id": "Số CCCD", "post": "Vị trí dự tuyển", "priority_category": "Đối tượng ưu tiên",
    "sitting": "Ca thi", "seat": "Vị trí ngồi",
}
# Other captions boards use, compared without case or accents.
_ALIASES = {
    "registration_no": ("sbd", "so bao danh", "registration number", "registration"),
    "full_name": ("ho ten", "ho va ten", "name", "full name", "ten"),
    "date_of_birth": ("ngay sinh", "ngay thang nam sinh", "dob", "date of birth", "birth date", "birthday"),
    "citizen_id": ("cccd", "so cccd", "so cccd/cmnd", "cccd/cmnd", "cmnd", "so cmnd", "citizen id",
                   "can cuoc cong dan", "so can cuoc"),
    "post": ("vi tri viec lam", "vi tri du tuyen", "vi tri tuyen dung", "job", "position"),
    "priority_category": ("doi tuong uu tien", "uu tien", "priority", "priority category"),
    "sitting": ("ca thi", "ca", "sitting code"),
    "seat": ("vi tri ngoi", "so may", "may so", "seat number", "ghe"),
}

MAX_ROWS = 50_000
MAX_NAME_CHARS = 200
MAX_POST_CHARS = 200
MAX_PRIORITY_CHARS = 100
REGISTRATION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")
NAME_PATTERN = re.compile(r"^[^\W\d_]+(?:[ '.-][^\W\d_]+)*\.?$")
MIN_AGE, MAX_AGE = 16, 80
ROSTER_SHEET_NAMES = ("thí sinh", "danh sách", "candidates", "roster")


HEADER_ALIASES: dict[str, str] = {}
for _column in COLUMNS:
    for _caption in (_column, CAPTIONS_VI[_column], *_ALIASES[_column]):
        HEADER_ALIASES[fold_caption(_caption)] = _column


def column_for_header(caption: str) -> str | None:
    return HEADER_ALIASES.get(fold_caption(caption))


READERS = readers(sheet_names=ROSTER_SHEET_NAMES, column_for=column_for_header)


# --- checking fields -----------------------------------------------------------------------------

DATE_FORMATS = (re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$"), re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"))


def parse_date_of_birth(value: Value, today: date) -> tuple[date | None, str | None]:
    """A real Excel date, dd/mm/yyyy (also with '-' or '.'), or yyyy-mm-dd: (date, None) or (None, reason)."""
    found = value.date
    if found is None:
        if value.number is not None:
            return None, (f"is a number ({value.text}), not a date; type it as dd/mm/yyyy, e.g. 05/09/1994, "
                          "or format the cell as a date")
        text = value.text.strip()
        if not text:
            return None, "is required (dd/mm/yyyy)"
        day_first, year_first = DATE_FORMATS
        match = day_first.match(text)
        try:
            if match:
                found = date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
            elif year_first.match(text):
                y, m, d = year_first.match(text).groups()
                found = date(int(y), int(m), int(d))
            else:
                return None, f"must be a date as dd/mm/yyyy (e.g. 05/09/1994) or yyyy-mm-dd (got {text!r})"
        except ValueError:
            return None, f"is not a real date (got {text!r}; day/month/year expected)"
    age = today.year - found.year - ((today.month, today.day) < (found.month, found.day))
    if found > today:
        return None, f"is in the future ({found:%d/%m/%Y})"
    if not MIN_AGE <= age <= MAX_AGE:
        return None, f"gives an age of {age} ({found:%d/%m/%Y}); check the year"
    return found, None


def parse_citizen_id(value: Value) -> tuple[str | None, str | None]:
    text = re.sub(r"[\s.]", "", value.text)
    if not text:
        return None, "is required (12-digit CCCD, or 9-digit CMND)"
    if not text.isdigit() or not text.isascii():
        return None, f"must be digits only: 12 for a CCCD, 9 for an old CMND (got {value.text!r})"
    if len(text) not in (9, 12):
        hint = ""
        if value.number is not None and len(text) in (8, 11):
            hint = ("; Excel dropped the leading 0 because the cell is a number: format the column as Text "
                    "and type the number again")
        return None, f"must have 12 digits (CCCD) or 9 (CMND); it has {len(text)} ({text}){hint}"
    return text, None


def _plain(value: Value, limit: int, required: bool) -> tuple[str, str | None]:
    text = value.text.strip()
    if required and not text:
        return "", "is required"
    if "\n" in text:
        return "", "must be on one line"
    if len(text) > limit:
        return "", f"is too long ({len(text)} characters; at most {limit})"
    tag = find_html(text)
    if tag:
        return "", f"contains HTML ({tag!r}); type plain text"
    return text, None


def parse_name(value: Value) -> tuple[str | None, str | None]:
    text, reason = _plain(value, MAX_NAME_CHARS, True)
    if reason:
        return None, reason
    if not NAME_PATTERN.match(text):
        return None, f"must be a name in letters, e.g. 'Nguyễn Thị Lan' (got {text!r})"
    return text, None


def parse_registration_no(value: Value) -> tuple[str | None, str | None]:
    text = value.text.strip()
    if not text:
        return None, "is required"
    if not REGISTRATION_PATTERN.match(text):
        return None, (f"must be 1 to 40 letters, digits, '.', '_', '/' or '-' with no spaces (got {text!r})")
    return text, None


def parse_seat(value: Value) -> tuple[int | None, str | None]:
    text = value.text.strip()
    if not text:
        return None, None
    if not text.isdigit() or not text.isascii():
        return None, f"must be a seat number such as 12 (got {text!r})"
    return int(text), None


# --- the import ----------------------------------------------------------------------------------

@dataclass
class RosterRow:
    location: str
    registration_no: str
    full_name: str
    date_of_birth: date
    citizen_id: str
    post: str
    priority_category: str = ""
    sitting: str = ""
    seat: int | None = None


@dataclass
class RosterReport:
    filename: str
    format: str
    file_sha256: str
    dry_run: bool
    rows: list[RosterRow] = field(default_factory=list)  # the rows without errors
    errors: list[RowError] = field(default_factory=list)
    added: int = 0  # candidates written (or, on a clean dry run, that would be)

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_post(self) -> list[tuple[str, int]]:
        return sorted(Counter(row.post for row in self.rows).items())

    def by_sitting(self) -> list[tuple[str, int]]:
        return sorted(Counter(row.sitting for row in self.rows).items())


def read_roster(filename: str, content: bytes, *, today: date) -> tuple[str, list[RosterRow], list[RowError]]:
    """(format, rows, errors) of a roster file: each row checked on its own and against the others."""
    errors: list[RowError] = []
    fmt, reader, problem = tabular.open_table(filename, content, READERS)
    if problem is not None:
        return fmt, [], [problem]
    rows: list[RosterRow] = []
    table = tabular.TableRows(reader, content, errors, column_for=column_for_header, columns=COLUMNS,
                              required=REQUIRED_COLUMNS, max_rows=MAX_ROWS,
                              too_many=f"has more than {MAX_ROWS:,} candidates; split it into smaller files")
    for location, cells in table:
        row = _row(location, cells, table.header, errors, today)
        if row is not None:
            rows.append(row)
    if table.header_refused:
        return fmt, [], errors
    if table.header is None and not errors:
        errors.append(RowError("file", "", "is empty: it needs a header row and at least one candidate row"))
    elif table.header is not None and table.count == 0:
        errors.append(RowError("file", "", "has a header row but no candidates"))
    _duplicates(rows, errors)
    return fmt, rows, errors


def _row(location: str, cells: list[Value], header: dict[int, str], errors: list[RowError],
         today: date) -> RosterRow | None:
    before = len(errors)
    values = row_values(location, cells, header, errors)
    if values is None:
        return None

    def check(column: str, parser):
        parsed, reason = parser(values.get(column, BLANK))
        if reason:
            errors.append(RowError(location, column, reason))
        return parsed

    registration_no = check("registration_no", parse_registration_no)
    full_name = check("full_name", parse_name)
    date_of_birth = check("date_of_birth", lambda v: parse_date_of_birth(v, today))
    citizen_id = check("citizen_id", parse_citizen_id)
    post = check("post", lambda v: _plain(v, MAX_POST_CHARS, True))
    priority = check("priority_category", lambda v: _plain(v, MAX_PRIORITY_CHARS, False))
    sitting = check("sitting", lambda v: _plain(v, 40, False))
    seat = check("seat", parse_seat)
    if seat is not None and not sitting:
        errors.append(RowError(location, "seat", "a seat needs a sitting: fill in the sitting column too"))
    if len(errors) > before:
        return None
    return RosterRow(location, registration_no, full_name, date_of_birth, citizen_id, post, priority or "",
                     sitting or "", seat)


def _duplicates(rows: list[RosterRow], errors: list[RowError]) -> None:
    first_number: dict[str, str] = {}
    first_id: dict[str, str] = {}
    first_seat: dict[tuple[str, int], str] = {}
    for row in rows:
        if row.registration_no in first_number:
            errors.append(RowError(row.location, "registration_no",
                                   f"{row.registration_no} is also at {first_number[row.registration_no]}"))
        else:
            first_number[row.registration_no] = row.location
        if row.citizen_id in first_id:
            errors.append(RowError(row.location, "citizen_id",
                                   f"{row.citizen_id} is also at {first_id[row.citizen_id]}"))
        else:
            first_id[row.citizen_id] = row.location
        if row.seat is not None:
            key = (row.sitting, row.seat)
            if key in first_seat:
                errors.append(RowError(row.location, "seat", f"seat {row.seat} of sitting {row.sitting} is also given "
                                                             f"at {first_seat[key]}"))
            else:
                first_seat[key] = row.location


def _against_database(session: Session, exam: Exam, rows: list[RosterRow], errors: list[RowError]) -> None:
    existing = session.execute(select(Candidate.registration_no, Candidate.citizen_id)
                               .where(Candidate.exam_id == exam.id)).all()
    numbers = {number for number, _ in existing}
    ids = {citizen_id for _, citizen_id in existing}
    sittings = {s.code: s for s in session.scalars(select(Sitting).where(Sitting.exam_id == exam.id))}
    for row in rows:
        if row.registration_no in numbers:
            errors.append(RowError(row.location, "registration_no",
                                   f"{row.registration_no} is already a candidate of exam {exam.code}"))
        if row.citizen_id in ids:
            errors.append(RowError(row.location, "citizen_id",
                                   f"{row.citizen_id} is already the citizen ID of a candidate of exam {exam.code}"))
        if row.sitting and row.sitting not in sittings:
            known = ", ".join(sorted(sittings)) or "none yet"
            errors.append(RowError(row.location, "sitting",
                                   f"exam {exam.code} has no sitting {row.sitting!r} (its sittings: {known})"))
    used_sittings = {row.sitting for row in rows if row.sitting in sittings}
    if not used_sittings:
        return
    ids_in_use = [sittings[code].id for code in used_sittings]
    occupied = session.execute(select(Candidate.sitting_id, Candidate.seat)
                               .where(Candidate.sitting_id.in_(ids_in_use))).all()
    taken = {(sitting_id, seat) for sitting_id, seat in occupied if seat is not None}
    headcount = Counter(sitting_id for sitting_id, _ in occupied)
    for row in rows:
        sitting = sittings.get(row.sitting)
        if sitting is None or row.seat is None:
            continue
        if not 1 <= row.seat <= sitting.seats:
            errors.append(RowError(row.location, "seat", f"sitting {sitting.code} has seats 1 to {sitting.seats} "
                                                         f"(got {row.seat})"))
        elif (sitting.id, row.seat) in taken:
            errors.append(RowError(row.location, "seat", f"seat {row.seat} of sitting {sitting.code} is already "
                                                         "taken by a candidate"))
    incoming = Counter(row.sitting for row in rows if row.sitting in sittings)
    for code, n in sorted(incoming.items()):
        sitting = sittings[code]
        if headcount[sitting.id] + n > sitting.seats:
            errors.append(RowError("file", "sitting", f"sitting {code} has {sitting.seats} seats, "
                                                      f"{headcount[sitting.id]} taken; the file puts {n} more "
                                                      "candidates in it"))


def import_roster(session: Session, exam: Exam, filename: str, content: bytes, *, actor: str, now: datetime,
                  dry_run: bool = False) -> RosterReport:
    """Check a roster file and, unless ``dry_run`` or any error, add every candidate in it.

    Never raises for a bad file: the report carries every error and nothing is written.
    """
    content = bytes(content)
    report = RosterReport(filename=filename, format="", file_sha256=hashlib.sha256(content).hexdigest(),
                          dry_run=dry_run)
    report.format, rows, errors = read_roster(filename, content, today=now.date())
    _against_database(session, exam, rows, errors)
    report.rows, report.errors = rows, sorted(errors, key=error_order)
    if report.errors:
        return report
    report.added = len(rows)
    if dry_run:
        return report
    sitting_ids = dict(session.execute(select(Sitting.code, Sitting.id).where(Sitting.exam_id == exam.id)).all())
    session.execute(insert(Candidate), [
        {"exam_id": exam.id, "registration_no": row.registration_no, "full_name": row.full_name,
         "date_of_birth": row.date_of_birth, "citizen_id": row.citizen_id, "post": row.post,
         "priority_category": row.priority_category, "sitting_id": sitting_ids.get(row.sitting),
         "seat": row.seat, "created_at": now} for row in rows])
    session.flush()
    audit.append(session, actor=actor, action="candidates.import", object_type="exam", object_id=exam.code,
                 details={"filename": filename, "sha256": report.file_sha256, "format": report.format,
                          "count": len(rows), "by_post": [[post, n] for post, n in report.by_post()],
                          "by_sitting": [[code, n] for code, n in report.by_sitting() if code]}, now=now)
    return report


# --- templates -----------------------------------------------------------------------------------

TEMPLATE_ROWS = (
    ("TS0001", "Nguyễn Thị Lan", "05/09/1994", "001194012345", "Chuyên viên pháp chế", "", "", ""),
    ("TS0002", "Trần Văn Bình", "1990-12-31", "079090001234", "Chuyên viên công nghệ thông tin",
     "Con thương binh", "", ""),
)


def template_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def template_xlsx() -> bytes:
    """Header + two examples; every column formatted as Text so Excel keeps CCCD's leading zeros."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Thí sinh"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in TEMPLATE_ROWS:
        sheet.append(list(row))
    for index, width in enumerate((14, 28, 14, 16, 34, 22, 10, 10), start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = width
        for row in range(2, 502):
            sheet[f"{letter}{row}"].number_format = "@"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
