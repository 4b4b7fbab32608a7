"""A candidate sits an exam in a real browser: sign in with the sitting's access code, read the
instructions, answer by mouse and keyboard, flag a question, lose the network and get it back,
reload the page, close a section, review, submit and print the confirmation slip; then log out
and find nothing behind the Back button. A second test runs the clock: warnings, a wrong
client clock, and a section that closes on time while the page is open.

Screenshots at 1366×768 go to test-artifacts/exam-room-*.png.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from exam.core.db import utcnow
from exam.room.models import Attempt, Response
from exam.setup.models import Candidate, ExamSection, Paper, PaperItem
from exam.setup.papers import generate_papers
from exam.setup.sittings import current_access_code
from question_bank.models import QuestionVersion
from tests.e2e.conftest import screenshot
from tests.factories import make_candidates, make_exam, make_sitting

pytestmark = pytest.mark.e2e

SECTIONS = (
    ("general", "Kiến thức chung", 10, [("Kiến thức chung", "easy", 4), ("Kiến thức chung", "medium", 4)]),
    ("language", "Ngoại ngữ", 8, [("Tiếng Anh", "easy", 3)]),
)
SAVED_WAIT_MS = 25_000  # a retry backs off up to 15 s


@pytest.fixture
def sitting_data(app, db):
    """A published two-section exam, a sitting open now, two candidates with their papers."""
    now = utcnow()
    exam = make_exam(db, sections=SECTIONS, now=now)
    sitting = make_sitting(db, exam, starts_at=now - timedelta(minutes=2))
    candidates = make_candidates(db, exam, 2, sitting=sitting)
    generate_papers(db, exam, actor="test", now=now)
    db.commit()
    return exam, sitting, candidates


def fresh(app):
    return app.extensions["exam_db"].sessionmaker()


def sign_in_candidate(page, base_url, candidate, sitting):
    page.goto(f"{base_url}/thi/")
    expect(page.locator("h1")).to_have_text("Đăng nhập phòng thi")
    page.fill("#registration_no", candidate.registration_no)
    page.fill("#date_of_birth", candidate.date_of_birth.strftime("%d/%m/%Y"))
    page.fill("#access_code", current_access_code(sitting, utcnow()))
    page.get_by_role("button", name="Vào phòng thi").click()


def on_screen(page) -> tuple[str, list[str]]:
    """The question on screen (its id from the address) and the option ids chosen."""
    expect(page.locator("#er-question")).to_be_visible()
    question = page.evaluate("decodeURIComponent(location.hash.replace(/^#q=/, ''))")
    chosen = page.locator("#er-option-list input:checked").evaluate_all("inputs => inputs.map(i => i.value)")
    return question, chosen


def pending_saves(page) -> dict:
    return page.evaluate("""() => {
        const key = Object.keys(localStorage).find(k => k.startsWith('examRoom.pending.'));
        return key ? JSON.parse(localStorage.getItem(key)) : {};
    }""")


def stored_responses(app, candidate_id) -> dict[str, tuple[list, bool]]:
    with fresh(app) as db:
        attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate_id))
        rows = db.execute(select(PaperItem.public_id, Response.choices, Response.flagged)
                          .join(PaperItem, PaperItem.id == Response.item_id)
                          .where(Response.attempt_id == attempt.id))
        return {row.public_id: (sorted(row.choices), row.flagged) for row in rows}


def correct_per_section(app, candidate_id, answers: dict[str, list[str]]) -> dict[int, int]:
    """From the key on the server: how many of these answers are right, per section position."""

    counts: dict[int, int] = {}
    with fresh(app) as db:
        rows = db.execute(select(PaperItem.public_id, PaperItem.option_ids, PaperItem.option_order,
                                 QuestionVersion.options, ExamSection.position)
                          .join(Paper, Paper.id == PaperItem.paper_id)
                          .join(QuestionVersion, QuestionVersion.id == PaperItem.question_version_id)
                          .join(ExamSection, ExamSection.id == PaperItem.section_id)
                          .where(Paper.candidate_id == candidate_id))
        for row in rows:
            key = sorted(option_id for option_id, original in zip(row.option_ids, row.option_order, strict=True)
                         if row.options[original]["correct"])
            counts.setdefault(row.position, 0)
            if answers.get(row.public_id) == key:
                counts[row.position] += 1
    return counts


def test_candidate_sits_the_exam_end_to_end(app, live_server, page, sitting_data):
    exam, sitting, (candidate, _other) = sitting_data
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    save = page.locator("#er-save")
    number = page.locator("#er-q-number")
    answers: dict[str, list[str]] = {}

    def record():
        question, chosen = on_screen(page)
        answers[question] = sorted(chosen)
        return question

    # Sign-in: a wrong access code is refused in Vietnamese, the right one admits.
    page.goto(f"{live_server}/thi/")
    screenshot(page, "exam-room-sign-in")
    page.fill("#registration_no", candidate.registration_no)
    page.fill("#date_of_birth", candidate.date_of_birth.strftime("%d/%m/%Y"))
    accepted = {current_access_code(sitting, utcnow() + timedelta(seconds=s)) for s in (-240, -120, 0, 120)}
    page.fill("#access_code", next(code for code in ("000000", "111111", "222222") if code not in accepted))
    page.get_by_role("button", name="Vào phòng thi").click()
    expect(page.locator("#er-signin-error")).to_contain_text("Mã truy cập không đúng")
    page.fill("#access_code", current_access_code(sitting, utcnow()))
    page.get_by_role("button", name="Vào phòng thi").click()

    # Instructions.
    page.wait_for_url("**/thi/huong-dan")
    expect(page.locator("#er-exam-title")).to_have_text(exam.title)
    expect(page.locator("#er-fact-name")).to_have_text(candidate.full_name)
    expect(page.locator("#er-sections tbody tr")).to_have_count(2)
    screenshot(page, "exam-room-instructions")
    page.get_by_role("button", name="Bắt đầu làm bài").click()

    # The exam: question 1 of 8 in section 1, the candidate and the clock in the header.
    page.wait_for_url("**/thi/bai-thi*")
    expect(number).to_have_text("Câu 1/8")
    expect(page.locator("#er-section-title")).to_have_text("Phần 1: Kiến thức chung")
    expect(page.locator("#er-who-name")).to_have_text(candidate.full_name)
    expect(page.locator("#er-who-number")).to_have_text(candidate.registration_no)
    expect(page.locator("#er-timer-value")).to_have_text(re.compile(r"^(10:00|09:5\d)$"))
    expect(page.locator("#er-navigator .er-cell")).to_have_count(8)
    font_size = page.locator("#er-q-text").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert font_size >= 18

    # By mouse: option B of question 1.
    page.locator(".er-option").nth(1).click()
    expect(page.locator(".er-option").nth(1)).to_have_class(re.compile("is-chosen"))
    record()
    expect(save).to_have_attribute("data-state", "saved")
    expect(save).to_have_text("Đã lưu")
    screenshot(page, "exam-room-question")

    # By keyboard: → then 1 (option A); → then C, and F flags it.
    page.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 2/8")
    page.keyboard.press("1")
    expect(page.locator(".er-option").first).to_have_class(re.compile("is-chosen"))
    record()
    page.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 3/8")
    page.keyboard.press("c")
    expect(page.locator(".er-option").nth(2)).to_have_class(re.compile("is-chosen"))
    flagged_question = record()
    page.keyboard.press("f")
    expect(page.locator("#er-flag")).to_have_attribute("aria-pressed", "true")
    # Back and forth with the buttons, then question 4 by mouse.
    page.get_by_role("button", name="Câu trước").click()
    expect(number).to_have_text("Câu 2/8")
    page.get_by_role("button", name="Câu sau").click()
    page.get_by_role("button", name="Câu sau").click()
    expect(number).to_have_text("Câu 4/8")
    page.locator(".er-option").nth(3).click()
    record()
    expect(save).to_have_attribute("data-state", "saved")
    expect(page.locator("#er-navigator .er-cell.is-answered")).to_have_count(4)
    expect(page.locator("#er-navigator .er-cell.is-flagged")).to_have_count(1)

    # The network drops: two more answers are kept on the machine and the page says so.
    page.context.set_offline(True)
    page.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 5/8")
    page.locator(".er-option").nth(2).click()
    record()
    page.keyboard.press("ArrowRight")
    expect(number).to_have_text("Câu 6/8")
    page.keyboard.press("2")
    record()
    expect(save).to_have_attribute("data-state", "offline")
    expect(save).to_contain_text("Mất kết nối — câu trả lời được giữ lại và sẽ gửi khi có mạng")
    expect(page.locator("#er-q-saved")).to_contain_text("Chưa gửi được")
    assert len(pending_saves(page)) == 2
    screenshot(page, "exam-room-offline")

    # Back online: the queue drains in order and the server holds every answer.
    page.context.set_offline(False)
    expect(save).to_have_attribute("data-state", "saved", timeout=SAVED_WAIT_MS)
    expect(save).to_have_text("Đã lưu")
    assert pending_saves(page) == {}
    stored = stored_responses(app, candidate.id)
    assert {q: choices for q, (choices, _flag) in stored.items()} == answers
    assert [q for q, (_choices, flag) in stored.items() if flag] == [flagged_question]

    # A reload resumes: same question, every answer and the flag in place.
    page.reload()
    expect(number).to_have_text("Câu 6/8")
    expect(page.locator("#er-navigator .er-cell.is-answered")).to_have_count(6)
    expect(page.locator("#er-navigator .er-cell.is-flagged")).to_have_count(1)
    for question, chosen in answers.items():
        page.locator(f'#er-navigator .er-cell[data-question="{question}"]').click()
        assert on_screen(page) == (question, chosen)

    # Close section 1 early: confirmation, then section 2 opens.
    page.get_by_role("button", name="Kết thúc phần thi này").click()
    dialog = page.locator("#er-confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Còn 2 câu chưa trả lời.")
    screenshot(page, "exam-room-end-section")
    dialog.get_by_role("button", name="Kết thúc phần thi").click()
    expect(page.locator("#er-section-title")).to_have_text("Phần 2: Ngoại ngữ")
    expect(number).to_have_text("Câu 1/3")
    expect(page.locator("#er-end-section")).to_be_hidden()  # the last section
    page.keyboard.press("a")
    record()
    expect(save).to_have_attribute("data-state", "saved")

    # Review, then submit with confirmation.
    page.get_by_role("link", name="Xem lại bài làm").click()
    page.wait_for_url("**/thi/xem-lai")
    expect(page.locator("#er-review-summary")).to_have_text("Đã trả lời 7/11 câu · 1 câu đánh dấu xem lại")
    expect(page.locator(".er-review-item.is-flagged")).to_have_count(1)
    screenshot(page, "exam-room-review")
    page.locator("#er-submit").click()
    confirm = page.locator("#er-confirm")
    expect(confirm).to_contain_text("Bạn chắc chắn muốn nộp bài? Sau khi nộp không thể sửa.")
    confirm.locator("#er-confirm-ok").click()

    # The result and the confirmation slip.
    page.wait_for_url("**/thi/ket-qua")
    expect(page.locator("#er-slip")).to_be_visible()
    expect(page.locator("#er-slip-name")).to_have_text(candidate.full_name)
    expect(page.locator("#er-slip-number")).to_have_text(candidate.registration_no)
    expect(page.locator("#er-slip-exam-title")).to_have_text(exam.title)
    expect(page.locator("#er-slip-submitted")).not_to_be_empty()
    rows = page.locator("#er-scores tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("th")).to_have_text("Kiến thức chung")
    expect(rows.nth(1).locator("th")).to_have_text("Ngoại ngữ")
    right = correct_per_section(app, candidate.id, answers)
    expect(rows.first.locator("td").first).to_have_text(f"{right[1]}/8")
    expect(rows.nth(1).locator("td").first).to_have_text(f"{right[2]}/3")
    expect(page.locator("#er-overall .er-verdict")).to_have_text(re.compile("^(Đạt|Không đạt)$"))
    assert pending_saves(page) == {}
    screenshot(page, "exam-room-result")
    page.emulate_media(media="print")
    screenshot(page, "exam-room-slip-print", full_page=True)
    expect(page.get_by_role("button", name="In phiếu xác nhận")).to_be_hidden()
    page.emulate_media(media="screen")
    with fresh(app) as db:
        attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
        assert attempt.status == "submitted" and attempt.submitted_by == "candidate"

    # Log out: nothing readable behind the Back button.
    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_url(f"{live_server}/thi/")
    expect(page.locator("#er-signin")).to_be_visible()
    page.wait_for_load_state()
    assert page.evaluate("sessionStorage.length") == 0
    page.go_back()
    page.wait_for_load_state()
    page.wait_for_url(f"{live_server}/thi/")
    expect(page.locator("h1")).to_have_text("Đăng nhập phòng thi")
    assert candidate.full_name not in page.content()

    assert all(url.startswith(live_server) for url in requests), [u for u in requests if not u.startswith(live_server)]
    assert not problems, problems  # no script error, nothing the CSP refused


def test_the_clock_is_the_servers_and_a_section_closes_on_time(app, live_server, page, sitting_data):
    exam, sitting, (_first, candidate) = sitting_data
    # This machine's clock is two hours fast: the page must still count from the server's time.
    page.add_init_script("""(() => {
        const realNow = Date.now.bind(Date);
        Date.now = () => realNow() + 2 * 3600 * 1000;
    })();""")
    sign_in_candidate(page, live_server, candidate, sitting)
    page.wait_for_url("**/thi/huong-dan")
    page.get_by_role("button", name="Bắt đầu làm bài").click()
    page.wait_for_url("**/thi/bai-thi*")
    timer = page.locator("#er-timer")
    expect(page.locator("#er-timer-value")).to_have_text(re.compile(r"^(10:00|09:5\d)$"))
    expect(timer).to_have_attribute("data-level", "normal")

    def section_ends_in(seconds: int, *, whole_attempt: bool = False):
        """Move the clock on: as if the candidate had been sitting here for a while."""
        with fresh(app) as db:
            attempt = db.scalar(select(Attempt).join(Candidate).where(Candidate.id == candidate.id))
            attempt.section_deadline = utcnow() + timedelta(seconds=seconds)
            if whole_attempt:
                attempt.deadline = attempt.section_deadline
            db.commit()
        page.reload()

    section_ends_in(4 * 60 + 50)  # under five minutes: the warning
    expect(timer).to_have_attribute("data-level", "warn")
    expect(page.locator("#er-timer-value")).to_have_text(re.compile(r"^04:[45]\d$"))
    screenshot(page, "exam-room-timer-warning")

    page.keyboard.press("b")  # an answer in section 1 before it closes
    expect(page.locator("#er-save")).to_have_attribute("data-state", "saved")
    section_ends_in(6)  # the last minute: red, then the section closes while the page is open
    expect(timer).to_have_attribute("data-level", "danger")
    screenshot(page, "exam-room-timer-last-minute")
    expect(page.locator("#er-section-title")).to_have_text("Phần 2: Ngoại ngữ", timeout=30_000)
    expect(page.locator("#er-q-number")).to_have_text("Câu 1/3")
    expect(page.locator("#er-notice")).to_be_hidden()
    expect(page.locator("#er-timer-value")).to_have_text(re.compile(r"^(08:00|07:5\d)$"))
    expect(timer).to_have_attribute("data-level", "normal")
    closed = page.locator(".er-nav-section.is-closed")
    expect(closed).to_contain_text("Đã kết thúc · 1/8 câu đã trả lời")
    screenshot(page, "exam-room-next-section")

    # The last section's time runs out: the server submits with what was saved; the page follows.
    app.config["SAVE_GRACE_SECONDS"] = 1
    page.keyboard.press("a")
    expect(page.locator("#er-save")).to_have_attribute("data-state", "saved")
    section_ends_in(3, whole_attempt=True)
    expect(page.locator("#er-notice")).to_contain_text("Hết giờ làm bài", timeout=10_000)
    screenshot(page, "exam-room-time-over")
    page.wait_for_url("**/thi/ket-qua", timeout=30_000)
    expect(page.locator("#er-scores tbody tr")).to_have_count(2)
    with fresh(app) as db:
        attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
        assert attempt.status == "submitted" and attempt.submitted_by == "deadline"
        assert len(stored_responses(app, candidate.id)) == 2
