"""JSON (demo-bank/1) import, and the shared validation rules exercised through it."""

from __future__ import annotations

import json
import unicodedata

import pytest

from question_bank.formats import ParsedOption, export_json, parse_file, validation
from tests.question_bank.formats.format_helpers import assert_error


def q(**overrides) -> dict:
    item = {
        "topic": "Kiến thức chung > Hiến pháp 2013",
        "difficulty": "easy",
        "type": "single",
        "text": "Hiến pháp năm 2013 có hiệu lực từ ngày nào?",
        "options": [{"text": "01/01/2014", "correct": True}, {"text": "28/11/2013", "correct": False}],
        "explanation": "",
        "source": "",
    }
    item.update(overrides)
    return item


def parse(doc, **kw):
    return parse_file("bank.json", json.dumps(doc, ensure_ascii=False).encode("utf-8"), **kw)


def test_demo_bank_parses_clean(demo_bank_bytes):
    result = parse_file("demo_bank.json", demo_bank_bytes)
    assert result.ok, result.errors[:5]
    assert len(result.questions) == 300
    assert result.questions[0].location == "question 1"
    assert sum(x.type == "multiple" for x in result.questions) == 30
    doc = json.loads(demo_bank_bytes)
    assert {x.topic for x in result.questions} == set(doc["topics"])


def test_bare_list_and_tags_image():
    result = parse([q(tags=["hiến pháp", " hiệu lực ", "hiến pháp"], image="hinh/cau 1.png")])
    assert result.ok, result.errors
    assert result.questions[0].tags == ["hiến pháp", "hiệu lực"]
    assert result.questions[0].image == "hinh/cau 1.png"


def test_type_inferred_when_missing():
    item = q(options=[{"text": "a", "correct": True}, {"text": "b", "correct": True}, {"text": "c", "correct": False}])
    del item["type"]
    result = parse({"format": "demo-bank/1", "questions": [item]})
    assert result.ok, result.errors
    assert result.questions[0].type == "multiple"


def test_bad_questions_all_reported():
    seven = [{"text": str(i), "correct": i == 1} for i in range(1, 8)]
    doc = {"format": "demo-bank/1", "questions": [
        q(difficulty="difficult"),                                                           # 1
        q(options=[{"text": "a", "correct": False}, {"text": "b", "correct": False}]),       # 2
        q(options=[{"text": "a", "correct": True}, {"text": "b", "correct": True}]),         # 3
        q(options=seven),                                                                    # 4
        q(options=[{"text": "Hà Nội", "correct": True}, {"text": " Hà  Nội ", "correct": False}]),  # 5
        q(text="<script>alert(1)</script>"),                                                 # 6
        q(type="multiple", options=[{"text": "a", "correct": True}, {"text": "b", "correct": True}]),  # 7
        q(answer="A"),                                                                       # 8
        q(options=[{"text": "a", "correct": "yes"}, {"text": "b", "correct": False}]),       # 9
        q(text="x" * 4001),                                                                  # 10
        q(options=[{"text": "a" * 1001, "correct": True}, {"text": "", "correct": False}]),  # 11
        "not an object",                                                                     # 12
        q(topic="A >  > B"),                                                                 # 13
        q(image="https://example.com/x.png"),                                                # 14
        q(explanation="<img src=x onerror=alert(1)>"),                                       # 15
        q(options=[{"text": "a", "correct": True}]),                                         # 16
    ]}
    result = parse(doc)
    assert_error(result, "question 1", "difficulty", "must be one of easy, medium, hard (got 'difficult')")
    assert_error(result, "question 2", "correct", "no option is marked correct")
    assert_error(result, "question 3", "correct", "exactly one correct option (got 2: A, B)")
    assert_error(result, "question 4", "options", "2 to 6 options (got 7)")
    assert_error(result, "question 5", "option_b", "is the same as option_a")
    assert_error(result, "question 6", "text", "contains HTML")
    assert_error(result, "question 7", "correct", "at least one wrong option")
    assert_error(result, "question 8", "answer", "unknown field")
    assert_error(result, "question 9", "correct", "must be true or false")
    assert_error(result, "question 10", "text", "too long (4001 characters; at most 4000)")
    assert_error(result, "question 11", "option_a", "too long")
    assert_error(result, "question 11", "option_b", "is blank")
    assert_error(result, "question 12", "", "must be an object")
    assert_error(result, "question 13", "topic", "empty part")
    assert_error(result, "question 14", "image", "no URL")
    assert_error(result, "question 15", "explanation", "contains HTML")
    assert_error(result, "question 16", "options", "2 to 6 options (got 1)")
    assert {e.location for e in result.errors} == {f"question {i}" for i in range(1, 17)}
    assert result.questions == []


@pytest.mark.parametrize("text", ["a < b", "x<5", "Tên tệp không chứa \\ / : * ? \" < > |", "1 <= 2 và 3 >= 2", "<3",
                                  "Nhấn <Enter> để xuống dòng", "Gõ cd <tên thư mục>", "x<y, y>z"])
def test_bare_less_than_is_not_html(text):
    result = parse([q(text=text)])
    assert result.ok, result.errors


@pytest.mark.parametrize("text", ["<b>đậm</b>", "</p>", "<img src=x onerror=alert(1)>", "<br/>", "<!-- x -->",
                                  "<svg/onload=alert(1)>", "<a href='x'>link</a>",
                                  "<x onclick=alert(1)>", "<my-widget>", "<SCRIPT >", "<?php echo 1; ?>"])
def test_html_is_refused(text):
    assert_error(parse([q(text=text)]), "question 1", "text", "contains HTML")


def test_duplicate_questions_in_file():
    twin = q(options=[{"text": "28/11/2013", "correct": False}, {"text": "01/01/2014", "correct": True}])
    same_stem_other_options = q(options=[{"text": "x", "correct": True}, {"text": "y", "correct": False}])
    result = parse([q(), same_stem_other_options, twin])
    assert_error(result, "question 3", "text", "duplicate of the question at question 1")
    assert [x.location for x in result.questions] == ["question 1", "question 2"]


def test_nfc_and_invisible_characters():
    decomposed = unicodedata.normalize("NFD", "Luật Cán bộ, công chức")
    result = parse([q(text=decomposed + "\u200b ?", options=[
        {"text": "Khóa\u00a0XIII", "correct": True}, {"text": "Khóa XIV\t", "correct": False}])])
    assert result.ok, result.errors
    question = result.questions[0]
    assert question.text == "Luật Cán bộ, công chức ?"
    assert question.text == unicodedata.normalize("NFC", question.text)
    assert [o.text for o in question.options] == ["Khóa XIII", "Khóa XIV"]


def test_file_level_problems():
    assert_error(parse_file("b.json", b"{\"questions\": [", ), "file", "", "not valid JSON")
    assert_error(parse_file("b.json", b"[" * 100_000), "file", "", "not valid JSON")
    assert_error(parse({"format": "other/2", "questions": []}), "file", "", "only 'demo-bank/1'")
    assert_error(parse({"format": "demo-bank/1"}), "file", "questions", "is required")
    assert_error(parse({"questions": []}), "file", "", "contains no questions")
    assert_error(parse("chuỗi"), "file", "", "must hold an object")
    assert_error(parse_file("b.json", b"[{\"text\": \"Vi\xea\xf2t\"}]"), "file", "", "not valid UTF-8")


def test_lone_surrogate_escape_is_dropped():
    result = parse_file("b.json", json.dumps([q(text="Câu\\ud800 hỏi?")]).encode().replace(b"\\\\ud800", b"\\ud800"))
    assert result.ok, result.errors
    assert result.questions[0].text == "Câu hỏi?"


def test_export_shape():
    result = parse([q(tags=["a"], image="x.png"), q(text="Câu khác?", topic="Tin học")])
    doc = json.loads(export_json(result.questions))
    assert doc["format"] == "demo-bank/1"
    assert doc["topics"] == ["Kiến thức chung > Hiến pháp 2013", "Tin học"]
    first, second = doc["questions"]
    assert first["tags"] == ["a"] and first["image"] == "x.png"
    assert "tags" not in second and "image" not in second
    assert second["options"][0] == {"text": "01/01/2014", "correct": True}
    assert list(second) == ["topic", "difficulty", "type", "text", "options", "explanation", "source"]
    assert result.questions[0].options[0] == ParsedOption("01/01/2014", True)


def test_too_many_questions(monkeypatch):
    monkeypatch.setattr(validation, "MAX_QUESTIONS", 3)
    result = parse([q(text=f"Câu {i}?") for i in range(5)])
    assert_error(result, "file", "", "more than 3 questions")
    assert len(result.questions) == 3
