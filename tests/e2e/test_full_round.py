"""Round 1 of a recruitment, end to end in the browser, as issue 3 asks: the board imports the demo
bank, creates the exam from examples/round1.toml (60/30/30 questions in 60/30/30 minutes), publishes
it, creates a sitting starting now, imports a roster of three candidates (dry run, then confirm),
seats them and generates their papers; the access code is read off the sitting page as a proctor
would show it; then, in a second browser context (the lab machine), a candidate signs in with
registration number, date of birth and that code, answers by mouse and keyboard, loses the network
and gets it back, reloads, closes the sections, submits from the review page and sees the result
with each section's score and verdict.

Screenshots at 1366×768 go to test-artifacts/round1-*.png.
"""
from __future__ import annotations

import re
import time
import unicodedata
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from exam.core.db import utcnow
from exam.room.models import Attempt
from exam.setup.models import Candidate, ExamSection, Paper, PaperItem, Sitting
from exam.setup.sittings import ACCESS_CODE_SECONDS, LOCAL_TZ
from proctor import room
from question_bank.models import QuestionVersion
from tests.e2e.conftest import ARTIFACTS, TIMEOUT_MS, VIEWPORT, screenshot, sign_in
from tests.e2e.test_exam_room import correct_per_section, fresh, on_screen, pending_saves, stored_responses
from tests.factories import roster_csv

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO_BANK = ROOT / "question_bank" / "demo" / "demo_bank.json"
ROUND1 = ROOT / "examples" / "round1.toml"
EXAM_CODE = "R1-2026"
SITTING_CODE = "CA1-R1"
# (title on the page, questions) per section of examples/round1.toml
SECTIONS = (("Kiến thức chung", 60), ("Ngoại ngữ (Tiếng Anh)", 30), ("Tin học", 30))
ROSTER_HEADER = ("STT", "Số báo danh", "Họ và tên", "Ngày sinh", "Số CCCD", "Vị trí dự tuyển", "Đối tượng ưu tiên")
# One name typed with combining accents (NFD), as some keyboards leave it: stored and shown as NFC.
ROSTER = (
    ("1", "R1-0001", "Nguyễn Thị Hương", "14/02/1996", "001196012345", "Chuyên viên pháp chế", ""),
    ("2", "R1-0002", unicodedata.normalize("NFD", "Trần Đức Vượng"), "03/11/1993", "038093004567",
     "Chuyên viên tổ chức cán bộ", "Con thương binh"),
    ("3", "R1-0003", "Lê Thị Ánh Tuyết", "29/07/1999", "079199008901", "Chuyên viên pháp chế", "Dân tộc thiểu số"),
)
SAVED_WAIT_MS = 25_000  # after the network comes back, a retry backs off up to 15 s


@pytest.fixture
def lab(browser, request):
    """The lab machine: a browser context of its own (no cookie or storage shared with the board's),
    a 1366×768 screen; on failure its page is saved as test-artifacts/FAILED-<test>-lab.png."""
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    failed_shot = f"FAILED-{request.node.name}-lab"
    if getattr(request.node, "e2e_failed", False):
        screenshot(page, failed_shot, full_page=True)
    else:
        (ARTIFACTS / f"{failed_shot}.png").unlink(missing_ok=True)
    context.close()


def flashed(page, category: str = "success"):
    return page.locator(f".alert-{category}")


def open_sitting(app, sitting_code: str, proctor: str) -> None:
    """The proctor opens the sitting: candidates may start only after that.

    The proctor console has no page yet (proctor/room.py holds the rules, no blueprint serves them),
    so the test calls the console's rule itself, as the page will: ``open_sitting`` with the proctor
    as actor and a reason, committed once. Swap this for the console's button when it exists."""
    with fresh(app) as db:
        sitting = db.scalar(select(Sitting).where(Sitting.code == sitting_code))
        room.open_sitting(db, sitting, actor=proctor, reason="Đã kiểm tra phòng máy, bắt đầu ca thi",
                          now=utcnow())
        db.commit()


def before_code_rotates(min_seconds: float = 5) -> None:
    """The sitting page reloads itself when the access code rotates (every two minutes). Before a few
    steps on that page, wait until the next rotation is at least ``min_seconds`` away, so a reload
    never lands between a click and its flashed message (a few seconds, about one run in twenty-five)."""
    now = utcnow()
    left = ACCESS_CODE_SECONDS - (now.timestamp() % ACCESS_CODE_SECONDS)
    if left < min_seconds:
        time.sleep(left + 0.2)


def section_key(app, candidate_id: int, position: int) -> dict[str, list[str]]:
    """The right option ids of each question of one section of the candidate's paper (from the
    server's key: the test plays a candidate who knows the answers)."""

    with fresh(app) as db:
        rows = db.execute(select(PaperItem.public_id, PaperItem.option_ids, PaperItem.option_order,
                                 QuestionVersion.options)
                          .join(Paper, Paper.id == PaperItem.paper_id)
                          .join(QuestionVersion, QuestionVersion.id == PaperItem.question_version_id)
                          .join(ExamSection, ExamSection.id == PaperItem.section_id)
                          .where(Paper.candidate_id == candidate_id, ExamSection.position == position))
        return {row.public_id: [option_id for option_id, original in zip(row.option_ids, row.option_order, strict=True)
                                if row.options[original]["correct"]] for row in rows}


def test_round1_runs_end_to_end(app, live_server, page, lab, staff, tmp_path):
    board = page
    problems: list[str] = []
    for p in (board, lab):
        p.on("pageerror", lambda error: problems.append(str(error)))
        p.on("console", lambda message: problems.append(message.text)
             if "Content Security Policy" in message.text else None)

    # --- 1. The board member signs in with password and TOTP code.
    user = staff.create("board")
    sign_in(board, live_server, user)
    board.wait_for_url(f"{live_server}/")

    # --- 2. The demo bank: dry run, then confirm.
    board.get_by_role("link", name="Nhập câu hỏi", exact=True).click()
    board.wait_for_url(f"{live_server}/bank/import")
    board.set_input_files("input[type=file]", str(DEMO_BANK))
    board.get_by_role("button", name="Kiểm tra tệp (chưa ghi)").click()
    report = board.locator("#import-report")
    expect(report.locator(".alert-success")).to_contain_text("300 câu hỏi sẽ được thêm")
    report.get_by_role("button", name="Xác nhận nhập").click()
    board.wait_for_url(f"{live_server}/bank/")

    # --- 3. The exam from examples/round1.toml (uploaded), its blueprint fillable, published.
    board.get_by_role("link", name="Kỳ thi", exact=True).click()
    board.wait_for_url(f"{live_server}/board/exams/")
    board.get_by_role("link", name="Tạo kỳ thi", exact=True).click()
    board.wait_for_url(f"{live_server}/board/exams/new")
    toml = board.locator("#toml")
    toml.locator("input[type=file]").set_input_files(str(ROUND1))
    toml.get_by_role("button", name="Tạo kỳ thi từ TOML").click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}")
    expect(flashed(board)).to_contain_text(f"Đã tạo kỳ thi {EXAM_CODE} (bản nháp)")
    expect(board.locator("h1")).to_have_text("Thi tuyển công chức năm 2026 — Vòng 1")
    views = board.locator(".board-section-view")
    expect(views).to_have_count(3)
    for view, (title, questions) in zip(views.all(), SECTIONS, strict=True):
        expect(view.locator("h3")).to_contain_text(title)
        expect(view).to_contain_text(f"{questions} câu trong {questions} phút")
        expect(view).to_contain_text("đạt khi đúng từ 50% số câu")
    expect(board.locator(".board-section-view tbody tr")).to_have_count(12 + 9 + 12)
    expect(board.locator(".board-cell-short")).to_have_count(0)  # the bank fills every cell
    screenshot(board, "round1-exam-draft")

    board.get_by_role("link", name="Công bố kỳ thi…").click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}/publish")
    expect(board.locator("#shortfalls")).to_have_count(0)
    board.get_by_role("button", name="Công bố kỳ thi", exact=True).click()  # without ticking the box: refused
    expect(board.locator(".invalid-feedback")).to_have_text("Hãy đánh dấu xác nhận.")
    board.locator("#confirm").check()
    board.get_by_role("button", name="Công bố kỳ thi", exact=True).click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}")
    expect(flashed(board)).to_contain_text(f"Đã công bố kỳ thi {EXAM_CODE}")
    expect(board.locator("#exam-actions")).to_contain_text("Công bố lúc")

    # --- 4. A sitting starting now (Vietnam time, to the minute), the roster, seats, papers.
    board.get_by_role("link", name="Tạo ca thi").click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}/sittings/new")
    board.fill("#code", SITTING_CODE)
    board.fill("#room", "Phòng máy 2 — Nhà B")
    board.fill("#starts_at", utcnow().astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M"))
    board.fill("#seats", "30")
    before_code_rotates()
    board.get_by_role("button", name="Tạo ca thi").click()
    board.wait_for_url(f"{live_server}/board/sittings/{SITTING_CODE}")
    expect(flashed(board)).to_contain_text(f"Đã tạo ca thi {SITTING_CODE}")
    expect(board.locator("h1")).to_have_text(f"Ca thi {SITTING_CODE} · Phòng máy 2 — Nhà B")
    expect(board.locator("main .badge")).to_have_text("Đang diễn ra")

    roster_file = tmp_path / "danh-sach-thi-sinh.csv"
    roster_file.write_bytes(roster_csv(*ROSTER, header=ROSTER_HEADER))
    board.get_by_role("link", name=EXAM_CODE, exact=True).click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}")
    board.get_by_role("link", name="Nhập danh sách thí sinh").click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}/candidates/import")
    board.set_input_files("input[type=file]", str(roster_file))
    board.get_by_role("button", name="Kiểm tra tệp (chưa ghi)").click()
    roster_report = board.locator("#roster-report")
    expect(roster_report.locator(".alert-success")).to_have_text(
        "Tệp hợp lệ: 3 thí sinh sẽ được thêm. Chưa có gì được ghi.")
    expect(roster_report.locator("tbody tr")).to_have_count(2)  # by post
    with fresh(app) as db:
        assert db.scalar(select(Candidate.id)) is None  # the dry run wrote nothing
    screenshot(board, "round1-roster-dry-run")
    roster_report.get_by_role("button", name="Xác nhận nhập").click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}/candidates")
    expect(flashed(board)).to_contain_text("Đã nhập 3 thí sinh từ danh-sach-thi-sinh.csv")
    rows = board.locator("#candidates tbody tr")
    expect(rows).to_have_count(3)
    shown_names = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)]
    assert shown_names == [unicodedata.normalize("NFC", row[2]) for row in ROSTER]

    before_code_rotates()
    board.goto(f"{live_server}/board/sittings/{SITTING_CODE}")
    expect(board.locator("main")).to_contain_text("3 thí sinh của kỳ thi chưa xếp ca.")
    board.get_by_role("button", name="Xếp chỗ tự động (theo số báo danh)").click()
    expect(flashed(board)).to_have_text("Đã xếp chỗ cho 3 thí sinh.")
    expect(board.locator("main")).to_contain_text("3 thí sinh trong ca / 30 chỗ; 0 chưa có chỗ ngồi.")

    board.get_by_role("link", name=EXAM_CODE, exact=True).click()
    board.wait_for_url(f"{live_server}/board/exams/{EXAM_CODE}")
    board.get_by_role("button", name="Tạo đề thi cho thí sinh").click()
    expect(flashed(board)).to_contain_text("Đã tạo 3 đề")
    expect(board.locator("main")).to_contain_text("3 thí sinh, 3 đã có đề thi, 0 chưa xếp ca thi.")

    # --- 5. The access code, as the proctor shows it; the proctor opens the sitting.
    before_code_rotates()
    board.get_by_role("link", name=SITTING_CODE, exact=True).click()
    board.wait_for_url(f"{live_server}/board/sittings/{SITTING_CODE}")
    access_code = board.locator("#access-code").inner_text().strip()
    assert re.fullmatch(r"\d{6}", access_code), access_code
    screenshot(board, "round1-sitting-access-code")
    open_sitting(app, SITTING_CODE, staff.create("proctor").username)

    # --- 6. The lab machine: sign in, instructions, start.
    reg_no, name, dob = ROSTER[1][1], unicodedata.normalize("NFC", ROSTER[1][2]), ROSTER[1][3]
    with fresh(app) as db:
        candidate_id = db.scalar(select(Candidate.id).where(Candidate.registration_no == reg_no))
    lab.goto(f"{live_server}/thi/")
    expect(lab.locator("h1")).to_have_text("Đăng nhập phòng thi")
    lab.fill("#registration_no", reg_no)
    lab.fill("#date_of_birth", dob)
    lab.fill("#access_code", access_code)
    lab.get_by_role("button", name="Vào phòng thi").click()
    lab.wait_for_url("**/thi/huong-dan")
    expect(lab.locator("#er-exam-title")).to_have_text("Thi tuyển công chức năm 2026 — Vòng 1")
    expect(lab.locator("#er-fact-name")).to_have_text(name)
    expect(lab.locator("#er-fact-number")).to_have_text(reg_no)
    expect(lab.locator("#er-fact-room")).to_have_text("Phòng máy 2 — Nhà B · 2")  # seated by number
    sections_table = lab.locator("#er-sections tbody tr")
    expect(sections_table).to_have_count(3)
    for i, (title, questions) in enumerate(SECTIONS):
        expect(sections_table.nth(i)).to_contain_text(title)
        expect(sections_table.nth(i)).to_contain_text(str(questions))
    screenshot(lab, "round1-instructions")
    lab.get_by_role("button", name="Bắt đầu làm bài").click()
    lab.wait_for_url("**/thi/bai-thi*")

    number, save, options = lab.locator("#er-q-number"), lab.locator("#er-save"), lab.locator(".er-option")
    answers: dict[str, list[str]] = {}

    def record() -> str:
        question, chosen = on_screen(lab)
        answers[question] = sorted(chosen)
        return question

    expect(lab.locator("#er-section-title")).to_have_text("Phần 1: Kiến thức chung")
    expect(number).to_have_text("Câu 1/60")
    expect(lab.locator("#er-navigator .er-cell")).to_have_count(60)
    expect(lab.locator("#er-timer-value")).to_have_text(re.compile(r"^(60:00|59:\d\d)$"))

    # Mouse: option B of question 1; keyboard: → then 1, → then c.
    options.nth(1).click()
    expect(options.nth(1)).to_have_class(re.compile("is-chosen"))
    record()
    expect(save).to_have_attribute("data-state", "saved")
    lab.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 2/60")
    lab.keyboard.press("1")
    expect(options.first).to_have_class(re.compile("is-chosen"))
    record()
    lab.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 3/60")
    lab.keyboard.press("c")
    expect(options.nth(2)).to_have_class(re.compile("is-chosen"))
    record()
    expect(save).to_have_attribute("data-state", "saved")
    expect(lab.locator("#er-navigator .er-cell.is-answered")).to_have_count(3)
    screenshot(lab, "round1-question")

    # The network drops: two more answers wait on the machine, and the page says so.
    lab.context.set_offline(True)
    lab.get_by_role("button", name="Câu sau").click()
    expect(number).to_have_text("Câu 4/60")
    options.nth(3).click()
    record()
    lab.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 5/60")
    lab.keyboard.press("b")
    record()
    expect(save).to_have_attribute("data-state", "offline")
    expect(save).to_contain_text("Mất kết nối")
    assert len(pending_saves(lab)) == 2
    screenshot(lab, "round1-offline")

    # Back online: the queue drains and the server holds all five.
    lab.context.set_offline(False)
    expect(save).to_have_attribute("data-state", "saved", timeout=SAVED_WAIT_MS)
    assert pending_saves(lab) == {}
    assert {q: choices for q, (choices, _flag) in stored_responses(app, candidate_id).items()} == answers

    # A reload resumes on the same question with every answer in place.
    lab.reload()
    expect(number).to_have_text("Câu 5/60")
    expect(lab.locator("#er-navigator .er-cell.is-answered")).to_have_count(5)
    for question, chosen in answers.items():
        lab.locator(f'#er-navigator .er-cell[data-question="{question}"]').click()
        assert on_screen(lab) == (question, chosen)

    def close_section(position: int) -> None:
        title, questions = SECTIONS[position - 1]
        lab.get_by_role("button", name="Kết thúc phần thi này").click()
        dialog = lab.locator("#er-confirm")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Kết thúc phần thi").click()
        expect(lab.locator("#er-section-title")).to_have_text(f"Phần {position}: {title}")
        expect(number).to_have_text(f"Câu 1/{questions}")

    # Close section 1; one answer in section 2; close it.
    close_section(2)
    lab.keyboard.press("a")
    expect(options.first).to_have_class(re.compile("is-chosen"))
    record()
    expect(save).to_have_attribute("data-state", "saved")
    close_section(3)
    expect(lab.locator("#er-end-section")).to_be_hidden()  # the last section
    # Section 3 by keyboard, knowing the key: exactly half right, the pass mark.
    key = section_key(app, candidate_id, 3)
    for n in range(1, 16):
        expect(number).to_have_text(f"Câu {n}/30")
        question, _chosen = on_screen(lab)
        shown = lab.locator("#er-option-list input").evaluate_all("inputs => inputs.map(i => i.value)")
        for option_id in key[question]:
            lab.keyboard.press("abcdef"[shown.index(option_id)])
        expect(lab.locator("#er-option-list input:checked")).to_have_count(len(key[question]))
        record()
        lab.keyboard.press("ArrowRight")
    expect(save).to_have_attribute("data-state", "saved")

    # Review, submit, confirm.
    lab.get_by_role("link", name="Xem lại bài làm").click()
    lab.wait_for_url("**/thi/xem-lai")
    expect(lab.locator("#er-review-summary")).to_contain_text(f"Đã trả lời {len(answers)}/120 câu")
    lab.locator("#er-submit").click()
    confirm = lab.locator("#er-confirm")
    expect(confirm).to_contain_text("Bạn chắc chắn muốn nộp bài?")
    confirm.locator("#er-confirm-ok").click()

    # --- The result: each section's correct answers and verdict, as the key on the server says.
    lab.wait_for_url("**/thi/ket-qua")
    expect(lab.locator("#er-slip-name")).to_have_text(name)
    expect(lab.locator("#er-slip-number")).to_have_text(reg_no)
    expect(lab.locator("#er-slip-sitting")).to_contain_text(SITTING_CODE)
    expect(lab.locator("#er-slip-room")).to_have_text("Phòng máy 2 — Nhà B · 2")
    score_rows = lab.locator("#er-scores tbody tr")
    expect(score_rows).to_have_count(3)
    right = correct_per_section(app, candidate_id, answers)
    assert right[3] == 15  # Tin học passes at exactly 50%; the other two fail
    verdicts = []
    for position, (title, questions) in enumerate(SECTIONS, start=1):
        row = score_rows.nth(position - 1)
        expect(row.locator("th")).to_have_text(title)
        expect(row.locator("td").first).to_have_text(f"{right.get(position, 0)}/{questions}")
        verdicts.append(right.get(position, 0) >= questions * 0.5)  # the round's pass rule: 50% right
        expect(row.locator(".er-verdict")).to_have_text("Đạt" if verdicts[-1] else "Không đạt")
    expect(lab.locator("#er-overall .er-verdict")).to_have_text("Đạt" if all(verdicts) else "Không đạt")
    screenshot(lab, "round1-result")
    screenshot(lab, "round1-result-slip", full_page=True)
    with fresh(app) as db:
        attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate_id))
        assert attempt.status == "submitted" and attempt.submitted_by == "candidate"

    assert not problems, problems  # no script error, nothing the CSP refused, on either machine
