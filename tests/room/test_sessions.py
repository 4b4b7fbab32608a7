"""Lab-machine sessions (exam/room/sessions.py), tested directly with ``now`` passed in: the login and its
refusals (all audited), the token stored only as its hash, and the one-live-session rule until the
proctor admits a move."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from exam.room import sessions
from exam.room.errors import RoomError
from exam.room.models import CandidateSession
from exam.setup.sittings import ACCESS_CODE_SECONDS, current_access_code
from tests.factories import make_ready_candidate, make_ready_candidates
from tests.room.test_attempts import MACHINE, OTHER_MACHINE, T0, audit_entries, login, started


def test_login_gives_a_token_stored_only_as_its_hash_and_is_audited(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    result = login(db, candidate, T0 + timedelta(minutes=2))
    db.commit()
    stored = db.scalar(select(CandidateSession).where(CandidateSession.candidate_id == candidate.id))
    assert stored.token_hash == sessions.hash_token(result.token) != result.token
    assert result.attempt.status == "not_started" and len(result.attempt.public_id) == 24
    assert sessions.session_for_token(db, result.token)[1].id == candidate.id
    entry = audit_entries(db, "candidate.login")[-1]
    assert entry.actor == f"candidate:{candidate.registration_no}" and MACHINE in entry.details


def test_unknown_number_and_wrong_birth_date_get_the_same_refusal_and_are_audited(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    now = T0 + timedelta(minutes=2)
    with pytest.raises(RoomError) as unknown:
        login(db, candidate, now, number="KHONG-CO-9999")
    with pytest.raises(RoomError) as wrong_dob:
        login(db, candidate, now, dob=date(1970, 1, 1))
    assert unknown.value.code == wrong_dob.value.code == "bad_credentials"
    assert unknown.value.details == wrong_dob.value.details == {}
    db.commit()
    failures = audit_entries(db, "candidate.login_failed")
    assert [e.actor for e in failures] == ["candidate:KHONG-CO-9999", f"candidate:{candidate.registration_no}"]
    assert db.scalar(select(func.count()).select_from(CandidateSession)) == 0


def test_wrong_expired_and_other_room_access_codes_are_refused(db):
    first, = make_ready_candidates(db, 1, starts_at=T0, room="P.101")
    other, = make_ready_candidates(db, 1, starts_at=T0, room="P.102")
    now = T0 + timedelta(minutes=5)
    current = current_access_code(first.sitting, now)
    expired = current_access_code(first.sitting, now - timedelta(seconds=2 * ACCESS_CODE_SECONDS))
    other_room = current_access_code(other.sitting, now)
    wrong = f"{(int(current) + 1) % 1_000_000:06d}"
    for code in {wrong, expired, other_room} - {current}:
        with pytest.raises(RoomError) as refused:
            login(db, first, now, code=code)
        assert refused.value.code == "bad_access_code", code
    # The code shown just before the rotation is still accepted (a candidate mid-typing).
    previous = current_access_code(first.sitting, now - timedelta(seconds=ACCESS_CODE_SECONDS))
    assert login(db, first, now, code=previous).token


def test_no_login_before_the_sitting_and_none_after_late_entry_unless_started(db):
    early, late = make_ready_candidates(db, 2, starts_at=T0)
    with pytest.raises(RoomError, match="sitting_not_started"):
        login(db, early, T0 - timedelta(seconds=30))
    attempt = started(db, early, T0 + timedelta(minutes=1))
    after_window = T0 + timedelta(minutes=early.sitting.late_entry_minutes, seconds=1)
    with pytest.raises(RoomError, match="late_entry_closed"):
        login(db, late, after_window)
    # The candidate who started long ago may come back (machine crash), from the same machine.
    assert login(db, early, after_window).attempt.id == attempt.id


def test_one_live_session_until_the_proctor_admits_a_move(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    now = T0 + timedelta(minutes=2)
    first = login(db, candidate, now)
    with pytest.raises(RoomError, match="active_elsewhere"):
        login(db, candidate, now, machine=OTHER_MACHINE)
    # The same machine (same address) may sign in again: the old token dies.
    again = login(db, candidate, now + timedelta(seconds=5), machine=MACHINE.split()[0] + " Chrome/120")
    assert sessions.session_for_token(db, first.token) is None
    assert sessions.ended_session(db, first.token).end_reason == "replaced"
    ended = sessions.admit_move(db, candidate, actor="giamthi", reason="máy 21 hỏng bàn phím", now=now + timedelta(
        seconds=10))
    assert ended == 1 and candidate.move_admitted_at is not None
    assert sessions.session_for_token(db, again.token) is None
    assert sessions.ended_session(db, again.token).end_reason == "moved"
    moved = login(db, candidate, now + timedelta(seconds=20), machine=OTHER_MACHINE)
    assert sessions.session_for_token(db, moved.token) is not None
    # The admission is used up: the broken machine cannot take the session back.
    with pytest.raises(RoomError, match="active_elsewhere"):
        login(db, candidate, now + timedelta(seconds=30), machine=MACHINE)
    db.commit()
    assert audit_entries(db, "candidate.admit_move")[0].actor == "giamthi"
    with pytest.raises(ValueError, match="reason"):
        sessions.admit_move(db, candidate, actor="giamthi", reason=" ", now=now)
