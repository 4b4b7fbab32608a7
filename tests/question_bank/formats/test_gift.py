"""Moodle GIFT import, multiple choice only."""

from __future__ import annotations

import pytest

from question_bank.formats import ParsedOption, parse_file
from question_bank.formats.gift import category_topic
from tests.question_bank.formats.format_helpers import GIFT_GOOD, assert_error


def parse(text: str, **kw):
    return parse_file("ngan-hang.gift", text.encode("utf-8"), **kw)




def test_good_file():
    result = parse(GIFT_GOOD)
    assert result.ok, result.errors
    assert result.format == "gift"
    q1, q2, q3, q4 = result.questions
    assert q1.location == "line 4"
    assert q1.topic == "Kiến thức chung > Hiến pháp 2013"
    assert (q1.difficulty, q1.type) == ("medium", "single")
    assert q1.text == "Hiến pháp năm 2013 có hiệu lực từ ngày nào?"
    assert q1.options == [ParsedOption("01/01/2014", True), ParsedOption("28/11/2013", False),
                          ParsedOption("01/7/2014", False)]
    assert q1.explanation == "Nghị quyết 64/2013/QH13 quy định hiệu lực từ 01/01/2014."

    assert (q2.location, q2.difficulty, q2.type) == ("line 12", "hard", "multiple")
    assert [o.correct for o in q2.options] == [True, True, False]

    assert q3.topic == "Tin học > Bảng tính (Excel)"
    assert q3.difficulty == "easy"
    assert q3.text == "Ký tự = mở đầu một công thức trong Excel; ký tự nào dùng để viết hằng chuỗi:"
    assert [o.text for o in q3.options] == ['Dấu nháy kép \\"', "Dấu #", "Dấu { và }"]

    assert q4.text == "Excel là _____ của Microsoft."
    assert q4.difficulty == "medium"  # the comment applied to the previous question only


@pytest.mark.parametrize("answers, kind", [
    ("{T}", "true/false"),
    ("{FALSE#Sai}", "true/false"),
    ("{=Hà Nội =Ha Noi}", "short answer"),
    ("{=Hà Nội -> Thủ đô =Huế -> Cố đô =Đà Nẵng -> Thành phố}", "matching"),
    ("{#1945:0}", "numerical"),
    ("{}", "essay"),
])
def test_unsupported_types(answers, kind):
    result = parse(f"// đầu tệp\n\nCâu hỏi? {answers}\n")
    assert_error(result, "line 3", "type", f"GIFT question type {kind} is not supported; only multiple choice")


def test_errors_are_collected_with_question_lines():
    text = """\
Không có đáp án nào đúng? {~a ~b ~c}

Hai đáp án đúng? {=a =b ~c}

// difficulty: difficult
Độ khó sai? {=a ~b}

Thiếu dấu đóng {=a ~b

Trùng phương án? {=a ~a}

Chỉ một phương án? {=a}

Tám phương án? {=1 ~2 ~3 ~4 ~5 ~6 ~7}
"""
    result = parse(text, default_topic="Chung")
    assert_error(result, "line 1", "correct", "no option is marked correct")
    assert_error(result, "line 3", "correct", "exactly one correct option (got 2: A, B)")
    assert_error(result, "line 5", "difficulty", "must be one of easy, medium, hard (got 'difficult')")
    assert_error(result, "line 8", "options", "not closed")
    assert_error(result, "line 10", "option_b", "is the same as option_a")
    assert_error(result, "line 12", "type", "short answer")  # one "=" and no "~" is Moodle short answer
    assert_error(result, "line 14", "options", "2 to 6 options (got 7)")
    assert len(result.questions) == 1  # "Độ khó sai?" itself is valid (default medium)


def test_missing_topic_uses_default_or_errors():
    assert_error(parse("Câu hỏi? {=a ~b}"), "line 1", "topic", "no default topic")
    result = parse("Câu hỏi? {=a ~b}", default_topic="Tin học >  Word ")
    assert result.ok and result.questions[0].topic == "Tin học > Word"


def test_html_and_format_markers():
    result = parse("[html]<p>Chọn đáp án</p> {=a ~b}\n\n[plain]x<5 và a < b? {=đúng ~sai}", default_topic="T")
    assert_error(result, "line 1", "text", "contains HTML ('<p>')")
    assert result.questions[0].text == "x<5 và a < b?"


@pytest.mark.parametrize("raw, topic", [
    ("$course$/top/A/B", "A > B"),
    ("top/A", "A"),
    ("A/B/C", "A > B > C"),
    ("$system$/Tin học//CNTT", "Tin học/CNTT"),
    ("$course$/top", None),
])
def test_category_topic(raw, topic):
    assert category_topic(raw) == topic


def test_crlf_and_bom():
    data = ("\ufeff" + GIFT_GOOD.replace("\n", "\r\n")).encode("utf-8")
    result = parse_file("x.GIFT", data)
    assert result.ok, result.errors
    assert [q.location for q in result.questions] == ["line 4", "line 12", "line 21", "line 23"]
