"""The results pages through the real client, CSRF included: who may read, who may change,
the two-person rule on the page, item analysis with its charts, and the CLI commands."""
from __future__ import annotations

from io import BytesIO

import pytest
from sqlalchemy import select

from exam.grading import corrections, runs
from exam.grading.models import GradingRun, KeyCorrection
from exam.setup.models import Exam, Paper
from question_bank.models import QuestionVersion
from tests.conftest import csrf_from, login
from tests.factories import make_ready_candidates
from tests.grading.helpers import T0, random_answers, right_answers, sit


@pytest.fixture
def graded_exam(db):
    candidates = make_ready_candidates(db, 8)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, right_answers(lambda i: 1 + i % 6))
    db.commit()
    return exam, candidates


def signed_in(app, staff, *roles):
    client = app.test_client()
    user = staff.create(*roles)
    login(client, user)
    return client, user


def post(client, page_url, url, data=None):
    token = csrf_from(client.get(page_url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **(data or {})})


def test_read_pages_for_board_and_auditor_only(app, staff, graded_exam):
    exam, _ = graded_exam
    for path in (f"/board/results/{exam.code}", f"/board/results/{exam.code}/items",
                 f"/board/results/{exam.code}/items.xlsx"):
        board, _ = signed_in(app, staff, "board")
        auditor, _ = signed_in(app, staff, "auditor")
        proctor, _ = signed_in(app, staff, "proctor")
        assert board.get(path).status_code == 200, path
        assert auditor.get(path).status_code == 200, path
        assert proctor.get(path).status_code == 403, path
        assert app.test_client().get(path).status_code == 302, path
    auditor, _ = signed_in(app, staff, "auditor")
    page = auditor.get(f"/board/results/{exam.code}").get_data(as_text=True)
    assert 'id="propose-form"' not in page and "/grade" not in page  # reading only
    assert auditor.get("/board/results/NO-SUCH-EXAM").status_code == 404


def test_board_grades_from_the_page_and_sees_the_run(app, db, staff, graded_exam):
    exam, _ = graded_exam
    board, user = signed_in(app, staff, "board")
    page_url = f"/board/results/{exam.code}"
    assert 'id="no-run"' in board.get(page_url).get_data(as_text=True)
    assert board.post(f"{page_url}/grade", data={}).status_code == 400  # no CSRF token
    response = post(board, page_url, f"{page_url}/grade")
    assert response.status_code == 302
    db.commit()
    run = db.scalar(select(GradingRun).where(GradingRun.exam_id == exam.id))
    assert run.by == user.username
    page = board.get(page_url).get_data(as_text=True)
    assert run.outputs_hash in page and run.key_hash in page and run.inputs_hash in page
    assert 'id="section-passes"' in page and "data:image/svg+xml;base64," in page
    auditor, _ = signed_in(app, staff, "auditor")
    assert post(auditor, page_url, f"{page_url}/grade").status_code == 403


def test_two_people_on_the_page(app, db, staff, graded_exam):
    exam, candidates = graded_exam
    page_url = f"/board/results/{exam.code}"
    first, first_user = signed_in(app, staff, "board")
    paper = db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id))
    question_id = db.get(QuestionVersion, paper.items[0].question_version_id).question_id

    refused = post(first, page_url, f"{page_url}/corrections", {"question": str(question_id), "action": "void_award",
                                                                "reason": "  "})
    assert refused.status_code == 422 and "Hãy ghi lý do." in refused.get_data(as_text=True)
    bad_key = post(first, page_url, f"{page_url}/corrections", {"question": str(question_id), "action": "rekey",
                                                                "correct": "Q", "reason": "sai đáp án"})
    assert bad_key.status_code == 422
    assert post(first, page_url, f"{page_url}/corrections", {"question": str(question_id), "action": "void_award",
                                                             "reason": "Hai phương án cùng đúng"}).status_code == 302
    db.commit()
    correction = db.scalar(select(KeyCorrection))
    assert (correction.proposed_by, correction.status) == (first_user.username, "proposed")

    page = first.get(page_url).get_data(as_text=True)
    assert f'/corrections/{correction.id}/approve' not in page  # no approve button for the proposer
    post(first, page_url, f"{page_url}/corrections/{correction.id}/approve")
    db.commit()
    db.expire_all()  # a fresh snapshot: the pages wrote in their own sessions
    assert db.get(KeyCorrection, correction.id).status == "proposed"  # refused on the server too

    preview = first.get(f"{page_url}/corrections/{correction.id}/preview")
    assert preview.status_code == 200 and 'id="changes"' in preview.get_data(as_text=True)

    second, second_user = signed_in(app, staff, "board")
    assert f'/corrections/{correction.id}/approve' in second.get(page_url).get_data(as_text=True)
    assert post(second, page_url, f"{page_url}/corrections/{correction.id}/approve").status_code == 302
    db.commit()
    db.expire_all()  # a fresh snapshot: the pages wrote in their own sessions
    approved = db.get(KeyCorrection, correction.id)
    assert (approved.status, approved.decided_by) == ("approved", second_user.username)
    assert 'id="regrade-needed"' in second.get(page_url).get_data(as_text=True)
    post(second, page_url, f"{page_url}/grade")
    assert 'id="regrade-needed"' not in second.get(page_url).get_data(as_text=True)


def test_rejecting_needs_a_reason(app, db, staff, graded_exam):
    exam, candidates = graded_exam
    version = db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id)).items[0].question_version_id
    correction = corrections.propose_correction(db, exam, version, "void_remove", None, "lý do", "someone", T0)
    db.commit()
    page_url = f"/board/results/{exam.code}"
    board, _ = signed_in(app, staff, "board")
    post(board, page_url, f"{page_url}/corrections/{correction.id}/reject", {"reason": ""})
    db.commit()
    db.expire_all()  # a fresh snapshot: the pages wrote in their own sessions
    assert db.get(KeyCorrection, correction.id).status == "proposed"
    post(board, page_url, f"{page_url}/corrections/{correction.id}/reject", {"reason": "Không đủ căn cứ"})
    db.commit()
    db.expire_all()  # a fresh snapshot: the pages wrote in their own sessions
    assert db.get(KeyCorrection, correction.id).status == "rejected"


def test_item_analysis_page_sorts_and_shows_charts(app, db, staff):
    candidates = make_ready_candidates(db, 10)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=13))
    db.commit()
    board, _ = signed_in(app, staff, "board")
    empty = board.get(f"/board/results/{exam.code}/items").get_data(as_text=True)
    assert 'id="no-items"' in empty
    runs.grade_exam(db, exam, actor="b", now=T0)
    db.commit()
    page = board.get(f"/board/results/{exam.code}/items?sort=p&dir=desc").get_data(as_text=True)
    assert 'id="items"' in page and 'id="test-stats"' in page and 'id="scatter"' in page
    assert page.count("data:image/svg+xml;base64,") == 2
    assert "<script" not in page.split("</nav>", 1)[1]  # no inline script (CSP script-src 'self')
    assert "?sort=p&amp;dir=asc" in page  # the sorted column's link flips the direction
    response = board.get(f"/board/results/{exam.code}/items.xlsx")
    from openpyxl import load_workbook
    assert load_workbook(BytesIO(response.data)).sheetnames == ["Câu hỏi", "Thống kê bài thi"]


# --- the CLI -------------------------------------------------------------------------------------------

def test_cli_grade_items_and_key_corrections(app, db, runner, staff, tmp_path):
    candidates = make_ready_candidates(db, 6)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=17))
    version = db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id)).items[0].question_version_id
    db.commit()
    first, second = staff.create("board"), staff.create("board")
    proctor = staff.create("proctor")

    missing = runner.invoke(args=["exam", "items", exam.code])
    assert missing.exit_code != 0 and "exam grade" in missing.output

    graded = runner.invoke(args=["exam", "grade", exam.code])
    assert graded.exit_code == 0, graded.output
    run = db.scalar(select(GradingRun))
    for digest in (run.key_hash, run.inputs_hash, run.outputs_hash):
        assert digest in graded.output
    assert "timings:" in graded.output and "graded 6 attempts" in graded.output

    out = tmp_path / "items.xlsx"
    items = runner.invoke(args=["exam", "items", exam.code, "--out", str(out), "--all"])
    assert items.exit_code == 0, items.output
    assert out.stat().st_size > 0 and "reliability" in items.output

    no_reason = runner.invoke(args=["exam", "key-correct", "propose", exam.code, "--version", str(version),
                                    "--action", "void_award", "--as", first.username])
    assert no_reason.exit_code != 0 and "--reason" in no_reason.output
    not_board = runner.invoke(args=["exam", "key-correct", "propose", exam.code, "--version", str(version),
                                    "--action", "void_award", "--reason", "x", "--as", proctor.username])
    assert not_board.exit_code != 0
    proposed = runner.invoke(args=["exam", "key-correct", "propose", exam.code, "--version", str(version),
                                   "--action", "void_award", "--reason", "Hai đáp án đúng", "--as", first.username])
    assert proposed.exit_code == 0, proposed.output
    db.commit()
    correction_id = db.scalar(select(KeyCorrection.id))
    same = runner.invoke(args=["exam", "key-correct", "approve", str(correction_id), "--as", first.username])
    assert same.exit_code != 0 and "proposer" in same.output
    ok = runner.invoke(args=["exam", "key-correct", "approve", str(correction_id), "--as", second.username])
    assert ok.exit_code == 0, ok.output
    listed = runner.invoke(args=["exam", "key-correct", "list", exam.code])
    assert f"{correction_id}\tapproved\tvoid_award" in listed.output
    regraded = runner.invoke(args=["exam", "grade", exam.code])
    assert regraded.exit_code == 0 and f"#{correction_id} void_award" in regraded.output
