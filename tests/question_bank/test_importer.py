"""The importer: all or nothing, dry runs write nothing, one audit entry, near-duplicates, the demo bank."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from exam.audit.models import AuditEntry
from exam.core.db import get_session
from question_bank import browsing
from question_bank.formats import ParsedOption, ParsedQuestion, export_json, export_xlsx
from question_bank.importer import import_file
from question_bank.models import Question, QuestionTag, QuestionVersion, Topic

DEMO_BANK = Path(__file__).resolve().parents[2] / "question_bank" / "demo" / "demo_bank.json"


def csv_file(*rows: str) -> bytes:
    header = "topic,difficulty,type,text,option_a,option_b,option_c,option_d,correct,explanation,source,tags,image"
    return ("\n".join((header,) + rows) + "\n").encode("utf-8")


GOOD_ROWS = (
    "Tin học > Excel,easy,single,Hàm nào tính tổng?,SUM,AVERAGE,MAX,MIN,A,,,excel,",
    "Tin học > Word,medium,multiple,Phím tắt nào đúng?,Ctrl+C sao chép,Ctrl+V dán,Ctrl+Z in,,\"A,B\",,,,",
    "Kiến thức chung > Hiến pháp 2013,hard,single,Hiến pháp có bao nhiêu chương?,10,11,12,,B,,,,",
)


def fields_of(q: ParsedQuestion) -> tuple:
    """What an export keeps of a question, to compare two banks."""
    return (q.topic, q.difficulty, q.type, q.text, [(o.text, o.correct) for o in q.options], q.explanation, q.source,
            q.tags, q.image)


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def bank_is_empty(db) -> bool:
    return all(count(db, model) == 0 for model in (Question, QuestionVersion, QuestionTag, Topic)) and \
        count(db, AuditEntry) == 0


def test_good_file_is_imported_with_one_audit_entry(db, clock):
    report = import_file(db, "cau-hoi.csv", csv_file(*GOOD_ROWS), actor="hoidong", now=clock())
    db.commit()
    assert report.ok and report.added == 3 and report.format == "csv"
    assert report.by_cell == {("Tin học > Excel", "easy"): 1, ("Tin học > Word", "medium"): 1,
                              ("Kiến thức chung > Hiến pháp 2013", "hard"): 1}
    assert count(db, Question) == 3 and count(db, QuestionVersion) == 3
    questions = db.scalars(select(Question).order_by(Question.id)).all()
    assert all(q.current_version.number == 1 and q.current_version.question_id == q.id for q in questions)
    assert questions[1].qtype == "multiple" and questions[1].current_version.correct_letters == "A,B"
    assert [t.tag for t in questions[0].tags] == ["excel"]
    assert "ham nao tinh tong" in questions[0].search_text
    entries = db.scalars(select(AuditEntry)).all()
    assert [e.action for e in entries] == ["bank.import"]
    details = json.loads(entries[0].details)
    assert details["filename"] == "cau-hoi.csv" and details["count"] == 3 and details["format"] == "csv"
    assert details["sha256"] == report.file_sha256
    assert (details["first_question_id"], details["last_question_id"]) == (questions[0].id, questions[-1].id)
    assert ["Tin học > Excel", "easy", 1] in details["by_cell"]
    assert "Tin học" in details["topics_created"]


def test_one_bad_row_writes_nothing_and_every_error_is_listed(db, clock):
    content = csv_file(GOOD_ROWS[0], "Tin học > Excel,rất khó,single,Câu lỗi?,A,B,,,A,,,,",
                       GOOD_ROWS[1], "Tin học > Excel,easy,single,,A,B,,,E,,,,")
    report = import_file(db, "loi.csv", content, actor="hoidong", now=clock())
    db.commit()
    assert not report.ok and report.added == 0
    found = {(e.location, e.field) for e in report.errors}
    assert {("row 3", "difficulty"), ("row 5", "text"), ("row 5", "correct")} <= found
    assert str(report.errors[0]).startswith("row 3, difficulty:")
    assert bank_is_empty(db)


def test_dry_run_writes_nothing_not_even_an_audit_entry(db, clock):
    report = import_file(db, "cau-hoi.csv", csv_file(*GOOD_ROWS), actor="hoidong", now=clock(), dry_run=True)
    db.commit()
    assert report.ok and report.added == 3 and report.dry_run
    assert sorted(report.new_topics) == ["Kiến thức chung", "Kiến thức chung > Hiến pháp 2013", "Tin học",
                                         "Tin học > Excel", "Tin học > Word"]
    assert bank_is_empty(db)


def test_default_topic_fills_questions_without_one(db, clock):
    content = csv_file(",easy,single,Câu không ghi chủ đề?,Có,Không,,,A,,,,")
    assert not import_file(db, "a.csv", content, actor="x", now=clock()).ok
    report = import_file(db, "a.csv", content, actor="x", now=clock(), default_topic="Chung>Khác")
    assert report.ok and report.by_cell == {("Chung > Khác", "easy"): 1}


def test_near_duplicates_against_the_bank_and_within_the_file_are_warnings(db, make_question, clock):
    existing = make_question(text="Hàm nào tính tổng?")
    content = csv_file(GOOD_ROWS[0], "Tin học > Excel,easy,single,HÀM NÀO TÍNH TỔNG,Cộng,Trừ,,,A,,,,")
    report = import_file(db, "trung.csv", content, actor="x", now=clock())
    db.commit()
    assert report.ok and report.added == 2
    pairs = {(n.location, n.question_id, n.other_location) for n in report.near_duplicates}
    assert pairs == {("row 2", existing.id, None), ("row 3", existing.id, None), ("row 3", None, "row 2")}
    assert count(db, Question) == 3


def test_demo_bank_imports_300_questions(db, clock):
    report = import_file(db, DEMO_BANK.name, DEMO_BANK.read_bytes(), actor="cli", now=clock())
    db.commit()
    assert report.ok, report.errors[:5]
    assert report.added == 300 and count(db, Question) == 300
    assert browsing.stats(db).total == 300


def test_a_large_spreadsheet_imports_in_bulk(db, clock):
    questions = [ParsedQuestion(
        location="", topic=f"Chủ đề {i % 5} > Phần {i % 7}", difficulty=("easy", "medium", "hard")[i % 3],
        type="single", text=f"Câu hỏi số {i}: Hiến pháp năm 2013 quy định điều gì về quyền công dân?",
        options=[ParsedOption(f"Phương án {j} của câu {i}", j == 1) for j in range(4)], tags=[f"t{i % 3}"])
        for i in range(2000)]
    content = export_xlsx(questions)
    report = import_file(db, "lon.xlsx", content, actor="x", now=clock())
    db.commit()
    assert report.ok and report.added == 2000
    assert count(db, QuestionVersion) == 2000 and count(db, QuestionTag) == 2000
    assert db.scalar(select(func.count()).select_from(Question).where(Question.current_version_id.is_(None))) == 0


def test_export_then_import_into_an_empty_bank_gives_the_same_questions(db, make_question, clock, fresh_app):
    make_question(tags=["a", "b"], explanation="", source="")
    make_question(text="Chọn các số chẵn?", type="multiple", difficulty="hard",
                  options=[("2", True), ("3", False), ("4", True), ("5", False), ("6", True), ("7", False)])
    content = export_json(browsing.export_questions(db))
    other = fresh_app()
    with other.app_context():

        other_db = get_session()
        assert import_file(other_db, "bank.json", content, actor="x", now=clock()).ok
        other_db.commit()
        again = browsing.export_questions(other_db)
    assert [fields_of(q) for q in again] == [fields_of(q) for q in browsing.export_questions(db)]
