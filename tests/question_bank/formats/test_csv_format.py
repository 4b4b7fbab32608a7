"""CSV import: encodings, delimiters, formula injection, and the shared column layout."""

from __future__ import annotations

import pytest

from question_bank.formats import ParsedOption, ParsedQuestion, export_csv, parse_file, template_csv, validation
from question_bank.formats.csv_format import looks_like_formula
from tests.question_bank.formats.format_helpers import HEADER, assert_error, good_row, make_csv


def parse(data: bytes, **kw):
    return parse_file("ngan-hang.csv", data, **kw)


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_good_file_any_delimiter_with_or_without_bom(delimiter, bom):
    data = make_csv([HEADER, good_row(), good_row(text="Câu hai; có dấu, phẩy?", correct="b")],
                    delimiter=delimiter, bom=bom)
    result = parse(data)
    assert result.ok, result.errors
    assert result.format == "csv"
    assert len(result.questions) == 2
    first = result.questions[0]
    assert first.topic == "Kiến thức chung > Hiến pháp 2013"  # BOM not glued to the first header
    assert first.location == "row 2"
    assert result.questions[1].text == "Câu hai; có dấu, phẩy?"
    assert result.questions[1].options[1].correct


def test_semicolon_file_as_written_by_vietnamese_excel():
    text = (
        "topic;difficulty;text;option_a;option_b;option_c;correct\r\n"
        "Tin học;khó;\"Phím tắt sao chép; dán\";Ctrl+C;Ctrl+V;Ctrl+X;A\r\n"
    )
    result = parse(text.encode("utf-8"))
    assert result.ok, result.errors
    q = result.questions[0]
    assert (q.difficulty, q.text, q.options[0].text) == ("hard", "Phím tắt sao chép; dán", "Ctrl+C")


def test_multiline_cell_and_row_numbers_count_records():
    data = make_csv([HEADER, good_row(text="Đọc đoạn văn:\nDòng hai\n\nCâu hỏi?"), [], good_row(difficulty="x")])
    result = parse(data)
    # The multi-line cell is one spreadsheet row; the blank record is row 3.
    assert_error(result, "row 4", "difficulty", "must be one of easy, medium, hard (got 'x')")
    assert len(result.questions) == 1
    assert result.questions[0].text == "Đọc đoạn văn:\nDòng hai\n\nCâu hỏi?"


def test_not_utf8():
    text = ",".join(HEADER) + "\r\n" + ",".join(good_row()) + "\r\n"
    data = text.encode("cp1258", errors="replace")  # Windows Vietnamese code page
    result = parse(data)
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.location, error.field) == ("file", "")
    assert "not valid UTF-8" in error.reason
    assert "CSV UTF-8" in error.reason
    offset = next(i for i, b in enumerate(data) if b >= 0x80)
    assert f"byte offset {offset}, line 2" in error.reason


def test_utf16_is_named():
    data = ("\ufeff" + ",".join(HEADER)).encode("utf-16-le")
    assert_error(parse(data), "file", "", "UTF-16")


def test_formula_values_refused_unless_apostrophe():
    data = make_csv([
        HEADER,
        good_row(option_a="=SUM(A1:A3)"),                 # row 2
        good_row(option_b="@cmd"),                         # row 3
        good_row(option_c="+A1"),                          # row 4
        good_row(option_d="-2+3+cmd|' /C calc'!A0"),       # row 5: "-2..." is a number start: allowed
        good_row(explanation="-cmd"),                      # row 6
        good_row(option_a="'=SUM(A1:A3)", text="Câu 7?"),  # row 7: apostrophe keeps it as text
        good_row(option_a="-5", option_b="+84 912 345 678", option_c="- gạch đầu dòng", text="Câu 8?"),
    ])
    result = parse(data)
    assert_error(result, "row 2", "option_a", "put an apostrophe (') in front")
    assert_error(result, "row 3", "option_b", "starts with '@'")
    assert_error(result, "row 4", "option_c", "formula")
    assert_error(result, "row 6", "explanation", "formula")
    assert not any(e.location in ("row 5", "row 7", "row 8") for e in result.errors), result.errors
    by_row = {q.location: q for q in result.questions}
    assert by_row["row 7"].options[0].text == "=SUM(A1:A3)"
    assert [o.text for o in by_row["row 8"].options[:3]] == ["-5", "+84 912 345 678", "- gạch đầu dòng"]


@pytest.mark.parametrize("value, formula", [
    ("=1", True), ("@a", True), ("+a", True), ("-a", True), ("-(1)", True),
    ("-5", False), ("+5", False), ("- a", False), ("-", False), ("a=b", False), ("", False),
])
def test_looks_like_formula(value, formula):
    assert looks_like_formula(value) is formula


def test_bad_rows_same_rules_as_xlsx():
    data = make_csv([
        HEADER,
        good_row(option_e="", option_f="extra", correct="A"),
        good_row(correct="E"),
        good_row(text="Câu <img src=x onerror=alert(1)>"),
    ])
    result = parse(data)
    assert_error(result, "row 2", "option_e", "options must be in consecutive columns")
    assert_error(result, "row 3", "correct", "letter E points to option_e, which is blank")
    assert_error(result, "row 4", "text", "contains HTML")


def test_extra_cells_and_broken_quotes():
    data = make_csv([HEADER, good_row() + ["thừa"]])
    assert_error(parse(data), "row 2", "column P", "no column name")

    broken = (",".join(HEADER) + "\n" + "a,\"b\"c\"," * 3 + "\n").encode()
    result = parse(broken)
    assert not result.ok  # csv tolerates most stray quotes; whatever it reads must still validate


def test_header_only_and_empty():
    assert_error(parse(make_csv([HEADER])), "file", "", "contains no questions")
    assert_error(parse(b"\xef\xbb\xbf"), "file", "", "empty")
    assert_error(parse(b"  \r\n"), "file", "", "is empty")


def test_export_protects_formulas_and_apostrophes():
    q = ParsedQuestion(
        location="", topic="Tin học", difficulty="easy", type="single", text="'retrieved' nghĩa là gì?",
        options=[ParsedOption("=SUM(4, 6)", True), ParsedOption("@lan.nguyen.example.com", False),
                 ParsedOption("-x", False), ParsedOption("a, \"b\"\nc", False)],
    )
    data = export_csv([q])
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "'=SUM(4, 6)" in text and "'@lan.nguyen.example.com" in text and "''retrieved'" in text
    back = parse(data)
    assert back.ok, back.errors
    assert back.questions[0].options == q.options
    assert back.questions[0].text == q.text
    semi = parse(export_csv([q], delimiter=";"))
    assert semi.ok and semi.questions[0].options == q.options


def test_template_csv_imports():
    data = template_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").splitlines()[0] == ",".join(HEADER)
    result = parse(data)
    assert result.ok, result.errors
    assert len(result.questions) == 2


def test_too_many_rows(monkeypatch):
    monkeypatch.setattr(validation, "MAX_QUESTIONS", 2)
    data = make_csv([HEADER] + [good_row(text=f"Câu {i}?") for i in range(4)])
    result = parse(data)
    assert_error(result, "file", "", "more than 2 questions; split it")
    assert len([e for e in result.errors if e.location == "file"]) == 1
