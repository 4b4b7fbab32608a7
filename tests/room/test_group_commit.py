"""Group commit (exam/room/group_commit.py): many saves in one transaction, each acknowledged with its own
answer only after the commit; a refused save spoils nothing else; a failed commit writes nothing.

The batches are made deterministic by holding the writer thread on a gate: every write queued
while it waits goes into the next batch together."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.exc import OperationalError

from exam.core.db import Driver, DriverStatement, utcnow
from exam.room import group_commit as save_batch
from exam.room.errors import RoomError
from exam.room.models import Attempt, Response, ResponseLog
from exam.setup.models import Candidate, Paper
from exam.setup.sittings import current_access_code
from tests.factories import make_ready_candidates

USER_AGENT = "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0"


@pytest.fixture
def app(app):
    app.config["SAVE_BATCHING"] = "on"  # on PostgreSQL too: the batcher is tested on both databases
    return app


class Lab:
    """One lab machine (its own test client and address)."""

    def __init__(self, app, candidate, n: int):
        self.client = app.test_client()
        self.addr = f"10.2.0.{n}"
        self.candidate = candidate
        body = self.call("POST", "/login", {
            "registration_no": candidate.registration_no, "date_of_birth": candidate.date_of_birth.isoformat(),
            "access_code": current_access_code(candidate.sitting, utcnow())})
        assert body.status_code == 200, body.get_json()
        self.token = body.get_json()["token"]
        state = self.call("POST", "/attempt/start")
        assert state.status_code == 200, state.get_json()
        self.questions = state.get_json()["questions"]

    def call(self, method, path, body=None):
        headers = {"User-Agent": USER_AGENT}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        return self.client.open("/api/v1" + path, method=method, json=body, headers=headers,
                                environ_base={"REMOTE_ADDR": self.addr})

    def save(self, question: dict, option: int, seq: int):
        return self.call("PUT", f"/attempt/answers/{question['id']}",
                         {"choices": [question["options"][option]["id"]], "seq": seq})


@pytest.fixture
def labs(app, db):
    candidates = make_ready_candidates(db, 6)
    db.commit()
    return [Lab(app, candidate, n) for n, candidate in enumerate(candidates, start=1)]


class Gate:
    """Holds the writer thread inside a write until released, so the writes queued meanwhile form one batch."""

    def __init__(self, app):
        self.committer = save_batch.committer(app)
        self.entered, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.committer.submit, args=(self._hold,), daemon=True)

    def _hold(self, _session):
        self.entered.set()
        assert self.release.wait(10)

    def __enter__(self):
        self.thread.start()
        assert self.entered.wait(10)
        return self

    def wait_for(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while self.committer.queue.qsize() < n:
            assert time.monotonic() < deadline, f"only {self.committer.queue.qsize()} of {n} writes queued"
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(10)


def in_threads(calls):
    """Run each call in its own thread; the responses in the calls' order."""
    results = [None] * len(calls)

    def run(i, call):
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, results


def one_batch(app, calls):
    """Queue every call's write behind the gate, then let them run as one batch."""
    before = save_batch.committer(app).stats.batches
    with Gate(app) as gate:
        threads, results = in_threads(calls)
        gate.wait_for(len(calls))
    for thread in threads:
        thread.join(10)
    assert save_batch.committer(app).stats.batches - before == 2  # the gate's own batch, then all the calls
    return results


def stored(db, candidate):
    db.rollback()
    attempt = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
    rows = db.execute(select(Response.item_id, Response.seq, Response.choices)
                      .where(Response.attempt_id == attempt.id)).all()
    return attempt, {item_id: (seq, choices) for item_id, seq, choices in rows}


def log_count(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(ResponseLog))


def test_concurrent_saves_are_all_acknowledged_and_stored(app, db, labs):
    calls = [lambda lab=lab, k=k: lab.save(lab.questions[k], k % 2, k + 1) for lab in labs for k in range(4)]
    threads, results = in_threads(calls)
    for thread in threads:
        thread.join(20)
    assert [r.status_code for r in results] == [200] * len(calls), [r.get_json() for r in results]
    stats = save_batch.committer(app).stats
    assert stats.writes >= len(calls) and stats.failed_batches == 0
    for lab in labs:
        attempt, answers = stored(db, lab.candidate)
        assert attempt.last_seq == 4 and attempt.history_count == 4
        assert sorted(seq for seq, _ in answers.values()) == [1, 2, 3, 4]


def test_one_batch_answers_each_save_with_its_own_result(app, db, labs):
    first, second, third = labs[:3]
    q = first.questions[0]
    assert first.save(q, 0, 5).status_code == 200
    results = one_batch(app, [
        lambda: first.save(q, 1, 3),  # stale: seq 5 is stored
        lambda: second.save(second.questions[0], 0, 1),
        lambda: second.call("PUT", f"/attempt/answers/{second.questions[1]['id']}",
                            {"choices": ["not-an-option"], "seq": 2}),  # 422
        lambda: third.call("PUT", "/attempt/answers/0000000000000000", {"choices": [], "seq": 1}),  # 404
        lambda: third.save(third.questions[2], 1, 2),
        lambda: third.call("POST", "/attempt/heartbeat", {}),
    ])
    assert [r.status_code for r in results] == [409, 200, 422, 404, 200, 200], [r.get_json() for r in results]
    assert results[0].get_json()["error"] == {"code": "stale_seq", "current_seq": 5,
                                              "message": results[0].get_json()["error"]["message"]}
    _, answers = stored(db, first.candidate)
    assert [seq for seq, _ in answers.values()] == [5]
    _, answers = stored(db, second.candidate)
    assert [seq for seq, _ in answers.values()] == [1]
    attempt, answers = stored(db, third.candidate)
    assert [seq for seq, _ in answers.values()] == [2] and attempt.last_heartbeat_at is not None


def test_seq_rules_hold_inside_one_batch(app, db, labs):
    lab = labs[0]
    q, other = lab.questions[0], lab.questions[1]
    # Same question twice in one batch, newer first: the older one is refused, the newer one stays.
    results = one_batch(app, [lambda: lab.save(q, 1, 8), lambda: lab.save(q, 0, 7), lambda: lab.save(other, 0, 2)])
    assert [r.status_code for r in results] == [200, 409, 200]
    # The same save again (a resend after a lost answer) is acknowledged once more and stored once.
    logged = log_count(db)
    results = one_batch(app, [lambda: lab.save(q, 1, 8), lambda: lab.save(q, 1, 8)])
    assert [r.status_code for r in results] == [200, 200]
    assert log_count(db) == logged
    attempt, answers = stored(db, lab.candidate)
    assert sorted(seq for seq, _ in answers.values()) == [2, 8] and attempt.last_seq == 8


def test_a_refusal_that_closes_the_attempt_keeps_the_closing(app, db, labs):
    late, fine = labs[0], labs[1]
    db.rollback()  # no stale read snapshot: SQLite would refuse to upgrade it to a write
    db.execute(update(Attempt).where(Attempt.candidate_id == late.candidate.id)
               .values(deadline=utcnow() - timedelta(minutes=5), section_deadline=utcnow() - timedelta(minutes=5)))
    db.commit()
    results = one_batch(app, [lambda: late.save(late.questions[0], 0, 1), lambda: fine.save(fine.questions[0], 0, 1)])
    assert [r.status_code for r in results] == [403, 200]
    assert results[0].get_json()["error"]["code"] == "deadline_passed"
    attempt, answers = stored(db, late.candidate)
    assert attempt.status == "submitted" and attempt.submitted_by == "deadline" and answers == {}
    assert len(stored(db, fine.candidate)[1]) == 1


@pytest.mark.parametrize("light", [False, True])
def test_an_unexpected_error_undoes_only_its_own_write(app, db, labs, light):
    """Either savepoint: the ORM's, or the driver's own one that the exam-room operations (``light``) take."""
    lab = labs[0]
    committer = save_batch.committer(app)
    attempt_id = stored(db, lab.candidate)[0].id
    half = DriverStatement("UPDATE attempt SET machine = :machine WHERE id = :attempt_id")

    def broken(session):
        if light:  # an operation writes through the driver
            Driver(session).run(half, {"machine": "half-written", "attempt_id": attempt_id})
        else:
            session.execute(update(Attempt).where(Attempt.id == attempt_id).values(machine="half-written"))
        raise ValueError("a bug")

    with app.app_context():
        with Gate(app) as gate:
            threads, results = in_threads([lambda: _outcome(committer, broken, light=light),
                                           lambda: lab.save(lab.questions[0], 0, 1)])
            gate.wait_for(2)
        for thread in threads:
            thread.join(10)
    assert isinstance(results[0], ValueError) and results[1].status_code == 200
    attempt, answers = stored(db, lab.candidate)
    assert attempt.machine != "half-written" and len(answers) == 1


def _outcome(committer, work, light=False):
    try:
        return committer.submit(work, light=light)
    except Exception as exc:  # noqa: BLE001
        return exc


def test_a_failed_commit_answers_503_to_the_whole_batch_and_writes_nothing(app, db, labs, monkeypatch):
    committer = save_batch.committer(app)
    calls = [lambda lab=lab: lab.save(lab.questions[0], 0, 1) for lab in labs[:4]]
    calls.append(lambda: labs[4].call("POST", "/attempt/heartbeat", {}))
    logged = log_count(db)
    real_commit = committer.commit
    failures = []

    def failing_commit(session):
        if len(failures) == 1:  # the gate's batch commits; the next one (every call) fails
            failures.append("failed")
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        failures.append("ok")
        real_commit(session)

    monkeypatch.setattr(committer, "commit", failing_commit)
    results = one_batch(app, calls)
    assert [r.status_code for r in results] == [503] * len(calls)
    assert {r.get_json()["error"]["code"] for r in results} == {"busy"}
    assert results[0].headers["Retry-After"] == "1"
    assert log_count(db) == logged
    for lab in labs[:5]:
        attempt, answers = stored(db, lab.candidate)
        assert answers == {} and attempt.history_count == 0 and attempt.last_heartbeat_at == attempt.started_at
    # The page sends the same saves again: now they are stored.
    assert [call().status_code for call in calls] == [200] * len(calls)
    assert log_count(db) == logged + 4


def test_work_outside_the_candidate_api_runs_in_one_batch_too(app, db):
    """The committer takes any write: a RoomError is handed back to its caller, the batch still commits."""
    candidate, = make_ready_candidates(db, 1)
    db.commit()
    committer = save_batch.committer(app)

    def rename(session):
        session.get(Candidate, candidate.id).full_name = "Lê Văn Đổi Tên"
        return "renamed"

    def refuse(session):
        raise RoomError("forbidden")

    assert committer.submit(rename) == "renamed"
    with pytest.raises(RoomError, match="forbidden"):
        committer.submit(refuse)
    db.rollback()
    db.expire_all()
    assert db.get(Candidate, candidate.id).full_name == "Lê Văn Đổi Tên"
    assert db.scalar(select(func.count()).select_from(Paper)) == 1


def test_writer_turns_of_one_sqlite_file_exclude_each_other(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'exam.sqlite3'}")
    first, second = save_batch.WriterTurn.for_engine(engine), save_batch.WriterTurn.for_engine(engine)
    assert first.path == f"{tmp_path / 'exam.sqlite3'}-writer.lock"
    entered = threading.Event()

    def take_second():
        with second:
            entered.set()

    with first:
        waiter = threading.Thread(target=take_second)
        waiter.start()
        assert not entered.wait(0.2)  # the other writer waits while this one holds the turn
    assert entered.wait(5)  # and goes the moment it is released
    waiter.join(5)
    assert save_batch.WriterTurn.for_engine(create_engine("sqlite://")).path is None
