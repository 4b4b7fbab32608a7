"""Excel (.xlsx) import and export (the spreadsheet column layout, see tabular.py).

An .xlsx file is a zip of XML, so an upload is checked as a zip before
openpyxl sees it (size, compression ratio: a few kilobytes must not unpack
into gigabytes), then read in read_only mode, which streams the sheet
instead of building it in memory.
"""

from __future__ import annotations

import io
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from xml.etree.ElementTree import ParseError

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from .model import ParsedQuestion, ParseResult, RowError
from .tabular import CAPTIONS_VI, COLUMN_GUIDE, COLUMNS, EMPTY, TEMPLATE_EXAMPLES, Cell, question_to_row, read_rows
from .validation import Collector, normalise_text

try:  # openpyxl parses with defusedxml when it is installed (it is a requirement)
    from defusedxml import DefusedXmlException
except ImportError:  # pragma: no cover - defusedxml is pinned in requirements.txt
    class DefusedXmlException(ValueError):  # type: ignore[no-redef]
        pass

FORMAT = "xlsx"
QUESTION_SHEET_NAMES = ("câu hỏi", "questions")
GUIDE_SHEET = "Hướng dẫn"

MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
MAX_ZIP_MEMBERS = 10_000

# What a damaged or hostile workbook makes zipfile / openpyxl / the XML parser
# raise. Only these become "file" errors; anything else is a bug and must show.
READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    InvalidFileException,
    ParseError,
    DefusedXmlException,
    KeyError,  # a part named in the workbook is missing from the zip
    IndexError,  # a cell points at a shared string / style that does not exist
    ValueError,
    TypeError,  # openpyxl's typed descriptors reject malformed attribute values
    EOFError,
    OSError,
    NotImplementedError,  # unsupported zip compression method
)

CORRUPT_REASON = (
    "could not be read as an Excel workbook ({detail}); open it in Excel and save it again "
    "as 'Excel Workbook (*.xlsx)'"
)
FORMULA_REASON = "cell is a formula; type the text with a leading apostrophe to keep it as text"


def check_zip(content: bytes) -> str | None:
    """Reason to refuse the upload before openpyxl opens it, or None."""
    if content[:4] == b"\xd0\xcf\x11\xe0":
        return ("is an old Excel 97-2003 (.xls) file; open it in Excel and save it as "
                "'Excel Workbook (*.xlsx)'")
    if not content.startswith(b"PK"):
        return "is not an .xlsx file (an .xlsx file is a zip archive); save it from Excel as 'Excel Workbook (*.xlsx)'"
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        return CORRUPT_REASON.format(detail=f"damaged zip archive: {exc}")
    if len(infos) > MAX_ZIP_MEMBERS:
        return f"has {len(infos):,} parts inside; a question workbook has a few dozen"
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED_BYTES:
        return (f"would unpack to {total / 1024 / 1024:,.0f} MB (limit "
                f"{MAX_UNCOMPRESSED_BYTES // 1024 // 1024} MB); it is refused as a possible zip bomb")
    for info in infos:
        # zipfile never inflates more than the declared size (and checks the
        # CRC), so the declared sizes bound the real work.
        if info.file_size and (
            info.compress_size == 0 or info.file_size / info.compress_size > MAX_COMPRESSION_RATIO
        ):
            return (f"contains {info.filename!r}, compressed more than {MAX_COMPRESSION_RATIO} times; "
                    "it is refused as a possible zip bomb")
        if info.flag_bits & 0x1:
            return "is password-protected; remove the password in Excel and save it again"
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return CORRUPT_REASON.format(detail=f"unsupported compression in {info.filename!r}")
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        return "is a zip archive but not an Excel workbook (no xl/workbook.xml); save it as 'Excel Workbook (*.xlsx)'"
    return None


def _number_text(value, number_format: str) -> Cell:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    # "General" and Text ("@") show the number as typed; "0" shows an integer
    # as is. Anything else (50%, 1.000, 3,50) shows something other than the
    # stored value, and a key must not silently change its wording.
    if number_format in ("General", "@") or (number_format == "0" and isinstance(value, int)):
        return Cell(text)
    return Cell(text, (
        f"cell holds a number shown with the Excel format {number_format!r}; format the cell as "
        "Text and type it again so the wording is kept exactly"
    ))


def _raw(c) -> tuple:
    """(value, data_type, number format or None) of a read-only cell.

    Runs inside the guarded read because the number format is looked up in
    the workbook's styles, which a damaged file may lack; nothing else here
    can fail, so no bug of ours is mistaken for a damaged file.
    """
    value = c.value
    if value is None:
        return None, "n", None
    if c.data_type == "n" and isinstance(value, (int, float)):
        return value, "n", c.number_format
    return value, c.data_type, None


def _cell(value, kind: str, number_format: str | None) -> Cell:
    if value is None:
        return EMPTY
    if kind == "f":
        return Cell(normalise_text(str(value)), FORMULA_REASON)
    if kind == "s" or kind == "e":  # "e": "#N/A" typed in a cell is an error value, shown as typed
        return Cell(normalise_text(str(value)))
    if kind == "b":
        return Cell("TRUE" if value else "FALSE")
    if isinstance(value, (datetime, date, time, timedelta)):
        return Cell(str(value), (
            "cell holds a date or time, which Excel shows differently on each computer; format the "
            "cell as Text and type it again (or type it with a leading apostrophe)"
        ))
    if number_format is not None:
        return _number_text(value, number_format)
    return Cell(normalise_text(str(value)))


def _pick_sheet(wb):
    for ws in wb.worksheets:
        if normalise_text(ws.title).casefold() in QUESTION_SHEET_NAMES:
            return ws
    return wb.worksheets[0] if wb.worksheets else None


def parse(content: bytes, default_topic: str | None) -> ParseResult:
    collector = Collector(FORMAT, default_topic)
    problem = check_zip(content)
    if problem:
        collector.file_error(problem)
        return ParseResult([], collector.errors, FORMAT)

    with warnings.catch_warnings():
        # openpyxl warns about features it drops (data validation, conditional
        # formatting...); none of them matter for questions.
        warnings.simplefilter("ignore")
        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=False, keep_links=False)
        except READ_ERRORS as exc:
            collector.file_error(CORRUPT_REASON.format(detail=f"{type(exc).__name__}: {exc}"))
            return ParseResult([], collector.errors, FORMAT)
        try:
            ws = _pick_sheet(wb)
            if ws is None:
                collector.file_error("has no worksheet")
                return collector.result()
            read_rows(_rows(ws, collector), collector)
        finally:
            wb.close()
    return collector.result()


def _rows(ws, collector: Collector):
    """(row number, cells) pairs; a read error ends the sheet with a "file" error."""
    for number, raw in sheet_rows(ws, _raw, collector.errors):
        yield number, [_cell(*r) for r in raw]


def sheet_rows(ws, read: Callable, errors: list[RowError]) -> Iterator[tuple[int, list]]:
    """(row number, ``read(cell)`` of each cell) of a read-only worksheet, ``read`` run inside the guard: a
    damaged file's read error ends the sheet with a "file" error in ``errors``. The bank's import and the
    roster's reader (exam/setup/tabular.py) read sheets so."""
    # The <dimension> recorded in the file can be wrong (some generators write
    # "A1"), and openpyxl would stop reading at it: rows would vanish silently.
    ws.reset_dimensions()
    rows = ws.iter_rows(min_row=1)
    number = 0
    while True:
        number += 1
        try:
            cells = [read(c) for c in next(rows)]
        except StopIteration:
            return
        except READ_ERRORS as exc:
            errors.append(RowError("file", "", CORRUPT_REASON.format(
                detail=f"near row {number}: {type(exc).__name__}: {exc}")))
            return
        yield number, cells


# --- export -----------------------------------------------------------------

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_WIDTHS = {"topic": 34, "difficulty": 12, "type": 10, "text": 60, "correct": 9,
           "explanation": 40, "source": 24, "tags": 18, "image": 16}  # fmt: skip


def _text_cell(ws, value: str) -> WriteOnlyCell | None:
    if not value:
        return None  # no cell at all: smaller file, and Excel shows it as empty anyway
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = WriteOnlyCell(ws, value=value)
    # openpyxl turns "=SUM(4, 6)" into a formula; the bank means the text.
    # data_type "s" stores it as text, quotePrefix makes Excel keep it as text
    # when the board edits the cell.
    cell.data_type = "s"
    if value[:1] in ("=", "+", "-", "@"):
        cell.quotePrefix = True
    return cell


def _setup_sheet(ws) -> None:
    for i, col in enumerate(COLUMNS):
        ws.column_dimensions[get_column_letter(i + 1)].width = _WIDTHS.get(col, 22)
    ws.freeze_panes = "A2"


def _header_cells(ws) -> list[WriteOnlyCell]:
    cells = []
    for col in COLUMNS:
        cell = WriteOnlyCell(ws, value=col)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cells.append(cell)
    return cells


def _save(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_xlsx(questions: list[ParsedQuestion]) -> bytes:
    """All questions on a sheet "Câu hỏi" in the import layout; re-importable unchanged."""
    wb = Workbook(write_only=True)  # streams rows: a 100,000-question bank stays cheap
    ws = wb.create_sheet("Câu hỏi")
    _setup_sheet(ws)
    ws.append(_header_cells(ws))
    for q in questions:
        row = question_to_row(q)
        ws.append([_text_cell(ws, row[c]) for c in COLUMNS])
    return _save(wb)


def template_xlsx() -> bytes:
    """The downloadable template: header + 2 examples, and a "Hướng dẫn" sheet per column."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Câu hỏi")
    _setup_sheet(ws)
    ws.append(_header_cells(ws))
    for example in TEMPLATE_EXAMPLES:
        ws.append([_text_cell(ws, example.get(c, "")) for c in COLUMNS])

    guide = wb.create_sheet(GUIDE_SHEET)
    for letter, width in zip("ABCDE", (16, 22, 12, 70, 60), strict=True):
        guide.column_dimensions[letter].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    title = WriteOnlyCell(guide, value="Hướng dẫn nhập câu hỏi / How to fill in the question sheet")
    title.font = Font(bold=True, size=13)
    guide.append([title])
    for line in (
        "Mỗi dòng của trang 'Câu hỏi' là một câu hỏi; dòng đầu là tên cột, giữ nguyên tên cột. "
        "Dòng trống được bỏ qua. Không dùng công thức: nếu nội dung bắt đầu bằng dấu =, gõ thêm dấu ' ở đầu.",
        "Each row of the 'Câu hỏi' sheet is one question; the first row holds the column names, keep them. "
        "Blank rows are skipped. No formulas: if a text starts with '=', type an apostrophe (') before it.",
    ):
        cell = WriteOnlyCell(guide, value=line)
        cell.alignment = wrap
        guide.append([cell])
    guide.append([])
    heads = ["Cột / Column", "Tên tiếng Việt", "Bắt buộc", "Giải thích", "Description"]
    guide.append([_bold(guide, h) for h in heads])
    for col in COLUMNS:
        required, vi, en = COLUMN_GUIDE[col]
        row = []
        for value in (col, CAPTIONS_VI[col], required, vi, en):
            cell = WriteOnlyCell(guide, value=value)
            cell.alignment = wrap
            row.append(cell)
        guide.append(row)
    return _save(wb)


def _bold(ws, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.font = _HEADER_FONT
    cell.fill = _HEADER_FILL
    return cell
