"""The room's commands (exam/room/cli.py): ``exam close-overdue`` and ``candidates admit-move``."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import make_ready_candidate
from tests.room.test_attempts import started


def test_close_overdue_and_admit_move_commands(db, runner):
    candidate = make_ready_candidate(db, starts_at=datetime.now(UTC) - timedelta(minutes=62), minutes=180)
    started(db, candidate, datetime.now(UTC) - timedelta(minutes=60))
    db.commit()
    result = runner.invoke(args=["exam", "close-overdue"])
    assert result.exit_code == 0, result.output
    assert candidate.registration_no in result.output and "closed 1 overdue attempts" in result.output
    assert "closed 0" in runner.invoke(args=["exam", "close-overdue"]).output

    exam_code = candidate.exam.code
    result = runner.invoke(args=["candidates", "admit-move", exam_code, candidate.registration_no,
                                 "--reason", "máy hỏng"])
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    missing = runner.invoke(args=["candidates", "admit-move", exam_code, "KHONG-CO", "--reason", "x"])
    assert missing.exit_code != 0 and "no candidate" in missing.output
    assert runner.invoke(args=["candidates", "admit-move", exam_code, candidate.registration_no]).exit_code != 0
