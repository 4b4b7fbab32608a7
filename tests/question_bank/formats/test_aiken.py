"""Aiken (.txt) import."""

from __future__ import annotations

import unicodedata

from question_bank.formats import ParsedOption, parse_file
from tests.question_bank.formats.format_helpers import AIKEN_GOOD, assert_error


def parse(text: str, default_topic="Kiến thức chung", **kw):
    return parse_file("ngan-hang.txt", text.encode("utf-8"), default_topic=default_topic, **kw)




def test_good_file():
    result = parse(AIKEN_GOOD)
    assert result.ok, result.errors
    assert result.format == "aiken"
    q1, q2, q3 = result.questions
    assert q1.location == "line 1"
    assert (q1.topic, q1.difficulty, q1.type) == ("Kiến thức chung", "medium", "single")
    assert q1.options == [ParsedOption("01/01/2014", True), ParsedOption("28/11/2013", False),
                          ParsedOption("01/7/2014", False)]
    assert q2.location == "line 7"
    assert q2.text == ("Read the text and answer the question.\n\nNO PARKING IN FRONT OF THE GATE.\n"
                       "Which statements are true? (Chọn tất cả đáp án đúng)")
    assert q2.type == "multiple"
    assert [o.correct for o in q2.options] == [True, True, False]
    assert q3.location == "line 15" and q3.options[0].text == "<"


def test_no_default_topic_is_an_error():
    result = parse("Câu?\nA. x\nB. y\nANSWER: A\n", default_topic=None)
    assert_error(result, "line 1", "topic", "no default topic")


def test_errors_by_line():
    text = """\
Thiếu đáp án?
A. x
B. y

Đáp án ngoài phạm vi?
A. x
B. y
ANSWER: C

Sai thứ tự?
A. x
C. y
ANSWER: A

Dòng lạ?
A. x
ghi chú chen ngang
B. y
ANSWER: A

Bảy phương án?
A. 1
B. 2
C. 3
D. 4
E. 5
F. 6
G. 7
ANSWER: A

Trùng?
A. Hà Nội
B. Hà Nội
ANSWER: A

Phương án trống?
A.
B. y
ANSWER: B
"""
    result = parse(text)
    assert_error(result, "line 1", "correct", "not followed by an 'ANSWER: <letter>' line")
    assert_error(result, "line 8", "correct", "ANSWER names C but the question has only 2 options")
    assert_error(result, "line 12", "option_b", "expected option B, found C")
    assert_error(result, "line 17", "", "expected the next option")
    assert_error(result, "line 21", "options", "2 to 6 options (got 7)")
    assert_error(result, "line 31", "option_b", "is the same as option_a")
    assert_error(result, "line 36", "option_a", "is blank")
    assert result.questions == []


def test_nfc_vietnamese_decomposed_input():
    text = "Thủ đô của Việt Nam?\nA. Hà Nội\nB. Huế\nANSWER: A\n"
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    result = parse(decomposed, default_topic=unicodedata.normalize("NFD", "Kiến thức chung"))
    assert result.ok, result.errors
    q = result.questions[0]
    assert q.text == "Thủ đô của Việt Nam?" and q.options[0].text == "Hà Nội"
    assert q.topic == "Kiến thức chung"
    assert unicodedata.is_normalized("NFC", q.text)
