"""pytest setup for the import-format tests (no app, no database)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The repo root (for question_bank) and this folder (for format_helpers) may not
# be on sys.path, depending on how pytest is started and on its import mode.
for _path in (ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from format_helpers import DEMO_BANK_PATHS  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "moderate: a larger input (seconds, not minutes); deselect with -m 'not moderate'")


@pytest.fixture(scope="session")
def demo_bank_bytes() -> bytes:
    for path in DEMO_BANK_PATHS:
        if path.exists():
            return path.read_bytes()
    pytest.skip("demo_bank.json not available")
