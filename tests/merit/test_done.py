"""The issue's "done means": the example civil-service exam goes from submitted attempts to a published
merit list with a tie at the quota boundary flagged, exported to CSV, XLSX and PDF (opened and read),
with a key correction that changes a rank shown before publishing."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from exam.audit.models import AuditEntry
from exam.grading import runs as results
from exam.merit import correction_preview
from exam.merit import lists as merit_lists
from exam.merit.content import merit_hash
from exam.merit.exports import UTF8_BOM
from exam.merit.models import MeritList
from tests.merit.helpers import ACCOUNTS, FAILING, LAW, T0, correct_the_key, make_round


def rows_of(lists, post):
    return {row.registration_no: row for row in lists[post].rows}


def test_from_submitted_attempts_to_a_published_list_with_a_corrected_key_and_a_flagged_tie(db):
    found = make_round(db)
    exam = found.exam
    assert exam.ranking == {"preset": "civil_service", "quota": {LAW: 2, ACCOUNTS: 1}}  # from the exam's TOML

    # The draft: TS04 fails Tin học by one question; TS01 and TS02 share rank 1 and both fit the quota of 2.
    record = merit_lists.build_merit_list(db, exam, "hoidong", T0 + timedelta(days=11))
    assert record.status == "draft" and record.grading_run_id == results.latest_run(db, exam).id
    lists = merit_lists.lists_of(record)
    law, accounts = rows_of(lists, LAW), rows_of(lists, ACCOUNTS)
    assert (law["TS01"].rank, law["TS01"].status) == (1, "selected")
    assert (law["TS02"].rank, law["TS02"].status) == (1, "selected")
    assert (law["TS03"].rank, law["TS03"].status, law["TS03"].total) == (3, "not_selected", 72.5)
    assert law[FAILING].status == "ineligible" and law[FAILING].reasons[0].code == "round1_section_failed"
    assert law["TS05"].reasons[0][:2] == ("absent", "")  # did not sit round 1
    assert (accounts["TS06"].rank, accounts["TS06"].status, accounts["TS06"].total) == (1, "selected", 80.0)
    assert (accounts["TS07"].rank, accounts["TS07"].status) == (2, "not_selected")
    assert accounts["TS08"].reasons[0][:2] == ("absent", "round2")  # "vắng" in round 2
    assert not lists[LAW].ties

    # A key correction, proposed and approved by two board members: before anything is regraded or
    # published, the preview shows whose score changes and whose rank and status would change.
    correct_the_key(db, found)
    preview = correction_preview.preview_key_corrections(db, exam, actor="hoidong", now=T0 + timedelta(days=3))
    changed = {(c.registration_no, c.what): (c.before, c.after) for c in preview.changes}
    assert changed[(FAILING, "status")] == ("ineligible", "selected")
    assert changed[(FAILING, "rank")] == (None, 1)
    assert changed[("TS01", "rank")] == (1, 2) and changed[("TS01", "status")] == ("selected", "tie")
    assert changed[("TS02", "status")] == ("selected", "tie")
    assert FAILING in {s.registration_no for s in preview.scores}
    scored = {s.registration_no: s for s in preview.scores}
    assert scored[FAILING].passed_before is False and scored[FAILING].passed_after is True
    db.flush()
    assert db.scalar(select(MeritList.hash).where(MeritList.id == record.id)) == record.hash  # nothing written

    # Regraded, the draft is out of date: publishing it is refused until it is built again.
    results.grade_exam(db, exam, actor="hoidong", now=T0 + timedelta(days=4))
    with pytest.raises(merit_lists.MeritListError, match="build the list again"):
        merit_lists.publish_merit_list(db, exam, actor="hoidong", now=T0 + timedelta(days=4))
    record = merit_lists.build_merit_list(db, exam, "hoidong", T0 + timedelta(days=12))
    lists = merit_lists.lists_of(record)
    law = rows_of(lists, LAW)
    assert (law[FAILING].rank, law[FAILING].status) == (1, "selected")
    assert [(t.rank, t.places, t.registration_nos) for t in lists[LAW].ties] == [(2, 1, ("TS01", "TS02"))]
    assert law["TS01"].status == law["TS02"].status == "tie"

    # The tie is the board's: publishing is refused unless the board publishes it as pending.
    with pytest.raises(merit_lists.MeritListError, match="await the board"):
        merit_lists.publish_merit_list(db, exam, actor="hoidong", now=T0 + timedelta(days=13))
    published = merit_lists.publish_merit_list(db, exam, actor="hoidong", now=T0 + timedelta(days=13),
                                               allow_unresolved_ties=True)
    db.flush()
    assert published.status == "published" and published.hash == merit_hash(lists)
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "merit.publish")).one()
    details = json.loads(entry.details)
    assert details["hash"] == published.hash
    assert details["unresolved_ties"] == [{"post": LAW, "rank": 2, "registration_nos": ["TS01", "TS02"]}]

    # The three exports of the published list.
    check_csv(merit_lists.export_list(db, exam, "list.csv"), published.hash)
    check_xlsx(merit_lists.export_list(db, exam, "list.xlsx"), published.hash, exam)
    check_pdf(merit_lists.export_list(db, exam, "list.pdf"), published.hash, exam)
    one = merit_lists.export_list(db, exam, "law.csv", post="chuyên viên  PHÁP CHẾ")
    assert {row["post"] for row in csv.DictReader(io.StringIO(one[len(UTF8_BOM):].decode("utf-8")))} == {LAW}


def check_csv(content: bytes, digest: str) -> None:
    assert content.startswith(UTF8_BOM)
    rows = {row["registration_no"]: row for row in csv.DictReader(io.StringIO(content[3:].decode("utf-8")))}
    assert rows[FAILING]["full_name"] == "Phạm Quốc Việt" and rows[FAILING]["status"] == "selected"
    assert rows["TS01"]["status"] == "tie" and rows["TS01"]["rank"] == "2"
    assert rows["TS03"]["bonus"] == "2.5" and rows["TS03"]["total"] == "72.5"
    assert rows["TS08"]["reason_codes"] == "absent: round2"
    assert rows["TS07"]["post"] == ACCOUNTS and rows["TS07"]["status_label"] == "Không trúng tuyển"


def check_xlsx(content: bytes, digest: str, exam) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(content))
    assert workbook.sheetnames == [LAW, ACCOUNTS]  # a sheet per post, in the quota table's order
    sheet = workbook[LAW]
    assert exam.code in sheet["A1"].value
    assert LAW in sheet["A2"].value and "Chỉ tiêu: 2" in sheet["A2"].value
    assert digest in sheet["A3"].value
    header = [cell.value for cell in sheet[4]]
    assert header[:4] == ["Hạng", "Số báo danh", "Họ và tên", "Ngày sinh"] and "Điểm vòng 2" in header
    body = {row[1]: row for row in sheet.iter_rows(min_row=5, values_only=True)}
    assert body[FAILING][0] == 1 and body[FAILING][2] == "Phạm Quốc Việt"
    status_column = header.index("Kết quả")
    assert body["TS01"][status_column] == "Bằng điểm (chờ Hội đồng quyết định)"
    assert body["TS02"][0] == 2 and body["TS02"][2] == "Trần Văn Đức"


def check_pdf(content: bytes, digest: str, exam) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for name in ("Nguyễn Thị Ánh", "Phạm Quốc Việt", "Bùi Thị Ngọc Lưu", "Lê Hoàng Yến"):
        assert name in text
    assert "Vị trí việc làm: Chuyên viên pháp chế" in text and "Kế toán viên" in text
    assert digest in text.replace("\n", "")
    assert "Trang 1/1" in text
    assert "Bằng điểm" in text and "chờ Hội đồng tuyển dụng quyết định" in text
    assert "CHỦ TỊCH" in text and exam.code in text
