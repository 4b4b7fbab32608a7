"""CSV import and export (the spreadsheet column layout, see tabular.py).

Excel's CSV has no types, so a value that spreadsheet programs would run as a
formula (=, @, +x, -x) is refused unless it starts with an apostrophe, which
is then dropped; the exporter adds that apostrophe, so a bank containing
"=SUM(4, 6)" as an option survives export and re-import unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from .model import ParsedQuestion, ParseResult, RowError
from .tabular import COLUMNS, TEMPLATE_EXAMPLES, Cell, column_for_header, question_to_row, read_rows
from .validation import UTF8_BOM, Collector, decode_utf8, normalise_text

FORMAT = "csv"
DELIMITERS = (",", ";", "\t")

SAVE_HINT = (
    "save it as UTF-8: in Excel choose File > Save As > 'CSV UTF-8 (Comma delimited) (*.csv)' "
    "(Tệp > Lưu thành > 'CSV UTF-8')"
)


def looks_like_formula(value: str) -> bool:
    """True for values that Excel / LibreOffice would evaluate when opening the CSV."""
    if not value:
        return False
    first = value[0]
    if first in "=@":
        return True
    if first in "+-" and len(value) > 1:
        nxt = value[1]
        # "-5", "+84 912...", "- item" are numbers or text; "-cmd", "+A1" are formulas.
        return not (nxt.isdigit() or nxt.isspace())
    return False


FORMULA_REASON = (
    "starts with {first!r}, which spreadsheet programs run as a formula; "
    "put an apostrophe (') in front to keep it as text, e.g. '=SUM(A1:A3)"
)


def _cell(raw: str) -> Cell:
    value = normalise_text(raw)
    if value.startswith("'"):
        # The apostrophe is Excel's "this is text" mark, not part of the value.
        return Cell(normalise_text(value[1:]))
    if looks_like_formula(value):
        return Cell(value, FORMULA_REASON.format(first=value[0]))
    return Cell(value)


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most known column names.

    Excel writes ';' where the list separator is a comma-decimal locale (as in
    Vietnamese Windows), ',' elsewhere, and tab for "Unicode Text".
    """
    first_line = text.split("\n", 1)[0]
    best, best_score = ",", (-1, -1)
    for d in DELIMITERS:
        try:
            cells = next(csv.reader([first_line], delimiter=d), [])
        except csv.Error:
            continue
        known = sum(1 for c in cells if column_for_header(c))
        score = (known, len(cells))
        if score > best_score:
            best, best_score = d, score
    return best


def parse(content: bytes, default_topic: str | None) -> ParseResult:
    collector = Collector(FORMAT, default_topic)
    text, error = decode_utf8(content, SAVE_HINT)
    if error:
        collector.errors.append(error)
        return ParseResult([], collector.errors, FORMAT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))

    read_rows(((number, [_cell(v) for v in record]) for number, record in records(reader, collector.errors)),
              collector)
    return collector.result()


def records(reader, errors: list[RowError]) -> Iterator[tuple[int, list[str]]]:
    """(row number, fields) of a ``csv.reader``. csv only raises on broken quoting or a huge field; later rows
    cannot be trusted, so reading stops there with the row's error in ``errors``. The bank's import and the
    roster's reader (exam/setup/tabular.py) read CSV so."""
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
        yield number, record


def _protect(value: str) -> str:
    # Anything Excel could take for a formula, and anything that already
    # starts with an apostrophe, gets one apostrophe that the reader drops.
    if value and value[0] in "=+-@'":
        return "'" + value
    return value


def _write(rows: list[list[str]], delimiter: str) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    # The BOM is what makes Excel read the file as UTF-8 (Vietnamese intact).
    return UTF8_BOM + buf.getvalue().encode("utf-8")


def export_csv(questions: list[ParsedQuestion], delimiter: str = ",") -> bytes:
    """All questions in the import layout, UTF-8 with BOM, re-importable unchanged."""
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {DELIMITERS!r}")
    rows = [list(COLUMNS)]
    for q in questions:
        row = question_to_row(q)
        rows.append([_protect(row[c]) for c in COLUMNS])
    return _write(rows, delimiter)


def template_csv() -> bytes:
    rows = [list(COLUMNS)]
    for example in TEMPLATE_EXAMPLES:
        rows.append([_protect(example.get(c, "")) for c in COLUMNS])
    return _write(rows, ",")

