"""Outside scores (round 2 marked on paper, an interview): all-or-nothing import with every row error."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import date

from sqlalchemy import func, select

from exam.audit.models import AuditEntry
from exam.core.db import utcnow
from exam.merit.models import ExternalScore
from exam.merit.outside_scores import import_scores, scores_of, template_csv
from exam.setup.models import Candidate
from tests.factories import make_exam


def exam_with(db, *people):
    exam = make_exam(db, publish=False)
    for k, (reg, name) in enumerate(people, start=1):
        db.add(Candidate(exam_id=exam.id, registration_no=reg, full_name=name, date_of_birth=date(1994, 5, k),
                         citizen_id=f"{1194000000 + k:012d}", post="Chuyên viên", created_at=utcnow()))
    db.flush()
    return exam


PEOPLE = (("TS0001", "Nguyễn Thị Lan"), ("TS0002", "Trần Văn Bình"), ("TS0003", "Lê Thị Thu Hà"))


def csv_bytes(text: str) -> bytes:
    return ("\ufeff" + text).encode("utf-8")


def stored(db, exam) -> dict:
    return {db.get(Candidate, cid).registration_no: scores for cid, scores in scores_of(db, exam).items()}


def test_a_good_csv_with_decimal_commas_absences_and_a_component_column(db):
    exam = exam_with(db, *PEOPLE)
    content = csv_bytes("SBD;Họ và tên;Điểm;Thành phần điểm\r\n"
                        "TS0001;Nguyễn Thị Lan;72,5;\r\n"
                        "TS0002;trần văn  bình;vắng;\r\n"
                        "TS0003;;;\r\n"
                        "TS0001;;88;interview\r\n")
    report = import_scores(db, exam, "vong2.csv", content, actor="hoidong", now=utcnow())
    assert report.ok, report.errors
    assert (report.imported, report.absent, report.replaced) == (4, 2, 0)
    assert report.by_component() == [("interview", 1), ("round2", 3)]
    assert stored(db, exam) == {"TS0001": {"round2": 72.5, "interview": 88.0}, "TS0002": {"round2": None},
                                "TS0003": {"round2": None}}
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "scores.import")).one()
    details = json.loads(entry.details)
    assert details["sha256"] == hashlib.sha256(content).hexdigest() == report.file_sha256
    assert details["count"] == 4 and details["absent"] == 2 and entry.object_id == exam.code


def test_an_xlsx_with_numbers_and_the_component_option(db):
    from openpyxl import Workbook

    exam = exam_with(db, *PEOPLE)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["STT", "Số báo danh", "Điểm phỏng vấn"])
    sheet.append([1, "TS0001", 91.25])
    sheet.append([2, "TS0002", 60])
    sheet.append([3, "TS0003", "Vắng"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = import_scores(db, exam, "phong-van.xlsx", buffer.getvalue(), actor="hoidong", now=utcnow(),
                           component="interview")
    assert report.ok, report.errors
    assert stored(db, exam) == {"TS0001": {"interview": 91.25}, "TS0002": {"interview": 60.0},
                                "TS0003": {"interview": None}}


def test_a_bad_file_lists_every_error_and_writes_nothing(db):
    exam = exam_with(db, *PEOPLE)
    content = csv_bytes("registration_no,score,component,full_name\r\n"
                        "TS0003,66,,\r\n"  # good
                        "TS0001,101,,\r\n"  # above 100
                        "TS9999,50,,\r\n"  # not a candidate
                        "TS0002,abc,,\r\n"  # not a number
                        "TS0003,70,total,\r\n"  # a reserved name
                        "TS0003,70.12345,,\r\n"  # too many decimals
                        "TS0003,60,,Nguyễn Văn Khác\r\n"  # twice, and not their name
                        "TS 4,60,,\r\n"  # a bad registration number
                        "TS0002,=1+1,,\r\n")  # a formula
    report = import_scores(db, exam, "bad.csv", content, actor="hoidong", now=utcnow())
    assert not report.ok
    found = {(e.location, e.field) for e in report.errors}
    assert found == {("row 3", "score"), ("row 4", "registration_no"), ("row 5", "score"), ("row 6", "component"),
                     ("row 7", "score"), ("row 8", "registration_no"), ("row 8", "full_name"),
                     ("row 9", "registration_no"), ("row 10", "score")}
    assert "between 0 and 100" in next(e.reason for e in report.errors if e.location == "row 3")
    assert "not a candidate of exam" in next(e.reason for e in report.errors if e.location == "row 4")
    assert "already has a round2 score at row 2" in " ".join(e.reason for e in report.errors)
    assert [e.location for e in report.errors] == sorted((e.location for e in report.errors),
                                                          key=lambda loc: int(loc.split()[1]))
    assert db.scalar(select(func.count()).select_from(ExternalScore)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEntry)
                     .where(AuditEntry.action == "scores.import")) == 0


def test_header_problems_and_unsupported_files(db):
    exam = exam_with(db, *PEOPLE)
    report = import_scores(db, exam, "x.csv", csv_bytes("SBD,Ghi chú\r\nTS0001,tốt\r\n"), actor="a", now=utcnow())
    assert {(e.field, e.reason.split(";")[0]) for e in report.errors} >= {
        ("column B", "unknown column 'Ghi chú'"), ("score", "required column is missing from the header row")}
    assert import_scores(db, exam, "x.pdf", b"%PDF", actor="a", now=utcnow()).errors[0].location == "file"
    assert "empty" in import_scores(db, exam, "x.csv", b"", actor="a", now=utcnow()).errors[0].reason
    assert "no scores" in import_scores(db, exam, "x.csv", csv_bytes("SBD,score\r\n"), actor="a",
                                        now=utcnow()).errors[0].reason
    bad_option = import_scores(db, exam, "x.csv", csv_bytes("SBD,score\r\nTS0001,5\r\n"), actor="a", now=utcnow(),
                               component="Vòng 2")
    assert bad_option.errors[0].field == "component"


def test_a_dry_run_writes_nothing_and_a_second_import_replaces(db):
    exam = exam_with(db, *PEOPLE)
    first = csv_bytes("SBD,score\r\nTS0001,50\r\nTS0002,60\r\n")
    dry = import_scores(db, exam, "a.csv", first, actor="a", now=utcnow(), dry_run=True)
    assert dry.ok and dry.imported == 2 and stored(db, exam) == {}
    import_scores(db, exam, "a.csv", first, actor="a", now=utcnow())
    second = import_scores(db, exam, "b.csv", csv_bytes("SBD,score\r\nTS0002,65,5\r\n".replace(",5\r", "\r")),
                           actor="a", now=utcnow())
    assert second.ok and second.replaced == 1
    assert stored(db, exam) == {"TS0001": {"round2": 50.0}, "TS0002": {"round2": 65.0}}
    row = db.scalars(select(ExternalScore).join(Candidate).where(Candidate.registration_no == "TS0002")).one()
    assert row.source_sha256 == second.file_sha256


def test_the_template_imports_once_its_names_are_on_the_roster(db):
    exam = exam_with(db, ("TS0001", "Nguyễn Thị Lan"), ("TS0002", "Trần Văn Bình"))
    report = import_scores(db, exam, "mau.csv", template_csv(), actor="a", now=utcnow())
    assert report.ok, report.errors
    assert stored(db, exam) == {"TS0001": {"round2": 72.5}, "TS0002": {"round2": None}}
