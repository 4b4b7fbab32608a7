"""What the synchronized start runs: the start on the driver's cursor (the same rule as ``attempts.start``),
and the attempt body with the paper's questions spliced in from the JSON kept in memory. The body is
checked against the paper as stored, section by section as they open; no timings here (bench/load.py)."""
from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from exam.audit import chain as audit
from exam.audit.models import AuditEntry
from exam.core.db import Driver, utcnow
from exam.room import api, attempt_view, attempts, paper_cache, sessions, writer_client
from exam.room.errors import RoomError
from exam.room.models import Attempt
from exam.setup.models import Candidate, Paper, PaperItem, Sitting
from question_bank.models import QuestionVersion
from tests.factories import SMALL_SECTIONS, make_ready_candidates
from tests.room.test_api import Machine, paper_key
from tests.room.test_attempts import GRACE, T0, login

THREE_SECTIONS = SMALL_SECTIONS + (("informatics", "Tin học", 5, [("Tin học", "easy", 2)]),)
BODY_KEYS = ["server_time", "paused", "attempt", "exam", "sections", "questions", "answers"]
QUESTION_KEYS = ["id", "section", "number", "type", "text", "options", "image_url"]


def paper_as_stored(db, candidate, positions) -> list[dict]:
    """The questions of the sections at ``positions`` straight from the stored paper and bank (no cache)."""
    db.expire_all()
    position_of = {s.id: s.position for s in attempts.exam_sections(db, candidate.exam_id)}
    paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
    questions = []
    for item in paper.items:
        if position_of[item.section_id] not in positions:
            continue
        version = db.get(QuestionVersion, item.question_version_id)
        questions.append({"id": item.public_id, "section": position_of[item.section_id], "number": item.position,
                          "type": "multiple" if version.qtype == "multiple" else "single", "text": version.text,
                          "options": [{"id": option_id, "text": version.options[original]["text"]}
                                      for option_id, original in zip(item.option_ids, item.option_order, strict=True)],
                          "image_url": None})
    return questions


def questions_bytes(response) -> bytes:
    """The raw ``questions`` member of a body."""
    data = response.data
    return data[data.index(b',"questions":'):data.index(b',"answers":')]


def checked(response) -> dict:
    """The body is compact UTF-8 JSON in the contract's order, as the dictionaries it replaces were encoded."""
    assert response.status_code == 200, response.data[:300]
    body = json.loads(response.data)
    assert response.data == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert list(body) == BODY_KEYS
    assert all(list(question) == QUESTION_KEYS for question in body["questions"])
    return body


def test_the_spliced_body_is_the_stored_paper_section_by_section(app, db):
    candidate, = make_ready_candidates(db, 1, sections=THREE_SECTIONS)
    db.commit()
    upcoming = {q["id"] for q in paper_as_stored(db, candidate, {3})}
    lab = Machine(app)
    lab.login(candidate)
    assert checked(lab.call("GET", "/attempt"))["questions"] == []

    started = checked(lab.call("POST", "/attempt/start"))
    assert started["questions"] == paper_as_stored(db, candidate, {1})
    again = lab.call("GET", "/attempt")  # from memory now
    assert checked(again)["questions"] == started["questions"]
    paper_cache.clear()
    fresh = lab.call("GET", "/attempt")  # built again from the database: the same bytes
    assert questions_bytes(fresh) == questions_bytes(again)

    first = started["questions"][0]
    key = paper_key(db, candidate)
    assert lab.save(first["id"], key[first["id"]][0], 1, flagged=True).status_code == 200
    answered = checked(lab.call("GET", "/attempt"))
    assert answered["answers"] == {first["id"]: {"choices": key[first["id"]][0], "flagged": True, "seq": 1}}
    assert answered["attempt"]["last_seq"] == 1

    moved = checked(lab.call("POST", "/attempt/section/next"))
    assert [s["state"] for s in moved["sections"]] == ["closed", "open", "upcoming"]
    assert moved["questions"] == paper_as_stored(db, candidate, {1, 2})
    assert checked(lab.call("GET", "/attempt"))["questions"] == moved["questions"]
    # The upcoming section never left the server, in any body so far.
    assert not any(question_id.encode() in response.data for response in lab.received for question_id in upcoming)

    last = checked(lab.call("POST", "/attempt/section/next"))
    assert last["questions"] == paper_as_stored(db, candidate, {1, 2, 3})
    assert lab.call("POST", "/attempt/submit", {"confirm": True}).status_code == 200
    submitted = checked(lab.call("GET", "/attempt"))
    assert submitted["attempt"]["status"] == "submitted" and submitted["questions"] == last["questions"]
    assert [s["state"] for s in submitted["sections"]] == ["closed", "closed", "closed"]


def test_a_submitted_attempt_shows_only_the_sections_that_opened(app, db):
    candidate, = make_ready_candidates(db, 1, sections=THREE_SECTIONS)
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    checked(lab.call("POST", "/attempt/start"))
    assert lab.call("POST", "/attempt/submit", {"confirm": True}).status_code == 200
    body = checked(lab.call("GET", "/attempt"))
    assert body["questions"] == paper_as_stored(db, candidate, {1})


def test_an_image_gets_an_address_signed_for_each_answer_from_the_paper_in_memory(app, db):
    candidate, = make_ready_candidates(db, 1)
    db.commit()
    png = b"\x89PNG\r\n\x1a\n" + b"1" * 32
    name = "b" * 64 + ".png"
    folder = Path(app.instance_path) / "bank-images"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(png)
    items = db.execute(select(PaperItem.public_id, PaperItem.question_version_id).join(Paper)
                       .where(Paper.candidate_id == candidate.id).order_by(PaperItem.position)).all()
    pictured = {items[0].public_id, items[2].public_id}
    db.rollback()
    db.execute(text("UPDATE question_version SET image = :name WHERE id IN (:a, :b)"),
               {"name": name, "a": items[0].question_version_id, "b": items[2].question_version_id})
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    for response in (lab.call("POST", "/attempt/start"), lab.call("GET", "/attempt"), lab.call("GET", "/attempt")):
        body = checked(response)
        assert name.encode() not in response.data
        for question in body["questions"]:
            if question["id"] not in pictured:
                assert question["image_url"] is None
                continue
            assert question["image_url"].startswith("/api/v1/images/")
            picture = lab.client.get(question["image_url"])
            assert picture.status_code == 200 and picture.data == png
        expected = paper_as_stored(db, candidate, {1})
        assert [{**q, "image_url": None} for q in body["questions"]] == expected


def test_a_paper_stored_again_under_the_same_id_is_not_served_from_memory(app, db):
    """Papers are never redrawn in place (``generate_papers`` checks stored ones against their draw), but
    an id may come back with other content (a restored backup, a reused SQLite row id): the paper's JSON is
    kept under its content hash too."""
    candidate, = make_ready_candidates(db, 1)
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    before = checked(lab.call("POST", "/attempt/start"))["questions"]
    paper_id = db.scalar(select(Paper.id).where(Paper.candidate_id == candidate.id))
    item_id, option_ids, option_order = db.execute(
        select(PaperItem.id, PaperItem.option_ids, PaperItem.option_order).where(PaperItem.paper_id == paper_id)
        .order_by(PaperItem.position)).first()
    db.rollback()
    db.execute(update(PaperItem).where(PaperItem.id == item_id)
               .values(option_ids=list(reversed(option_ids)), option_order=list(reversed(option_order))))
    db.execute(update(Paper).where(Paper.id == paper_id).values(content_hash="f" * 64))
    db.commit()
    after = checked(lab.call("GET", "/attempt"))["questions"]
    assert after == paper_as_stored(db, candidate, {1}) != before
    assert after[0]["options"] == list(reversed(before[0]["options"]))


def test_papers_in_memory_are_bounded_and_only_frozen_ones_are_kept(app, db, monkeypatch):
    first, second = make_ready_candidates(db, 2)
    db.commit()
    sections = attempts.exam_sections(db, first.exam_id)
    position_of = {s.id: s.position for s in sections}
    papers = [db.scalar(select(Paper).where(Paper.candidate_id == c.id)) for c in (first, second)]
    store = paper_cache._store(db)

    def built(paper):
        return b"".join(paper_cache.paper_questions(db, paper.id, paper.content_hash, range(1, 3), position_of))

    whole = built(papers[0])
    assert json.loads(b"[" + whole + b"]") == paper_as_stored(db, first, {1, 2})
    assert list(store.papers) == [(papers[0].id, papers[0].content_hash)]
    assert store.paper_bytes == len(whole) - 1  # less the comma between the two sections
    monkeypatch.setattr(paper_cache, "MAX_PAPER_BYTES", len(whole) + 10)
    built(papers[1])
    assert list(store.papers) == [(papers[1].id, papers[1].content_hash)]  # the older one made room

    # A version that is not frozen (never so for a drawn paper, but the cache must not rely on it).
    paper_cache.clear()
    store = paper_cache._store(db)
    version_id = db.scalar(select(PaperItem.question_version_id).where(PaperItem.paper_id == papers[0].id))
    db.rollback()
    db.execute(text("UPDATE question_version SET frozen = :no WHERE id = :id"), {"no": False, "id": version_id})
    db.commit()
    assert built(papers[0]) == whole
    assert not store.papers and version_id not in store.versions


# --- the start on the driver's cursor -------------------------------------------------------------------------

def audit_details(db, action, object_id):
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == action,
                                                     AuditEntry.object_id == object_id))
    return None if entry is None else json.loads(entry.details)


def test_a_token_start_follows_the_same_rule_as_a_start_on_the_attempt(db):
    by_rule, by_token = make_ready_candidates(db, 2, starts_at=T0)
    db.commit()
    now = T0 + timedelta(minutes=3)
    ruled = login(db, by_rule, now)
    attempts.start(db, ruled.attempt, by_rule.sitting, attempts.exam_sections(db, by_rule.exam_id), now=now)
    tokened = login(db, by_token, now)
    loaded = tokened.attempt  # an Attempt already in the session (as in a batch) sees the start
    assert attempts.start_for_token(db, tokened.token, now=now, grace=GRACE) is True
    db.commit()
    fields = ("status", "started_at", "last_heartbeat_at", "section_position", "section_started_at",
              "section_deadline", "deadline")
    assert [getattr(loaded, f) for f in fields] == [getattr(ruled.attempt, f) for f in fields]
    db.expire_all()
    stored = [db.get(Attempt, a.id) for a in (ruled.attempt, tokened.attempt)]
    assert [getattr(stored[1], f) for f in fields] == [getattr(stored[0], f) for f in fields]
    assert stored[1].status == "in_progress" and stored[1].started_at == now
    expected = audit_details(db, "attempt.start", stored[0].public_id)
    got = audit_details(db, "attempt.start", stored[1].public_id)
    assert got == {**expected, "registration_no": by_token.registration_no, "machine": stored[1].machine}

    # Once started: idempotent, and the clock is settled (the first section's close has passed).
    later = stored[1].section_deadline + timedelta(seconds=1)
    assert attempts.start_for_token(db, tokened.token, now=later, grace=GRACE) is True
    db.commit()
    db.expire_all()
    assert db.get(Attempt, stored[1].id).section_position == 2
    starts = db.scalars(select(AuditEntry).where(AuditEntry.action == "attempt.start")).all()
    assert len(starts) == 2  # one entry per start, none for the repeated one
    assert audit.verify_database(db, None).ok


@pytest.mark.parametrize("change, minutes, code", [
    ({}, -5, "sitting_not_started"),
    ({"opened_at": None}, 3, "sitting_not_open"),
    ({}, 60 * 24, "sitting_ended"),
    ({"paused_at": T0}, 3, "room_paused"),
    ("absent", 3, "marked_absent"),
])
def test_a_token_start_is_refused_as_the_rule_refuses_and_writes_nothing(db, change, minutes, code):
    candidate, = make_ready_candidates(db, 1, starts_at=T0)
    now = T0 + timedelta(minutes=minutes)
    result = login(db, candidate, T0 + timedelta(minutes=1))
    if change == "absent":
        db.execute(update(Candidate).where(Candidate.id == candidate.id).values(absent_at=T0))
    elif change:
        db.execute(update(Sitting).where(Sitting.id == candidate.sitting_id).values(**change))
    db.commit()
    with pytest.raises(RoomError, match=code):
        attempts.start_for_token(db, result.token, now=now, grace=GRACE)
    db.rollback()
    db.expire_all()
    assert db.get(Attempt, result.attempt.id).status == "not_started"
    assert audit_details(db, "attempt.start", result.attempt.public_id) is None


def test_a_token_start_needs_a_live_session(db):
    candidate, = make_ready_candidates(db, 1, starts_at=T0)
    result = login(db, candidate, T0)
    sessions.logout(db, result.candidate_session, candidate, now=T0)
    db.commit()
    assert attempts.start_for_token(db, result.token, now=T0, grace=GRACE) is False
    assert attempts.start_for_token(db, "", now=T0, grace=GRACE) is False
    assert attempt_view.attempt_view(Driver(db), result.token) is None
    db.rollback()
    assert db.get(Attempt, result.attempt.id).status == "not_started"


def test_the_start_answers_with_the_body_of_get_attempt(app, db):
    candidate, = make_ready_candidates(db, 1)
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    started = checked(lab.call("POST", "/attempt/start"))
    read = checked(lab.call("GET", "/attempt"))
    assert {k: v for k, v in started.items() if k != "server_time"} == \
        {k: v for k, v in read.items() if k != "server_time"}
    assert started["attempt"]["status"] == "in_progress"
    db.rollback()  # a fresh read: the lazy loads above began a snapshot before the start
    view = attempt_view.attempt_view(Driver(db), lab.token)
    assert view.status == "in_progress" and utcnow() - timedelta(minutes=5) < view.started_at <= utcnow()
    assert started["attempt"]["started_at"] == api.iso(view.started_at)


def test_a_lab_starts_through_the_writer_process(app, db):
    if not app.extensions["exam_db"].is_sqlite:
        pytest.skip("the writer process serves SQLite")
    app.config.update(SAVE_BATCHING="on", SAVE_WRITER="process")
    try:
        first, second, absent = make_ready_candidates(db, 3)
        db.commit()
        labs = [Machine(app, addr=f"10.1.1.{40 + n}") for n in range(3)]
        for lab, candidate in zip(labs, (first, second, absent), strict=True):
            lab.login(candidate)
        db.rollback()  # no stale read snapshot: SQLite would refuse to upgrade it to a write
        db.execute(update(Candidate).where(Candidate.id == absent.id).values(absent_at=utcnow()))
        db.commit()
        started = checked(labs[0].call("POST", "/attempt/start"))
        assert writer_client.client(app)._started.poll() is None  # the writer process did it
        assert started["attempt"]["status"] == "in_progress"
        assert started["questions"] == paper_as_stored(db, first, {1})
        assert checked(labs[0].call("POST", "/attempt/start"))["attempt"]["started_at"] == \
            started["attempt"]["started_at"]  # idempotent
        assert checked(labs[1].call("POST", "/attempt/start"))["questions"] == paper_as_stored(db, second, {1})
        refused = labs[2].call("POST", "/attempt/start")  # the rule's refusal crosses the socket
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "marked_absent"
        labs[1].call("POST", "/logout")
        assert labs[1].call("POST", "/attempt/start").get_json()["error"]["code"] == "invalid_token"
    finally:
        running = writer_client.client(app)._started
        if running is not None and running.poll() is None:
            running.terminate()
            running.wait(10)


def test_a_login_has_the_writer_process_up_before_the_lab_presses_start(app, db):
    if not app.extensions["exam_db"].is_sqlite:
        pytest.skip("the writer process serves SQLite")
    app.config.update(SAVE_BATCHING="on", SAVE_WRITER="process")
    writers = writer_client.client(app)

    def held_writer():
        for _ in range(500):  # the warm-up runs beside the login; wait for it (10 s at most)
            held = writers._held
            if held is not None and writer_client._alive(held[1]):
                return writers._started
            time.sleep(0.02)
        raise AssertionError("no writer held after the login")

    try:
        first, second = make_ready_candidates(db, 2)
        db.commit()
        lab = Machine(app)
        assert lab.login(first).status_code == 200  # no write of the writer's yet
        started = held_writer()
        assert started is not None and started.poll() is None
        assert checked(lab.call("POST", "/attempt/start"))["attempt"]["status"] == "in_progress"
        assert writers._started is started  # the Start went to the writer the login had started

        os.kill(started.pid, signal.SIGKILL)  # a writer that dies is started again by the next login
        started.wait(10)
        other = Machine(app, addr="10.1.1.50")
        assert other.login(second).status_code == 200
        again = held_writer()
        assert again is not started and again.poll() is None
        answer = other.call("POST", "/attempt/start")
        if answer.status_code == 503:  # this thread's connection went with the old writer: the page resends
            answer = other.call("POST", "/attempt/start")
        assert checked(answer)["attempt"]["status"] == "in_progress"
    finally:
        running = writers._started
        if running is not None and running.poll() is None:
            running.terminate()
            running.wait(10)


def test_a_start_that_prefers_minimal_answers_briefly_and_the_attempt_then_holds_the_paper(app, db):
    """The instructions page sends ``Prefer: return=minimal`` and opens the exam page, which loads the attempt."""
    candidate = make_ready_candidates(db, 1)[0]
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    started = lab.client.post("/api/v1/attempt/start", headers={"Authorization": f"Bearer {lab.token}",
                                                                  "Prefer": "handling=lenient, return=minimal"})
    assert started.status_code == 200 and started.headers["Preference-Applied"] == "return=minimal"
    assert set(started.get_json()) == {"started", "server_time"} and started.get_json()["started"] is True
    assert started.headers["Cache-Control"] == "no-store"
    body = checked(lab.call("GET", "/attempt"))
    assert body["attempt"]["status"] == "in_progress"
    assert body["questions"] == paper_as_stored(db, candidate, {1})
    again = lab.call("POST", "/attempt/start")  # idempotent, and without the preference the whole body
    assert "Preference-Applied" not in again.headers and checked(again)["questions"] == body["questions"]
