"""The save history (exam/room/history.py): every acknowledged save logged in a hash chain whose head enters
the audit chain at submission; an altered or missing save breaks it; the log refuses UPDATE and DELETE."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from exam.room import attempts, history
from exam.room.models import ResponseLog
from tests.factories import make_ready_candidate
from tests.room.test_attempts import MACHINE, T0, audit_entries, item_sections, items, save, started


def test_every_save_is_logged_in_a_hash_chain_that_enters_the_audit_at_submission(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    paper = items(db, attempt)
    now = T0 + timedelta(minutes=1)
    for seq, question in enumerate(paper[:4], start=1):
        save(db, attempt, question["id"], question["wrong"][:1], seq, now + timedelta(seconds=seq))
    save(db, attempt, paper[0]["id"], paper[0]["right"][:1], 5, now + timedelta(seconds=9), flagged=True)
    attempts.submit(db, attempt, item_sections(db, attempt), now=now + timedelta(minutes=1))
    db.commit()
    verdict = history.verify_attempt_history(db, attempt)
    assert verdict.ok and verdict.count == 5 == attempt.history_count
    assert verdict.head_hash == attempt.history_hash
    entry = audit_entries(db, "attempt.submit")[-1]
    details = json.loads(entry.details)
    assert (details["history_hash"], details["history_count"]) == (attempt.history_hash, 5)
    assert details["submitted_by"] == "candidate" and entry.actor == f"candidate:{candidate.registration_no}"
    # The log keeps every save, not only the latest: seq, server time, choices as canonical JSON, machine.
    rows = db.execute(select(ResponseLog.seq, ResponseLog.choices, ResponseLog.machine, ResponseLog.at)
                      .where(ResponseLog.attempt_id == attempt.id).order_by(ResponseLog.id)).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[-1].choices == json.dumps(paper[0]["right"][:1], separators=(",", ":"))
    assert rows[0].machine == MACHINE and rows[0].at.endswith("Z")
    # Altering a stored save (here in a copy: the table refuses UPDATE) breaks the chain.
    log = [dict(r) for r in db.execute(select(*ResponseLog.__table__.c).where(
        ResponseLog.attempt_id == attempt.id).order_by(ResponseLog.id)).mappings()]
    log[1]["choices"] = json.dumps(paper[1]["right"][:1], separators=(",", ":"))
    broken = history.verify_history(attempt.public_id, log)
    assert not broken.ok and "save 2" in broken.problem
    assert not history.verify_history(attempt.public_id, log[:1] + log[2:]).ok


def test_the_save_log_refuses_update_and_delete(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    question = items(db, attempt)[0]
    save(db, attempt, question["id"], question["right"][:1], 1, T0 + timedelta(minutes=1))
    db.commit()
    with pytest.raises(Exception, match="append-only|refused"):
        db.execute(text("UPDATE response_log SET choices = '[]'"))
    db.rollback()
