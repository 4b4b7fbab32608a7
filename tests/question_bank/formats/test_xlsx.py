"""Excel (.xlsx) import: the column layout, cell types and hostile workbooks."""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import datetime

import pytest
from openpyxl import Workbook, load_workbook

from question_bank.formats import ParsedOption, ParsedQuestion, export_xlsx, parse_file, template_xlsx
from tests.question_bank.formats.format_helpers import HEADER, assert_error, good_row, make_xlsx, row


def parse(data: bytes, **kw):
    return parse_file("ngan-hang.xlsx", data, **kw)


def test_good_file():
    data = make_xlsx([
        HEADER,
        good_row(),
        row(topic="Tin học > Bảng tính (Excel)", difficulty="trung bình", text="Chọn các hàm thống kê",
            option_a="SUM", option_b="AVERAGE", option_c="IF", correct="a;b",
            explanation="SUM và AVERAGE", source="Giáo trình", tags="excel, hàm", image="cau-2.png"),
    ])
    result = parse(data)
    assert result.ok, result.errors
    assert result.format == "xlsx"
    first, second = result.questions
    assert first == ParsedQuestion(
        location="row 2", topic="Kiến thức chung > Hiến pháp 2013", difficulty="easy", type="single",
        text="Hiến pháp năm 2013 có hiệu lực từ ngày nào?",
        options=[ParsedOption("01/01/2014", True), ParsedOption("28/11/2013", False),
                 ParsedOption("01/7/2014", False), ParsedOption("08/12/2013", False)],
    )
    assert second.location == "row 3"
    assert second.difficulty == "medium"
    assert second.type == "multiple"  # inferred from two letters
    assert [o.correct for o in second.options] == [True, True, False]
    assert second.tags == ["excel", "hàm"]
    assert second.image == "cau-2.png"


def test_header_is_case_insensitive_any_order_and_vietnamese_captions():
    header = ["Nội dung câu hỏi", "ĐỘ KHÓ", "Phương án A", "Option B", "Đáp án đúng", "Chủ đề"]
    data = make_xlsx([header, ["Câu hỏi?", "Khó", "Có", "Không", "b", "A > B"]])
    result = parse(data)
    assert result.ok, result.errors
    q = result.questions[0]
    assert (q.text, q.difficulty, q.topic, q.type) == ("Câu hỏi?", "hard", "A > B", "single")
    assert q.options[1].correct


def test_header_errors():
    data = make_xlsx([["topic", "question", "difficulty", "text", "text", "option_a", "correct"], ["x"]])
    result = parse(data)
    assert_error(result, "row 1", "column B", "unknown column 'question'")
    assert_error(result, "row 1", "column E", "appears twice")
    assert_error(result, "row 1", "option_b", "required column is missing")
    assert not result.questions


def test_bad_rows_all_reported():
    data = make_xlsx([
        HEADER,
        good_row(difficulty="difficult"),                          # row 2
        good_row(correct=""),                                      # row 3
        good_row(option_c="", option_d="", correct="C"),           # row 4
        good_row(correct="A,C"),                                   # row 5
        good_row(option_b="01/01/2014"),                           # row 6
        good_row(text="Chọn <b>một</b> đáp án"),                   # row 7
        good_row(option_c="", correct="A"),                        # row 8: gap before option_d
        good_row(text=""),                                         # row 9
        good_row(correct="G"),                                     # row 10
        good_row(type="multiple", correct="ABCD"),                 # row 11
        good_row(type="both"),                                     # row 12
    ])
    result = parse(data)
    assert_error(result, "row 2", "difficulty", "must be one of easy, medium, hard")
    assert_error(result, "row 2", "difficulty", "(got 'difficult')")
    assert_error(result, "row 3", "correct", "is required")
    assert_error(result, "row 4", "correct", "letter C points to option_c, which is blank")
    assert_error(result, "row 5", "correct", "exactly one correct option (got 2: A, C)")
    assert_error(result, "row 6", "option_b", "is the same as option_a")
    assert_error(result, "row 7", "text", "contains HTML ('<b>')")
    assert_error(result, "row 8", "option_c", "is blank but option_d is filled")
    assert_error(result, "row 9", "text", "is required")
    assert_error(result, "row 10", "correct", "must be option letters A-F")
    assert_error(result, "row 11", "correct", "at least one wrong option")
    assert_error(result, "row 12", "type", "must be one of single, multiple")
    assert len(result.errors) >= 11
    assert result.questions == []


def test_blank_rows_skipped_and_row_numbers_kept():
    data = make_xlsx([HEADER, good_row(), [], [None, None], good_row(text="Câu thứ hai?")])
    result = parse(data)
    assert result.ok, result.errors
    assert [q.location for q in result.questions] == ["row 2", "row 5"]


def test_formula_cell_is_refused():
    data = make_xlsx([HEADER, good_row(option_d="=SUM(1,2)")])  # openpyxl stores "=..." as a formula
    result = parse(data)
    assert_error(result, "row 2", "option_d", "cell is a formula; type the text with a leading apostrophe")


def test_text_cell_starting_with_equals_is_accepted():
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append(good_row())
    ws["H2"].value = "=SUM(4, 6)"
    ws["H2"].data_type = "s"  # what Excel stores for '=SUM(4, 6)
    buf = io.BytesIO()
    wb.save(buf)
    result = parse(buf.getvalue())
    assert result.ok, result.errors
    assert result.questions[0].options[3].text == "=SUM(4, 6)"


def test_numbers_dates_and_formats():
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append(good_row(option_a=2013, option_b=2014.0, option_c="x", option_d="y"))
    ws.append(good_row(text="Câu 2?", option_a=datetime(2014, 1, 1)))
    ws.append(good_row(text="Câu 3?", option_a=0.5))
    ws["E4"].number_format = "0%"
    buf = io.BytesIO()
    wb.save(buf)
    result = parse(buf.getvalue())
    assert [o.text for o in result.questions[0].options][:2] == ["2013", "2014"]
    assert_error(result, "row 3", "option_a", "date or time")
    assert_error(result, "row 4", "option_a", "Excel format '0%'")


def test_sheet_named_cau_hoi_is_preferred():
    data = make_xlsx(
        [["ghi chú"], ["bảng này không phải câu hỏi"]],
        title="Ghi chú",
        extra_sheets=[("Câu hỏi", [HEADER, good_row()])],
    )
    result = parse(data)
    assert result.ok, result.errors
    assert len(result.questions) == 1


def test_unmapped_value_and_missing_topic():
    data = make_xlsx([HEADER + [""], good_row(topic="") + ["lạc chỗ"]])
    result = parse(data)
    assert_error(result, "row 2", "column P", "no column name")
    assert_error(result, "row 2", "topic", "no default topic")
    ok = parse(make_xlsx([HEADER, good_row(topic="")]), default_topic="Kiến thức chung")
    assert ok.ok and ok.questions[0].topic == "Kiến thức chung"


def test_not_a_zip_and_old_xls():
    assert_error(parse(b"topic,difficulty\n"), "file", "", "is not an .xlsx file")
    assert_error(parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100), "file", "", "97-2003 (.xls)")


def test_corrupt_xlsx():
    good = make_xlsx([HEADER, good_row()])
    truncated = good[: len(good) // 2]
    assert_error(parse(truncated), "file", "", "could not be read as an Excel workbook")

    # A zip that has the parts but garbage XML inside.
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                body = b"<worksheet><sheetData><row r='1'><c r='A1' t='s'><v>999</v></c>"
            dst.writestr(info, body)
    result = parse(buf.getvalue())
    assert not result.ok
    assert result.errors[0].location == "file"

    # A zip that is not a workbook at all (a .docx renamed, say).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w/>")
    assert_error(parse(buf.getvalue()), "file", "", "not an Excel workbook")


def test_zip_bomb_ratio():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 1024 * 1024))  # ~8 KB compressed
    data = buf.getvalue()
    assert len(data) < 50_000
    assert_error(parse(data), "file", "", "possible zip bomb")


def test_zip_bomb_declared_size():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"<x/>" * 1000)
    data = bytearray(buf.getvalue())
    # Rewrite the central directory so the sheet declares 3 GB uncompressed.
    pos = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, pos + 24, 3 * 1024 ** 3)
    result = parse(bytes(data))
    assert_error(result, "file", "", "would unpack to")
    assert_error(result, "file", "", "zip bomb")


def test_oversize_refused_before_parsing():
    result = parse_file("big.xlsx", b"PK" + b"\0" * 2000, max_bytes=1000)
    assert_error(result, "file", "", "too large")
    assert len(result.errors) == 1


def test_stray_cell_far_below_is_cheap():
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append(good_row())
    ws.cell(row=300_000, column=1, value=" ")
    buf = io.BytesIO()
    wb.save(buf)
    result = parse(buf.getvalue())  # the parser must not walk 300,000 empty rows' worth of cells
    assert result.ok, result.errors


def test_export_writes_string_cells_not_formulas():
    q = ParsedQuestion(
        location="question 1", topic="Tin học", difficulty="easy", type="single", text="=1+1 bằng mấy?",
        options=[ParsedOption("=SUM(4, 6)", True), ParsedOption("@lan.nguyen.example.com", False),
                 ParsedOption("-x", False)],
    )
    data = export_xlsx([q])
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    assert ws.title == "Câu hỏi"
    assert [c.value for c in ws[1]] == HEADER
    for ref in ("D2", "E2", "F2"):
        assert ws[ref].data_type == "s", ref
    assert ws["E2"].quotePrefix
    back = parse(data)
    assert back.ok, back.errors
    assert back.questions[0].options[0].text == "=SUM(4, 6)"


def test_template():
    data = template_xlsx()
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Câu hỏi", "Hướng dẫn"]
    guide = "\n".join(str(c.value) for r in wb["Hướng dẫn"].iter_rows() for c in r if c.value)
    for col in HEADER:
        assert col in guide
    assert "Độ khó" in guide and "Difficulty" in guide
    result = parse(data)
    assert result.ok, result.errors
    assert len(result.questions) == 2


@pytest.mark.moderate  # 10,000 rows: about a second (timed in bench/bank.py)
def test_ten_thousand_rows():
    questions = [
        ParsedQuestion(
            location="", topic=f"Chủ đề {i % 7}", difficulty=("easy", "medium", "hard")[i % 3],
            type="single", text=f"Câu hỏi số {i}: năm nào?",
            options=[ParsedOption(f"{i} A", False), ParsedOption(f"{i} B", True),
                     ParsedOption(f"{i} C", False), ParsedOption(f"{i} D", False)],
        )
        for i in range(10_000)
    ]
    data = export_xlsx(questions)
    result = parse(data)
    assert result.ok, result.errors[:3]
    assert len(result.questions) == 10_000
    assert result.questions[-1].location == "row 10001"


def test_wrong_dimension_in_file_does_not_hide_rows():
    good = make_xlsx([HEADER, good_row(), good_row(text="Câu 2?"), good_row(text="Câu 3?")])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:O4" />' in body
                body = body.replace(b'<dimension ref="A1:O4" />', b'<dimension ref="A1" />')
            dst.writestr(info, body)
    result = parse(buf.getvalue())
    assert result.ok, result.errors
    assert [q.location for q in result.questions] == ["row 2", "row 3", "row 4"]
