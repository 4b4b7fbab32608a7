"""Export then re-import gives the same questions, for the demo bank and awkward texts."""

from __future__ import annotations

import pytest

from question_bank.formats import ParsedOption, ParsedQuestion, export_csv, export_json, export_xlsx, parse_file
from tests.question_bank.formats.format_helpers import AIKEN_GOOD, GIFT_GOOD, without_location

EXPORTS = [("xlsx", export_xlsx, "bank.xlsx"), ("csv", export_csv, "bank.csv"), ("json", export_json, "bank.json")]


@pytest.fixture(scope="module")
def demo_questions(demo_bank_bytes):
    result = parse_file("demo_bank.json", demo_bank_bytes)
    assert result.ok, result.errors[:5]
    assert len(result.questions) == 300
    return result.questions


@pytest.mark.parametrize("fmt, export, filename", EXPORTS, ids=[e[0] for e in EXPORTS])
def test_demo_bank_round_trip(demo_questions, fmt, export, filename):
    data = export(demo_questions)
    again = parse_file(filename, data)
    assert again.ok, again.errors[:5]
    assert again.format == fmt
    assert without_location(again.questions) == without_location(demo_questions)
    if fmt != "xlsx":  # xlsx carries the save time; the text formats are deterministic
        assert export(again.questions) == data


def test_demo_bank_contains_the_awkward_values(demo_questions):
    texts = {o.text for q in demo_questions for o in q.options}
    assert "=SUM(4, 6)" in texts and "@lan.nguyen.example.com" in texts


AWKWARD = [
    ParsedQuestion(
        location="", topic="Tin học > Bảng tính (Excel)", difficulty="hard", type="multiple",
        text="'Trích dẫn' ở đầu; =công thức? \"ngoặc kép\", dấu phẩy\nvà xuống dòng\n\nđoạn mới",
        options=[
            ParsedOption("=SUM(4, 6)", True), ParsedOption("@lan.nguyen.example.com", True),
            ParsedOption("+A1", False), ParsedOption("-cmd", False), ParsedOption("'quoted'", False),
            ParsedOption("-5", False),
        ],
        explanation="=IF(A1>=5, \"Đạt\", \"Không đạt\") trả về \"Đạt\"; a < b và x<5.",
        source="#VALUE!", tags=["excel", "công thức"], image="hinh/cau-1.png",
    ),
    ParsedQuestion(
        location="", topic="Kiến thức chung", difficulty="easy", type="single",
        text="2013", options=[ParsedOption("01/01/2014", True), ParsedOption("0.5", False),
                              ParsedOption("TRUE", False), ParsedOption("#N/A", False)],
    ),
]


@pytest.mark.parametrize("fmt, export, filename", EXPORTS, ids=[e[0] for e in EXPORTS])
def test_awkward_values_round_trip(fmt, export, filename):
    again = parse_file(filename, export(AWKWARD))
    assert again.ok, again.errors
    assert without_location(again.questions) == without_location(AWKWARD)


def test_gift_and_aiken_import_survive_spreadsheet_export():
    for name, text in (("a.gift", GIFT_GOOD), ("a.txt", AIKEN_GOOD)):
        first = parse_file(name, text.encode("utf-8"), default_topic="Chung")
        assert first.ok, first.errors
        for _, export, filename in EXPORTS:
            again = parse_file(filename, export(first.questions))
            assert without_location(again.questions) == without_location(first.questions), (name, filename)
