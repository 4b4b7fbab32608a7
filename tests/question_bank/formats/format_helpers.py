"""Builders and assertions shared by the import-format tests."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from openpyxl import Workbook

ROOT = Path(__file__).resolve().parents[3]

DEMO_BANK_PATHS = (ROOT / "question_bank" / "demo" / "demo_bank.json",)

HEADER = [
    "topic", "difficulty", "type", "text", "option_a", "option_b", "option_c", "option_d",
    "option_e", "option_f", "correct", "explanation", "source", "tags", "image",
]


def row(**values) -> list[str]:
    """A data row in HEADER order; unspecified columns blank."""
    return [values.get(c, "") for c in HEADER]


def good_row(**overrides) -> list[str]:
    values = dict(
        topic="Kiến thức chung > Hiến pháp 2013", difficulty="easy", type="single",
        text="Hiến pháp năm 2013 có hiệu lực từ ngày nào?",
        option_a="01/01/2014", option_b="28/11/2013", option_c="01/7/2014", option_d="08/12/2013",
        correct="A",
    )
    values.update(overrides)
    return row(**values)


def make_xlsx(rows, title: str | None = None, extra_sheets=()) -> bytes:
    """Workbook bytes; every str is written as a string cell (formulas only via formula_cells)."""
    wb = Workbook()
    ws = wb.active
    if title:
        ws.title = title
    for r in rows:
        ws.append(r)
    for name, sheet_rows in extra_sheets:
        other = wb.create_sheet(name)
        for r in sheet_rows:
            other.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def make_csv(rows, delimiter=",", bom=True) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = buf.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def has_error(result, location: str, field: str, fragment: str) -> bool:
    return any(
        e.location == location and e.field == field and fragment.lower() in e.reason.lower()
        for e in result.errors
    )


def assert_error(result, location: str, field: str, fragment: str) -> None:
    assert has_error(result, location, field, fragment), (
        f"expected error {location!r}/{field!r} containing {fragment!r}; got:\n"
        + "\n".join(str(e) for e in result.errors)
    )


def without_location(questions):
    return [dataclasses.replace(q, location="") for q in questions]


# A GIFT file using every supported feature: categories, titles, weights,
# feedback, general feedback, escapes, a difficulty comment, a missing-word question.
# (Two literals joined, so the escapes question stays on one line of the GIFT text: its line numbers are tested.)
GIFT_GOOD = """\
// Ngân hàng câu hỏi thử
$CATEGORY: $course$/top/Kiến thức chung/Hiến pháp 2013

::Q1:: Hiến pháp năm 2013 có hiệu lực từ ngày nào? {
  =01/01/2014 #Đúng
  ~28/11/2013 #Đây là ngày thông qua
  ~01/7/2014
  ####Nghị quyết 64/2013/QH13 quy định hiệu lực từ 01/01/2014.
}

// difficulty: hard
::Q2:: Những cơ quan nào thuộc hệ thống cơ quan hành chính nhà nước? {
  ~%50%Chính phủ
  ~%50%Ủy ban nhân dân các cấp
  ~%-100%Tòa án nhân dân
}

$CATEGORY: Tin học/Bảng tính (Excel)

// độ khó: dễ
Ký tự \\= mở đầu một công thức trong Excel; ký tự nào dùng để viết hằng chuỗi\\: """ """\
{=Dấu nháy kép \\" ~Dấu \\# ~Dấu \\{ và \\}}

Excel là {=phần mềm bảng tính ~hệ điều hành} của Microsoft.
"""


# An Aiken file with both option styles, a multi-paragraph text, several keys and ĐÁP ÁN.
AIKEN_GOOD = """\
Hiến pháp năm 2013 có hiệu lực từ ngày nào?
A. 01/01/2014
B. 28/11/2013
C) 01/7/2014
ANSWER: A

Read the text and answer the question.

NO PARKING IN FRONT OF THE GATE.
Which statements are true? (Chọn tất cả đáp án đúng)
A. Parking is not allowed at the gate
B. Vehicles may be removed
C. Parking is free
ANSWER: A, B
Tên tệp không được chứa ký tự nào?
A. <
B. _
ĐÁP ÁN: A
"""
