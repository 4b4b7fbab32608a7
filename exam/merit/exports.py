"""Merit-list exports: CSV, XLSX and PDF writers, chosen by file extension (``EXPORTERS``).

Every writer takes the merit lists (``{post: MeritList}`` or a sequence of them, exported in
that order) and an ``ExportInfo`` (exam, publication time, the published lists' hash) and
returns the file's bytes. Pure: nothing is read from or written to the database or disk.

* CSV: one table for every post (a ``post`` column), UTF-8 with a BOM so that Excel reads the
  Vietnamese right; machine-readable column names, decimal points, ISO dates. Text that a
  spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return)
  gets an apostrophe in front.
* XLSX: a sheet per post (names ≤ 31 characters, unique, without []:*?/\\), a title block
  with the exam, the post and the hash, a bold frozen header, widths, 0.00 score formats,
  dd/mm/yyyy dates; text is always stored as text, never as a formula.
* PDF: A4 (landscape when the scores do not fit upright), the shipped DejaVu Sans fonts so
  that Vietnamese diacritics print right; a header with the exam and the post on every
  page, the table, the tally and any unresolved tie, a signature block (Thư ký, Chủ tịch
  Hội đồng, place and date), and a footer on every page with "Trang i/n" (counted per post)
  and the hash. One section per post, each starting on a new page.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exam.core.errors import Refused
from exam.merit.ranking import MeritList, MeritRow, format_points
from exam.merit.rule import BONUS

try:
    LOCAL_TZ: tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # pragma: no cover - a system without tzdata
    LOCAL_TZ = timezone(timedelta(hours=7), "ICT")

FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

UTF8_BOM = b"\xef\xbb\xbf"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportInfo:
    """What the exports print besides the lists."""

    exam_code: str
    exam_title: str
    list_hash: str  # merit_hash of the published lists (the whole publication, even when one post is exported)
    published_at: datetime | None = None  # aware; None: a draft, printed as such
    board: str = "Hội đồng tuyển dụng"  # who signs: "Hội đồng tuyển dụng công chức tỉnh …"
    place: str = ""  # where the list is signed ("Hà Nội"); blank: a dotted line to fill in by hand


Lists = Mapping[str, MeritList] | Iterable[MeritList]


def _lists(merit_lists: Lists) -> list[MeritList]:
    return list(merit_lists.values()) if isinstance(merit_lists, Mapping) else list(merit_lists)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text or "")


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("published_at must be an aware datetime")
    return moment.astimezone(LOCAL_TZ)


def _publication(info: ExportInfo) -> str:
    if info.published_at is None:
        return "Bản dự thảo, chưa công bố"
    return f"Công bố lúc {_local(info.published_at):%H:%M} ngày {_local(info.published_at):%d/%m/%Y}"


def _columns(lists: list[MeritList]) -> tuple[str, ...]:
    """The component columns of several lists: each list's in order, first seen first."""
    columns: list[str] = []
    for ml in lists:
        columns.extend(c for c in ml.components if c not in columns)
    return tuple(columns)


def _status_text(row: MeritRow) -> str:
    """The status as a reader sees it: with the reason when ineligible, the board's hand when it decided."""
    text = row.status_label
    if row.reasons:
        text += ": " + row.reason_text
    if row.decided_by_board:
        text += " (Hội đồng quyết định)"
    return text


def _label(ml: MeritList, code: str) -> str:
    return ml.rule.label(code)


# --- CSV -------------------------------------------------------------------------------------------

def _protect(value: str) -> str:
    """Text that spreadsheet programs would run as a formula gets an apostrophe in front."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _decimal(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


CSV_HEAD = ("post", "rank", "registration_no", "full_name", "date_of_birth")
CSV_TAIL = ("priority_categories", "bonus_category", "bonus", "total", "status", "status_label",
            "decided_by_board", "reason_codes", "reasons")


def export_csv(merit_lists: Lists, info: ExportInfo) -> bytes:
    """Every post in one table (a ``post`` column), UTF-8 with BOM, formula-safe."""
    lists = _lists(merit_lists)
    columns = _columns(lists)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEAD + columns + CSV_TAIL)
    for ml in lists:
        for row in ml.rows:
            writer.writerow(
                [_protect(ml.post), "" if row.rank is None else str(row.rank), _protect(row.registration_no),
                 _protect(row.full_name), row.date_of_birth.isoformat() if row.date_of_birth else ""]
                + [_decimal(row.components.get(c)) for c in columns]
                + [_protect(row.priority_categories), _protect(row.bonus_category), _decimal(row.bonus),
                   _decimal(row.total), row.status, row.status_label, "true" if row.decided_by_board else "false",
                   _protect(row.reason_codes), _protect(row.reason_text)])
    return UTF8_BOM + buffer.getvalue().encode("utf-8")


# --- XLSX ------------------------------------------------------------------------------------------

SHEET_FORBIDDEN = set('[]:*?/\\')
MAX_SHEET_NAME = 31


def sheet_names(posts: Iterable[str]) -> list[str]:
    """Excel-safe, unique sheet names for posts: ≤ 31 characters, none of []:*?/\\ (each becomes a space), no
    apostrophe at either end, not "History" (Excel keeps it), unique ignoring case ("Kế toán", "Kế toán (2)")."""
    names: list[str] = []
    taken: set[str] = set()
    for post in posts:
        base = "".join(" " if ch in SHEET_FORBIDDEN or unicodedata.category(ch)[0] == "C" else ch
                       for ch in _nfc(post))
        base = " ".join(base.split()).strip("'") or "Vị trí"
        if base.casefold() == "history":
            base = "History (vị trí)"
        name, k = base[:MAX_SHEET_NAME].rstrip().rstrip("'"), 1
        while name.casefold() in taken:
            k += 1
            suffix = f" ({k})"
            name = base[:MAX_SHEET_NAME - len(suffix)].rstrip().rstrip("'") + suffix
        taken.add(name.casefold())
        names.append(name)
    return names


class _XlsxCells:
    """The cells of a write-only sheet: text that never becomes a formula, numbers with their format."""

    def __init__(self):
        # openpyxl is imported on first use, as in export_xlsx: the app starts without it.
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        self.cell_class, self.illegal = WriteOnlyCell, ILLEGAL_CHARACTERS_RE

    def text(self, ws, value: str, font=None, alignment=None):
        value = self.illegal.sub("", _nfc(value))
        if not value:
            return None  # no cell: Excel shows it empty anyway
        cell = self.cell_class(ws, value=value)
        # openpyxl takes "=..." for a formula; the list means the text. "s" keeps it text, and
        # quotePrefix keeps Excel from reading it again as a formula when the cell is edited.
        cell.data_type = "s"
        if value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True
        if font is not None:
            cell.font = font
        if alignment is not None:
            cell.alignment = alignment
        return cell

    def number(self, ws, value, number_format: str, font=None):
        if value is None:
            return None
        cell = self.cell_class(ws, value=value)
        cell.number_format = number_format
        if font is not None:
            cell.font = font
        return cell


def export_xlsx(merit_lists: Lists, info: ExportInfo) -> bytes:
    """A sheet per post: title block, bold frozen header, score formats 0.00; text never becomes a formula.
    Written row by row (openpyxl's write-only mode): 100,000 rows take seconds and little memory."""
    # openpyxl is imported on first use: the app starts without it (the XLSX export only needs it).
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    lists = _lists(merit_lists)
    workbook = Workbook(write_only=True)
    cells = _XlsxCells()
    text, number = cells.text, cells.number
    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDE5F0")
    wrap = Alignment(wrap_text=True, vertical="top")
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    thin = Side(style="thin", color="808080")
    box = Border(bottom=thin, top=thin, left=thin, right=thin)
    status_fonts = {"selected": Font(bold=True, color="006100"), "tie": Font(bold=True, color="9C5700"),
                    "not_selected": Font(color="000000"), "ineligible": Font(color="7F7F7F")}
    status_fills = {"tie": PatternFill("solid", fgColor="FFEB9C")}

    for ml, name in zip(lists, sheet_names(ml.post for ml in lists), strict=True):
        ws = workbook.create_sheet(name)
        headers = (["Hạng", "Số báo danh", "Họ và tên", "Ngày sinh"]
                   + [_label(ml, c) for c in ml.components]
                   + [_label(ml, BONUS), "Đối tượng ưu tiên", "Tổng điểm", "Kết quả", "Lý do"])
        widths = [7, 14, 28, 12] + [12] * len(ml.components) + [11, 30, 11, 22, 40]
        last = get_column_letter(len(headers))
        for c, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(c)].width = width
        # Set before the first row: write-only mode writes the sheet's head with it.
        ws.freeze_panes = "C5"  # the header, and the rank and number beside every row
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)  # printed one page wide
        ws.append([text(ws, f"{info.exam_title} ({info.exam_code})", Font(bold=True, size=13))])
        ws.append([text(ws, f"Danh sách kết quả xếp hạng — Vị trí việc làm: {ml.post} — Chỉ tiêu: {ml.quota}",
                        bold)])
        ws.append([text(ws, f"{_publication(info)} — Mã kiểm tra (SHA-256): {info.list_hash}")])
        header_cells = []
        for header in headers:
            cell = text(ws, header, bold, centre)
            cell.fill, cell.border = header_fill, box
            header_cells.append(cell)
        ws.row_dimensions[4].height = 30
        ws.append(header_cells)
        for row in ml.rows:
            decided = " (Hội đồng quyết định)" if row.decided_by_board else ""
            status = text(ws, row.status_label + decided, status_fonts[row.status])
            if row.status in status_fills:
                status.fill = status_fills[row.status]
            ws.append(
                [row.rank, text(ws, row.registration_no), text(ws, row.full_name),
                 number(ws, row.date_of_birth, "dd/mm/yyyy")]
                + [number(ws, row.components.get(c), "0.00") for c in ml.components]
                + [number(ws, row.bonus, "0.00"), text(ws, row.priority_categories, alignment=wrap),
                   number(ws, row.total, "0.00", bold), status, text(ws, row.reason_text, alignment=wrap)])
        for r in (1, 2, 3):
            ws.merged_cells.add(f"A{r}:{last}{r}")
        ws.auto_filter.ref = f"A4:{last}{4 + len(ml.rows)}"
        ws.print_title_rows = "4:4"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = "9"  # A4
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    if not lists:
        ws = workbook.create_sheet("Danh sách")
        ws.append([text(ws, "Không có danh sách nào")])
    workbook.properties.title = f"{info.exam_title} ({info.exam_code})"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- PDF -------------------------------------------------------------------------------------------

MARGIN = 12.0
FOOTER_SPACE = 14.0
SIGNATURE_HEIGHT = 52.0


@cache
def _pdf_class():
    from fpdf import FPDF  # imported on first use: the app starts without it

    class MeritPDF(FPDF):
        """Draws the running header of the current section; footers are drawn once the page counts are known."""

        heading: tuple[str, str, str] = ("", "", "")

        def header(self):
            title, post_line, publication = self.heading
            width = self.w - 2 * MARGIN
            self.set_xy(MARGIN, 8)
            self.set_font("DejaVu", "B", 11)
            self.multi_cell(width, 5.5, title, align="C", new_x="LMARGIN", new_y="NEXT")
            self.set_font("DejaVu", "B", 9.5)
            self.multi_cell(width, 5, post_line, align="C", new_x="LMARGIN", new_y="NEXT")
            self.set_font("DejaVu", "", 8)
            self.cell(width, 4.5, publication, align="C", new_x="LMARGIN", new_y="NEXT")
            self.set_draw_color(120, 120, 120)
            self.line(MARGIN, self.get_y() + 1, self.w - MARGIN, self.get_y() + 1)
            self.set_y(self.get_y() + 3)

    return MeritPDF


def _widths(components: int, page_width: float) -> list[float]:
    """Rank, SBD, name, DOB, each component, bonus, total, status: status and name take what is left."""
    fixed = [10.0, 19.0, 0.0, 19.0] + [15.0] * components + [14.0, 15.0, 0.0]
    spare = page_width - sum(fixed)
    fixed[2] = max(38.0, spare * 0.45)
    fixed[-1] = spare - fixed[2]
    return fixed


def _fits_upright(components: int) -> bool:
    return _widths(components, 210 - 2 * MARGIN)[-1] >= 34


def _signature_date(info: ExportInfo) -> str:
    place = _nfc(info.place) or "…………………"
    if info.published_at is None:
        return f"{place}, ngày …… tháng …… năm ………"
    moment = _local(info.published_at)
    return f"{place}, ngày {moment:%d} tháng {moment:%m} năm {moment:%Y}"


def export_pdf(merit_lists: Lists, info: ExportInfo) -> bytes:
    """A4, a section per post: running header, table, tally, ties, signature block; page numbers and the hash
    in every footer."""
    from fpdf.fonts import FontFace  # on first use, as _pdf_class's fpdf

    lists = _lists(merit_lists)
    pdf = _pdf_class()(unit="mm", format="A4")
    pdf.set_title(_nfc(f"{info.exam_title} ({info.exam_code})"))
    pdf.set_creator("exam")
    if info.published_at is not None:  # the document's date is the publication's: the same list, the same file
        pdf.set_creation_date(info.published_at.astimezone(UTC))
    pdf.add_font("DejaVu", "", str(FONT_REGULAR))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=FOOTER_SPACE)
    sections: list[tuple[int, int]] = []  # first and last page of each post
    for ml in lists or [None]:
        upright = ml is None or _fits_upright(len(ml.components))
        title = _nfc(f"{info.exam_title} ({info.exam_code})")
        if ml is None:
            pdf.heading = (title, "Danh sách kết quả xếp hạng", _publication(info))
            pdf.add_page()
            pdf.set_font("DejaVu", "", 10)
            pdf.cell(text="Không có danh sách nào.")
            sections.append((pdf.page, pdf.page))
            continue
        pdf.heading = (title, _nfc(f"DANH SÁCH KẾT QUẢ XẾP HẠNG — Vị trí việc làm: {ml.post} "
                                   f"(chỉ tiêu: {ml.quota})"), _publication(info))
        pdf.add_page(orientation="P" if upright else "L")
        first = pdf.page
        _pdf_table(pdf, ml, FontFace)
        _pdf_tally(pdf, ml)
        _pdf_signatures(pdf, info)
        sections.append((first, pdf.page))

    # Footers, now that each section's page count is known.
    pdf.set_auto_page_break(False)
    for first, last in sections:
        for page in range(first, last + 1):
            pdf.page = page
            width = pdf.w - 2 * MARGIN
            y = pdf.h - 10
            pdf.set_draw_color(160, 160, 160)
            pdf.line(MARGIN, y - 1.5, pdf.w - MARGIN, y - 1.5)
            pdf.set_xy(MARGIN, y)
            pdf.set_font("DejaVu", "", 6.5)
            pdf.cell(width - 22, 4, f"Mã kiểm tra danh sách (SHA-256): {info.list_hash}")
            pdf.set_font("DejaVu", "", 8)
            pdf.cell(22, 4, f"Trang {page - first + 1}/{last - first + 1}", align="R")
    return bytes(pdf.output())


def _pdf_table(pdf, ml: MeritList, FontFace) -> None:
    width = pdf.w - 2 * MARGIN
    widths = _widths(len(ml.components), width)
    headers = (["Hạng", "SBD", "Họ và tên", "Ngày sinh"] + [_label(ml, c) for c in ml.components]
               + [_label(ml, BONUS), "Tổng điểm", "Kết quả"])
    numeric = {0, *range(4, 4 + len(ml.components) + 2)}
    status_styles = {"selected": FontFace(emphasis="BOLD"),
                     "tie": FontFace(emphasis="BOLD", fill_color=(255, 235, 156))}
    pdf.set_font("DejaVu", "", 7.5)
    with pdf.table(col_widths=widths, width=width, line_height=3.8, text_align="LEFT", v_align="MIDDLE",
                   headings_style=FontFace(emphasis="BOLD", fill_color=(221, 229, 240)), padding=0.8,
                   repeat_headings=1) as table:
        heading = table.row()
        for header in headers:
            heading.cell(_nfc(header), align="C")
        for row in ml.rows:
            cells = ["" if row.rank is None else str(row.rank), row.registration_no, row.full_name,
                     row.date_of_birth.strftime("%d/%m/%Y") if row.date_of_birth else ""]
            cells += [format_points(row.components.get(c), 2) for c in ml.components]
            cells += [format_points(row.bonus, 2) if row.bonus else "", format_points(row.total, 2),
                      _status_text(row)]
            line = table.row()
            for k, text in enumerate(cells):
                style = status_styles.get(row.status) if k == len(cells) - 1 else None
                line.cell(_nfc(text), align="R" if k in numeric else "L", style=style)


def _pdf_tally(pdf, ml: MeritList) -> None:
    counts = ml.counts()
    width = pdf.w - 2 * MARGIN
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 8.5)
    lines = [f"Tổng số: {len(ml.rows)} thí sinh; trúng tuyển: {counts['selected']}; "
             f"bằng điểm chờ Hội đồng quyết định: {counts['tie']}; không trúng tuyển: {counts['not_selected']}; "
             f"không đủ điều kiện: {counts['ineligible']}."]
    for tie in ml.ties:
        lines.append(f"Các thí sinh có số báo danh {', '.join(tie.registration_nos)} bằng điểm "
                     f"({format_points(tie.total)}) ở hạng {tie.rank}, còn {tie.places} chỉ tiêu: "
                     f"chờ Hội đồng tuyển dụng quyết định.")
    for decision in ml.decisions:
        reason = f" Lý do: {decision.reason}" if decision.reason else ""
        lines.append(f"Hội đồng quyết định trường hợp bằng điểm ở hạng {decision.rank}: trúng tuyển "
                     f"{', '.join(decision.selected)}.{reason}")
    for line in lines:
        pdf.multi_cell(width, 4.2, _nfc(line), new_x="LMARGIN", new_y="NEXT")


def _pdf_signatures(pdf, info: ExportInfo) -> None:
    if pdf.get_y() + SIGNATURE_HEIGHT > pdf.h - FOOTER_SPACE:
        pdf.add_page(orientation=pdf.cur_orientation)
    half = (pdf.w - 2 * MARGIN) / 2
    board = _nfc(info.board).upper()
    pdf.ln(4)
    y = pdf.get_y()
    pdf.set_font("DejaVu", "", 8.5)
    pdf.set_xy(MARGIN + half, y)
    pdf.cell(half, 5, _signature_date(info), align="C")
    y += 6
    for x, role, hint in ((MARGIN, "THƯ KÝ", "(Ký, ghi rõ họ tên)"),
                          (MARGIN + half, "CHỦ TỊCH", "(Ký, ghi rõ họ tên và đóng dấu)")):
        pdf.set_xy(x, y)
        pdf.set_font("DejaVu", "B", 9)
        pdf.multi_cell(half, 4.5, f"{role} {board}", align="C")
        pdf.set_x(x)
        pdf.set_font("DejaVu", "", 7.5)
        pdf.cell(half, 4.5, hint, align="C")
    pdf.set_font("DejaVu", "", 8.5)
    for x in (MARGIN, MARGIN + half):  # room to sign, then the name
        pdf.set_xy(x, y + SIGNATURE_HEIGHT - 16)
        pdf.cell(half, 5, "…………………………………………", align="C")
    pdf.set_xy(MARGIN, y + SIGNATURE_HEIGHT - 10)


# --- the registry ----------------------------------------------------------------------------------

Exporter = Callable[[Lists, ExportInfo], bytes]
EXPORTERS: dict[str, Exporter] = {".csv": export_csv, ".xlsx": export_xlsx, ".pdf": export_pdf}
MEDIA_TYPES = {".csv": "text/csv; charset=utf-8",
               ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               ".pdf": "application/pdf"}


def exporter_for(filename: str) -> Exporter:
    """The writer for a file name's extension (case ignored); ValueError naming the known ones."""
    suffix = Path(filename).suffix.lower()
    if suffix not in EXPORTERS:
        raise Refused(f"cannot export to {suffix or 'a file without extension'!r}: "
                         f"use one of {', '.join(EXPORTERS)}")
    return EXPORTERS[suffix]


def export_merit_lists(filename: str, merit_lists: Lists, info: ExportInfo) -> bytes:
    """The lists as the bytes of ``filename``'s format (``.csv``, ``.xlsx`` or ``.pdf``)."""
    return exporter_for(filename)(merit_lists, info)
