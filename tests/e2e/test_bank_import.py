"""A board member imports the demo bank through the browser: upload, the dry-run report,
confirm, then the bank lists the questions and a text search finds them."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.e2e

DEMO_BANK = Path(__file__).resolve().parents[2] / "question_bank" / "demo" / "demo_bank.json"


def matching_count(page) -> int:
    """The number in the browse page's "N câu hỏi phù hợp." line."""
    line = page.get_by_text(re.compile(r"câu hỏi phù hợp")).inner_text()
    return int(re.search(r"\d+", line.replace(".", "").replace(",", "")).group())


def test_board_imports_the_demo_bank_and_finds_questions(live_server, page, staff):
    in_file = len(json.loads(DEMO_BANK.read_text(encoding="utf-8"))["questions"])
    user = staff.create("board")
    sign_in(page, live_server, user)
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/bank/import")
    expect(page.locator("h1")).to_have_text("Nhập câu hỏi từ tệp")
    page.set_input_files("input[type=file]", str(DEMO_BANK))
    page.get_by_role("button", name="Kiểm tra tệp (chưa ghi)").click()

    # Step 1, the dry run: counts per topic × difficulty, nothing written yet.
    report = page.locator("#import-report")
    expect(report).to_be_visible()
    expect(report.locator(".alert-success")).to_contain_text(f"{in_file} câu hỏi sẽ được thêm")
    counts = report.locator("table").first
    expect(counts).to_contain_text("Kiến thức chung > Hiến pháp 2013")
    expect(counts.locator("tfoot")).to_contain_text(str(in_file))
    screenshot(page, "bank-import-report", full_page=True)

    # Step 2: confirm, and the bank page lists them.
    report.get_by_role("button", name="Xác nhận nhập").click()
    page.wait_for_url(f"{live_server}/bank/")
    rows = page.locator("table tbody tr")
    expect(rows.first).to_be_visible()
    assert matching_count(page) == in_file
    assert rows.count() >= min(in_file, 20)
    screenshot(page, "bank")

    page.fill("#f-q", "Hiến pháp")
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r".*[?&]q="))
    found = matching_count(page)
    assert 0 < found < in_file
    expect(rows.first).to_be_visible()
    assert any("Hiến pháp" in text for text in rows.all_inner_texts())
    screenshot(page, "bank-search")
