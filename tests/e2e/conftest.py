"""Browser tests: the real app served on a free local port, driven by Debian's Chromium
through Playwright. Screenshots of key pages go to test-artifacts/ for people to look at.

Playwright's sync API runs its own event loop in the test thread, so the server runs
in a thread of its own (werkzeug's threaded server) and shares nothing with that loop.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pyotp
import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 768}  # the lab screens
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: bin/test installs Debian's chromium "
                                   "(apt-get install chromium)")
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


@pytest.fixture
def live_server(app):
    """The test's app (fresh database) served at http://127.0.0.1:<free port>."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    yield browser
    browser.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed  # read by the page fixture
    return report


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test (no shared cookies), sized like a lab screen.
    When the test fails, the page it ended on is saved as test-artifacts/FAILED-<test>.png."""
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    failed_shot = f"FAILED-{request.node.name}"
    if getattr(request.node, "e2e_failed", False):
        screenshot(page, failed_shot, full_page=True)
    else:
        (ARTIFACTS / f"{failed_shot}.png").unlink(missing_ok=True)  # from an earlier failing run
    context.close()


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save test-artifacts/<name>.png: what a 1366×768 lab screen shows, or the whole page."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page, base_url: str, user, *, code: str | None = None) -> None:
    """Username and password, then the code page with ``code`` (default: the user's next code)."""
    page.goto(f"{base_url}/login")
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/login/code")
    page.fill("#code", code or user.next_code())
    page.click("main button[type=submit]")


def code_not_accepted_now(secret: str) -> str:
    """A six-digit code that is none of the codes accepted around now (valid window ±1 step)."""
    totp = pyotp.TOTP(secret)
    accepted = {totp.at(time.time() + 30 * offset) for offset in range(-2, 3)}
    return next(code for code in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if code not in accepted)
