"""The writer process (exam/room/writer.py, reached through exam/room/writer_client.py): the answer saves
and heartbeats of every worker applied by one process of its own, with the same answers as in the
worker's own group commit; started on demand, and started again after it dies, with nothing acknowledged
lost."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import select

from exam.core.db import make_engine, utcnow
from exam.room import writer as writer_process
from exam.room import writer_client
from exam.room.models import Attempt, Response
from exam.setup.sittings import current_access_code
from tests.factories import make_ready_candidates


@pytest.fixture
def app(app):
    if not app.extensions["exam_db"].is_sqlite:
        pytest.skip("the writer process serves SQLite (PostgreSQL takes concurrent writers itself)")
    app.config.update(SAVE_BATCHING="on", SAVE_WRITER="process")
    yield app
    started = writer_client.client(app)._started
    if started is not None and started.poll() is None:
        started.terminate()
        started.wait(10)


class Machine:
    def __init__(self, app, candidate):
        self.client = app.test_client()
        self.token = None
        body = self.call("POST", "/login", {
            "registration_no": candidate.registration_no, "date_of_birth": candidate.date_of_birth.isoformat(),
            "access_code": current_access_code(candidate.sitting, utcnow())}).get_json()
        self.token = body["token"]
        self.questions = self.call("POST", "/attempt/start").get_json()["questions"]

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.open("/api/v1" + path, method=method, json=body, headers=headers)

    def save(self, n: int, option: int, seq: int):
        question = self.questions[n]
        return self.call("PUT", f"/attempt/answers/{question['id']}",
                         {"choices": [question["options"][option]["id"]], "seq": seq})


def test_saves_and_heartbeats_through_the_writer_process(app, db):
    candidates = make_ready_candidates(db, 4)
    db.commit()
    machines = [Machine(app, candidate) for candidate in candidates]
    first = machines[0]
    saved = first.save(0, 1, 5)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["seq"] == 5 and saved.get_json()["question_id"] == first.questions[0]["id"]
    assert writer_client.client(app)._started.poll() is None  # it is the process that answered
    # The rules' answers cross the socket unchanged.
    stale = first.save(0, 2, 4)
    assert stale.status_code == 409 and stale.get_json()["error"]["current_seq"] == 5
    assert first.call("PUT", "/attempt/answers/nope", {"choices": [], "seq": 6}).status_code == 404
    beat = first.call("POST", "/attempt/heartbeat", {})
    assert beat.status_code == 200 and beat.get_json()["status"] == "in_progress"
    first.call("POST", "/logout")
    assert first.save(1, 0, 7).get_json()["error"]["code"] == "invalid_token"

    # Many machines at once: every save acknowledged is stored with its seq.
    results = {}

    def sitting(machine, k):
        count = len(machine.questions)  # the first section's questions, each changed twice
        results[k] = [machine.save(n % count, n % 2, n + 1).status_code for n in range(2 * count)]

    threads = [threading.Thread(target=sitting, args=(m, k)) for k, m in enumerate(machines[1:])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    count = len(machines[1].questions)
    assert all(codes == [200] * 2 * count for codes in results.values()), results
    db.rollback()
    for candidate in candidates[1:]:
        attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
        seqs = sorted(db.scalars(select(Response.seq).where(Response.attempt_id == attempt.id)))
        assert seqs == list(range(count + 1, 2 * count + 1)) and attempt.history_count == 2 * count
    # The submission too: final, graded, with the save history's head in its audit entry.
    done = machines[1].call("POST", "/attempt/submit", {"confirm": True})
    assert done.status_code == 200 and done.get_json()["status"] == "submitted", done.get_json()
    assert machines[1].call("POST", "/attempt/submit", {}).get_json()["error"]["code"] == "invalid_request"
    db.rollback()
    attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidates[1].id))
    assert attempt.status == "submitted" and attempt.score["sections"] and attempt.choice_masks
    assert machines[1].call("GET", "/attempt/result").status_code == 200


def test_a_writer_that_dies_is_started_again_and_the_resent_save_lands(app, db):
    candidate = make_ready_candidates(db, 1)[0]
    db.commit()
    machine = Machine(app, candidate)
    assert machine.save(0, 1, 1).status_code == 200
    started = writer_client.client(app)._started
    os.kill(started.pid, signal.SIGKILL)
    started.wait(10)
    # The page sends the save again until it is acknowledged (503 while the writer is gone).
    deadline = time.monotonic() + 20
    while True:
        answer = machine.save(0, 2, 2)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        assert answer.status_code == 503, answer.get_json()
    assert answer.status_code == 200
    assert writer_client.client(app)._started.pid != started.pid
    db.rollback()
    attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
    assert db.scalar(select(Response.seq).where(Response.attempt_id == attempt.id)) == 2


@pytest.mark.parametrize("restart", [True, False])
def test_the_writers_log_is_copied_aside_and_restarted_short(tmp_path, restart):
    """The writer's connections never checkpoint at commit; the checkpointer's copies and the loop's
    restart keep the write-ahead log short under a continuous load."""
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.sqlite3'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE answer (id INTEGER PRIMARY KEY, body TEXT)")
    checkpointer = writer_process.WalCheckpointer(engine, every=3600)  # copies driven by hand below
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    longest = 0
    for batch in range(300):
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO answer (body) VALUES (?)", [("x" * 3000,) for _ in range(5)])
            if batch % 10 == 9:  # the thread's round comes while a batch runs: the log is never found empty
                checkpointer._copy(checkpointer._connection)
                longest = max(longest, checkpointer.frames)
        if restart:
            checkpointer.after_commit(engine)
    # 300 batches wrote ~1,500 pages: without the loop's restarts the log holds them all.
    if restart:
        assert 0 < longest < checkpointer.RESTART_FRAMES + 200
    else:
        assert longest > 1400
    checkpointer.stop()
    engine.dispose()
