"""Fixtures of the room's tests."""
from __future__ import annotations

import pytest

from tests.factories import make_ready_candidates


@pytest.fixture
def room(db):
    candidates = make_ready_candidates(db, 2)  # a sitting open since a minute ago, papers drawn
    db.commit()
    return candidates
