"""The proctor's rules, tested directly with ``now`` passed in: opening the sitting, the late-entry
cut-off, pause and resume (time left identical), extensions, compensation from the last heartbeat,
force-submit, absence, moves, the door, incidents; every action refused without a reason. What the
console shows and the sitting's report: test_room_state.py."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from exam.audit.models import AuditEntry
from exam.room import attempts, sessions
from exam.room.errors import RoomError
from exam.room.models import CandidateSession
from exam.setup.models import Candidate, PaperItem
from exam.setup.sittings import current_access_code
from proctor import room, room_state
from proctor.models import Incident
from proctor.room import ProctorError
from tests.factories import make_exam, make_ready_candidates, make_sitting

T0 = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
GRACE = timedelta(seconds=10)
MACHINE = "10.1.1.21 Mozilla/5.0 (Windows NT 10.0)"
ACTOR = "giamthi"
# SMALL_SECTIONS: "general" 10 minutes then "language" 5 minutes; the sitting lasts 30 minutes.
S1, S2 = timedelta(minutes=10), timedelta(minutes=5)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def room_of(db, n=2, *, opened=True, starts_at=T0, minutes_long=None):
    """n seated candidates with papers in a sitting starting at T0 (opened at T0 unless told)."""
    exam = make_exam(db)
    sitting = make_sitting(db, exam, starts_at=starts_at, minutes=minutes_long, opened=opened)
    return sitting, make_ready_candidates(db, n, exam=exam, sitting=sitting)


def login(db, candidate, now, machine=MACHINE):
    return sessions.login(db, registration_no=candidate.registration_no, date_of_birth=candidate.date_of_birth,
                          access_code=current_access_code(candidate.sitting, now), machine=machine, now=now)


def sections(db, candidate):
    return attempts.exam_sections(db, candidate.exam_id)


def started(db, candidate, now):
    result = login(db, candidate, now)
    attempts.start(db, result.attempt, candidate.sitting, sections(db, candidate), now=now, grace=GRACE)
    return result.attempt


def time_left(db, attempt, sitting, now):
    """(section, whole attempt) time left as the candidate is shown it at ``now``."""
    candidate = db.get(Candidate, attempt.candidate_id)
    moment = attempts.room_clock(attempt, sections(db, candidate), now, sitting.paused_at)
    return moment.section_deadline - now, moment.deadline - now, moment.position


def entries(db, action):
    return [json.loads(e.details) | {"_actor": e.actor, "_object": e.object_id}
            for e in db.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                .order_by(AuditEntry.seq))]


def first_question(db, attempt, section=1):
    candidate = db.get(Candidate, attempt.candidate_id)
    section_id = next(s.id for s in sections(db, candidate) if s.position == section)
    item = db.scalar(select(PaperItem).where(PaperItem.paper_id == attempt.paper_id,
                                             PaperItem.section_id == section_id).order_by(PaperItem.position))
    return item.public_id, item.option_ids


# --- every action says why ----------------------------------------------------------------------------

def test_every_action_is_refused_without_a_reason_and_changes_nothing(db):
    sitting, (first, second, third) = room_of(db, 3, opened=False)
    now = T0 + minutes(1)
    room.open_sitting(db, sitting, actor=ACTOR, reason="Bắt đầu đúng giờ", now=now)
    attempt = started(db, first, now)
    login(db, second, now, machine="10.1.1.22 Chrome")
    db.commit()
    before_audit = db.scalar(select(func.count()).select_from(AuditEntry))
    snapshot = (attempt.deadline, attempt.section_deadline, attempt.extra_seconds, attempt.status)
    later = now + minutes(2)
    actions = {
        "open": lambda r: room.open_sitting(db, sitting, actor=ACTOR, reason=r, now=later),
        "pause": lambda r: room.pause_room(db, sitting, actor=ACTOR, reason=r, now=later),
        "resume": lambda r: room.resume_room(db, sitting, actor=ACTOR, reason=r, now=later),
        "extend": lambda r: room.extend_time(db, first, seconds=300, actor=ACTOR, reason=r, now=later),
        "compensate": lambda r: room.grant_compensation(db, first, actor=ACTOR, reason=r, now=later),
        "force_submit": lambda r: room.force_submit(db, first, actor=ACTOR, reason=r, now=later),
        "absent": lambda r: room.mark_absent(db, third, actor=ACTOR, reason=r, now=later),
        "present": lambda r: room.clear_absent(db, third, actor=ACTOR, reason=r, now=later),
        "move": lambda r: room.admit_move(db, second, actor=ACTOR, reason=r, now=later),
        "check_in": lambda r: room.check_in(db, sitting, third.registration_no, actor=ACTOR, reason=r, now=later),
        "incident": lambda r: room.note_incident(db, sitting, kind="note", description=r, actor=ACTOR, now=later),
    }
    for name, action in actions.items():
        for blank in ("", "   \n\t", None):
            with pytest.raises(ProctorError) as refused:
                action(blank)
            assert refused.value.code == "reason_required", name
    db.commit()
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == before_audit
    db.refresh(attempt)
    assert (attempt.deadline, attempt.section_deadline, attempt.extra_seconds, attempt.status) == snapshot
    assert sitting.paused_at is None and third.absent_at is None and third.checked_in_at is None
    assert db.scalar(select(func.count()).select_from(Incident)) == 0
    assert db.scalar(select(func.count()).select_from(CandidateSession)
                     .where(CandidateSession.ended_at.is_not(None))) == 0
    with pytest.raises(ProctorError, match="reason_too_long"):
        room.pause_room(db, sitting, actor=ACTOR, reason="x" * (room.MAX_REASON + 1), now=later)


# --- opening the sitting and the door -----------------------------------------------------------------

def test_candidates_sign_in_but_start_only_once_the_proctor_opens_the_sitting(db):
    sitting, (candidate,) = room_of(db, 1, opened=False)
    result = login(db, candidate, T0 + minutes(1))  # signing in is fine: reading the instructions
    with pytest.raises(RoomError, match="sitting_not_open"):
        attempts.start(db, result.attempt, sitting, sections(db, candidate), now=T0 + minutes(1))
    assert result.attempt.status == "not_started"
    with pytest.raises(ProctorError, match="too_early"):
        room.open_sitting(db, sitting, actor=ACTOR, reason="Sớm", now=T0 - minutes(1))
    opened = T0 + minutes(3)
    room.open_sitting(db, sitting, actor=ACTOR, reason="Đã phổ biến quy chế", now=opened)
    with pytest.raises(ProctorError, match="already_open"):
        room.open_sitting(db, sitting, actor=ACTOR, reason="Lần hai", now=opened)
    attempt = attempts.start(db, result.attempt, sitting, sections(db, candidate), now=opened + minutes(1))
    assert attempt.status == "in_progress" and attempt.deadline == opened + minutes(1) + S1 + S2
    db.commit()
    (entry,) = entries(db, "sitting.open")
    assert entry["reason"] == "Đã phổ biến quy chế" and entry["_actor"] == ACTOR
    assert entry["late_entry_until"].startswith("2026-06-15T01:18:00")  # opened 08:03 + 15 minutes


def test_the_starts_at_rule_still_holds(db):
    sitting, (candidate,) = room_of(db, 1, opened=False)
    with pytest.raises(RoomError, match="sitting_not_started"):
        login(db, candidate, T0 - minutes(1))
    sitting.opened_at = T0 - minutes(5)  # even if opened early by hand: no start before starts_at
    result = login(db, candidate, T0)
    with pytest.raises(RoomError, match="sitting_not_started"):
        attempts.start(db, result.attempt, sitting, sections(db, candidate), now=T0 - timedelta(seconds=1))


def test_the_late_entry_cut_off_counts_from_the_opening_and_stops_during_a_pause(db):
    sitting, (early, late, later) = room_of(db, 3, opened=False)
    assert sessions.late_entry_cutoff(sitting, T0 + minutes(40)) is None  # not opened: nobody turned away
    login(db, early, T0 + minutes(25))  # the proctor is late; candidates may still come in
    room.open_sitting(db, sitting, actor=ACTOR, reason="Máy chủ khởi động chậm", now=T0 + minutes(20))
    assert sessions.late_entry_cutoff(sitting, T0 + minutes(21)) == T0 + minutes(35)
    login(db, late, T0 + minutes(34))
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=T0 + minutes(30))
    room.resume_room(db, sitting, actor=ACTOR, reason="Có điện", now=T0 + minutes(33))
    assert sessions.late_entry_cutoff(sitting, T0 + minutes(34)) == T0 + minutes(38)  # + the 3-minute pause
    login(db, later, T0 + minutes(37))
    latest = make_ready_candidates(db, 1, exam=early.exam, sitting=sitting)[0]
    with pytest.raises(RoomError, match="late_entry_closed"):
        login(db, latest, T0 + minutes(38) + timedelta(seconds=1))


# --- pause and resume ---------------------------------------------------------------------------------

def test_pause_and_resume_keep_everyones_time_left_identical(db):
    sitting, (a, b, c) = room_of(db, 3)
    first = started(db, a, T0 + minutes(1))  # section 1 until 08:11
    second = started(db, b, T0 + minutes(4))  # section 1 until 08:14
    third = started(db, c, T0 + minutes(1))
    attempts.next_section(db, third, sections(db, c), now=T0 + minutes(8))  # section 2 until 08:13
    ends_at = sitting.ends_at
    pause_at = T0 + minutes(9)
    before = {x.id: time_left(db, x, sitting, pause_at) for x in (first, second, third)}
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện toàn phòng", now=pause_at)
    db.commit()

    # While paused: the clocks stand still, whatever the time.
    for waited in (minutes(1), minutes(3), minutes(7)):
        for attempt in (first, second, third):
            assert time_left(db, attempt, sitting, pause_at + waited) == before[attempt.id]
    during = pause_at + minutes(7)  # first's and third's sections were due to close at 08:11 and 08:13
    question, options = first_question(db, first)
    with pytest.raises(RoomError, match="room_paused"):
        attempts.save_answer(db, first, sections(db, a), question_id=question, choices=[options[0]], seq=1,
                             flagged=None, machine=MACHINE, now=during, grace=GRACE)
    attempts.heartbeat(db, first, sections(db, a), now=during, grace=GRACE)
    assert first.section_position == 1 and first.status == "in_progress"  # nothing rolled over
    with pytest.raises(RoomError, match="room_paused"):
        attempts.next_section(db, first, sections(db, a), now=during, grace=GRACE)
    with pytest.raises(RoomError, match="room_paused"):
        attempts.submit(db, first, sections(db, a), now=during, grace=GRACE)
    late_to_start = make_ready_candidates(db, 1, exam=a.exam, sitting=sitting)[0]
    with pytest.raises(RoomError, match="room_paused"):
        started(db, late_to_start, during)
    # The sweeper leaves the room alone, even far past every deadline.
    far = T0 + minutes(60)
    assert not attempts.overdue_exists(db, far, GRACE)
    assert attempts.close_overdue(db, far, GRACE) == []
    db.commit()

    resume_at = pause_at + minutes(12)
    done = room.resume_room(db, sitting, actor=ACTOR, reason="Đã có điện lại", now=resume_at)
    assert (done.moved, done.submitted) == (3, 0) and done.seconds == 12 * 60
    for attempt in (first, second, third):
        assert time_left(db, attempt, sitting, resume_at) == before[attempt.id]
    assert first.section_deadline == T0 + minutes(11) + minutes(12)
    assert third.section_position == 2 and third.deadline == T0 + minutes(13) + minutes(12)
    assert sitting.paused_at is None and sitting.paused_seconds == 720 and sitting.ends_at == ends_at + minutes(12)
    # Saves go through again; the clock runs on.
    attempts.save_answer(db, first, sections(db, a), question_id=question, choices=[options[0]], seq=1,
                         flagged=None, machine=MACHINE, now=resume_at + minutes(1), grace=GRACE)
    assert time_left(db, first, sitting, resume_at + minutes(1))[0] == before[first.id][0] - minutes(1)
    # A second pause adds up.
    room.pause_room(db, sitting, actor=ACTOR, reason="Chập điện", now=resume_at + minutes(2))
    room.resume_room(db, sitting, actor=ACTOR, reason="Ổn định", now=resume_at + minutes(2.5))
    assert sitting.paused_seconds == 750
    db.commit()
    pauses, resumes = entries(db, "sitting.pause"), entries(db, "sitting.resume")
    assert [p["reason"] for p in pauses] == ["Mất điện toàn phòng", "Chập điện"]
    assert resumes[0]["seconds"] == 720 and resumes[0]["attempts_moved"] == 3


def test_an_attempt_overdue_before_the_pause_is_submitted_at_the_resume_not_revived(db):
    sitting, (candidate,) = room_of(db, 1)
    attempt = started(db, candidate, T0 + minutes(1))
    attempt.deadline = attempt.section_deadline = T0 + minutes(5)  # as if its time ran out at 08:05
    attempt.section_position = 2
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=T0 + minutes(6))
    done = room.resume_room(db, sitting, actor=ACTOR, reason="Có điện", now=T0 + minutes(16))
    assert (done.moved, done.submitted) == (0, 1)
    assert attempt.status == "submitted" and attempt.submitted_by == "deadline"
    assert attempt.submitted_at == T0 + minutes(5)


def test_pause_needs_an_open_sitting_and_resume_a_paused_one(db):
    sitting, _ = room_of(db, 1, opened=False)
    with pytest.raises(ProctorError, match="not_open"):
        room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=T0 + minutes(1))
    room.open_sitting(db, sitting, actor=ACTOR, reason="Bắt đầu", now=T0 + minutes(1))
    with pytest.raises(ProctorError, match="not_paused"):
        room.resume_room(db, sitting, actor=ACTOR, reason="Tiếp tục", now=T0 + minutes(2))
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=T0 + minutes(2))
    with pytest.raises(ProctorError, match="already_paused"):
        room.pause_room(db, sitting, actor=ACTOR, reason="Lần nữa", now=T0 + minutes(3))


# --- extensions ---------------------------------------------------------------------------------------

def test_an_extension_lengthens_the_open_section_and_the_attempt(db):
    sitting, (candidate,) = room_of(db, 1)
    attempt = started(db, candidate, T0 + minutes(1))
    room.extend_time(db, candidate, seconds=300, actor=ACTOR, reason="Máy treo 5 phút", now=T0 + minutes(4))
    assert attempt.section_deadline == T0 + minutes(16) and attempt.deadline == T0 + minutes(21)
    assert attempt.extra_seconds == 300
    # The next section opens when the extended one closes and keeps its own minutes.
    moment = attempts.clock(attempt, sections(db, candidate), T0 + minutes(16))
    assert (moment.position, moment.section_deadline) == (2, T0 + minutes(21))
    # In the last section: the attempt may run past the sitting's end (08:30) for this candidate only.
    attempts.settle(db, attempt, sections(db, candidate), T0 + minutes(17), GRACE)
    room.extend_time(db, candidate, seconds=20 * 60, actor=ACTOR, reason="Bù sự cố điện", now=T0 + minutes(18))
    assert attempt.section_deadline == attempt.deadline == T0 + minutes(41) > sitting.ends_at == T0 + minutes(30)
    db.commit()
    grants = entries(db, "attempt.extend")
    assert [g["seconds"] for g in grants] == [300, 1200] and grants[0]["reason"] == "Máy treo 5 phút"
    assert grants[0]["registration_no"] == candidate.registration_no and grants[0]["_object"] == attempt.public_id


def test_time_granted_before_the_start_comes_on_top_even_for_a_late_starter(db):
    sitting, (early, late) = room_of(db, 2, minutes_long=20)  # the sitting ends at 08:20
    room.extend_time(db, early, seconds=600, actor=ACTOR, reason="Thí sinh khuyết tật", now=T0)
    attempt = started(db, early, T0 + minutes(1))
    assert attempt.deadline == T0 + minutes(26) and attempt.extra_seconds == 600
    room.extend_time(db, late, seconds=120, actor=ACTOR, reason="Gia hạn", now=T0 + minutes(8))
    attempt = started(db, late, T0 + minutes(8))
    assert attempt.deadline == sitting.ends_at + minutes(2)  # capped regular time, then the grant


def test_granted_time_not_used_carries_to_the_last_section_never_more(db):
    sitting, (candidate,) = room_of(db, 1)
    attempt = started(db, candidate, T0)
    room.extend_time(db, candidate, seconds=120, actor=ACTOR, reason="Máy chậm", now=T0 + minutes(1))
    attempts.next_section(db, attempt, sections(db, candidate), now=T0 + minutes(6))  # 6 of 12 minutes used
    # The last section: its 5 minutes plus the 2 granted, not yet used.
    assert attempt.section_deadline == attempt.deadline == T0 + minutes(13)
    assert attempt.deadline - attempt.started_at <= S1 + S2 + minutes(2)


def test_no_extension_once_submitted_or_overdue_or_for_nonsense(db):
    sitting, (a, b) = room_of(db, 2)
    attempt = started(db, a, T0 + minutes(1))
    for seconds in (0, -60, 10**6, "300", True):
        with pytest.raises(ProctorError, match="bad_seconds"):
            room.extend_time(db, a, seconds=seconds, actor=ACTOR, reason="Gia hạn", now=T0 + minutes(2))
    with pytest.raises(ProctorError, match="deadline_passed"):
        room.extend_time(db, a, seconds=60, actor=ACTOR, reason="Quá muộn", now=T0 + minutes(17))
    attempts.submit(db, attempt, sections(db, a), now=T0 + minutes(3), grace=GRACE)
    with pytest.raises(ProctorError, match="submitted"):
        room.extend_time(db, a, seconds=60, actor=ACTOR, reason="Gia hạn", now=T0 + minutes(4))


# --- compensation -------------------------------------------------------------------------------------

def test_compensation_is_the_outage_from_the_last_heartbeat_to_the_return(db):
    sitting, (candidate,) = room_of(db, 1)
    start = T0 + minutes(1)
    attempt = started(db, candidate, start)
    plan = sections(db, candidate)
    for beat in (20, 40, 60):
        attempts.heartbeat(db, attempt, plan, now=start + timedelta(seconds=beat), grace=GRACE)
    assert room.propose_compensation(db, candidate, start + timedelta(seconds=90)) is None  # no outage
    last = start + timedelta(seconds=60)
    # Still out four minutes later: the proposal runs up to now.
    ongoing = room.propose_compensation(db, candidate, last + minutes(4))
    assert ongoing.ongoing and ongoing.since == last and ongoing.seconds == 240
    # The machine comes back 5 minutes after its last heartbeat: the heartbeat ends the outage.
    back = last + minutes(5)
    attempts.heartbeat(db, attempt, plan, now=back, grace=GRACE)
    db.commit()
    (reconnect,) = entries(db, "attempt.reconnect")
    assert reconnect["seconds"] == 300 and reconnect["_object"] == attempt.public_id
    attempts.heartbeat(db, attempt, plan, now=back + timedelta(seconds=20), grace=GRACE)  # alive again
    proposal = room.propose_compensation(db, candidate, back + timedelta(seconds=30))
    assert (proposal.ongoing, proposal.outage_seconds, proposal.paused_seconds, proposal.seconds) == (False, 300, 0,
                                                                                                    300)
    deadline = attempt.section_deadline
    _attempt, granted = room.grant_compensation(db, candidate, actor=ACTOR, reason="Máy mất mạng 5 phút",
                                                now=back + timedelta(seconds=30))
    assert granted == 300 and attempt.section_deadline == deadline + minutes(5) and attempt.extra_seconds == 300
    # Given once: nothing more to propose for that outage.
    assert room.propose_compensation(db, candidate, back + timedelta(seconds=40)).seconds == 0
    with pytest.raises(ProctorError, match="nothing_to_compensate"):
        room.grant_compensation(db, candidate, actor=ACTOR, reason="Lần nữa", now=back + timedelta(seconds=40))
    db.commit()
    (grant,) = entries(db, "attempt.compensate")
    assert grant["seconds"] == 300 and grant["outage_seconds"] == 300 and grant["reason"] == "Máy mất mạng 5 phút"


def test_compensation_granted_while_still_out_then_the_rest_and_never_the_pause(db):
    sitting, (candidate,) = room_of(db, 1)
    start = T0 + minutes(1)
    attempt = started(db, candidate, start)  # the start is the first sign of life
    plan = sections(db, candidate)
    # Still out after 3 minutes: the proctor grants what is known so far, at most what they saw.
    _a, granted = room.grant_compensation(db, candidate, actor=ACTOR, reason="Máy treo", now=start + minutes(3),
                                          seconds=170)
    assert granted == 170
    # The room is paused for 2 minutes while the machine is still out; it comes back at 8 minutes.
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=start + minutes(4))
    room.resume_room(db, sitting, actor=ACTOR, reason="Có điện", now=start + minutes(6))
    attempts.heartbeat(db, attempt, plan, now=start + minutes(8), grace=GRACE)
    proposal = room.propose_compensation(db, candidate, start + minutes(9))
    assert (proposal.outage_seconds, proposal.paused_seconds, proposal.granted_seconds) == (480, 120, 170)
    assert proposal.seconds == 480 - 120 - 170


# --- force-submit, absence, moves, the door, incidents -------------------------------------------------

def test_force_submit_collects_the_attempt_with_its_saved_answers(db):
    sitting, (candidate, other) = room_of(db, 2)
    attempt = started(db, candidate, T0 + minutes(1))
    question, options = first_question(db, attempt)
    attempts.save_answer(db, attempt, sections(db, candidate), question_id=question, choices=[options[1]], seq=1,
                         flagged=None, machine=MACHINE, now=T0 + minutes(2), grace=GRACE)
    room.force_submit(db, candidate, actor=ACTOR, reason="Vi phạm quy chế: dùng điện thoại", now=T0 + minutes(3))
    assert (attempt.status, attempt.submitted_by, attempt.submitted_at) == ("submitted", "proctor", T0 + minutes(3))
    assert attempt.score is not None  # graded with what was saved
    with pytest.raises(ProctorError, match="not_in_progress"):
        room.force_submit(db, candidate, actor=ACTOR, reason="Lần nữa", now=T0 + minutes(4))
    with pytest.raises(ProctorError, match="not_in_progress"):
        room.force_submit(db, other, actor=ACTOR, reason="Chưa làm", now=T0 + minutes(4))
    db.commit()
    (entry,) = entries(db, "attempt.force_submit")
    assert entry["reason"] == "Vi phạm quy chế: dùng điện thoại" and entry["submitted_by"] == "proctor"
    submit = entries(db, "attempt.submit")[-1]
    assert submit["_actor"] == ACTOR and submit["submitted_by"] == "proctor"


def test_an_absent_candidate_cannot_sign_in_until_the_mark_is_undone(db):
    sitting, (absent, signed_in, started_one) = room_of(db, 3)
    room.mark_absent(db, absent, actor=ACTOR, reason="Không đến khi hết giờ vào phòng", now=T0 + minutes(16))
    with pytest.raises(RoomError, match="marked_absent"):
        login(db, absent, T0 + minutes(17))
    with pytest.raises(ProctorError, match="already_absent"):
        room.mark_absent(db, absent, actor=ACTOR, reason="Lần nữa", now=T0 + minutes(17))
    # Signed in but never started (left ill): the session ends, and start is refused.
    result = login(db, signed_in, T0 + minutes(2))
    room.mark_absent(db, signed_in, actor=ACTOR, reason="Bỏ về trước khi làm bài", now=T0 + minutes(3))
    assert sessions.session_for_token(db, result.token) is None
    assert sessions.ended_session(db, result.token).end_reason == "absent"
    with pytest.raises(RoomError, match="marked_absent"):
        attempts.start(db, result.attempt, sitting, sections(db, signed_in), now=T0 + minutes(4))
    # Someone who started is present: they cannot be marked absent.
    started(db, started_one, T0 + minutes(2))
    with pytest.raises(ProctorError, match="started"):
        room.mark_absent(db, started_one, actor=ACTOR, reason="Nhầm", now=T0 + minutes(4))
    # Undone: the candidate may sign in again (within the door's time).
    room.clear_absent(db, signed_in, actor=ACTOR, reason="Thí sinh quay lại", now=T0 + minutes(5))
    assert login(db, signed_in, T0 + minutes(6)).token
    with pytest.raises(ProctorError, match="not_absent"):
        room.clear_absent(db, signed_in, actor=ACTOR, reason="Lần nữa", now=T0 + minutes(6))
    db.commit()
    assert [e["reason"] for e in entries(db, "candidate.absent")] == ["Không đến khi hết giờ vào phòng",
                                                                       "Bỏ về trước khi làm bài"]


def test_a_move_ends_the_old_machines_session(db):
    sitting, (candidate,) = room_of(db, 1)
    result = login(db, candidate, T0 + minutes(1))
    assert room.admit_move(db, candidate, actor=ACTOR, reason="Máy 1 hỏng bàn phím", now=T0 + minutes(2)) == 1
    assert sessions.ended_session(db, result.token).end_reason == "moved"
    assert login(db, candidate, T0 + minutes(3), machine="10.1.1.41 Chrome").token


def test_the_door_checks_candidates_in_once(db):
    sitting, (candidate, absent) = room_of(db, 2)
    other_sitting, (stranger,) = room_of(db, 1)
    done = room.check_in(db, sitting, f"  {candidate.registration_no}\n", actor=ACTOR, reason="Đối chiếu CCCD",
                         now=T0 - minutes(10))
    assert (done.candidate.id, done.already, done.late) == (candidate.id, False, False)
    assert candidate.checked_in_at == T0 - minutes(10)
    again = room.check_in(db, sitting, candidate.registration_no, actor=ACTOR, reason="Đối chiếu CCCD", now=T0)
    assert again.already and candidate.checked_in_at == T0 - minutes(10)
    with pytest.raises(ProctorError, match="not_in_sitting"):
        room.check_in(db, sitting, stranger.registration_no, actor=ACTOR, reason="Đối chiếu", now=T0)
    room.mark_absent(db, absent, actor=ACTOR, reason="Vắng", now=T0)
    with pytest.raises(ProctorError, match="marked_absent"):
        room.check_in(db, sitting, absent.registration_no, actor=ACTOR, reason="Đối chiếu", now=T0)
    late = room_of(db, 1)[1][0]
    assert room.check_in(db, late.sitting, late.registration_no, actor=ACTOR, reason="Đến muộn",
                         now=T0 + minutes(20)).late
    db.commit()
    assert len(entries(db, "candidate.check_in")) == 2


def test_incidents_are_noted_against_a_seat_or_the_room(db):
    sitting, (candidate,) = room_of(db, 1)
    other, (stranger,) = room_of(db, 1)
    seat = room.note_incident(db, sitting, kind="violation", description="Mang điện thoại vào phòng", actor=ACTOR,
                              now=T0 + minutes(5), candidate=candidate)
    whole = room.note_incident(db, sitting, kind="power", description="Mất điện 3 phút", actor=ACTOR,
                               now=T0 + minutes(6))
    assert (seat.candidate_id, whole.candidate_id) == (candidate.id, None)
    with pytest.raises(ProctorError, match="bad_kind"):
        room.note_incident(db, sitting, kind="gossip", description="x", actor=ACTOR, now=T0)
    with pytest.raises(ProctorError, match="not_in_sitting"):
        room.note_incident(db, sitting, kind="note", description="x", actor=ACTOR, now=T0, candidate=stranger)
    listed = room_state.incidents_of(db, sitting)
    assert [(i.kind, number) for i, number, _seat in listed] == [("power", None),
                                                                 ("violation", candidate.registration_no)]
