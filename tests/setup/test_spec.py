"""The exam specification: every problem with its key, the example over the demo bank, create_exam."""
from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

from exam.audit.models import AuditEntry
from exam.core.db import utcnow
from exam.setup.exams import check_reading, check_spec, create_exam, publish_exam
from exam.setup.models import Exam
from exam.setup.spec import CellSpec, SpecRejected, read_spec_dict, spec_from_dict, spec_from_toml, spec_to_toml
from tests.factories import EXAMPLE_TOML, example_spec, load_demo_bank, make_exam_from_spec

SMALL = """
code = "T-1"
title = "Thi thử"
[[sections]]
code = "a"
title = "Phần A"
minutes = 10
questions = 3
blueprint = [ { topic = "Tin học > Bảng tính (Excel)", difficulty = "easy", count = 3 } ]
"""


def keys(errors) -> list[str]:
    return [e.key for e in errors]


def test_the_example_reads_as_the_issue_describes():
    spec, errors = spec_from_toml(EXAMPLE_TOML.read_text(encoding="utf-8"))
    assert errors == []
    assert [(s.title, s.questions, s.minutes) for s in spec.sections] == [
        ("Kiến thức chung", 60, 60), ("Ngoại ngữ (Tiếng Anh)", 30, 30), ("Tin học", 30, 30)]
    assert all(s.scoring.pass_ratio == 0.5 for s in spec.sections)
    assert spec.show_score is True and spec.forms == 0
    assert spec.total_questions == 120 and spec.total_minutes == 120


def test_defaults_and_a_section_override():
    spec, errors = spec_from_toml(SMALL + "[sections.scoring]\npass_ratio = 0.6\nmultiple = \"partial\"\n")
    assert errors == []
    assert spec.scoring.marks_per_question == 1.0 and spec.show_score is True and spec.forms == 0
    assert spec.sections[0].scoring.pass_ratio == 0.6
    assert spec.sections[0].scoring.multiple == "partial"
    assert spec.sections[0].scoring.negative_fraction == 0.0


def test_every_problem_is_reported_with_its_key():
    data = {
        "code": "R1 2026", "title": "", "show_score": "yes", "forms": -1, "colour": "blue",
        "scoring": {"negative_fraction": 1.5, "multiple": "some"},
        "sections": [
            {"code": "general", "title": "Kiến thức chung", "minutes": 0, "questions": 10,
             "blueprint": [{"topic": "Kiến thức chung > Hiến pháp 2013", "difficulty": "easy", "count": 4},
                           {"topic": "Kiến thức chung", "difficulty": "hardest", "count": 2},
                           {"topic": "Tin học", "difficulty": "hard", "count": 0}]},
            {"code": "general", "title": "Tin học", "minutes": 601, "questions": 5,
             "scoring": {"pass_ratio": 2},
             "blueprint": [{"topic": "Tin học > Word", "difficulty": "medium", "count": 3, "weight": 2},
                           {"topic": "Tin học > Word", "count": "two"}]},
        ],
    }
    spec, errors = spec_from_dict(data)
    assert spec is None
    found = dict((e.key, e.message) for e in errors)
    assert set(found) >= {
        "code", "title", "show_score", "forms", "colour", "scoring.negative_fraction", "scoring.multiple",
        "sections[0].minutes", "sections[0].blueprint[1].difficulty", "sections[0].blueprint[2].count",
        "sections[1].code", "sections[1].minutes", "sections[1].scoring.pass_ratio",
        "sections[1].blueprint[0].weight", "sections[1].blueprint[1].difficulty", "sections[1].blueprint[1].count",
    }
    assert "between 1 and 600 (got 601)" in found["sections[1].minutes"]
    assert "already the code of sections[0]" in found["sections[1].code"]
    assert found["colour"].startswith("unknown key")
    assert "must be a whole number" in found["sections[1].blueprint[1].count"]


def test_questions_must_equal_the_blueprint_sum():
    _, errors = spec_from_toml(SMALL.replace("questions = 3", "questions = 5"))
    assert [(e.key, e.message) for e in errors] == [
        ("sections[0].questions", "is 5 but the blueprint cells add up to 3")]


def test_overlapping_cells_are_refused():
    text = SMALL.replace('blueprint = [', 'blueprint = [ { topic = "Tin học", difficulty = "any", count = 1 },')
    text = text.replace("questions = 3", "questions = 4")
    _, errors = spec_from_toml(text)
    assert keys(errors) == ["sections[0].blueprint[1]"]
    assert "could appear twice" in errors[0].message


def test_toml_syntax_and_encoding_errors():
    _, errors = spec_from_toml('code = "x"\ntitle = \n')
    assert keys(errors) == [""] and "not valid TOML" in errors[0].message and "line 2" in errors[0].message
    _, errors = spec_from_toml("title = 'Thi'".encode("utf-16"))
    assert "not UTF-8" in errors[0].message
    _, errors = spec_from_toml("")
    assert {"code", "title", "sections"} <= set(keys(errors))


def test_spec_round_trips_through_toml_and_dict():
    spec = example_spec()
    assert spec_from_toml(spec_to_toml(spec)) == (spec, [])
    assert spec_from_dict(json.loads(json.dumps(spec.as_dict()))) == (spec, [])
    tricky = dataclasses.replace(spec, title='Đề "khó" \\ thử', instructions="Dòng 1\nDòng 2: \"trích\" C:\\thư mục")
    assert spec_from_toml(spec_to_toml(tricky))[0] == tricky


def test_the_example_creates_an_exam_that_publishes_over_the_demo_bank(db):
    now = utcnow()
    exam = make_exam_from_spec(db, now=now)
    db.commit()
    assert exam.status == "draft" and len(exam.seed) == 64
    assert [(s.position, s.code, s.question_count, s.minutes, s.pass_ratio) for s in exam.sections] == [
        (1, "general", 60, 60, 0.5), (2, "language", 30, 30, 0.5), (3, "informatics", 30, 30, 0.5)]
    assert sum(c.count for s in exam.sections for c in s.cells) == 120
    assert exam.spec == example_spec().as_dict()
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "exam.create"))
    assert entry.object_id == "R1-2026" and json.loads(entry.details)["questions"] == 120
    frozen = publish_exam(db, exam, actor="test", now=now)
    assert frozen >= 120 and exam.status == "published"


def test_cells_the_bank_cannot_fill_and_missing_topics_are_reported_together(db):
    load_demo_bank(db)
    data = example_spec().as_dict()
    data["sections"][1]["blueprint"][2]["count"] = 9  # Tiếng Anh > Ngữ pháp × hard: the bank has 7
    data["sections"][1]["questions"] += 7
    data["sections"][2]["blueprint"][0]["topic"] = "Tin học > Windows"
    data["sections"][0]["minutes"] = 0
    reading = read_spec_dict(data)
    errors = check_reading(db, reading)
    found = {e.key: e.message for e in errors}
    assert set(found) == {"sections[0].minutes", "sections[1].blueprint[2].count", "sections[2].blueprint[0].topic"}
    assert found["sections[1].blueprint[2].count"] == (
        "needs 9 questions but the bank has 7 active ones in Tiếng Anh > Ngữ pháp × hard")
    assert "did you mean 'Tin học > Windows và quản lý tệp'" in found["sections[2].blueprint[0].topic"]


def test_create_exam_refuses_a_taken_code_and_an_unfillable_cell_writing_nothing(db):
    make_exam_from_spec(db)
    db.commit()
    spec = example_spec()
    sections = list(spec.sections)
    cells = list(sections[2].blueprint)
    cells[0] = CellSpec(cells[0].topic, cells[0].difficulty, 50)
    sections[2] = dataclasses.replace(sections[2], blueprint=tuple(cells), questions=sections[2].questions + 47)
    bad = dataclasses.replace(spec, sections=tuple(sections))
    assert keys(check_spec(db, bad)) == ["code", "sections[2].blueprint[0].count"]
    with pytest.raises(SpecRejected) as refused:
        create_exam(db, bad, "test", utcnow())
    assert len(refused.value.errors) == 2
    db.rollback()
    assert len(db.scalars(select(Exam)).all()) == 1
