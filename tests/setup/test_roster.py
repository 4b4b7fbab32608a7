"""The roster: all-or-nothing import with every error, seats (automatic or from the file)."""
from __future__ import annotations

import io
import json
import unicodedata
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from exam.audit.models import AuditEntry
from exam.core.db import utcnow
from exam.setup.candidate_lists import seat_list
from exam.setup.models import Candidate
from exam.setup.roster import import_roster, parse_date_of_birth, template_csv, template_xlsx
from exam.setup.sittings import SittingError, assign_seats
from exam.setup.tabular import Value
from question_bank.formats import RowError
from tests.factories import make_exam, make_sitting, roster_csv, roster_row

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def count(db) -> int:
    return db.scalar(select(func.count()).select_from(Candidate))


def xlsx_bytes(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.fixture
def exam(db):
    return make_exam(db, publish=False)


def test_a_good_csv_imports_every_candidate_with_an_audit_entry(db, exam):
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Ánh")
    content = roster_csv(roster_row(1, full_name=decomposed, date_of_birth="05/09/1994"),
                         roster_row(2, date_of_birth="1990-12-31", citizen_id="079 090 001 234",
                                    priority_category="Con thương binh", post="Chuyên viên công nghệ thông tin"),
                         roster_row(3, citizen_id="123456789"))
    report = import_roster(db, exam, "ds.csv", content, actor="hoidong", now=NOW)
    db.commit()
    assert report.ok and report.added == 3 and report.format == "csv"
    stored = {c.registration_no: c for c in db.scalars(select(Candidate))}
    assert stored["TS0001"].full_name == "Nguyễn Thị Ánh" == unicodedata.normalize("NFC", decomposed)
    assert stored["TS0001"].date_of_birth == date(1994, 9, 5)
    assert stored["TS0002"].date_of_birth == date(1990, 12, 31)
    assert stored["TS0002"].citizen_id == "079090001234"
    assert stored["TS0002"].priority_category == "Con thương binh"
    assert stored["TS0003"].citizen_id == "123456789"  # an old 9-digit CMND
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "candidates.import"))
    details = json.loads(entry.details)
    assert details["sha256"] == report.file_sha256 and details["count"] == 3 and entry.object_id == exam.code


def test_a_bad_file_reports_every_error_and_writes_nothing(db, exam):
    content = roster_csv(
        roster_row(1),
        roster_row(2, date_of_birth="31/02/1990", citizen_id="12345"),
        roster_row(3, registration_no="TS0001", full_name="=HYPERLINK(\"http://x\")"),
        roster_row(4, seat="3", post=""),
        roster_row(5, citizen_id=roster_row(1)[3], date_of_birth="1990/01/02"),
        roster_row(6, registration_no="TS 06", date_of_birth="01/01/2020", full_name="Lê Văn 3"),
    )
    report = import_roster(db, exam, "ds.csv", content, actor="hoidong", now=NOW)
    assert report.errors == [
        RowError("row 3", "date_of_birth", "is not a real date (got '31/02/1990'; day/month/year expected)"),
        RowError("row 3", "citizen_id", "must have 12 digits (CCCD) or 9 (CMND); it has 5 (12345)"),
        RowError("row 4", "full_name", "starts with '=', which spreadsheet programs run as a formula; put an "
                                      "apostrophe (') in front to keep it as text, e.g. '=SUM(A1:A3)"),
        RowError("row 5", "post", "is required"),
        RowError("row 5", "seat", "a seat needs a sitting: fill in the sitting column too"),
        RowError("row 6", "date_of_birth", "must be a date as dd/mm/yyyy (e.g. 05/09/1994) or yyyy-mm-dd "
                                           "(got '1990/01/02')"),
        RowError("row 7", "registration_no", "must be 1 to 40 letters, digits, '.', '_', '/' or '-' with no "
                                             "spaces (got 'TS 06')"),
        RowError("row 7", "full_name", "must be a name in letters, e.g. 'Nguyễn Thị Lan' (got 'Lê Văn 3')"),
        RowError("row 7", "date_of_birth", "gives an age of 6 (01/01/2020); check the year"),
    ]
    assert count(db) == 0


def test_duplicates_within_the_file_and_against_the_exam(db, exam):
    import_roster(db, exam, "a.csv", roster_csv(roster_row(1), roster_row(2)), actor="t", now=NOW)
    content = roster_csv(roster_row(3), roster_row(3, citizen_id="001190000099"),
                         roster_row(4, registration_no="TS0002", citizen_id=roster_row(1)[3]),
                         roster_row(5, citizen_id=roster_row(3)[3]))
    report = import_roster(db, exam, "b.csv", content, actor="t", now=NOW)
    assert [(e.location, e.field, e.reason) for e in report.errors] == [
        ("row 3", "registration_no", "TS0003 is also at row 2"),
        ("row 4", "registration_no", f"TS0002 is already a candidate of exam {exam.code}"),
        ("row 4", "citizen_id", f"001190000001 is already the citizen ID of a candidate of exam {exam.code}"),
        ("row 5", "citizen_id", "001190000003 is also at row 2"),
    ]
    assert count(db) == 2


def test_xlsx_with_excel_dates_numbers_vietnamese_captions_and_a_row_counter(db, exam):
    content = xlsx_bytes([
        ("STT", "Số báo danh", "Họ và tên", "Ngày sinh", "Số CCCD", "Vị trí dự tuyển", "Đối tượng ưu tiên"),
        (1, 1001, "Trần Thị Mai", datetime(1995, 3, 14), "001195000123", "Chuyên viên pháp chế", None),
        (2, 1002, "Lê Văn Nam", "14/03/1993", 79093000456, "Chuyên viên pháp chế", "Dân tộc thiểu số"),
        (3, 1003, "Phạm Văn Hùng", 34000, "036093000456", "Chuyên viên pháp chế", None),
    ])
    report = import_roster(db, exam, "danh-sach.xlsx", content, actor="t", now=NOW, dry_run=True)
    assert [(e.location, e.field) for e in report.errors] == [("row 3", "citizen_id"), ("row 4", "date_of_birth")]
    assert "Excel dropped the leading 0" in report.errors[0].reason
    assert report.errors[1].reason.startswith("is a number (34000), not a date")
    fixed = xlsx_bytes([
        ("STT", "SBD", "Họ và tên", "Ngày sinh", "CCCD", "Vị trí việc làm"),
        (1, 1001, "Trần Thị Mai", datetime(1995, 3, 14), "001195000123", "Chuyên viên pháp chế"),
    ])
    report = import_roster(db, exam, "danh-sach.xlsx", fixed, actor="t", now=NOW)
    assert report.ok, report.errors
    candidate = db.scalar(select(Candidate))
    assert (candidate.registration_no, candidate.date_of_birth) == ("1001", date(1995, 3, 14))


def test_header_problems_and_hostile_files(db, exam):
    report = import_roster(db, exam, "x.csv", roster_csv(("TS1", "A"), header=("sbd", "ho ten", "quê quán")),
                           actor="t", now=NOW)
    assert [(e.location, e.field) for e in report.errors] == [
        ("row 1", "column C"), ("row 1", "date_of_birth"), ("row 1", "citizen_id"), ("row 1", "post")]
    assert "unknown column 'quê quán'" in report.errors[0].reason
    for name, content, expected in (
        ("x.xls", b"\xd0\xcf\x11\xe0rest", "unsupported file type"),
        ("x.xlsx", b"\xd0\xcf\x11\xe0rest", "old Excel 97-2003"),
        ("x.xlsx", b"not a zip", "is not an .xlsx file"),
        ("x.csv", "registration_no;full_name\n".encode("utf-16"), "is not valid UTF-8"),
        ("x.csv", b"", "is empty"),
        ("x.csv", roster_csv(), "has a header row but no candidates"),
    ):
        report = import_roster(db, exam, name, content, actor="t", now=NOW)
        assert report.errors and expected in report.errors[0].reason, (name, report.errors)
    assert count(db) == 0


def test_dry_run_reports_and_writes_nothing(db, exam):
    report = import_roster(db, exam, "ds.csv", roster_csv(roster_row(1), roster_row(2)), actor="t", now=NOW,
                           dry_run=True)
    assert report.ok and report.added == 2 and report.by_post() == [("Chuyên viên pháp chế", 2)]
    assert count(db) == 0
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "candidates.import")) is None


def test_seats_from_the_file_are_checked(db, exam):
    sitting = make_sitting(db, exam, seats=3, code="CA1")
    import_roster(db, exam, "a.csv", roster_csv(roster_row(1, sitting="CA1", seat="1")), actor="t", now=NOW)
    content = roster_csv(roster_row(2, sitting="CA1", seat="1"), roster_row(3, sitting="CA1", seat="4"),
                         roster_row(4, sitting="CA2", seat="2"), roster_row(5, sitting="CA1", seat="2"),
                         roster_row(6, sitting="CA1", seat="2"), roster_row(7, sitting="CA1", seat="x"))
    report = import_roster(db, exam, "b.csv", content, actor="t", now=NOW)
    assert [(e.location, e.field, e.reason) for e in report.errors] == [
        ("file", "sitting", "sitting CA1 has 3 seats, 1 taken; the file puts 4 more candidates in it"),
        ("row 2", "seat", "seat 1 of sitting CA1 is already taken by a candidate"),
        ("row 3", "seat", "sitting CA1 has seats 1 to 3 (got 4)"),
        ("row 4", "sitting", f"exam {exam.code} has no sitting 'CA2' (its sittings: CA1)"),
        ("row 6", "seat", "seat 2 of sitting CA1 is also given at row 5"),
        ("row 7", "seat", "must be a seat number such as 12 (got 'x')"),
    ]
    assert count(db) == 1
    report = import_roster(db, exam, "c.csv", roster_csv(roster_row(2, sitting="CA1", seat="3"),
                                                         roster_row(3, sitting="CA1")), actor="t", now=NOW)
    assert report.ok
    seats = {c.registration_no: (c.sitting_id, c.seat) for c in db.scalars(select(Candidate))}
    assert seats == {"TS0001": (sitting.id, 1), "TS0002": (sitting.id, 3), "TS0003": (sitting.id, None)}


def test_automatic_seats_follow_registration_numbers_and_keep_given_seats(db, exam):
    sitting = make_sitting(db, exam, seats=5, code="CA1")
    content = roster_csv(roster_row(4), roster_row(2, sitting="CA1", seat="2"), roster_row(3), roster_row(1),
                         roster_row(5, sitting="CA1"))
    assert import_roster(db, exam, "a.csv", content, actor="t", now=NOW).ok
    run = assign_seats(db, exam, sitting, actor="hoidong", now=NOW)
    assert (run.seated, run.already) == (4, 1)
    assert [(c.seat, c.registration_no) for c in seat_list(db, sitting)] == [
        (1, "TS0001"), (2, "TS0002"), (3, "TS0003"), (4, "TS0004"), (5, "TS0005")]
    assert assign_seats(db, exam, sitting, actor="hoidong", now=NOW).seated == 0  # nothing left to seat
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "candidates.seat"))
    assert json.loads(entry.details)["seated"] == 4


def test_automatic_seats_refuse_over_capacity_and_another_exams_sitting(db, exam):
    sitting = make_sitting(db, exam, seats=2, code="CA1")
    assert import_roster(db, exam, "a.csv", roster_csv(*(roster_row(i) for i in range(1, 4))),
                         actor="t", now=NOW).ok
    with pytest.raises(SittingError, match="has 2 free seats of 2 but 3 candidates wait"):
        assign_seats(db, exam, sitting, actor="t", now=NOW)
    assert db.scalar(select(func.count()).select_from(Candidate).where(Candidate.seat.is_not(None))) == 0
    other = make_exam(db, publish=False)
    with pytest.raises(SittingError, match="belongs to another exam"):
        assign_seats(db, other, sitting, actor="t", now=NOW)


def test_date_of_birth_forms():
    today = date(2026, 11, 25)
    assert parse_date_of_birth(Value("5/9/1994"), today) == (date(1994, 9, 5), None)
    assert parse_date_of_birth(Value("05-09-1994"), today) == (date(1994, 9, 5), None)
    assert parse_date_of_birth(Value("05.09.1994"), today) == (date(1994, 9, 5), None)
    assert parse_date_of_birth(Value("1994-09-05"), today) == (date(1994, 9, 5), None)
    assert parse_date_of_birth(Value("x", date=date(1994, 9, 5)), today) == (date(1994, 9, 5), None)
    assert parse_date_of_birth(Value("13/13/1994"), today)[1].startswith("is not a real date")
    assert parse_date_of_birth(Value("01/01/2027"), today)[1] == "is in the future (01/01/2027)"


def test_templates_import_cleanly(db, exam):
    assert import_roster(db, exam, "mau.csv", template_csv(), actor="t", now=utcnow(), dry_run=True).ok
    report = import_roster(db, exam, "mau.xlsx", template_xlsx(), actor="t", now=utcnow(), dry_run=True)
    assert report.ok, report.errors
    assert report.added == 2
