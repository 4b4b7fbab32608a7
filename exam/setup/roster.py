"""The candidate roster: import from XLSX/CSV all-or-nothing, lists in the board's order.

``import_roster`` reads the file, checks every row (every problem is a ``RowError``
"row 7, date_of_birth: ..."), checks the rows against each other (duplicate
registration or citizen ID numbers, two candidates on one seat) and against the
exam's existing candidates and sittings, and writes the candidates only when there
is no error at all (one ``candidates.import`` audit entry with the file's SHA-256).
A dry run reports the same and writes nothing. The file readers reuse the bank
import's hostile-file checks (zip bombs, formulas, non-UTF-8 text). The layout is
documented in docs/roster-format.md.

Lists: ``seat_list`` (by seat) and ``door_list`` (by given name, the Vietnamese way:
the last word of the name, then the whole name, in Vietnamese alphabetical order).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.setup.models import Candidate, Exam, Sitting
from question_bank.formats import MAX_FILE_BYTES, RowError, csv_format, xlsx
from question_bank.formats.validation import decode_utf8, find_html, normalise_text

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
IGNORED_HEADERS = ("stt", "tt", "no", "no.", "#")  # the row counter every Vietnamese list starts with

MAX_ROWS = 50_000
MAX_NAME_CHARS = 200
MAX_POST_CHARS = 200
MAX_PRIORITY_CHARS = 100
REGISTRATION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")
NAME_PATTERN = re.compile(r"^[^\W\d_]+(?:[ '.-][^\W\d_]+)*\.?$")
MIN_AGE, MAX_AGE = 16, 80
ROSTER_SHEET_NAMES = ("thí sinh", "danh sách", "candidates", "roster")
SAVE_HINT = csv_format.SAVE_HINT


def fold_caption(text: str) -> str:
    """Header key: no case, no accents (đ → d), '_' and '-' as spaces."""
    text = normalise_text(text).casefold().replace("đ", "d")
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return " ".join(text.replace("_", " ").replace("-", " ").split())


HEADER_ALIASES: dict[str, str] = {}
for _column in COLUMNS:
    for _caption in (_column, CAPTIONS_VI[_column], *_ALIASES[_column]):
        HEADER_ALIASES[fold_caption(_caption)] = _column


def column_for_header(caption: str) -> str | None:
    return HEADER_ALIASES.get(fold_caption(caption))


# --- reading cells -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    """A cell as found: text, or a real date or number from Excel, plus what is wrong with the cell."""

    text: str = ""
    date: date | None = None
    number: int | float | None = None
    problem: str | None = None

    @property
    def blank(self) -> bool:
        return not self.text and self.date is None and self.number is None and self.problem is None


BLANK = Value()


def _xlsx_value(cell) -> Value:
    value = cell.value
    if value is None:
        return BLANK
    if cell.data_type == "f":
        return Value(str(value), problem=xlsx.FORMULA_REASON)
    if isinstance(value, datetime):
        return Value(value.date().isoformat(), date=value.date())
    if isinstance(value, date):
        return Value(value.isoformat(), date=value)
    if isinstance(value, bool):
        return Value("TRUE" if value else "FALSE")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return Value(str(value), number=value)
    return Value(normalise_text(str(value)))


def _xlsx_rows(content: bytes, errors: list[RowError]) -> Iterator[tuple[int, list[Value]]]:
    problem = xlsx.check_zip(content)
    if problem:
        errors.append(RowError("file", "", problem))
        return
    from openpyxl import load_workbook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False, keep_links=False)
        except xlsx.READ_ERRORS as exc:
            errors.append(RowError("file", "", xlsx.CORRUPT_REASON.format(detail=f"{type(exc).__name__}: {exc}")))
            return
        try:
            sheets = workbook.worksheets
            sheet = next((ws for ws in sheets if normalise_text(ws.title).casefold() in ROSTER_SHEET_NAMES),
                         sheets[0] if sheets else None)
            if sheet is None:
                errors.append(RowError("file", "", "has no worksheet"))
                return
            sheet.reset_dimensions()  # a wrong <dimension> must not hide rows
            rows = sheet.iter_rows(min_row=1)
            number = 0
            while True:
                number += 1
                try:
                    cells = [_xlsx_value(c) for c in next(rows)]
                except StopIteration:
                    return
                except xlsx.READ_ERRORS as exc:
                    errors.append(RowError("file", "", xlsx.CORRUPT_REASON.format(
                        detail=f"near row {number}: {type(exc).__name__}: {exc}")))
                    return
                yield number, cells
        finally:
            workbook.close()


def _csv_value(raw: str) -> Value:
    value = normalise_text(raw)
    if value.startswith("'"):
        return Value(normalise_text(value[1:]))  # Excel's "this is text" mark
    if csv_format.looks_like_formula(value):
        return Value(value, problem=csv_format.FORMULA_REASON.format(first=value[0]))
    return Value(value)


def _sniff(text: str) -> str:
    first = text.split("\n", 1)[0]
    best, best_score = ",", (-1, -1)
    for delimiter in csv_format.DELIMITERS:
        cells = next(csv.reader([first], delimiter=delimiter), [])
        score = (sum(1 for c in cells if column_for_header(c)), len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(content: bytes, errors: list[RowError]) -> Iterator[tuple[int, list[Value]]]:
    text, error = decode_utf8(content, SAVE_HINT)
    if error:
        errors.append(error)
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff(text))
    number = 0
    while True:
        number += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowError(f"row {number}", "", f"is not valid CSV ({exc}); check the quotes in this row"))
            return
        yield number, [_csv_value(v) for v in record]


READERS = {".xlsx": ("xlsx", _xlsx_rows), ".csv": ("csv", _csv_rows)}


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


def file_extension(filename: str) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def read_roster(filename: str, content: bytes, *, today: date) -> tuple[str, list[RosterRow], list[RowError]]:
    """(format, rows, errors) of a roster file: each row checked on its own and against the others."""
    errors: list[RowError] = []
    ext = file_extension(filename)
    if ext not in READERS:
        shown = repr(ext) if ext else "none"
        return "", [], [RowError("file", "", f"unsupported file type (extension {shown}); use .xlsx or .csv")]
    fmt, reader = READERS[ext]
    if len(content) > MAX_FILE_BYTES:
        return fmt, [], [RowError("file", "", f"is too large ({len(content):,} bytes; the limit is "
                                              f"{MAX_FILE_BYTES:,})")]
    if not content.strip():
        return fmt, [], [RowError("file", "", "is empty")]
    rows: list[RosterRow] = []
    header: dict[int, str] | None = None
    count = 0
    for number, cells in reader(content, errors):
        if all(cell.blank for cell in cells):
            continue
        location = f"row {number}"
        if header is None:
            header = read_header(location, cells, errors)
            if header is None:
                return fmt, [], errors
            continue
        count += 1
        if count > MAX_ROWS:
            errors.append(RowError("file", "", f"has more than {MAX_ROWS:,} candidates; split it into smaller files"))
            break
        row = _row(location, cells, header, errors, today)
        if row is not None:
            rows.append(row)
    if header is None and not errors:
        errors.append(RowError("file", "", "is empty: it needs a header row and at least one candidate row"))
    elif header is not None and count == 0:
        errors.append(RowError("file", "", "has a header row but no candidates"))
    _duplicates(rows, errors)
    return fmt, rows, errors


def read_header(location: str, cells: list[Value], errors: list[RowError], *,
                column_for: Callable[[str], str | None] = column_for_header, columns: Sequence[str] = COLUMNS,
                required: Sequence[str] = REQUIRED_COLUMNS) -> dict[int, str] | None:
    """A header row: {cell index: column} (a row counter's index maps to ""), or None after recording an
    error for each unknown, repeated or missing column. ``column_for`` names a caption's column (the
    roster's by default; the outside scores' file has its own)."""
    header: dict[int, str] = {}
    found: dict[str, int] = {}
    before = len(errors)
    for index, cell in enumerate(cells):
        caption = cell.text.strip()
        if not caption:
            continue
        if fold_caption(caption) in IGNORED_HEADERS:
            header[index] = ""  # the row counter: its values are not read
            continue
        column = column_for(caption)
        if column is None:
            errors.append(RowError(location, f"column {column_letter(index)}",
                                   f"unknown column {caption!r}; the columns are {', '.join(columns)}"))
        elif column in found:
            errors.append(RowError(location, f"column {column_letter(index)}",
                                   f"column {column!r} appears twice (also column {column_letter(found[column])})"))
        else:
            found[column] = index
            header[index] = column
    for column in required:
        if column not in found:
            errors.append(RowError(location, column, "required column is missing from the header row"))
    return None if len(errors) > before else header


def column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def row_values(location: str, cells: list[Value], header: dict[int, str],
               errors: list[RowError]) -> dict[str, Value] | None:
    """A data row's cells by column name; None (with the errors added) when a cell is unreadable
    or stands under no column. Shared by every tabular upload (roster, outside scores)."""
    values: dict[str, Value] = {}
    before = len(errors)
    for index, cell in enumerate(cells):
        column = header.get(index)
        if column == "":
            continue
        if column is None:
            if not cell.blank:
                errors.append(RowError(location, f"column {column_letter(index)}",
                                       "has a value but no column name in the header row"))
            continue
        if cell.problem:
            errors.append(RowError(location, column, cell.problem))
            continue
        values[column] = cell
    return None if len(errors) > before else values


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


def error_order(error: RowError) -> tuple:
    match = re.fullmatch(r"row (\d+)", error.location)
    return (0, 0) if not match else (1, int(match.group(1)))


# --- lists ---------------------------------------------------------------------------------------

# Vietnamese alphabetical order: letters with their vowel marks are letters of their own
# (a < ă < â, d < đ, o < ô < ơ, u < ư); tones only break ties, in the order
# none, huyền, hỏi, ngã, sắc, nặng.
ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}
_WITH_MODIFIER = {("a", "\u0306"): "ă", ("a", "\u0302"): "â", ("e", "\u0302"): "ê", ("o", "\u0302"): "ô",
                  ("o", "\u031b"): "ơ", ("u", "\u031b"): "ư"}
_RANK = {letter: index for index, letter in enumerate(ALPHABET)}


def vietnamese_key(text: str) -> tuple:
    """Sort key: letters in the Vietnamese alphabet first, then tones, then the text itself."""
    letters, tones = [], []
    for ch in unicodedata.normalize("NFC", text or "").casefold():
        parts = unicodedata.normalize("NFD", ch)
        base, marks = parts[0], parts[1:]
        tone = 0
        for mark in marks:
            if (base, mark) in _WITH_MODIFIER:
                base = _WITH_MODIFIER[(base, mark)]
            elif mark in _TONES:
                tone = _TONES[mark]
        letters.append(_RANK[base] if base in _RANK else len(ALPHABET) + ord(base))
        tones.append(tone)
    return tuple(letters), tuple(tones), text


def given_name(full_name: str) -> str:
    """The name a Vietnamese list is sorted by: the last word ('Nguyễn Thị Lan' → 'Lan')."""
    words = (full_name or "").split()
    return words[-1] if words else ""


def door_order_key(full_name: str) -> tuple:
    return vietnamese_key(given_name(full_name)), vietnamese_key(full_name)


@dataclass
class ListedCandidate:
    seat: int | None
    registration_no: str
    full_name: str
    date_of_birth: date
    post: str
    priority_category: str
    sitting: str


def _listed(session: Session, query) -> list[ListedCandidate]:
    rows = session.execute(query.outerjoin(Sitting, Sitting.id == Candidate.sitting_id)).all()
    return [ListedCandidate(c.seat, c.registration_no, c.full_name, c.date_of_birth, c.post, c.priority_category,
                            code or "") for c, code in rows]


def candidates_of(session: Session, exam: Exam) -> list[ListedCandidate]:
    """Every candidate of the exam, by registration number."""
    return _listed(session, select(Candidate, Sitting.code).where(Candidate.exam_id == exam.id)
                   .order_by(Candidate.registration_no))


def seat_list(session: Session, sitting: Sitting) -> list[ListedCandidate]:
    """The sitting's candidates by seat (those still without a seat last, by registration number)."""
    listed = _listed(session, select(Candidate, Sitting.code).where(Candidate.sitting_id == sitting.id))
    return sorted(listed, key=lambda c: (c.seat is None, c.seat or 0, c.registration_no))


def door_list(session: Session, sitting: Sitting) -> list[ListedCandidate]:
    """The sitting's candidates as called at the door: by given name, then full name (Vietnamese order)."""
    listed = _listed(session, select(Candidate, Sitting.code).where(Candidate.sitting_id == sitting.id))
    return sorted(listed, key=lambda c: (door_order_key(c.full_name), c.registration_no))


def counts_by_sitting(session: Session, exam: Exam) -> dict[int | None, int]:
    """Sitting id (None: not in a sitting yet) → number of candidates."""
    return dict(session.execute(select(Candidate.sitting_id, func.count()).where(Candidate.exam_id == exam.id)
                                .group_by(Candidate.sitting_id)).all())


def candidates_csv(candidates: Iterable[ListedCandidate]) -> str:
    """registration_no,date_of_birth,full_name,seat (date as YYYY-MM-DD): what IT staff script with."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("registration_no", "date_of_birth", "full_name", "seat"))
    for c in candidates:
        writer.writerow((c.registration_no, c.date_of_birth.isoformat(), c.full_name, "" if c.seat is None else c.seat))
    return out.getvalue()


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
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Thí sinh"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in TEMPLATE_ROWS:
        sheet.append(list(row))
    for index, width in enumerate((14, 28, 14, 16, 34, 22, 10, 10), start=1):
        from openpyxl.utils import get_column_letter

        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = width
        for row in range(2, 502):
            sheet[f"{letter}{row}"].number_format = "@"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
