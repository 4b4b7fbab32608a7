"""The one XLSX/CSV row reader of the board's uploaded lists: the roster (``exam.setup.roster``) and
the outside scores (``exam.merit.outside_scores``).

A file becomes rows of ``Value`` cells: text, or the real date or number Excel stored, and what is
wrong with the cell (a formula, which is never evaluated). The readers reuse the bank import's
hostile-file checks (zip bombs, formulas, non-UTF-8 text); every problem is a ``RowError``. Then a
header row names the columns (``read_header``: captions compared without case or accents, a row
counter column ignored) and each data row's cells are read by column (``row_values``). Which
columns a file has, and how each value is checked, is the caller's.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from question_bank.formats import MAX_FILE_BYTES, RowError, csv_format, xlsx
from question_bank.formats.validation import decode_utf8, normalise_text

IGNORED_HEADERS = ("stt", "tt", "no", "no.", "#")  # the row counter every Vietnamese list starts with
SAVE_HINT = csv_format.SAVE_HINT


def fold_caption(text: str) -> str:
    """Header key: no case, no accents (đ → d), '_' and '-' as spaces."""
    text = normalise_text(text).casefold().replace("đ", "d")
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return " ".join(text.replace("_", " ").replace("-", " ").split())


# --- cells ---------------------------------------------------------------------------------------

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


def xlsx_value(cell) -> Value:
    """An Excel cell as found: a formula is a problem, never evaluated; whole numbers lose their '.0'."""
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


def xlsx_rows(content: bytes, errors: list[RowError], *,
              sheet_names: Sequence[str] = ()) -> Iterator[tuple[int, list[Value]]]:
    """(row number, cells) of the workbook's sheet named one of ``sheet_names`` (compared without case), else its
    first; a zip bomb or an unreadable workbook is an error of the file, and reading stops there."""
    problem = xlsx.check_zip(content)
    if problem:
        errors.append(RowError("file", "", problem))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False, keep_links=False)
        except xlsx.READ_ERRORS as exc:
            errors.append(RowError("file", "", xlsx.CORRUPT_REASON.format(detail=f"{type(exc).__name__}: {exc}")))
            return
        try:
            sheets = workbook.worksheets
            sheet = next((ws for ws in sheets if normalise_text(ws.title).casefold() in sheet_names),
                         sheets[0] if sheets else None)
            if sheet is None:
                errors.append(RowError("file", "", "has no worksheet"))
                return
            yield from xlsx.sheet_rows(sheet, xlsx_value, errors)
        finally:
            workbook.close()


def csv_value(raw: str) -> Value:
    """A CSV cell: a leading apostrophe marks text; a value that looks like a formula is a problem."""
    value = normalise_text(raw)
    if value.startswith("'"):
        return Value(normalise_text(value[1:]))  # Excel's "this is text" mark
    if csv_format.looks_like_formula(value):
        return Value(value, problem=csv_format.FORMULA_REASON.format(first=value[0]))
    return Value(value)


def sniff_delimiter(text: str, column_for: Callable[[str], str | None]) -> str:
    """The delimiter (of csv_format.DELIMITERS) under which the first line has the most known captions."""
    first = text.split("\n", 1)[0]
    best, best_score = ",", (-1, -1)
    for delimiter in csv_format.DELIMITERS:
        cells = next(csv.reader([first], delimiter=delimiter), [])
        score = (sum(1 for c in cells if column_for(c)), len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def csv_rows(content: bytes, errors: list[RowError], *,
             column_for: Callable[[str], str | None]) -> Iterator[tuple[int, list[Value]]]:
    """(row number, cells) of a UTF-8 CSV file, its delimiter the one that makes its header ``column_for``'s
    captions; text that is not UTF-8 or a broken quote is an error, and reading stops there."""
    text, error = decode_utf8(content, SAVE_HINT)
    if error:
        errors.append(error)
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text, column_for))
    for number, record in csv_format.records(reader, errors):
        yield number, [csv_value(v) for v in record]


def readers(*, sheet_names: Sequence[str], column_for: Callable[[str], str | None]) -> dict[str, tuple]:
    """{extension: (format, reader)}, each reader(content, errors) yielding (row number, cells): the
    workbook's sheet named one of ``sheet_names`` (else its first), the CSV delimiter that makes the
    header ``column_for``'s captions."""
    return {".xlsx": ("xlsx", partial(xlsx_rows, sheet_names=sheet_names)),
            ".csv": ("csv", partial(csv_rows, column_for=column_for))}


# --- header and rows -----------------------------------------------------------------------------

def file_extension(filename: str) -> str:
    """'.xlsx' of 'C:\\lists\\Danh sách.XLSX' (lower case; "" when there is none)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def open_table(filename: str, content: bytes, readers_by_extension: dict[str, tuple]
               ) -> tuple[str, Callable | None, RowError | None]:
    """(format, row reader, None) for a file the readers take, or (format, None, the file's error): an
    extension none of them reads, a file past the upload limit, an empty file. The roster and the outside
    scores check their files so, before reading a row."""
    ext = file_extension(filename)
    if ext not in readers_by_extension:
        shown = repr(ext) if ext else "none"
        return "", None, RowError("file", "", f"unsupported file type (extension {shown}); use .xlsx or .csv")
    fmt, reader = readers_by_extension[ext]
    if len(content) > MAX_FILE_BYTES:
        return fmt, None, RowError("file", "", f"is too large ({len(content):,} bytes; the limit is "
                                               f"{MAX_FILE_BYTES:,})")
    if not content.strip():
        return fmt, None, RowError("file", "", "is empty")
    return fmt, reader, None


def read_header(location: str, cells: list[Value], errors: list[RowError], *,
                column_for: Callable[[str], str | None], columns: Sequence[str],
                required: Sequence[str]) -> dict[int, str] | None:
    """A header row: {cell index: column} (a row counter's index maps to ""), or None after recording an
    error for each unknown, repeated or missing column. ``column_for`` names a caption's column (each
    kind of file has its own: the roster's, the outside scores')."""
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


class TableRows:
    """The data rows of a table file after its header row, as ``(location, cells)``: blank rows skipped, the
    header read from the first other row (``read_header``), at most ``max_rows`` rows (then the ``too_many``
    error). Afterwards ``header`` is the header read (None: none was found, or it was refused, then
    ``header_refused``) and ``count`` how many data rows there were. The roster and the outside scores read
    their files so."""

    def __init__(self, reader, content: bytes, errors: list[RowError], *, column_for: Callable[[str], str | None],
                 columns: Sequence[str], required: Sequence[str], max_rows: int, too_many: str):
        self.reader, self.content, self.errors = reader, content, errors
        self.column_for, self.columns, self.required = column_for, columns, required
        self.max_rows, self.too_many = max_rows, too_many
        self.header: dict[int, str] | None = None
        self.header_refused = False
        self.count = 0

    def __iter__(self) -> Iterator[tuple[str, list[Value]]]:
        for number, cells in self.reader(self.content, self.errors):
            if all(cell.blank for cell in cells):
                continue
            location = f"row {number}"
            if self.header is None:
                self.header = read_header(location, cells, self.errors, column_for=self.column_for,
                                          columns=self.columns, required=self.required)
                self.header_refused = self.header is None
                if self.header_refused:
                    return
                continue
            self.count += 1
            if self.count > self.max_rows:
                self.errors.append(RowError("file", "", self.too_many))
                return
            yield location, cells


def column_letter(index: int) -> str:
    """Column 0 is "A", as the board sees it in Excel."""
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


def error_order(error: RowError) -> tuple:
    """Sort key of a file's errors: those of the whole file first, then by row number."""
    match = re.fullmatch(r"row (\d+)", error.location)
    return (0, 0) if not match else (1, int(match.group(1)))
