"""The column layout shared by the Excel (.xlsx) and CSV formats.

The two readers differ only in how a cell becomes text (and what is wrong
with a cell: a formula in Excel, a formula-looking value in CSV); from the
header row on, rows are read here, so both formats accept the same sheets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from exam.core.errors import Refused

from .model import ParsedQuestion, RowError
from .validation import (
    OPTION_LETTERS,
    Collector,
    Draft,
    DraftOption,
    normalise_text,
    option_field,
    parse_correct_letters,
)

OPTION_COLUMNS = tuple(option_field(i) for i in range(6))  # option_a .. option_f
COLUMNS = (
    "topic", "difficulty", "type", "text", *OPTION_COLUMNS,
    "correct", "explanation", "source", "tags", "image",
)  # fmt: skip
REQUIRED_COLUMNS = ("difficulty", "text", "option_a", "option_b", "correct")

# Vietnamese captions the board may use instead of the English keys (the
# template and exports use the English keys, which never change).
CAPTIONS_VI = {
    "topic": "Chủ đề",
    "difficulty": "Độ khó",
    "type": "Loại câu hỏi",
    "text": "Nội dung câu hỏi",
    **{f"option_{c}": f"Phương án {c.upper()}" for c in "abcdef"},
    "correct": "Đáp án đúng",
    "explanation": "Giải thích",
    "source": "Nguồn",
    "tags": "Thẻ",
    "image": "Hình ảnh",
}
_EXTRA_ALIASES = {"câu hỏi": "text", "đáp án": "correct", "loại": "type"}


def _header_key(raw: str) -> str:
    return normalise_text(raw).casefold().replace("-", " ").replace("_", " ")


HEADER_ALIASES: dict[str, str] = {}
for _col in COLUMNS:
    HEADER_ALIASES[_header_key(_col)] = _col
    HEADER_ALIASES[_header_key(CAPTIONS_VI[_col])] = _col
for _alias, _col in _EXTRA_ALIASES.items():
    HEADER_ALIASES[_header_key(_alias)] = _col


def column_for_header(raw: str) -> str | None:
    """Canonical column name for a header caption ("Option A", "Độ khó"...), or None."""
    return HEADER_ALIASES.get(_header_key(raw))


@dataclass(frozen=True)
class Cell:
    """A cell as text, plus what the format reader found wrong with it, if anything."""

    text: str
    problem: str | None = None


EMPTY = Cell("")


def _column_name(index: int) -> str:
    return f"column {get_column_letter(index + 1)}"


def _is_blank(cells: list[Cell]) -> bool:
    return all(not c.text.strip() and c.problem is None for c in cells)


class _Header:
    def __init__(self, row_label: str, cells: list[Cell], collector: Collector):
        self.columns: dict[int, str] = {}
        found: dict[str, str] = {}
        for i, cell in enumerate(cells):
            caption = normalise_text(cell.text)
            if not caption:
                continue
            if cell.problem:
                collector.errors.append(_err(row_label, _column_name(i), cell.problem))
            col = column_for_header(caption)
            if col is None:
                collector.errors.append(_err(
                    row_label, _column_name(i),
                    f"unknown column {caption!r}; the columns are {', '.join(COLUMNS)}",
                ))
            elif col in found:
                collector.errors.append(_err(
                    row_label, _column_name(i), f"column {col!r} appears twice (also {found[col]})"
                ))
            else:
                found[col] = _column_name(i)
                self.columns[i] = col
        self.missing = [c for c in REQUIRED_COLUMNS if c not in found]
        for col in self.missing:
            collector.errors.append(_err(row_label, col, "required column is missing from the header row"))


def _err(location: str, field_name: str, reason: str) -> RowError:
    return RowError(location, field_name, reason)


def _row_to_draft(row_label: str, cells: list[Cell], header: _Header) -> Draft:
    draft = Draft(location=row_label)
    values: dict[str, str] = {}
    for i, cell in enumerate(cells):
        col = header.columns.get(i)
        if col is None:
            if cell.text.strip() or cell.problem:
                draft.error(_column_name(i), "has a value but no column name in the header row")
            continue
        if cell.problem:
            draft.error(col, cell.problem)
        values[col] = cell.text

    draft.topic = values.get("topic")
    draft.difficulty = values.get("difficulty")
    draft.type = values.get("type")
    draft.text = values.get("text")
    draft.explanation = values.get("explanation")
    draft.source = values.get("source")
    draft.tags = values.get("tags")
    draft.image = values.get("image")

    option_texts = [normalise_text(values.get(c, "")) for c in OPTION_COLUMNS]
    filled = [i for i, t in enumerate(option_texts) if t]
    last = filled[-1] if filled else -1
    # A gap (option_c blank, option_d filled) is refused rather than closed
    # up, because the key letters would then point at different options.
    gaps = {i for i in range(2, last) if not option_texts[i]}
    for i in sorted(gaps):
        draft.error(
            OPTION_COLUMNS[i],
            f"is blank but {OPTION_COLUMNS[last]} is filled; options must be in consecutive "
            "columns starting at option_a",
        )
    count = max(last + 1, 2)  # option_a and option_b always count, blank or not

    letters, reason = parse_correct_letters(values.get("correct"), len(OPTION_COLUMNS))
    if reason:
        draft.error("correct", reason)
        draft.key_reported = True
    for i in letters:
        if i >= count or not option_texts[i]:
            draft.error(
                "correct",
                f"letter {OPTION_LETTERS[i]} points to {OPTION_COLUMNS[i]}, which is blank",
            )
            draft.key_reported = True

    # Blank options inside the range stay in the draft so that the option
    # names in later messages match the columns; validation names a blank
    # option_a / option_b, the gaps were reported above.
    draft.options = [
        DraftOption(option_texts[i], i in letters, reported=i in gaps) for i in range(count)
    ]
    return draft


def read_rows(rows: Iterable[tuple[int, list[Cell]]], collector: Collector) -> None:
    """Feed (spreadsheet row number, cells) pairs through the header and validation."""
    header: _Header | None = None
    for number, cells in rows:
        if _is_blank(cells):
            continue
        label = f"row {number}"
        if header is None:
            header = _Header(label, cells, collector)
            if header.missing:
                return  # every row would repeat the same complaint
            continue
        if not collector.add(_row_to_draft(label, cells, header)):
            return
    if header is None:
        collector.file_error("is empty: it needs a header row and at least one question row")


def question_to_row(q: ParsedQuestion) -> dict[str, str]:
    """The cells of one question in the export layout (values not yet escaped)."""
    if len(q.options) > len(OPTION_COLUMNS):
        raise Refused(f"{q.location}: {len(q.options)} options do not fit the spreadsheet layout (at most 6)")
    row = {c: "" for c in COLUMNS}
    row["topic"] = q.topic or ""
    row["difficulty"] = q.difficulty
    row["type"] = q.type
    row["text"] = q.text
    for i, opt in enumerate(q.options):
        row[OPTION_COLUMNS[i]] = opt.text
    row["correct"] = ",".join(OPTION_LETTERS[i] for i, o in enumerate(q.options) if o.correct)
    row["explanation"] = q.explanation
    row["source"] = q.source
    row["tags"] = ", ".join(q.tags)
    row["image"] = q.image
    return row


# Two example questions for the downloadable templates (Vietnamese, like the
# board's own bank); they must import cleanly, which the tests check.
TEMPLATE_EXAMPLES = [
    {
        "topic": "Kiến thức chung > Hiến pháp 2013",
        "difficulty": "dễ",
        "type": "single",
        "text": "Hiến pháp năm 2013 có hiệu lực thi hành từ ngày nào?",
        "option_a": "01/01/2014",
        "option_b": "28/11/2013",
        "option_c": "01/7/2014",
        "option_d": "08/12/2013",
        "correct": "A",
        "explanation": "Nghị quyết số 64/2013/QH13 quy định Hiến pháp năm 2013 có hiệu lực từ ngày 01/01/2014.",
        "source": "Nghị quyết 64/2013/QH13",
        "tags": "hiến pháp, hiệu lực",
    },
    {
        "topic": "Tin học > Bảng tính (Excel)",
        "difficulty": "trung bình",
        "type": "multiple",
        "text": "Những công thức nào cho kết quả bằng 10? (Chọn tất cả đáp án đúng)",
        "option_a": "=SUM(4, 6)",
        "option_b": "=MAX(2, 10, 7)",
        "option_c": "=MIN(10, 3)",
        "option_d": "=AVERAGE(10, 20)",
        "correct": "A,B",
        "explanation": "SUM(4, 6) = 10 và MAX(2, 10, 7) = 10; MIN cho 3, AVERAGE cho 15.",
        "source": "",
        "tags": "excel",
    },
]

# Column guide for the "Hướng dẫn" sheet and the docs: required?, Vietnamese, English.
COLUMN_GUIDE = {
    "topic": ("Không (*)", "Chủ đề, các cấp cách nhau bằng dấu >, ví dụ: Kiến thức chung > Hiến pháp 2013. "
              "(*) Nếu để trống, dùng chủ đề mặc định chọn khi nhập.",
              "Topic path, levels separated by '>'. (*) If blank, the default topic chosen at import is used."),
    "difficulty": ("Có", "Độ khó: dễ, trung bình, khó (hoặc easy, medium, hard).",
                   "Difficulty: easy, medium, hard (or dễ, trung bình, khó)."),
    "type": ("Không", "single (một đáp án đúng) hoặc multiple (nhiều đáp án đúng). Để trống: tự suy ra từ cột "
             "Đáp án đúng.", "single or multiple. Blank: inferred from the number of letters in 'correct'."),
    "text": ("Có", "Nội dung câu hỏi, tối đa 4000 ký tự. Không dùng thẻ HTML.",
             "Question text, at most 4000 characters. No HTML tags."),
    **{f"option_{c}": ("Có" if c in "ab" else "Không",
                       f"Phương án {c.upper()}, tối đa 1000 ký tự. Các phương án phải liền nhau từ A "
                       "(2 đến 6 phương án), không trùng nhau.",
                       f"Option {c.upper()}, at most 1000 characters. Options are consecutive from A "
                       "(2 to 6), all different.") for c in "abcdef"},
    "correct": ("Có", "Chữ cái của (các) đáp án đúng, ví dụ: C hoặc A,C (chấp nhận A;C, AC, chữ thường).",
                "Letter(s) of the correct option(s), e.g. C or A,C (A;C, AC and lower case also accepted)."),
    "explanation": ("Không", "Giải thích đáp án (hiển thị khi xem lại).", "Explanation of the key."),
    "source": ("Không", "Nguồn, căn cứ pháp lý.", "Source, legal basis."),
    "tags": ("Không", "Thẻ, cách nhau bằng dấu phẩy.", "Tags, comma-separated."),
    "image": ("Không", "Tên tệp hình ảnh kèm theo, ví dụ: cau-12.png.", "Image file name, e.g. cau-12.png."),
}
