"""pytest setup for the import-format tests (no app, no database)."""

from __future__ import annotations

import pytest

from tests.question_bank.formats.format_helpers import DEMO_BANK_PATHS


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "moderate: a larger input (seconds, not minutes); deselect with -m 'not moderate'")


@pytest.fixture(scope="session")
def demo_bank_bytes() -> bytes:
    for path in DEMO_BANK_PATHS:
        if path.exists():
            return path.read_bytes()
    pytest.skip("demo_bank.json not available")
