"""A board member's first login in a real browser: password, TOTP enrolment from the
page's QR/secret, recovery codes, the Vietnamese home page, logout, and a second login."""
from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import code_not_accepted_now, screenshot, sign_in

pytestmark = pytest.mark.e2e


def test_first_login_enrols_totp_then_signs_in_with_a_code(live_server, page, staff):
    user = staff.create("board", enrolled=False)

    page.goto(f"{live_server}/")
    page.wait_for_url("**/login*")
    expect(page.locator("h1")).to_have_text("Đăng nhập cán bộ")
    screenshot(page, "login")
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("main button[type=submit]")

    page.wait_for_url("**/login/enrol")
    qr = page.locator(".qr-box img")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR image did not render"
    expect(page.locator("#totp-uri")).to_contain_text("otpauth://totp/")
    secret = page.locator("#totp-secret").inner_text().strip()
    assert secret == user.totp_secret
    screenshot(page, "enrol")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")

    codes = page.locator("#recovery-codes li")
    expect(codes.first).to_be_visible()
    assert codes.count() == 10
    assert all(re.fullmatch(r"[0-9a-f]{5}-[0-9a-f]{5}", text) for text in codes.all_inner_texts())
    screenshot(page, "recovery-codes")
    page.get_by_role("link", name="Tôi đã lưu các mã, tiếp tục").click()

    page.wait_for_url(f"{live_server}/")
    nav = page.locator("nav")
    expect(nav.get_by_role("link", name="Ngân hàng câu hỏi")).to_be_visible()
    expect(nav.get_by_role("link", name="Nhập câu hỏi")).to_be_visible()
    expect(nav.get_by_role("link", name="Nhật ký kiểm toán")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("Xin chào")
    assert page.locator("html").get_attribute("lang") == "vi"
    screenshot(page, "home-board")

    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_url("**/login")
    expect(page.get_by_role("alert")).to_have_text("Đã đăng xuất.")
    page.goto(f"{live_server}/")
    page.wait_for_url("**/login*")  # the old session is gone

    # Next login: password, then a code from the authenticator (the next step: never a replay).
    sign_in(page, live_server, user, code=pyotp.TOTP(secret).at(time.time() + 30))
    page.wait_for_url(f"{live_server}/")
    expect(page.locator("nav").get_by_role("link", name="Ngân hàng câu hỏi")).to_be_visible()


def test_wrong_code_is_refused_in_vietnamese(live_server, page, staff):
    user = staff.create("board")
    sign_in(page, live_server, user, code=code_not_accepted_now(user.totp_secret))
    expect(page.get_by_role("alert")).to_have_text("Mã xác thực không đúng, đã hết hạn hoặc đã được dùng.")
    assert page.url.endswith("/login/code")
    screenshot(page, "wrong-code")
    # The page still lets the right code in.
    page.fill("#code", user.next_code())
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    expect(page.locator("h1")).to_contain_text("Xin chào")
