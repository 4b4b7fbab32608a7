"""The proctor's console in a real browser, with a candidate driven in a second browser context: the
candidate signs in with the code read off the console and may not start before the proctor opens the
sitting; the console sees them answer; the proctor extends their time (the candidate's clock goes up),
pauses the room (the candidate's page says so and its clock stands still) and resumes it (the clock
runs on from the same time left).

Screenshots at 1366×768 go to test-artifacts/proctor-*.png and exam-room-paused.png.
"""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from exam.core.db import utcnow
from exam.room.models import Attempt
from exam.setup.papers import generate_papers
from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT, screenshot
from tests.factories import make_candidates, make_exam, make_sitting

pytestmark = pytest.mark.e2e

SECTIONS = (
    ("general", "Kiến thức chung", 10, [("Kiến thức chung", "easy", 4), ("Kiến thức chung", "medium", 4)]),
    ("language", "Ngoại ngữ", 8, [("Tiếng Anh", "easy", 3)]),
)
SEATS = 24
FOLLOW_MS = 10_000  # the console polls every 3 s; the candidate's page beats every second here


@pytest.fixture
def room_data(app, db):
    """A published two-section exam, a sitting that started two minutes ago but is not opened yet,
    24 seated candidates with their papers."""
    app.config["HEARTBEAT_SECONDS"] = 1  # the candidate's page hears of extensions and pauses at once
    now = utcnow()
    exam = make_exam(db, sections=SECTIONS, now=now)
    sitting = make_sitting(db, exam, starts_at=now - timedelta(minutes=2), opened=False, room="Phòng máy 3",
                           seats=SEATS)
    candidates = make_candidates(db, exam, SEATS, sitting=sitting)
    generate_papers(db, exam, actor="test", now=now)
    db.commit()
    return exam, sitting, candidates


def seconds_of(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    return sum(value * 60 ** i for i, value in enumerate(reversed(parts)))


def watch(page, problems: list) -> None:
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on("console", lambda message: problems.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)


def act(proctor, opener, reason: str, *, minutes: str | None = None) -> None:
    """Open an action's dialog, give the reason, submit; the console comes back (post/redirect/get)."""
    opener.click()
    dialog = proctor.locator("#pc-action-dialog")
    expect(dialog).to_be_visible()
    if minutes is not None:
        proctor.fill("#minutes", minutes)
    proctor.fill("#reason", reason)
    with proctor.expect_navigation():
        dialog.locator("#pc-action-submit").click()
    expect(proctor.locator(".alert-success")).to_be_visible()


def test_the_proctor_steers_the_room_and_the_candidates_clock_follows(app, live_server, browser, page, staff,
                                                                      room_data):
    exam, sitting, candidates = room_data
    candidate = candidates[0]
    problems: list[str] = []
    user = staff.create("proctor", enrolled=False, username="giamthi-phong3")
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    context.set_default_timeout(TIMEOUT_MS)
    proctor = context.new_page()
    watch(proctor, problems)
    watch(page, problems)
    try:
        # The proctor signs in and opens the room's console.
        proctor.goto(f"{live_server}/login")
        proctor.fill("#username", user.username)
        proctor.fill("#password", user.password)
        proctor.click("main button[type=submit]")
        proctor.wait_for_url(f"{live_server}/")
        proctor.goto(f"{live_server}/proctor/sittings/{sitting.code}")
        expect(proctor.locator("h1")).to_have_text(f"Ca thi {sitting.code} · Phòng máy 3")
        expect(proctor.locator(".pc-seat")).to_have_count(SEATS)
        expect(proctor.locator("#pc-phase")).to_have_text("Chờ bắt đầu")
        tile = proctor.locator("#pc-seat-1")
        expect(tile).to_have_attribute("data-state", "not_arrived")
        code = proctor.locator("#pc-code").inner_text()
        assert re.fullmatch(r"\d{6}", code)

        # The candidate signs in with the code on the console; they may read, not start.
        page.goto(f"{live_server}/thi/")
        page.fill("#registration_no", candidate.registration_no)
        page.fill("#date_of_birth", candidate.date_of_birth.strftime("%d/%m/%Y"))
        page.fill("#access_code", code)
        page.get_by_role("button", name="Vào phòng thi").click()
        page.wait_for_url("**/thi/huong-dan")
        expect(tile).to_have_attribute("data-state", "logged_in", timeout=FOLLOW_MS)
        page.get_by_role("button", name="Bắt đầu làm bài").click()
        expect(page.locator("#er-error")).to_contain_text("Giám thị chưa bắt đầu ca thi")

        # The proctor opens the sitting; now the candidate starts.
        act(proctor, proctor.locator("#pc-open"), "Đã phổ biến quy chế, bắt đầu ca thi")
        expect(proctor.locator(".alert-success")).to_contain_text("Đã bắt đầu ca thi")
        expect(proctor.locator("#pc-phase")).to_have_text("Đang thi")
        page.get_by_role("button", name="Bắt đầu làm bài").click()
        page.wait_for_url("**/thi/bai-thi*")
        timer = page.locator("#er-timer-value")
        expect(timer).to_have_text(re.compile(r"^(10:00|09:[45]\d)$"))

        # The candidate answers two questions; the console counts them.
        page.locator(".er-option").nth(1).click()
        expect(page.locator("#er-save")).to_have_attribute("data-state", "saved")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("1")
        expect(page.locator("#er-save")).to_have_attribute("data-state", "saved")
        expect(tile).to_have_attribute("data-state", "answering", timeout=FOLLOW_MS)
        expect(tile.locator(".pc-seat-answered")).to_have_text("2/11 câu", timeout=FOLLOW_MS)
        expect(tile.locator(".pc-seat-beat")).to_contain_text("127.0.0.1")
        screenshot(proctor, "proctor-console")

        # Five more minutes for this candidate: their clock goes up.
        before = seconds_of(timer.inner_text())
        tile.click()
        seat_dialog = proctor.locator("#pc-seat-dialog")
        expect(seat_dialog).to_contain_text(candidate.full_name)
        expect(seat_dialog).to_contain_text("2/11 câu")
        screenshot(proctor, "proctor-seat-dialog")
        seat_dialog.get_by_role("button", name="Gia hạn thời gian").click()
        expect(proctor.locator("#pc-action-title")).to_have_text("Gia hạn thời gian")
        proctor.fill("#minutes", "5")
        proctor.fill("#reason", "Máy treo 5 phút, đã khởi động lại")
        screenshot(proctor, "proctor-extend-dialog")
        with proctor.expect_navigation():
            proctor.locator("#pc-action-submit").click()
        expect(proctor.locator(".alert-success")).to_contain_text("Đã gia hạn 5 phút")
        expect(timer).to_have_text(re.compile(r"^1[45]:\d\d$"), timeout=FOLLOW_MS)
        assert seconds_of(timer.inner_text()) >= before + 5 * 60 - 10
        expect(proctor.locator("#pc-seat-1 .pc-seat-extra")).to_have_text("+5 phút")

        # A power cut: the proctor pauses the room; the candidate's page says so and its clock stops.
        act(proctor, proctor.locator("#pc-pause"), "Mất điện toàn phòng")
        expect(proctor.locator("#pc-paused-banner")).to_be_visible()
        expect(proctor.locator("#pc-phase")).to_have_text("Đang tạm dừng")
        paused = page.locator("#er-paused")
        expect(paused).to_be_visible(timeout=FOLLOW_MS)
        expect(paused).to_contain_text("Phòng thi đang tạm dừng")
        expect(page.locator("#er-timer")).to_have_attribute("data-paused", "true")
        time.sleep(1.5)  # a heartbeat more: the clock now shows the server's frozen time left
        frozen = timer.inner_text()
        expect(page.locator("#er-paused-left")).to_contain_text(frozen)
        screenshot(page, "exam-room-paused")
        time.sleep(3)
        assert timer.inner_text() == frozen, "the clock ran while the room was paused"
        page.keyboard.press("2")  # nothing is chosen while paused
        expect(page.locator(".er-option.is-chosen")).to_have_count(1)
        screenshot(proctor, "proctor-console-paused")

        # Power is back: the clock runs on from the same time left.
        act(proctor, proctor.locator("#pc-resume"), "Đã có điện lại, các máy hoạt động bình thường")
        expect(proctor.locator("#pc-paused-banner")).to_be_hidden()
        expect(paused).to_be_hidden(timeout=FOLLOW_MS)
        expect(page.locator("#er-timer")).to_have_attribute("data-paused", "false")
        resumed = seconds_of(timer.inner_text())
        assert seconds_of(frozen) - 3 <= resumed <= seconds_of(frozen), (frozen, resumed)
        time.sleep(2.2)
        assert seconds_of(timer.inner_text()) < resumed, "the clock does not run again"
        page.keyboard.press("ArrowRight")
        page.keyboard.press("3")
        expect(page.locator("#er-save")).to_have_attribute("data-state", "saved")
        expect(tile.locator(".pc-seat-answered")).to_have_text("3/11 câu", timeout=FOLLOW_MS)

        with app.extensions["exam_db"].sessionmaker() as db:
            attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
            assert attempt.status == "in_progress" and attempt.extra_seconds == 300

        # The other pages: the projector's code, the door, the admit cards, the report.
        proctor.goto(f"{live_server}/proctor/sittings/{sitting.code}/access-code")
        expect(proctor.locator("#pc-code")).to_have_text(re.compile(r"^\d{6}$"))
        screenshot(proctor, "proctor-access-code")
        proctor.goto(f"{live_server}/proctor/sittings/{sitting.code}/check-in")
        proctor.fill("#reason", "Đã đối chiếu CCCD với thẻ dự thi")
        proctor.fill("#registration_no", candidates[1].registration_no)
        proctor.keyboard.press("Enter")  # as a USB scanner ends its number
        expect(proctor.locator("#pc-checkin-result")).to_contain_text("Mời vào máy số 2")
        expect(proctor.locator("#registration_no")).to_be_focused()
        screenshot(proctor, "proctor-check-in")
        proctor.goto(f"{live_server}/proctor/sittings/{sitting.code}/admit-cards")
        expect(proctor.locator(".pc-admit-card")).to_have_count(SEATS)
        proctor.emulate_media(media="print")
        screenshot(proctor, "proctor-admit-cards-print", full_page=True)
        proctor.emulate_media(media="screen")
        proctor.goto(f"{live_server}/proctor/sittings/{sitting.code}/report")
        expect(proctor.locator("#pc-report-grants")).to_contain_text("Máy treo 5 phút")
        expect(proctor.locator("#pc-report-pauses")).to_contain_text("Mất điện toàn phòng")
        screenshot(proctor, "proctor-report", full_page=True)
    finally:
        context.close()
    assert not problems, problems
