"""The merit pages through the real client (CSRF on), the candidate's API after publication, the demo."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from exam.core.db import get_session
from exam.grading import runs as results
from exam.merit import lists as merit_lists
from exam.merit.models import ExternalScore, MeritList, TieDecision
from exam.merit.views import RowsPage
from exam.setup.models import Candidate, Exam
from tests.conftest import csrf_from
from tests.merit.helpers import ACCOUNTS, FAILING, LAW, T0, candidate_token, correct_the_key, make_round, round2_csv


def setup_round(app, *, regrade: bool = True, build: bool = False, publish: bool = False, code: str = "R1-WEB"):
    with app.app_context():
        db = get_session()
        found = make_round(db, code=code)
        correct_the_key(db, found)
        if regrade:
            results.grade_exam(db, found.exam, actor="hoidong", now=T0 + timedelta(days=4))
        if build:
            merit_lists.build_merit_list(db, found.exam, "hoidong", T0 + timedelta(days=11))
        if publish:
            merit_lists.decide_tie(db, found.exam, post=LAW, decisions={"TS01": "selected", "TS02": "not_selected"},
                                   reason="Biên bản họp Hội đồng số 12 ngày 30/06/2026.", actor="hoidong",
                                   now=T0 + timedelta(days=12))
            merit_lists.publish_merit_list(db, found.exam, actor="hoidong", now=T0 + timedelta(days=13))
        db.commit()
        return {reg: c.id for reg, c in found.candidates.items()}


def post(client, url, data=None, page=None, **kwargs):
    token = csrf_from(client.get(page or "/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def test_the_board_builds_decides_publishes_and_downloads(app, client, login_as):
    setup_round(app)
    login_as("board")
    base = "/board/merit/R1-WEB/"
    page = client.get(base)
    assert page.status_code == 200 and "Chưa có danh sách" in page.get_data(as_text=True)
    assert post(client, base + "build", page=base).status_code == 302
    html = client.get(base).get_data(as_text=True)
    assert 'id="merit-tie"' in html and "Hệ thống không tự phân định" in html
    assert "Phạm Quốc Việt" in html and "Nguyễn Thị Ánh" in html and 'data-status="tie"' in html
    other = client.get(base, query_string={"post": ACCOUNTS}).get_data(as_text=True)
    assert "Vũ Minh Châu" in other and "Phạm Quốc Việt" not in other

    ties = base + "ties"
    assert "decision-TS01" in client.get(ties).get_data(as_text=True)
    refused = post(client, ties, {"post": LAW, "decision-TS01": "selected", "decision-TS02": "selected",
                                  "reason": "Hội đồng chọn cả hai."}, page=ties)
    assert refused.status_code == 422 and "2 selected for 1 place(s)" in refused.get_data(as_text=True)
    reason = "Biên bản họp Hội đồng số 12: TS01 có kinh nghiệm phù hợp hơn."
    done = post(client, ties, {"post": LAW, "decision-TS01": "selected", "decision-TS02": "not_selected",
                               "reason": reason}, page=ties)
    assert done.status_code == 302
    html = client.get(base).get_data(as_text=True)
    assert reason in html and 'id="merit-tie"' not in html and "Hội đồng quyết định" in html

    publish = base + "publish"
    assert "Công bố danh sách" in client.get(publish).get_data(as_text=True)
    assert post(client, publish, {}, page=publish).status_code == 422  # the confirmation box
    assert post(client, publish, {"confirm": "y"}, page=publish).status_code == 302
    html = client.get(base).get_data(as_text=True)
    assert "Đã công bố" in html and 'id="merit-actions"' in html and "Xây dựng lại" not in html

    for fmt, kind in (("csv", "text/csv"), ("xlsx", "spreadsheetml"), ("pdf", "application/pdf")):
        response = client.get(f"{base}export/{fmt}")
        assert response.status_code == 200 and kind in response.headers["Content-Type"]
        assert "attachment" in response.headers["Content-Disposition"]
    one = client.get(f"{base}export/csv", query_string={"post": ACCOUNTS}).get_data()
    assert "Vũ Minh Châu".encode() in one and "Phạm Quốc Việt".encode() not in one
    assert client.get(f"{base}export/docx").status_code == 404

    report = client.get(f"{base}report/{FAILING}").get_data(as_text=True)
    assert "Phạm Quốc Việt" in report and 'id="report-answers"' in report and "Trúng tuyển" in report
    assert 'data-outcome="right"' in report and "*" in report  # the corrected question counts as right
    pdf = client.get(f"{base}report/{FAILING}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"{base}report/TS99").status_code == 404

    ranking = client.get(base + "ranking").get_data(as_text=True)
    assert "không thay đổi được nữa" in ranking
    assert post(client, base + "build", page=base).status_code == 302  # refused, with the reason
    assert "already published and frozen" in client.get(base).get_data(as_text=True)


def test_the_key_correction_preview_page_shows_rank_changes(app, client, login_as):
    setup_round(app, regrade=False, build=True, code="R1-PRE")
    login_as("board")
    html = client.get("/board/merit/R1-PRE/corrections").get_data(as_text=True)
    table = html.split('id="merit-changes"', 1)[1]
    assert re.search(rf'data-what="rank"><td>{LAW}</td><td class="mono">{FAILING}</td>', table)
    assert re.search(r'data-what="status"><td>[^<]+</td><td class="mono">TS01</td>', table)
    assert "Bằng điểm (chờ Hội đồng quyết định)" in table
    scores = html.split('id="score-changes"', 1)[1].split("</table>")[0]
    assert FAILING in scores and "Không đạt" in scores
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(MeritList)) == 1  # the draft, untouched


def test_the_ranking_page_checks_the_toml_with_keys(app, client, login_as):
    setup_round(app, regrade=False, code="R1-RUL")
    login_as("board")
    url = "/board/merit/R1-RUL/ranking"
    page = unescape(client.get(url).get_data(as_text=True))
    assert 'preset = "civil_service"' in page and "Kế toán viên" in page
    bad = post(client, url, {"text": '[ranking]\npreset = "civil_service"\n[ranking.quota]\n"Kế toán viên" = "hai"\n'},
               page=url)
    assert bad.status_code == 422 and 'ranking.quota."Kế toán viên"' in unescape(bad.get_data(as_text=True))
    broken = post(client, url, {"text": "[ranking\n"}, page=url)
    assert broken.status_code == 422 and "not valid TOML" in broken.get_data(as_text=True)
    good = post(client, url, {"text": f'preset = "civil_service"\nmin_score = 60\n[quota]\n"{LAW}" = 3\n'
                                      f'"{ACCOUNTS}" = 2\n'}, page=url)
    assert good.status_code == 302
    with app.app_context():
        exam = get_session().scalar(select(Exam).where(Exam.code == "R1-RUL"))
        assert exam.ranking["quota"] == {LAW: 3, ACCOUNTS: 2} and exam.ranking["min_score"] == 60


def test_outside_scores_upload_dry_run_then_confirm(app, client, login_as):
    setup_round(app, regrade=False, code="R1-UP")
    login_as("board")
    url = "/board/merit/R1-UP/scores"
    bad = post(client, url, {"file": (io.BytesIO(round2_csv({"TS01": "101", "TS99": "50"})), "vong2.csv"),
                             "component": "round2"}, page=url, content_type="multipart/form-data")
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert 'id="scores-errors"' in text and "between 0 and 100" in text and "TS99 is not a candidate" in text
    checked = post(client, url, {"file": (io.BytesIO(round2_csv({"TS01": "81,5", "TS02": "vắng"})), "vong2.csv"),
                                 "component": "round2"}, page=url, content_type="multipart/form-data")
    assert checked.status_code == 200
    html = checked.get_data(as_text=True)
    assert "Chưa có gì được ghi" in html
    token = re.search(r'name="token" type="hidden" value="([0-9a-f]{32})"', html).group(1)
    digest = re.search(r'name="sha256" type="hidden" value="([0-9a-f]{64})"', html).group(1)
    with app.app_context():
        db = get_session()
        assert db.scalar(select(ExternalScore.score).join(Candidate).where(Candidate.registration_no == "TS01",
                                                                          Candidate.exam.has(code="R1-UP"))) == 80
    confirmed = client.post("/board/merit/R1-UP/scores/confirm",
                            data={"csrf_token": csrf_from(html), "token": token, "sha256": digest})
    assert confirmed.status_code == 302
    with app.app_context():
        db = get_session()
        rows = dict(db.execute(select(Candidate.registration_no, ExternalScore.score).join(ExternalScore)
                               .where(Candidate.exam.has(code="R1-UP"))).all())
        assert rows["TS01"] == 81.5 and rows["TS02"] is None
    again = client.post("/board/merit/R1-UP/scores/confirm",
                        data={"csrf_token": csrf_from(html), "token": token, "sha256": digest})
    assert again.status_code == 302  # the staged file is gone: nothing imported twice
    assert client.get("/board/merit/scores-template.csv").status_code == 200


def test_the_auditor_reads_the_list_and_changes_nothing(app, client, login_as):
    setup_round(app, build=True, code="R1-AUD")
    login_as("auditor")
    base = "/board/merit/R1-AUD/"
    html = client.get(base).get_data(as_text=True)
    assert "Phạm Quốc Việt" in html and 'id="merit-actions"' not in html
    assert client.get(base + "export/pdf").status_code == 200
    assert client.get(f"{base}report/{FAILING}").status_code == 200
    token = csrf_from(client.get("/").get_data(as_text=True))
    for url in ("build", "publish", "ties", "ranking", "scores"):
        assert client.post(base + url, data={"csrf_token": token}).status_code == 403, url
    assert client.get(base + "corrections").status_code == 403


@pytest.mark.parametrize("published", (False, True))
def test_the_candidate_gets_the_response_sheet_only_after_publication(app, client, published):
    ids = setup_round(app, build=True, publish=published, code=f"R1-API{int(published)}")
    with app.app_context():
        db = get_session()
        token = candidate_token(db, db.get(Candidate, ids[FAILING]))
        db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    merit = client.get("/api/v1/attempt/result", headers=headers).get_json()["merit"]
    sheet = client.get("/api/v1/attempt/response-sheet", headers=headers)
    pdf = client.get("/api/v1/attempt/response-sheet.pdf", headers=headers)
    if not published:
        assert merit == {"published": False}
        assert sheet.status_code == 403 and sheet.get_json()["error"]["code"] == "not_published"
        assert pdf.status_code == 403 and pdf.get_json()["error"]["code"] == "not_published"
        return
    assert merit["published"] and (merit["post"], merit["rank"], merit["status"]) == (LAW, 1, "selected")
    assert len(merit["list_hash"]) == 64
    body = sheet.get_json()
    assert body["candidate"]["full_name"] == "Phạm Quốc Việt" and body["merit"]["rank"] == 1
    assert len(body["answers"]) == 120 and {"number", "chosen", "key", "outcome"} <= set(body["answers"][0])
    corrected = [a for a in body["answers"] if a["corrected"]]
    assert len(corrected) == 1 and corrected[0]["outcome"] == "right" and corrected[0]["chosen"] == corrected[0]["key"]
    assert [s["correct"] for s in body["sections"]] == [60, 30, 15]
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Cache-Control"] == "no-store"
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "PHIẾU BÀI LÀM VÀ KẾT QUẢ THI" in text and "Phạm Quốc Việt" in text and "Trúng tuyển" in text
    assert merit["list_hash"] in text.replace("\n", "")
    assert client.get("/api/v1/attempt/response-sheet").status_code == 401


def test_the_result_page_offers_the_response_sheet(client):
    html = client.get("/thi/ket-qua").get_data(as_text=True)
    assert 'id="er-sheet"' in html and 'id="er-merit"' in html


def test_the_demo_holds_a_finished_exam_with_a_draft_list_and_a_tie(app, runner, client, login_as):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "finished exam: R1-2025 sat by" in result.output and "1 tie(s)" in result.output
    with app.app_context():
        db = get_session()
        exam = db.scalar(select(Exam).where(Exam.code == "R1-2025"))
        record = merit_lists.draft_list(db, exam)
        lists = merit_lists.lists_of(record)
        assert [(post, ml.quota) for post, ml in lists.items()] == [("Chuyên viên pháp chế", 5),
                                                                   ("Chuyên viên công nghệ thông tin", 3)]
        ties = lists["Chuyên viên pháp chế"].ties
        assert [(t.rank, t.places, len(t.registration_nos)) for t in ties] == [(5, 1, 2)]
        assert not lists["Chuyên viên công nghệ thông tin"].ties
        counts = [ml.counts() for ml in lists.values()]
        assert sum(c["ineligible"] for c in counts) > 20 and sum(c["not_selected"] for c in counts) > 100
        assert db.scalar(select(func.count()).select_from(TieDecision)) == 0
        assert merit_lists.published_list(db, exam) is None
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0 and "already has its merit list" in again.output
    login_as("board")
    html = client.get("/board/merit/R1-2025/").get_data(as_text=True)
    assert 'id="merit-tie"' in html
    preview = client.get("/board/merit/R1-2025/corrections", query_string={"proposed": "1"})
    assert preview.status_code == 200 and "Hủy câu: mọi thí sinh được điểm" in preview.get_data(as_text=True)


def test_a_long_list_is_shown_a_page_at_a_time_with_its_ties_above_every_page(app, runner, client, login_as,
                                                                               monkeypatch):
    monkeypatch.setattr(RowsPage, "SIZE", 10)
    assert runner.invoke(args=["demo"]).exit_code == 0
    with app.app_context():
        db = get_session()
        record = merit_lists.draft_list(db, db.scalar(select(Exam).where(Exam.code == "R1-2025")))
        listed = [row.registration_no for row in next(iter(merit_lists.lists_of(record).values())).rows]
    assert len(listed) > 25
    login_as("board")
    base = "/board/merit/R1-2025/"

    def shown(page=None):
        html = client.get(base, query_string={"page": page} if page else {}).get_data(as_text=True)
        return re.findall(r'<td class="mono text-nowrap"><a href="[^"]*/report/([^"]+)"', html), html

    first, html = shown()
    assert first == listed[:10] and 'id="merit-pages"' in html and 'id="merit-page-previous"' not in html
    assert 'id="merit-tie"' in html and f"Hàng 1–10 trong {len(listed)}" in html
    second, html = shown(2)
    assert second == listed[10:20] and 'id="merit-tie"' in html and 'id="merit-page-previous"' in html
    last_page = -(-len(listed) // 10)
    last, html = shown(10 ** 6)  # past the end: the last page
    assert last == listed[(last_page - 1) * 10:] and 'id="merit-page-next"' not in html
    assert shown(-3)[0] == first
