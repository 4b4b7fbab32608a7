"""Merit-list exports: the CSV, XLSX and PDF files are opened and their contents checked."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import openpyxl
import pytest
from pypdf import PdfReader

from exam.merit.content import dump_merit_lists, load_merit_lists, merit_hash
from exam.merit.exports import (
    EXPORTERS,
    ExportInfo,
    export_csv,
    export_merit_lists,
    export_pdf,
    export_xlsx,
    exporter_for,
    sheet_names,
)
from exam.merit.ranking import CandidateResult, apply_decisions, build_merit_lists
from exam.merit.rule import rule_from_dict

LAW = "Chuyên viên pháp chế"
ACCOUNTS = "Kế toán viên: Phòng Tài chính [cấp huyện] / thị xã"  # characters a sheet name cannot hold
PASSED = [("Kiến thức chung", 40.0, 60.0, True), ("Ngoại ngữ", 20.0, 30.0, True), ("Tin học", 18.0, 30.0, True)]
FAILED_IT = PASSED[:2] + [("Tin học", 9.0, 30.0, False)]


def result(reg, name, post, round2, categories="", sections=PASSED, born=date(1997, 5, 20), **components):
    return CandidateResult(reg, name, born, post, categories, sections, 78.0,
                           {"round2": round2, **components} if round2 is not None else components)


RESULTS = [
    result("TS001", "Nguyễn Thị Hồng Nhung", LAW, 82.5, "Con thương binh"),  # 87.5 rank 1
    result("TS002", "Trần Đức Anh", LAW, 80.0),                               # 80   rank 2 tie
    result("TS003", "Lê Thị Ánh Tuyết", LAW, 80.0),                           # 80   rank 2 tie
    result("TS004", "=HYPERLINK(\"http://x\")", LAW, 60.0),                   # a hostile "name"
    result("TS005", "Phạm Văn Đồng", LAW, 95.0, sections=FAILED_IT),          # ineligible
    result("TS006", "Hoàng Thị Thu Hường", ACCOUNTS, 70.0, "Hoàn thành nghĩa vụ quân sự"),  # 72.5
    result("TS007", "@Đặng Quốc Bảo", ACCOUNTS, 45.0),                        # below 50
    result("TS008", "-Vũ Minh Châu", ACCOUNTS, 66.0),
]
QUOTA = {LAW: 2, ACCOUNTS: 1}
PUBLISHED = datetime(2026, 6, 5, 2, 30, tzinfo=UTC)  # 09:30 in Hà Nội


@pytest.fixture
def lists():
    rule, errors = rule_from_dict({"preset": "civil_service", "quota": QUOTA})
    assert errors == []
    return build_merit_lists(RESULTS, rule)


@pytest.fixture
def info(lists):
    return ExportInfo(exam_code="CC-2026", exam_title="Thi tuyển công chức Sở Tư pháp năm 2026",
                      list_hash=merit_hash(lists), published_at=PUBLISHED, place="Hà Nội",
                      board="Hội đồng tuyển dụng công chức")


# --- CSV -------------------------------------------------------------------------------------------

def read_csv(content: bytes) -> list[dict]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(content[3:].decode("utf-8"), newline="")))


def test_csv_is_one_table_with_a_post_column_and_bom(lists, info):
    rows = read_csv(export_csv(lists, info))
    assert list(rows[0]) == ["post", "rank", "registration_no", "full_name", "date_of_birth", "round1_total",
                             "round2", "priority_categories", "bonus_category", "bonus", "total", "status",
                             "status_label", "decided_by_board", "reason_codes", "reasons"]
    assert [(r["post"], r["rank"], r["registration_no"], r["status"]) for r in rows] == [
        (LAW, "1", "TS001", "selected"), (LAW, "2", "TS002", "tie"), (LAW, "2", "TS003", "tie"),
        (LAW, "4", "TS004", "not_selected"), (LAW, "", "TS005", "ineligible"),
        (ACCOUNTS, "1", "TS006", "selected"), (ACCOUNTS, "2", "TS008", "not_selected"),
        (ACCOUNTS, "", "TS007", "ineligible")]
    first = rows[0]
    assert (first["full_name"], first["date_of_birth"], first["round2"], first["bonus"], first["total"]) == (
        "Nguyễn Thị Hồng Nhung", "1997-05-20", "82.5", "5", "87.5")
    assert first["bonus_category"] == "dan_toc_thieu_so" and first["priority_categories"] == "Con thương binh"
    assert rows[1]["status_label"] == "Bằng điểm (chờ Hội đồng quyết định)"
    assert rows[4]["reason_codes"] == "round1_section_failed: Tin học"
    assert rows[4]["reasons"] == "Không đạt phần thi Tin học ở vòng 1"


def test_csv_escapes_formulas(lists, info):
    rows = {r["registration_no"]: r for r in read_csv(export_csv(lists, info))}
    assert rows["TS004"]["full_name"] == "'=HYPERLINK(\"http://x\")"
    assert rows["TS007"]["full_name"] == "'@Đặng Quốc Bảo"
    assert rows["TS008"]["full_name"] == "'-Vũ Minh Châu"
    assert rows["TS001"]["full_name"] == "Nguyễn Thị Hồng Nhung"
    raw = export_csv(lists, info).decode("utf-8-sig")
    assert not re.search(r'(^|,)"?[=+@-][^0-9]', raw, re.M)


# --- XLSX ------------------------------------------------------------------------------------------

def test_xlsx_has_a_sheet_per_post_with_title_header_and_values(lists, info):
    workbook = openpyxl.load_workbook(io.BytesIO(export_xlsx(lists, info)))
    assert workbook.sheetnames == ["Chuyên viên pháp chế", "Kế toán viên Phòng Tài chính cấ"]
    law = workbook["Chuyên viên pháp chế"]
    assert law["A1"].value == "Thi tuyển công chức Sở Tư pháp năm 2026 (CC-2026)" and law["A1"].font.b
    assert law["A2"].value == f"Danh sách kết quả xếp hạng — Vị trí việc làm: {LAW} — Chỉ tiêu: 2"
    assert law["A3"].value == f"Công bố lúc 09:30 ngày 05/06/2026 — Mã kiểm tra (SHA-256): {info.list_hash}"
    header = [c.value for c in law[4]]
    assert header == ["Hạng", "Số báo danh", "Họ và tên", "Ngày sinh", "Điểm vòng 1", "Điểm vòng 2", "Điểm ưu tiên",
                      "Đối tượng ưu tiên", "Tổng điểm", "Kết quả", "Lý do"]
    assert all(c.font.b for c in law[4])
    assert law.freeze_panes == "C5" and law.auto_filter.ref == "A4:K9"
    assert {str(r) for r in law.merged_cells.ranges} == {"A1:K1", "A2:K2", "A3:K3"}
    assert law.page_setup.orientation == "landscape" and law.sheet_properties.pageSetUpPr.fitToPage
    values = [[c.value for c in row] for row in law.iter_rows(min_row=5)]
    assert values[0] == [1, "TS001", "Nguyễn Thị Hồng Nhung", datetime(1997, 5, 20), 78, 82.5, 5, "Con thương binh",
                         87.5, "Trúng tuyển", None]
    assert [v[9] for v in values] == ["Trúng tuyển", "Bằng điểm (chờ Hội đồng quyết định)",
                                      "Bằng điểm (chờ Hội đồng quyết định)", "Không trúng tuyển",
                                      "Không đủ điều kiện"]
    assert values[4][0] is None and values[4][8] is None and values[4][10] == "Không đạt phần thi Tin học ở vòng 1"
    assert law["F5"].number_format == "0.00" and law["I5"].number_format == "0.00"
    assert law["D5"].number_format == "dd/mm/yyyy"
    assert law.column_dimensions["C"].width >= 25
    accounts = workbook.worksheets[1]
    assert accounts["A2"].value.endswith(f"{ACCOUNTS} — Chỉ tiêu: 1")
    assert [c.value for c in accounts["B"][4:]] == ["TS006", "TS008", "TS007"]


def test_xlsx_never_turns_text_into_formulas(lists, info):
    workbook = openpyxl.load_workbook(io.BytesIO(export_xlsx(lists, info)))
    cells = [c for ws in workbook for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    law = workbook.worksheets[0]
    hostile = next(c for c in law["C"] if c.value and "HYPERLINK" in c.value)
    assert hostile.value == '=HYPERLINK("http://x")' and hostile.data_type == "s" and hostile.quotePrefix
    names = {c.value for ws in workbook for c in ws["C"]}
    assert {"@Đặng Quốc Bảo", "-Vũ Minh Châu"} <= names


def test_sheet_names_are_safe_short_and_unique():
    names = sheet_names(["Kế toán", "kế toán", "A" * 40, "A" * 40, "Văn thư: [lưu trữ]*?/\\", "'Pháp chế'",
                         "History", "", "Kế toán"])
    assert names == ["Kế toán", "kế toán (2)", "A" * 31, "A" * 27 + " (2)", "Văn thư lưu trữ",
                     "Pháp chế", "History (vị trí)", "Vị trí", "Kế toán (3)"]
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    assert len({n.casefold() for n in names}) == len(names)


# --- PDF -------------------------------------------------------------------------------------------

def pdf_pages(content: bytes) -> list[str]:
    assert content.startswith(b"%PDF-")
    # Text as read, spaces and line breaks made single spaces (a long header line wraps).
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]


def test_pdf_prints_each_post_with_vietnamese_header_footer_and_signatures(lists, info):
    pages = pdf_pages(export_pdf(lists, info))
    assert len(pages) == 2  # one short section per post
    for page, post in zip(pages, (LAW, ACCOUNTS), strict=True):
        assert "Thi tuyển công chức Sở Tư pháp năm 2026 (CC-2026)" in page
        assert f"Vị trí việc làm: {post}" in page
        assert "Công bố lúc 09:30 ngày 05/06/2026" in page
        assert info.list_hash in page
        assert "Trang 1/1" in page
        assert "Hà Nội, ngày 05 tháng 06 năm 2026" in page
        assert "THƯ KÝ HỘI ĐỒNG TUYỂN DỤNG CÔNG CHỨC" in page and "CHỦ TỊCH HỘI ĐỒNG TUYỂN DỤNG CÔNG CHỨC" in page
    law, accounts = pages
    for name in ("Nguyễn Thị Hồng Nhung", "Trần Đức Anh", "Lê Thị Ánh Tuyết", "Phạm Văn Đồng"):
        assert name in law
    assert "Hoàng Thị Thu Hường" in accounts and "Đặng Quốc Bảo" in accounts
    assert "Hạng" in law and "SBD" in law and "Ngày sinh" in law and "Tổng điểm" in law
    assert "20/05/1997" in law and "87,50" in law and "82,50" in law
    assert "Bằng điểm (chờ Hội đồng" in law and "Không đạt phần thi Tin học ở vòng 1" in law
    assert "TS002, TS003 bằng điểm (80) ở hạng 2, còn 1 chỉ tiêu" in law


def test_pdf_numbers_the_pages_of_each_post_and_repeats_header_and_hash():
    rule, _ = rule_from_dict({"preset": "civil_service", "quota": {LAW: 10, ACCOUNTS: 1}})
    many = [result(f"L{k:03d}", "Nguyễn Thị Hồng Nhung", LAW, 50 + k % 50) for k in range(150)]
    lists = build_merit_lists(many + [RESULTS[5]], rule)
    info = ExportInfo("CC-2026", "Thi tuyển công chức năm 2026", merit_hash(lists))  # a draft
    pages = pdf_pages(export_pdf(lists, info))
    footers = [re.search(r"Trang (\d+)/(\d+)", page).groups() for page in pages]
    law_pages = int(footers[0][1])
    assert law_pages >= 3
    assert len(pages) == law_pages + 1
    assert footers == [(str(k), str(law_pages)) for k in range(1, law_pages + 1)] + [("1", "1")]
    for k, page in enumerate(pages):
        assert "Thi tuyển công chức năm 2026 (CC-2026)" in page
        assert f"Vị trí việc làm: {LAW if k < law_pages else ACCOUNTS}" in page
        assert "Bản dự thảo, chưa công bố" in page
        assert info.list_hash in page
        assert "Họ và tên" in page  # the table's header is repeated on every page
    assert "CHỦ TỊCH" in pages[law_pages - 1] and "CHỦ TỊCH" not in pages[0]
    assert "ngày …… tháng …… năm" in pages[law_pages - 1]  # a draft has no date yet
    assert sum(page.count("Nguyễn Thị Hồng Nhung") for page in pages[:law_pages]) == 150


def test_pdf_turns_landscape_when_the_scores_do_not_fit(info):
    rule, _ = rule_from_dict({"preset": "civil_service", "quota": {LAW: 1}, "tie_break": ["round2", "interview"],
                              "labels": {"interview": "Phỏng vấn"}})
    lists = build_merit_lists([result("A1", "Lê Thị Ánh Tuyết", LAW, 70, interview=8.5, practical=9.0)], rule)
    assert lists[LAW].components == ("round1_total", "round2", "interview", "practical")
    content = export_pdf(lists, info)
    page = PdfReader(io.BytesIO(content)).pages[0]
    assert page.mediabox.width > page.mediabox.height
    assert "Phỏng vấn" in page.extract_text() and "8,50" in page.extract_text()


def test_pdf_is_the_same_file_for_the_same_published_list(lists, info):
    assert export_pdf(lists, info) == export_pdf(load_merit_lists(dump_merit_lists(lists)), info)


def test_board_decisions_show_in_every_format(lists, info):
    decided = dict(lists)
    decided[LAW] = apply_decisions(lists[LAW], {"TS002": "selected", "TS003": "not_selected"},
                                   reason="Biên bản số 7")
    rows = {r["registration_no"]: r for r in read_csv(export_csv(decided, info))}
    assert (rows["TS002"]["status"], rows["TS002"]["decided_by_board"]) == ("selected", "true")
    workbook = openpyxl.load_workbook(io.BytesIO(export_xlsx(decided, info)))
    assert workbook.worksheets[0]["J6"].value == "Trúng tuyển (Hội đồng quyết định)"
    law = pdf_pages(export_pdf(decided, info))[0]
    assert "Hội đồng quyết định trường hợp bằng điểm ở hạng 2: trúng tuyển TS002. Lý do: Biên bản số 7" in law


# --- the registry ----------------------------------------------------------------------------------

def test_exporters_are_chosen_by_extension(lists, info):
    assert set(EXPORTERS) == {".csv", ".xlsx", ".pdf"}
    assert exporter_for("ket-qua.XLSX") is export_xlsx
    assert export_merit_lists("out/ket-qua.csv", lists, info) == export_csv(lists, info)
    assert export_merit_lists("a.pdf", [lists[LAW]], info).startswith(b"%PDF")
    with pytest.raises(ValueError, match=r"use one of \.csv, \.xlsx, \.pdf"):
        exporter_for("ket-qua.docx")
    with pytest.raises(ValueError):
        exporter_for("ket-qua")


def test_empty_exports_are_still_valid_files(info):
    assert read_csv(export_csv({}, info)) == []
    assert openpyxl.load_workbook(io.BytesIO(export_xlsx({}, info))).sheetnames == ["Danh sách"]
    assert "Không có danh sách nào." in pdf_pages(export_pdf({}, info))[0]
