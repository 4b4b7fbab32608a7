"""The board's lists: Vietnamese alphabetical order, the door list by given name, the seat list by seat."""
from __future__ import annotations

from datetime import UTC, datetime

from exam.setup.candidate_lists import door_list, seat_list, vietnamese_key
from exam.setup.roster import import_roster
from tests.factories import make_exam, make_sitting, roster_csv, roster_row

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_vietnamese_alphabetical_order():
    words = ["Đức", "Bình", "Ân", "Ánh", "An", "Ă", "Dũng", "Hạ", "Há", "Hà", "Ha", "Hả", "Hã", "Ơn", "Ôn", "On", "Ưng",
             "Uy"]
    assert sorted(words, key=vietnamese_key) == ["An", "Ánh", "Ă", "Ân", "Bình", "Dũng", "Đức", "Ha", "Hà", "Hả",
                                                 "Hã", "Há", "Hạ", "On", "Ôn", "Ơn", "Uy", "Ưng"]


def test_door_list_by_given_name_then_full_name(db):
    exam = make_exam(db, publish=False)
    sitting = make_sitting(db, exam, seats=10, code="CA1")
    names = ["Nguyễn Văn Đức", "Trần Văn Ánh", "Bùi Văn Bình", "Nguyễn Văn An", "Hoàng Thị Ân", "Phạm Văn Dũng",
             "Lê Thị An"]
    content = roster_csv(*(roster_row(i, full_name=name, sitting="CA1", seat=str(i))
                           for i, name in enumerate(names, start=1)))
    assert import_roster(db, exam, "a.csv", content, actor="t", now=NOW).ok
    assert [c.full_name for c in door_list(db, sitting)] == [
        "Lê Thị An", "Nguyễn Văn An", "Trần Văn Ánh", "Hoàng Thị Ân", "Bùi Văn Bình", "Phạm Văn Dũng",
        "Nguyễn Văn Đức"]
    assert [c.seat for c in seat_list(db, sitting)] == list(range(1, 8))
