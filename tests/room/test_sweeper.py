"""The deadline sweeper (exam/room/sweeper.py): overdue attempts submitted without their client, by a thread
that starts with the first request a process serves outside tests."""
from __future__ import annotations

import time
from datetime import timedelta

from exam.app import create_app
from exam.core.db import utcnow
from exam.room import history
from exam.room import sweeper as sweepers
from exam.setup.sittings import current_access_code
from tests.room.test_api import Machine, attempt_of, paper_key, set_attempt


def test_the_sweeper_submits_at_the_deadline_without_the_client(app, db, room):
    candidate = room[0]
    lab = Machine(app)
    lab.login(candidate)
    questions = lab.call("POST", "/attempt/start").get_json()["questions"]
    key = paper_key(db, candidate)
    for seq, question in enumerate(questions[:2], start=1):
        lab.save(question["id"], key[question["id"]][0], seq)
    deadline = utcnow() - timedelta(seconds=30)
    set_attempt(db, candidate, deadline=deadline)
    # The machine is off; the server's sweeper closes the attempt.
    assert sweepers.ensure_sweeper(app) is None  # never started under TESTING: driven by hand here
    assert sweepers.Sweeper(app).sweep() == 1
    assert sweepers.Sweeper(app).sweep() == 0
    attempt = attempt_of(db, candidate)
    assert (attempt.status, attempt.submitted_by, attempt.submitted_at) == ("submitted", "deadline", deadline)
    result = lab.call("GET", "/attempt/result").get_json()
    assert [s["correct"] for s in result["sections"]] == [2, 0]
    verdict = history.verify_attempt_history(db, attempt)
    assert verdict.ok and verdict.count == 2


def test_the_sweeper_thread_starts_with_the_first_request_outside_tests(database_url, tmp_path, db, room):
    candidate = room[0]
    live = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test-secret", "ATTEMPT_SWEEP_SECONDS": 0.05},
                      instance_path=str(tmp_path / "live"))
    try:
        assert not sweepers._sweepers.get(id(live))
        client = live.test_client()
        now = utcnow()
        token = client.post("/api/v1/login", json={
            "registration_no": candidate.registration_no, "date_of_birth": candidate.date_of_birth.isoformat(),
            "access_code": current_access_code(candidate.sitting, now)}).get_json()["token"]
        client.post("/api/v1/attempt/start", headers={"Authorization": f"Bearer {token}"})
        sweeper = sweepers._sweepers[id(live)]
        assert sweeper.thread.is_alive() and sweeper.thread.daemon
        set_attempt(db, candidate, deadline=utcnow() - timedelta(minutes=1))
        for _ in range(100):
            if attempt_of(db, candidate).status == "submitted":
                break
            time.sleep(0.05)
        assert attempt_of(db, candidate).submitted_by == "deadline"
    finally:
        sweeper = sweepers._sweepers.pop(id(live), None)
        if sweeper:
            sweeper.stop.set()
            sweeper.thread.join(5)
        live.extensions["exam_db"].engine.dispose()
