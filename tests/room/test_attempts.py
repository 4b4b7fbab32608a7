"""The attempt's state machine (exam/room/attempts.py), tested directly with ``now`` passed in: the clock
and its sections, saves (sequenced, idempotent), submission and the deadline sweep. The helpers here (a
login, a started attempt, its items with the key, a save) serve the room's other rule tests too."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from exam.audit.models import AuditEntry
from exam.core.db import Driver
from exam.room import attempt_view, attempts, history, sessions
from exam.room.errors import RoomError
from exam.room.models import Attempt, Response, ResponseLog
from exam.setup.models import Candidate, PaperItem
from exam.setup.sittings import current_access_code
from question_bank.models import QuestionVersion
from tests.factories import make_ready_candidate, make_ready_candidates

T0 = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
GRACE = timedelta(seconds=10)
MACHINE = "10.1.1.21 Mozilla/5.0 (Windows NT 10.0)"
OTHER_MACHINE = "10.1.1.22 Mozilla/5.0 (Windows NT 10.0)"


def login(db, candidate, now, *, machine=MACHINE, code=None, dob=None, number=None):
    return sessions.login(db, registration_no=number or candidate.registration_no,
                          date_of_birth=dob or candidate.date_of_birth,
                          access_code=code or current_access_code(candidate.sitting, now), machine=machine, now=now)


def sections_of(db, candidate):
    return attempts.exam_sections(db, candidate.exam_id)


def started(db, candidate, now=T0 + timedelta(minutes=1)):
    result = login(db, candidate, now)
    attempts.start(db, result.attempt, candidate.sitting, sections_of(db, candidate), now=now)
    return result.attempt


def items(db, attempt):
    """Paper items in order with the ids of their right and wrong options (the test knows the key)."""
    found = []
    for item in db.scalars(select(PaperItem).where(PaperItem.paper_id == attempt.paper_id)
                           .order_by(PaperItem.position)):
        version = db.get(QuestionVersion, item.question_version_id)
        right = [oid for oid, original in zip(item.option_ids, item.option_order, strict=True)
                 if version.options[original]["correct"]]
        wrong = [oid for oid in item.option_ids if oid not in right]
        found.append({"item": item, "id": item.public_id, "right": right, "wrong": wrong, "type": version.qtype,
                      "section": next(s.position for s in item_sections(db, attempt) if s.id == item.section_id)})
    return found


def item_sections(db, attempt):
    candidate = db.get(Candidate, attempt.candidate_id)
    return sections_of(db, candidate)


def save(db, attempt, question, choices, seq, now, flagged=None, machine=MACHINE):
    return attempts.save_answer(db, attempt, item_sections(db, attempt), question_id=question, choices=choices,
                                seq=seq, flagged=flagged, machine=machine, now=now, grace=GRACE)


def audit_entries(db, action):
    return db.scalars(select(AuditEntry).where(AuditEntry.action == action)
                      .order_by(AuditEntry.seq)).all()


# --- the clock ------------------------------------------------------------------------------------------

def test_start_sets_absolute_deadlines_and_is_idempotent(db):
    candidate = make_ready_candidate(db, starts_at=T0)  # 10 + 5 minutes, sitting of 30
    now = T0 + timedelta(minutes=1)
    attempt = started(db, candidate, now)
    assert attempt.status == "in_progress" and attempt.started_at == now
    assert attempt.deadline == now + timedelta(minutes=15)
    assert (attempt.section_position, attempt.section_deadline) == (1, now + timedelta(minutes=10))
    attempts.start(db, attempt, candidate.sitting, sections_of(db, candidate), now=now + timedelta(minutes=3))
    assert attempt.started_at == now and attempt.deadline == now + timedelta(minutes=15)
    db.commit()
    assert len(audit_entries(db, "attempt.start")) == 1


def test_a_late_starter_gets_at_most_the_sitting_end(db):
    candidate = make_ready_candidate(db, starts_at=T0, minutes=20)  # sitting ends at T0 + 20 min
    now = T0 + timedelta(minutes=8)
    attempt = started(db, candidate, now)
    assert attempt.deadline == T0 + timedelta(minutes=20)  # not now + 15 min
    assert attempt.section_deadline == now + timedelta(minutes=10)
    moment = attempts.clock(attempt, sections_of(db, candidate), now + timedelta(minutes=10))
    assert (moment.position, moment.section_deadline) == (2, T0 + timedelta(minutes=20))  # 2 of its 5 minutes
    later = make_ready_candidate(db, exam=candidate.exam, sitting=candidate.sitting)
    attempt = started(db, later, T0 + timedelta(minutes=12))
    assert attempt.section_deadline == attempt.deadline == T0 + timedelta(minutes=20)


def test_sections_close_on_time_and_the_next_opens_at_that_deadline(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    first_close = attempt.section_deadline
    paper = items(db, attempt)
    in_first = [q for q in paper if q["section"] == 1]
    in_second = [q for q in paper if q["section"] == 2]
    # Before the close, the second section is not shown: its questions are "not found".
    with pytest.raises(RoomError, match="not_found"):
        save(db, attempt, in_second[0]["id"], in_second[0]["right"][:1], 1, first_close - timedelta(seconds=1))
    # A save sent just before the close and arriving within the grace is kept.
    save(db, attempt, in_first[0]["id"], in_first[0]["right"][:1], 2, first_close + timedelta(seconds=5))
    assert attempt.section_position == 2 and attempt.section_started_at == first_close
    assert attempt.section_deadline == first_close + timedelta(minutes=5)
    with pytest.raises(RoomError, match="section_closed"):
        save(db, attempt, in_first[1]["id"], in_first[1]["right"][:1], 3, first_close + GRACE + timedelta(seconds=1))
    save(db, attempt, in_second[0]["id"], in_second[0]["right"][:1], 4, first_close + timedelta(minutes=1))


def test_the_clock_is_lazy_and_reads_write_nothing(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    db.commit()
    later = T0 + timedelta(minutes=11)
    moment = attempts.clock(attempt, sections_of(db, candidate), later)
    assert moment.position == 2 and moment.section_started_at == T0 + timedelta(minutes=10)
    assert attempt.section_position == 1 and not db.dirty  # nothing persisted by reading
    attempts.heartbeat(db, attempt, sections_of(db, candidate), now=later)
    assert attempt.section_position == 2 and attempt.last_heartbeat_at == later


def test_closing_a_section_early_opens_the_next_with_its_own_minutes(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    now = T0 + timedelta(minutes=3)
    attempts.next_section(db, attempt, sections_of(db, candidate), now=now)
    assert (attempt.section_position, attempt.section_started_at) == (2, now)
    # The last section: 5 minutes from now; the attempt ends with it.
    assert attempt.section_deadline == attempt.deadline == now + timedelta(minutes=5)
    with pytest.raises(RoomError, match="last_section"):
        attempts.next_section(db, attempt, sections_of(db, candidate), now=now + timedelta(seconds=1))


# --- saves ----------------------------------------------------------------------------------------------

def test_a_stale_save_never_overwrites_a_newer_one(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    question = items(db, attempt)[0]
    now = T0 + timedelta(minutes=2)
    save(db, attempt, question["id"], question["right"][:1], 5, now)
    with pytest.raises(RoomError) as stale:
        save(db, attempt, question["id"], question["wrong"][:1], 3, now + timedelta(seconds=1))
    assert stale.value.code == "stale_seq" and stale.value.details == {"current_seq": 5}
    stored = db.scalar(select(Response).where(Response.attempt_id == attempt.id))
    assert (stored.seq, stored.choices) == (5, question["right"][:1])
    # Another question's older seq is not stale: seq orders changes of one question.
    other = items(db, attempt)[1]
    save(db, attempt, other["id"], other["wrong"][:1], 4, now + timedelta(seconds=2))
    assert attempt.last_seq == 5 and attempt.history_count == 2


def test_the_same_save_twice_is_acknowledged_once(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    question = items(db, attempt)[0]
    now = T0 + timedelta(minutes=2)
    first = save(db, attempt, question["id"], question["wrong"][:1], 7, now, flagged=True)
    replay = save(db, attempt, question["id"], question["wrong"][:1], 7, now + timedelta(seconds=3), flagged=True)
    assert not first.replay and replay.replay and replay.saved_at == first.saved_at
    assert db.scalar(select(func.count()).select_from(ResponseLog)) == 1 and attempt.history_count == 1
    with pytest.raises(RoomError, match="stale_seq"):  # the same seq with another body is not a replay
        save(db, attempt, question["id"], question["right"][:1], 7, now + timedelta(seconds=4))
    # flagged omitted keeps the stored flag.
    save(db, attempt, question["id"], question["right"][:1], 8, now + timedelta(seconds=5))
    assert db.scalar(select(Response.flagged).where(Response.attempt_id == attempt.id)) is True


def test_choices_must_be_options_of_that_question(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    paper = items(db, attempt)
    single = next(q for q in paper if q["type"] == "single" and q["section"] == 1)
    other = next(q for q in paper if q["id"] != single["id"])
    now = T0 + timedelta(minutes=1)
    for choices in ([other["right"][0]], single["wrong"][:2], ["x"], [single["right"][0]] * 2, [1]):
        with pytest.raises(RoomError, match="invalid_choice"):
            save(db, attempt, single["id"], choices, 1, now)
    with pytest.raises(RoomError, match="invalid_request"):
        save(db, attempt, single["id"], "abc", 1, now)
    for seq in (0, -1, "3", 2**31, True, None):
        with pytest.raises(RoomError, match="invalid_request"):
            save(db, attempt, single["id"], [], seq, now)
    # An empty list clears the answer; choices are stored in the paper's order.
    save(db, attempt, single["id"], [], 1, now)
    multiple = next((q for q in paper if q["type"] == "multiple" and q["section"] == 1), None)
    if multiple:
        save(db, attempt, multiple["id"], list(reversed(multiple["item"].option_ids[:2])), 2, now)
        stored = db.scalar(select(Response.choices).where(Response.item_id == multiple["item"].id))
        assert stored == multiple["item"].option_ids[:2]


def test_another_candidates_question_is_not_found_like_a_missing_one(db):
    mine, theirs = make_ready_candidates(db, 2, starts_at=T0)
    my_attempt = started(db, mine, T0)
    their_attempt = started(db, theirs, T0)
    their_question = items(db, their_attempt)[0]
    mine_ids = {q["id"] for q in items(db, my_attempt)}
    assert their_question["id"] not in mine_ids
    errors = []
    for question_id in (their_question["id"], "0123456789abcdef"):
        with pytest.raises(RoomError) as refused:
            save(db, my_attempt, question_id, their_question["right"][:1], 1, T0 + timedelta(minutes=1))
        errors.append((refused.value.code, refused.value.details))
    assert errors[0] == errors[1] == ("not_found", {})


# --- submission and the deadline ----------------------------------------------------------------------

def test_submission_grades_the_saved_answers(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    paper = items(db, attempt)
    first = [q for q in paper if q["section"] == 1]
    now = T0 + timedelta(minutes=1)
    seq = 0
    for question in first[:3]:  # 3 of 5 right in section 1: passed (≥ 50%)
        seq += 1
        save(db, attempt, question["id"], question["right"], seq, now)
    seq += 1
    save(db, attempt, first[3]["id"], first[3]["wrong"][:1], seq, now)
    attempts.submit(db, attempt, item_sections(db, attempt), now=now + timedelta(minutes=1))
    assert attempt.status == "submitted" and attempt.submitted_by == "candidate"
    general, language = attempt.score["sections"]
    assert (general["correct"], general["answered"], general["score"], general["passed"]) == (3, 4, 3.0, True)
    assert (language["correct"], language["passed"]) == (0, False)
    assert attempt.score["passed"] is False and attempt.score["total"] == 3.0
    # Final: no more saves, a second submit changes nothing.
    with pytest.raises(RoomError, match="submitted"):
        save(db, attempt, first[4]["id"], first[4]["right"], seq + 1, now + timedelta(minutes=2))
    attempts.submit(db, attempt, item_sections(db, attempt), now=now + timedelta(minutes=3))
    assert attempt.submitted_at == now + timedelta(minutes=1)
    db.commit()
    assert len(audit_entries(db, "attempt.submit")) == 1


def test_the_deadline_submits_without_the_client_with_every_saved_answer(db):
    present, absent = make_ready_candidates(db, 2, starts_at=T0)
    attempt = started(db, absent, T0)
    other = started(db, present, T0 + timedelta(minutes=5))
    paper = items(db, attempt)
    for seq, question in enumerate(paper[:3], start=1):
        save(db, attempt, question["id"], question["right"], seq, T0 + timedelta(minutes=1))
    db.commit()  # ... and the machine is switched off.
    assert attempts.close_overdue(db, attempt.deadline + GRACE, GRACE) == []  # not yet: the grace still runs
    after = attempt.deadline + GRACE + timedelta(seconds=1)
    closed = attempts.close_overdue(db, after, GRACE)
    db.commit()
    assert [a.id for a in closed] == [attempt.id]
    db.expire_all()
    attempt = db.get(Attempt, attempt.id)
    assert (attempt.status, attempt.submitted_by, attempt.submitted_at) == ("submitted", "deadline", attempt.deadline)
    assert attempt.section_position == 2
    assert sum(s["correct"] for s in attempt.score["sections"]) == 3
    assert db.get(Attempt, other.id).status == "in_progress"  # started later: still running
    entry = audit_entries(db, "attempt.submit")[-1]
    assert entry.actor == "system" and json.loads(entry.details)["history_count"] == 3
    # A late save is refused.
    with pytest.raises(RoomError, match="deadline_passed"):
        save(db, attempt, paper[4]["id"], paper[4]["right"], 9, after)


def test_a_late_save_submits_an_overdue_attempt_and_is_refused(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    question = items(db, attempt)[0]
    save(db, attempt, question["id"], question["right"], 1, T0 + timedelta(minutes=1))
    with pytest.raises(RoomError, match="deadline_passed"):
        save(db, attempt, question["id"], question["wrong"][:1], 2, attempt.deadline + GRACE + timedelta(seconds=1))
    db.commit()
    assert attempt.status == "submitted" and attempt.submitted_by == "deadline"
    assert db.scalar(select(Response.seq).where(Response.attempt_id == attempt.id)) == 1


def test_two_sweepers_never_submit_the_same_attempt_twice(app, db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    db.commit()
    late = attempt.deadline + timedelta(minutes=1)
    other = app.extensions["exam_db"].sessionmaker()
    try:
        stale_copy = other.get(Attempt, attempt.id)  # a second sweeper that read the attempt earlier
        assert stale_copy.status == "in_progress"
        other.rollback()
        assert len(attempts.close_overdue(db, late, GRACE)) == 1
        db.commit()
        set_committed_value(stale_copy, "status", "in_progress")  # still believes it is open
        assert attempts.finish(other, [stale_copy], by="deadline", actor="system", now=late) == []
        other.commit()
    finally:
        other.close()
    assert len(audit_entries(db, "attempt.submit")) == 1


def test_resume_after_a_crash_keeps_every_acknowledged_answer(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    attempt = started(db, candidate, T0)
    paper = items(db, attempt)
    for seq, question in enumerate(paper[:3], start=1):
        save(db, attempt, question["id"], question["wrong"][:1], seq, T0 + timedelta(minutes=1))
    db.commit()
    again = login(db, candidate, T0 + timedelta(minutes=20))  # past late entry: started, so admitted
    assert again.attempt.id == attempt.id and again.attempt.last_seq == 3
    answers = attempt_view.saved_answers(db, again.attempt)
    assert {k: v["choices"] for k, v in answers.items()} == {q["id"]: q["wrong"][:1] for q in paper[:3]}


# --- the exam room's token path: the driver-level usual case and the ORM rule agree ---------------------------

def token_save(db, token, question, choices, seq, now, flagged=None):
    return attempts.save_answer_for_token(db, token, question_id=question, choices=choices, seq=seq,
                                          flagged=flagged, machine=MACHINE, now=now, grace=GRACE)


def test_token_saves_follow_the_same_rule_as_saves_on_the_attempt(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    result = login(db, candidate, T0)
    attempt = result.attempt
    attempts.start(db, attempt, candidate.sitting, sections_of(db, candidate), now=T0)
    db.commit()
    paper = items(db, attempt)
    first, second = [q for q in paper if q["section"] == 1][:2]
    later = [q for q in paper if q["section"] == 2][0]
    now = T0 + timedelta(minutes=1)
    receipt = token_save(db, result.token, first["id"], first["wrong"][:1], 3, now, flagged=True)
    assert (receipt.seq, receipt.replay) == (3, False)
    assert token_save(db, result.token, first["id"], first["wrong"][:1], 3, now).replay  # same seq, same body
    with pytest.raises(RoomError) as stale:
        token_save(db, result.token, first["id"], first["right"][:1], 2, now)
    assert stale.value.details == {"current_seq": 3}
    with pytest.raises(RoomError, match="not_found"):  # the next section is not open yet
        token_save(db, result.token, later["id"], later["right"][:1], 4, now)
    with pytest.raises(RoomError, match="invalid_choice"):
        token_save(db, result.token, first["id"], second["right"][:1], 4, now)
    token_save(db, result.token, first["id"], first["right"][:1], 4, now)  # flag omitted: kept
    stored = db.scalar(select(Response).where(Response.attempt_id == attempt.id))
    assert (stored.seq, stored.choices, stored.flagged) == (4, first["right"][:1], True)

    # The first section's close has passed: the stored clock is stale, so the rule settles it first.
    rolled = attempt.section_deadline + timedelta(minutes=1)
    token_save(db, result.token, later["id"], later["right"][:1], 5, rolled)
    db.expire_all()
    assert attempt.section_position == 2 and attempt.last_seq == 5 and attempt.history_count == 3
    assert history.verify_attempt_history(db, attempt).ok

    # A paused room refuses; an ended token has no attempt.
    candidate.sitting.paused_at = rolled
    db.flush()
    with pytest.raises(RoomError, match="room_paused"):
        token_save(db, result.token, later["id"], later["wrong"][:1], 6, rolled + timedelta(seconds=1))
    candidate.sitting.paused_at = None
    sessions.logout(db, sessions.session_for_token(db, result.token)[0], candidate, now=rolled)
    assert token_save(db, result.token, later["id"], later["wrong"][:1], 6, rolled) is None
    assert attempts.live_attempt(Driver(db), result.token) is None


def test_a_token_heartbeat_updates_the_machine_and_an_outage_is_audited(db):
    candidate = make_ready_candidate(db, starts_at=T0)
    result = login(db, candidate, T0)
    attempts.start(db, result.attempt, candidate.sitting, sections_of(db, candidate), now=T0)
    attempts.heartbeat(db, result.attempt, sections_of(db, candidate), now=T0)
    db.commit()
    now = T0 + timedelta(seconds=20)
    head, moment, paused_at = attempts.heartbeat_for_token(db, result.token, now=now, grace=GRACE)
    assert paused_at is None and moment.position == 1 and moment.deadline == result.attempt.deadline
    db.expire_all()
    assert result.attempt.last_heartbeat_at == now and not audit_entries(db, "attempt.reconnect")
    back = now + attempts.DISCONNECTED_AFTER + timedelta(seconds=5)  # the machine was out: audited
    attempt, moment, _ = attempts.heartbeat_for_token(db, result.token, now=back, grace=GRACE)
    assert attempt.last_heartbeat_at == back
    assert json.loads(audit_entries(db, "attempt.reconnect")[0].details)["seconds"] == 65
