"""The attempt's state machine: the clock and its sections, the start, the heartbeat, saving answers,
submission and the deadline sweep.

One concept, so one module (past 600 lines): every rule here moves one attempt between not_started,
in_progress and submitted, and reads or settles the same lazy clock. In order:

* the exam's sections as the clock reads them (``SectionPlan``, ``exam_sections``: kept in memory once published);
* the clock: ``Clock``, ``clock`` (pure), ``room_clock`` (read at a pause), ``settle`` (persist it; submit
  when overdue);
* the start: ``start`` and its driver-level usual case ``start_for_token``;
* sections and the heartbeat: ``next_section``, ``heartbeat``, ``heartbeat_for_token``;
* saving answers: ``AttemptHead``, ``live_attempt``, ``save_answer_for_token``, ``save_answer``;
* submission: ``finish`` (and the grading of a submitted batch), ``submit``;
* the deadline sweep: ``overdue_exists``, ``close_overdue`` (run by exam/room/sweeper.py and the CLI).

Beside it: lab-machine sessions and tokens (exam/room/sessions.py), the hash-chained save history
(exam/room/history.py), the attempt as the page is shown it (exam/room/attempt_view.py).

Every rule takes a session and ``now`` and only flushes; the caller (an API view, a CLI
command, the sweeper thread) commits once. A refusal raises ``RoomError(code)``; the
codes are those of ``docs/exam-room-contract.md``. Rules raise before they change
anything, except what must be kept even when refusing (a submission made because the
deadline passed), so the caller commits on a refusal too.

The clock (all times absolute UTC, stored, so a restart neither pauses nor resets them):

* start at ``t`` (only once the proctor has opened the sitting, and not before ``starts_at``):
  ``deadline = min(t + total minutes, sitting.ends_at) + extra_seconds`` (time granted by the
  proctor comes on top, even past the sitting's end);
* sections are sat in order; a section opens when the previous one closes and closes at
  ``min(opened + its minutes, deadline)`` (the last section also gets ``extra_seconds``),
  or earlier when the candidate closes it (``next_section``). Entering the last section
  sets ``deadline`` to that section's close, so the attempt ends when its last section does;
* a room pause (``sitting.paused_at``) stops every clock of the sitting: the clock is read at
  the pause (``room_clock``), nothing rolls over, saves and starts are refused
  (``room_paused``), the sweeper leaves the room alone; on resume the proctor's rule moves
  every deadline by the pause's length (proctor/room.py);
* the schedule is lazy: ``clock()`` works out the open section at any ``now`` from the
  stored one without writing; write rules persist it (``settle``);
* saves are accepted until a section's close plus the grace (for a request sent in time);
  after ``deadline + grace`` the attempt is submitted with every saved answer, by the
  first write call or by ``close_overdue`` (the sweeper), whichever comes first.

Saves never touch a row shared between candidates: the latest choice per question lives
in ``response`` (``UPDATE … WHERE seq < :seq``, then ``INSERT`` if absent), every
acknowledged save is appended to ``response_log`` chained by hash within the attempt
(exam/room/history.py), and the chain's head lives on the attempt itself. Only submission
enters the global audit chain, carrying the attempt's final history hash.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Text, cast, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from exam.audit import chain as audit
from exam.audit.chain import canonical_json
from exam.core.db import Driver, DriverStatement, loaded_in
from exam.core.timeutil import iso_utc
from exam.grading.arrays import attempt_arrays, chosen_mask
from exam.grading.scoring import SectionRules, grade, score_record
from exam.room import paper_cache
from exam.room.errors import RoomError
from exam.room.history import log_hash
from exam.room.models import Attempt, Response
from exam.room.sessions import candidate_actor, hash_token, session_for_token
from exam.setup.models import Candidate, Exam, ExamSection, PaperItem, Sitting

DEFAULT_GRACE = timedelta(seconds=10)
SWEEP_BATCH = 500
DISCONNECTED_AFTER = timedelta(seconds=60)  # no heartbeat for longer: the machine is out (an outage)
MAX_SEQ = 2**31 - 1  # an INTEGER column on PostgreSQL


@dataclass(frozen=True)
class SectionPlan:
    """A published exam's section, detached from any session (the exam is frozen, so it never changes)."""

    id: int
    position: int
    code: str
    title: str
    minutes: int
    question_count: int
    marks_per_question: float
    negative_fraction: float
    multiple_scoring: str
    pass_ratio: float


_PLAN_FIELDS = tuple(SectionPlan.__dataclass_fields__)
_plans: OrderedDict = OrderedDict()  # (database, exam id) → sections of a published exam
_PLANS_KEPT = 256
_plans_lock = threading.Lock()


def exam_sections(session: Session, exam_id: int) -> tuple[SectionPlan, ...]:
    """The exam's sections in order; kept in memory once the exam is published (frozen)."""
    key = (str(session.get_bind().url), exam_id)
    plans = _plans.get(key)
    if plans is not None:
        return plans
    rows = session.execute(select(*(getattr(ExamSection, name) for name in _PLAN_FIELDS), Exam.status)
                           .join(Exam, Exam.id == ExamSection.exam_id)
                           .where(ExamSection.exam_id == exam_id).order_by(ExamSection.position)).all()
    plans = tuple(SectionPlan(*row[:-1]) for row in rows)
    if rows and rows[0].status == "published":
        with _plans_lock:
            _plans[key] = plans
            while len(_plans) > _PLANS_KEPT:
                _plans.popitem(last=False)
    return plans


# --- the clock --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clock:
    """Where an attempt stands at a moment: the open section and the deadlines."""

    position: int
    section_started_at: datetime | None
    section_deadline: datetime | None
    deadline: datetime | None


def section_close(section: SectionPlan, opened: datetime, deadline: datetime, *, last: bool,
                  extra_seconds: int) -> datetime:
    """When a section opened at ``opened`` closes: its minutes (the last one also gets the extra
    time), never past the attempt's deadline."""
    close = opened + timedelta(minutes=section.minutes, seconds=extra_seconds if last else 0)
    return min(close, deadline)


def _open_next(attempt_clock: Clock, sections: Sequence[SectionPlan], opened: datetime,
               extra_seconds: int) -> Clock:
    position = attempt_clock.position + 1
    last = position == len(sections)
    close = section_close(sections[position - 1], opened, attempt_clock.deadline, last=last,
                          extra_seconds=extra_seconds)
    return Clock(position, opened, close, close if last else attempt_clock.deadline)


def clock(attempt: Attempt, sections: Sequence[SectionPlan], now: datetime) -> Clock:
    """The attempt's clock at ``now`` (pure): sections whose close has passed give way to the next."""
    current = Clock(attempt.section_position, attempt.section_started_at, attempt.section_deadline,
                    attempt.deadline)
    if attempt.status != "in_progress":
        return current
    while current.position < len(sections) and now >= current.section_deadline:
        current = _open_next(current, sections, current.section_deadline, attempt.extra_seconds)
    return current


def room_paused_at(session: Session, attempt: Attempt) -> datetime | None:
    """Since when the attempt's room is paused (None while it runs). The candidate is usually in the
    session already (the token's query loaded it); the sitting is one primary-key read at most."""
    candidate = session.get(Candidate, attempt.candidate_id)
    if candidate is None or candidate.sitting_id is None:
        return None
    sitting = session.get(Sitting, candidate.sitting_id)
    return sitting.paused_at if sitting is not None else None


def room_clock(attempt: Attempt, sections: Sequence[SectionPlan], now: datetime,
               paused_at: datetime | None) -> Clock:
    """The clock as the candidate is shown it at ``now`` (pure). While the room is paused it is read at
    the pause and every deadline is moved on by the pause so far: ``deadline - now`` (time left) stays
    what it was when the pause began, and equals what it will be at the moment of the resume."""
    if paused_at is None or now <= paused_at:
        return clock(attempt, sections, now)
    moment = clock(attempt, sections, paused_at)
    if attempt.status != "in_progress":
        return moment
    held = now - paused_at
    return Clock(moment.position, moment.section_started_at + held if moment.section_started_at else None,
                 moment.section_deadline + held, moment.deadline + held)


def _apply(attempt: Attempt, moment: Clock) -> None:
    if (attempt.section_position, attempt.section_deadline, attempt.deadline) != (
            moment.position, moment.section_deadline, moment.deadline):
        attempt.section_position = moment.position
        attempt.section_started_at = moment.section_started_at
        attempt.section_deadline = moment.section_deadline
        attempt.deadline = moment.deadline


def settle(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], now: datetime,
           grace: timedelta) -> None:
    """Persist the lazy clock; submit the attempt when its deadline plus the grace has passed.
    While the room is paused the clock is read at the pause: nothing rolls over, nothing is submitted
    that was not overdue already when the pause began."""
    if attempt.status != "in_progress":
        return
    paused_at = room_paused_at(session, attempt)
    at = now if paused_at is None else min(now, paused_at)
    _apply(attempt, clock(attempt, sections, at))
    if at > attempt.deadline + grace:
        finish(session, [attempt], by="deadline", actor="system", now=now)


def start(session: Session, attempt: Attempt, sitting: Sitting, sections: Sequence[SectionPlan], *,
          now: datetime, grace: timedelta = DEFAULT_GRACE) -> Attempt:
    """Start the clock (idempotent once started): a late starter gets min(start + duration, sitting end),
    plus any time the proctor granted. Refused before ``starts_at``, before the proctor opens the
    sitting (``sitting_not_open``), after its end, while the room is paused, and for a candidate marked
    absent. The start is audit-logged (``attempt.start``)."""
    if attempt.status != "not_started":
        settle(session, attempt, sections, now, grace)
        return attempt
    candidate = session.get(Candidate, attempt.candidate_id)
    first = _opening(sitting.starts_at, sitting.opened_at, sitting.ends_at, sitting.paused_at,
                     absent=candidate.absent_at is not None, extra_seconds=attempt.extra_seconds,
                     sections=sections, now=now)
    session.flush()  # what this session changed before, ahead of the statements below
    if not _begin(session, Driver(session), attempt.id, first, registration_no=candidate.registration_no,
                  public_id=attempt.public_id, sitting_code=sitting.code, machine=attempt.machine, now=now):
        session.refresh(attempt)  # started meanwhile, under another session
        settle(session, attempt, sections, now, grace)
    return attempt


def _opening(starts_at: datetime, opened_at: datetime | None, ends_at: datetime, paused_at: datetime | None, *,
             absent: bool, extra_seconds: int, sections: Sequence[SectionPlan], now: datetime) -> Clock:
    """The clock of an attempt starting at ``now`` (its first section open), or the start's refusal."""
    if now < starts_at:
        raise RoomError("sitting_not_started")
    if opened_at is None:
        raise RoomError("sitting_not_open")
    if now >= ends_at:
        raise RoomError("sitting_ended")
    if paused_at is not None:
        raise RoomError("room_paused")
    if absent:
        raise RoomError("marked_absent")
    total = timedelta(minutes=sum(s.minutes for s in sections))
    deadline = min(now + total, ends_at) + timedelta(seconds=extra_seconds)
    return _open_next(Clock(0, None, None, deadline), sections, now, extra_seconds)


# Starting, on the driver's cursor: a whole lab presses Start within a second, and every start is a
# write that queues for the database's one write lock.
_START = DriverStatement("""
    UPDATE attempt SET status = 'in_progress', started_at = :now, last_heartbeat_at = :now,
                       section_position = :position, section_started_at = :section_started_at,
                       section_deadline = :section_deadline, deadline = :deadline
    WHERE id = :attempt_id AND status = 'not_started'""")


def _begin(session: Session, driver: Driver, attempt_id: int, first: Clock, *, registration_no: str,
           public_id: str, sitting_code: str, machine: str, now: datetime) -> bool:
    """Write the start: the attempt in progress with its first section open (one UPDATE, conditional on
    the attempt not having started), and its audit entry. False when it had started already."""
    if not driver.run(_START, {"attempt_id": attempt_id, "now": driver.time(now), "position": first.position,
                               "section_started_at": driver.time(first.section_started_at),
                               "section_deadline": driver.time(first.section_deadline),
                               "deadline": driver.time(first.deadline)}):
        return False
    loaded = loaded_in(session, Attempt, (attempt_id,))
    if loaded is not None:  # an Attempt of this session sees what was written
        for name, value in (("status", "in_progress"), ("started_at", now), ("last_heartbeat_at", now),
                            ("section_position", first.position), ("section_started_at", first.section_started_at),
                            ("section_deadline", first.section_deadline), ("deadline", first.deadline)):
            set_committed_value(loaded, name, value)
    # The page is there from now on: an outage is counted from the start (last_heartbeat_at).
    audit.append(session, actor=candidate_actor(registration_no), action="attempt.start", object_type="attempt",
                 object_id=public_id,
                 details={"registration_no": registration_no, "sitting": sitting_code, "started_at": iso_utc(now),
                          "deadline": iso_utc(first.deadline), "machine": machine}, now=now)
    return True


def start_for_token(session: Session, token: str, *, now: datetime, grace: timedelta = DEFAULT_GRACE) -> bool:
    """``start`` for the bearer token's live session (False when there is none). The usual case (not
    started yet) is one read and one UPDATE on the driver's cursor, and the audit entry; an attempt
    already started takes ``start``'s path (its clock settled)."""
    driver = Driver(session)
    head = live_attempt(driver, token)
    if head is None:
        return False
    sections = exam_sections(session, head.exam_id)
    if head.status == "not_started" and head.sitting_code is not None:
        first = _opening(head.sitting_starts_at, head.sitting_opened_at, head.sitting_ends_at, head.paused_at,
                         absent=head.absent, extra_seconds=head.extra_seconds, sections=sections, now=now)
        if _begin(session, driver, head.id, first, registration_no=head.registration_no, public_id=head.public_id,
                  sitting_code=head.sitting_code, machine=head.machine, now=now):
            return True
    found = session_for_token(session, token, lock=True)
    if found is None:
        return False
    _candidate_session, candidate, attempt = found
    start(session, attempt, candidate.sitting, sections, now=now, grace=grace)
    return True


def _require_open(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], now: datetime,
                  grace: timedelta) -> None:
    if attempt.status == "not_started":
        raise RoomError("not_started")
    if attempt.status == "submitted":
        raise RoomError("deadline_passed" if attempt.submitted_by == "deadline" else "submitted")
    settle(session, attempt, sections, now, grace)
    if attempt.status == "submitted":
        raise RoomError("deadline_passed")
    if room_paused_at(session, attempt) is not None:
        raise RoomError("room_paused")


def next_section(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], *, now: datetime,
                 grace: timedelta = DEFAULT_GRACE) -> Attempt:
    """The candidate closes the open section early; the next one opens now with its own minutes."""
    _require_open(session, attempt, sections, now, grace)
    if attempt.section_position >= len(sections):
        raise RoomError("last_section")
    if now >= attempt.section_deadline:
        raise RoomError("section_closed")  # closed by time already, nothing to close early
    _apply(attempt, _open_next(clock(attempt, sections, now), sections, now, attempt.extra_seconds))
    session.flush()
    return attempt


def heartbeat(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], *, now: datetime,
              grace: timedelta = DEFAULT_GRACE) -> Attempt:
    """The machine is alive: one UPDATE of ``last_heartbeat_at`` (and the lazy clock when it moved).

    A heartbeat after a silence longer than ``DISCONNECTED_AFTER`` ends an outage: it is audit-logged
    (``attempt.reconnect``: from the last heartbeat before it to now), which is what the proctor's
    compensation proposal reads."""
    if attempt.status == "submitted":
        return attempt
    previous = attempt.last_heartbeat_at
    settle(session, attempt, sections, now, grace)
    if attempt.status != "submitted":
        attempt.last_heartbeat_at = now
        if attempt.status == "in_progress" and previous is not None and now - previous > DISCONNECTED_AFTER:
            candidate = session.get(Candidate, attempt.candidate_id)
            audit.append(session, actor=candidate_actor(candidate), action="attempt.reconnect", object_type="attempt",
                         object_id=attempt.public_id,
                         details={"registration_no": candidate.registration_no, "since": iso_utc(previous),
                                  "back_at": iso_utc(now), "seconds": int((now - previous).total_seconds()),
                                  "machine": attempt.machine}, now=now)
    session.flush()
    return attempt



def heartbeat_for_token(session: Session, token: str, *, now: datetime, grace: timedelta = DEFAULT_GRACE
                        ) -> tuple[AttemptHead | Attempt, Clock, datetime | None] | None:
    """``heartbeat`` for the bearer token's live session (None when there is none): the attempt as it
    stands after it, its clock as the candidate is shown it, and since when the room is paused. The
    usual case (clock settled, the machine seen within ``DISCONNECTED_AFTER``) is one read and one UPDATE
    on the driver's cursor; anything else (an outage ending, a section to roll over) takes ``heartbeat``."""
    driver = Driver(session)
    head = live_attempt(driver, token)
    if head is None:
        return None
    sections = exam_sections(session, head.exam_id)
    if _settled(head, sections, now, grace) and head.last_heartbeat_at is not None \
            and now - head.last_heartbeat_at <= DISCONNECTED_AFTER:
        driver.run(_HEARTBEAT, {"attempt_id": head.id, "now": driver.time(now)})
        head.last_heartbeat_at = now
        return head, clock(head, sections, now), None
    found = session_for_token(session, token, lock=True)
    if found is None:
        return None
    attempt = heartbeat(session, found[2], sections, now=now, grace=grace)
    paused_at = room_paused_at(session, attempt)
    return attempt, room_clock(attempt, sections, now, paused_at), paused_at

# --- saving answers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SaveReceipt:
    question_id: str
    seq: int
    saved_at: datetime
    replay: bool  # the same save arrived again: acknowledged, nothing new stored


@dataclass
class AttemptHead:
    """What the save path reads and writes of an attempt: its clock and the head of its save history
    (a plain row, so the hot path needs no ORM object; ``clock()`` reads it like an ``Attempt``)."""

    id: int
    public_id: str
    paper_id: int
    status: str
    submitted_by: str | None
    section_position: int
    section_started_at: datetime | None
    section_deadline: datetime | None
    deadline: datetime | None
    extra_seconds: int
    history_hash: str
    history_count: int
    last_seq: int
    exam_id: int = 0
    paused_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    # What the start needs (``live_attempt`` reads them; ``of`` leaves them out)
    machine: str | None = None
    registration_no: str = ""
    absent: bool = False
    sitting_code: str | None = None
    sitting_starts_at: datetime | None = None
    sitting_ends_at: datetime | None = None
    sitting_opened_at: datetime | None = None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptHead:
        return cls(attempt.id, attempt.public_id, attempt.paper_id, attempt.status, attempt.submitted_by,
                   attempt.section_position, attempt.section_started_at, attempt.section_deadline,
                   attempt.deadline, attempt.extra_seconds or 0, attempt.history_hash, attempt.history_count,
                   attempt.last_seq)


# The save path's statements, on the driver's cursor (see exam.core.db.DriverStatement): a full lab saves
# a thousand times a second, and each of these is a few microseconds of SQLite's own work.
_LIVE_ATTEMPT = DriverStatement("""
    SELECT s.ended_at, a.id, a.public_id, a.paper_id, a.status, a.submitted_by, a.section_position,
           a.section_started_at, a.section_deadline, a.deadline, a.extra_seconds, a.history_hash,
           a.history_count, a.last_seq, c.exam_id, r.paused_at, a.last_heartbeat_at,
           a.machine, c.registration_no, c.absent_at, r.code, r.starts_at, r.ends_at, r.opened_at
    FROM candidate_session s
    JOIN candidate c ON c.id = s.candidate_id
    JOIN attempt a ON a.candidate_id = c.id
    LEFT JOIN sitting r ON r.id = c.sitting_id
    WHERE s.token_hash = :token_hash""", lock="FOR UPDATE OF a")
_ITEM = DriverStatement("""
    SELECT id, section_id, option_ids, question_version_id FROM paper_item
    WHERE paper_id = :paper_id AND public_id = :public_id""")
# The latest choice: written only over an older seq (a late, older save never overwrites a newer one).
_STORE = DriverStatement("""
    INSERT INTO response (attempt_id, item_id, choices, flagged, seq, saved_at)
    VALUES (:attempt_id, :item_id, :choices, :flagged, :seq, :saved_at)
    ON CONFLICT (attempt_id, item_id) DO UPDATE
    SET choices = excluded.choices, seq = excluded.seq, saved_at = excluded.saved_at,
        flagged = CASE WHEN :keep_flag THEN response.flagged ELSE excluded.flagged END
    WHERE response.seq < excluded.seq
    RETURNING flagged""")
_STORED = DriverStatement("""
    SELECT seq, choices, flagged, saved_at FROM response WHERE attempt_id = :attempt_id AND item_id = :item_id""")
_LOG = DriverStatement("""
    INSERT INTO response_log (attempt_id, seq, item_id, choices, flagged, at, machine, prev_hash, hash)
    VALUES (:attempt_id, :seq, :item_id, :choices, :flagged, :at, :machine, :prev_hash, :hash)""")
_HEARTBEAT = DriverStatement("""UPDATE attempt SET last_heartbeat_at = :now WHERE id = :attempt_id""")
_HEAD = DriverStatement("""
    UPDATE attempt SET history_hash = :hash, history_count = :count, last_seq = :last_seq WHERE id = :attempt_id""")


def live_attempt(driver: Driver, token: str) -> AttemptHead | None:
    """The attempt of a bearer token's live session, as a plain row (None: no such token, or it ended).
    On PostgreSQL the attempt row is locked, as ``session_for_token(lock=True)`` does."""
    if not token:
        return None
    row = driver.first(_LIVE_ATTEMPT, {"token_hash": hash_token(token)})
    if row is None or row[0] is not None:
        return None
    (_, attempt_id, public_id, paper_id, status, submitted_by, position, section_started_at, section_deadline,
     deadline, extra_seconds, history_hash, history_count, last_seq, exam_id, paused_at, heartbeat_at, machine,
     registration_no, absent_at, sitting_code, starts_at, ends_at, opened_at) = row
    return AttemptHead(attempt_id, public_id, paper_id, status, submitted_by, position,
                       driver.read_time(section_started_at), driver.read_time(section_deadline),
                       driver.read_time(deadline), extra_seconds or 0, history_hash, history_count, last_seq,
                       exam_id, driver.read_time(paused_at), driver.read_time(heartbeat_at), machine,
                       registration_no, absent_at is not None, sitting_code, driver.read_time(starts_at),
                       driver.read_time(ends_at), driver.read_time(opened_at))


def _check_save(seq, choices, flagged) -> None:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ:
        raise RoomError("invalid_request")
    if (flagged is not None and not isinstance(flagged, bool)) or not isinstance(choices, list):
        raise RoomError("invalid_request")


def _settled(head: AttemptHead, sections: Sequence[SectionPlan], now: datetime, grace: timedelta) -> bool:
    """The stored clock stands as it is at ``now``: the attempt is open, its room runs, no section
    rolled over and the deadline is not past. Anything else goes through ``settle`` (the ORM path)."""
    if head.status != "in_progress" or head.paused_at is not None or now > head.deadline + grace:
        return False
    moment = clock(head, sections, now)
    return (moment.position, moment.section_deadline) == (head.section_position, head.section_deadline)


def save_answer_for_token(session: Session, token: str, *, question_id: str, choices: list, seq: int,
                          flagged: bool | None, machine: str, now: datetime,
                          grace: timedelta = DEFAULT_GRACE) -> SaveReceipt | None:
    """``save_answer`` for the bearer token's live session (None when there is none): the exam room's
    save. The usual case (room running, clock settled) reads one row and writes three, all on the
    driver's cursor; a clock to persist, a paused room or a closed attempt take ``save_answer``'s path."""
    _check_save(seq, choices, flagged)
    driver = Driver(session)
    head = live_attempt(driver, token)
    if head is None:
        return None
    sections = exam_sections(session, head.exam_id)
    if not _settled(head, sections, now, grace):
        found = session_for_token(session, token, lock=True)
        if found is None:
            return None
        return save_answer(session, found[2], sections, question_id=question_id, choices=choices, seq=seq,
                           flagged=flagged, machine=machine, now=now, grace=grace)
    return _store_answer(session, driver, head, sections, question_id=question_id, choices=choices, seq=seq,
                         flagged=flagged, machine=machine, now=now, grace=grace)


def save_answer(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], *, question_id: str,
                choices: list, seq: int, flagged: bool | None, machine: str, now: datetime,
                grace: timedelta = DEFAULT_GRACE) -> SaveReceipt:
    """Store one question's choice with the page's sequence number.

    Idempotent: the same seq with the same body again is acknowledged without a new log
    entry. A save older than the stored one (lower seq) or a different body under the
    stored seq is refused with ``stale_seq`` (``current_seq`` tells the stored one).
    ``flagged`` None keeps the stored flag.
    """
    _check_save(seq, choices, flagged)
    _require_open(session, attempt, sections, now, grace)
    session.flush()  # what the clock changed, before the statements below go straight to the driver
    return _store_answer(session, Driver(session), AttemptHead.of(attempt), sections, question_id=question_id,
                         choices=choices, seq=seq, flagged=flagged, machine=machine, now=now, grace=grace)


def _store_answer(session: Session, driver: Driver, head: AttemptHead, sections: Sequence[SectionPlan], *,
                  question_id: str, choices: list, seq: int, flagged: bool | None, machine: str, now: datetime,
                  grace: timedelta) -> SaveReceipt:
    """The save rule on an open attempt whose clock is settled: the question must be in an open section
    (or the previous one within the grace), the choices among its options; then the latest choice, the
    history entry and the history head."""
    item = driver.first(_ITEM, {"paper_id": head.paper_id, "public_id": question_id}) \
        if isinstance(question_id, str) else None
    position_of = {s.id: s.position for s in sections}
    if item is None or position_of[item[1]] > head.section_position:
        raise RoomError("not_found")  # upcoming sections are not shown yet: same answer as a missing id
    item_id, section_id, option_ids, version_id = item
    position = position_of[section_id]
    if position == head.section_position:
        if now > head.section_deadline + grace:
            raise RoomError("section_closed")
    elif position < head.section_position - 1 or now > head.section_started_at + grace:
        raise RoomError("section_closed")  # the previous section closed when this one opened

    option_ids = driver.read_json(option_ids)
    if not all(isinstance(c, str) for c in choices) or len(set(choices)) != len(choices) \
            or not set(choices) <= set(option_ids):
        raise RoomError("invalid_choice")
    if len(choices) > 1 and paper_cache.versions(session, (version_id,))[version_id].qtype != "multiple":
        raise RoomError("invalid_choice")
    chosen = set(choices)
    choices = [option_id for option_id in option_ids if option_id in chosen]  # displayed order
    choices_json = canonical_json(choices)

    where = {"attempt_id": head.id, "item_id": item_id}
    updated = driver.first(_STORE, {**where, "choices": choices_json, "flagged": bool(flagged), "seq": seq,
                                     "saved_at": driver.time(now), "keep_flag": flagged is None})
    if updated is None:  # a newer (or the same) save is stored
        stored_seq, stored_choices, stored_flag, stored_at = driver.first(_STORED, where)
        if stored_seq == seq and list(driver.read_json(stored_choices)) == choices \
                and flagged in (None, bool(stored_flag)):
            return SaveReceipt(question_id, seq, driver.read_time(stored_at), replay=True)
        raise RoomError("stale_seq", current_seq=stored_seq)
    stored_flag = bool(updated[0])

    # The save history: appended, chained by hash; its head lives on this attempt's own row.
    at = iso_utc(now)
    machine = machine[:200]
    digest = log_hash(attempt_public_id=head.public_id, seq=seq, item_id=item_id, choices=choices,
                      flagged=stored_flag, at=at, machine=machine, prev_hash=head.history_hash)
    driver.run(_LOG, {**where, "seq": seq, "choices": choices_json, "flagged": stored_flag, "at": at,
                       "machine": machine, "prev_hash": head.history_hash, "hash": digest})
    written = {"history_hash": digest, "history_count": head.history_count + 1,
               "last_seq": max(head.last_seq, seq)}
    driver.run(_HEAD, {"attempt_id": head.id, "hash": digest, "count": written["history_count"],
                        "last_seq": written["last_seq"]})
    loaded = loaded_in(session, Attempt, (head.id,))
    if loaded is not None:  # an Attempt of this session (another write of the batch) sees what was written
        for name, value in written.items():
            set_committed_value(loaded, name, value)
    return SaveReceipt(question_id, seq, now, replay=False)


# --- submission ---------------------------------------------------------------------------------------

def final_choice_masks(session: Session, attempts: Sequence[Attempt]) -> dict[int, bytes]:
    """Per attempt, one byte per paper position: the chosen options as displayed (bit j = the j-th
    displayed option; 0 = no answer), from the latest responses. One query for the whole batch."""
    if not attempts:
        return {}
    response, item, attempt_table = Response.__table__, PaperItem.__table__, Attempt.__table__
    rows = session.connection().execute(
        select(attempt_table.c.id, cast(item.c.option_ids, Text), cast(response.c.choices, Text))
        .join(item, item.c.paper_id == attempt_table.c.paper_id)
        .outerjoin(response, (response.c.attempt_id == attempt_table.c.id) & (response.c.item_id == item.c.id))
        .where(attempt_table.c.id.in_([a.id for a in attempts]))
        .order_by(attempt_table.c.id, item.c.position))
    masks: dict[int, bytearray] = {a.id: bytearray() for a in attempts}
    for attempt_id, option_ids, choices in rows:
        masks[attempt_id].append(chosen_mask(json.loads(option_ids), json.loads(choices)) if choices else 0)
    return {attempt_id: bytes(mask) for attempt_id, mask in masks.items()}


def finish(session: Session, attempts: Sequence[Attempt], *, by: str, actor: str, now: datetime) -> list[Attempt]:
    """Submit in-progress attempts, grade them as one batch, audit each with its final history hash.

    The status change is a conditional UPDATE (``WHERE status = 'in_progress'``), so two
    sweepers, or a sweeper and the candidate, never submit the same attempt twice. When the
    deadline submits, ``submitted_at`` is the attempt's deadline. Returns those submitted here.
    """
    done = []
    for attempt in attempts:
        submitted_at = attempt.deadline if by == "deadline" else now
        # The clock fields set by settle() are flushed by this statement's autoflush.
        changed = session.execute(
            update(Attempt).where(Attempt.id == attempt.id, Attempt.status == "in_progress")
            .values(status="submitted", submitted_at=submitted_at, submitted_by=by)
            .execution_options(synchronize_session=False)).rowcount
        if changed:
            for name, value in (("status", "submitted"), ("submitted_at", submitted_at), ("submitted_by", by)):
                set_committed_value(attempt, name, value)  # already in the database: no second UPDATE
            done.append(attempt)
        else:
            session.refresh(attempt)
    if not done:
        return done
    masks = final_choice_masks(session, done)
    scores = _grade_from_masks(session, done, masks)
    numbers = dict(session.execute(select(Candidate.id, Candidate.registration_no)
                                   .where(Candidate.id.in_({a.candidate_id for a in done}))).all())
    for attempt in done:
        attempt.score = scores[attempt.id]
        attempt.choice_masks = masks[attempt.id]  # what batch grading reads instead of the responses
        number = numbers[attempt.candidate_id]
        audit.append(session, actor=candidate_actor(number) if by == "candidate" else actor,
                     action="attempt.submit", object_type="attempt", object_id=attempt.public_id,
                     details={"registration_no": number, "submitted_by": by,
                              "submitted_at": iso_utc(attempt.submitted_at),
                              "history_hash": attempt.history_hash, "history_count": attempt.history_count,
                              "last_seq": attempt.last_seq, "score": _score_summary(attempt.score)}, now=now)
    session.flush()
    return done



def _grade_from_masks(session: Session, done: Sequence[Attempt], masks: dict[int, bytes]) -> dict[int, dict]:
    """Score records of submitted attempts from their final choice masks: their arrays built by grading's one
    builder (``exam.grading.arrays.attempt_arrays``: the papers' compact key masks, or the rows of papers drawn
    before those existed, as a whole-exam grading reads them), scored by the one rule (``grading.grade``), a
    batch per exam."""
    records = {}
    for arrays in attempt_arrays(session, done, masks, lambda exam_id: exam_sections(session, exam_id)):
        sections = exam_sections(session, arrays.exam_id)
        kinds = paper_cache.versions(session, np.unique(arrays.version_ids).tolist())
        is_multiple = {version: view.qtype == "multiple" for version, view in kinds.items()}
        multiple = np.vectorize(is_multiple.__getitem__, otypes=[bool])(arrays.version_ids)
        grades = grade(arrays.key, arrays.chosen, multiple, arrays.section, SectionRules.of(sections))
        for row, attempt_id in enumerate(arrays.attempt_ids.tolist()):
            records[attempt_id] = score_record(sections, grades, row)
    return records


def _score_summary(score: dict) -> dict:
    return {"total": score["total"], "passed": score["passed"],
            "sections": [{"code": s["code"], "correct": s["correct"], "score": s["score"], "passed": s["passed"]}
                         for s in score["sections"]]}


def submit(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], *, by: str = "candidate",
           actor: str = "", now: datetime, grace: timedelta = DEFAULT_GRACE) -> Attempt:
    """Submit (idempotent): final, graded, audit-logged. After the deadline plus the grace the
    deadline has already submitted it (``submitted_by`` = deadline)."""
    if attempt.status == "submitted":
        return attempt
    if attempt.status == "not_started":
        raise RoomError("not_started")
    if room_paused_at(session, attempt) is not None:
        raise RoomError("room_paused")
    settle(session, attempt, sections, now, grace)
    if attempt.status != "submitted":
        finish(session, [attempt], by=by, actor=actor, now=now)
    return attempt


def _room_running():
    """The attempt's room is not paused (a paused room's clocks stand still: the sweeper leaves it)."""
    return ~exists(select(Sitting.id).join(Candidate, Candidate.sitting_id == Sitting.id)
                   .where(Candidate.id == Attempt.candidate_id, Sitting.paused_at.is_not(None)))


def overdue_exists(session: Session, now: datetime, grace: timedelta = DEFAULT_GRACE) -> bool:
    return session.scalar(select(Attempt.id).where(Attempt.status == "in_progress", Attempt.deadline < now - grace,
                                                   _room_running()).limit(1)) is not None


def close_overdue(session: Session, now: datetime, grace: timedelta = DEFAULT_GRACE, *,
                  limit: int | None = SWEEP_BATCH) -> list[Attempt]:
    """Submit every in-progress attempt whose deadline plus the grace has passed, with every saved
    answer; ``submitted_at`` is its deadline, ``submitted_by`` "deadline". At most ``limit`` per call
    (callers loop, committing between batches). Safe with any number of concurrent sweepers: rows
    another transaction holds are skipped (PostgreSQL) and the UPDATE is conditional on the status.
    Attempts of a paused room are left alone: their clocks stand still."""
    query = (select(Attempt).where(Attempt.status == "in_progress", Attempt.deadline < now - grace, _room_running())
             .order_by(Attempt.deadline, Attempt.id).with_for_update(skip_locked=True, of=Attempt))
    if limit:
        query = query.limit(limit)
    attempts = list(session.scalars(query))
    if not attempts:
        return []
    by_exam: dict[int, list[Attempt]] = {}
    exam_of = dict(session.execute(select(Candidate.id, Candidate.exam_id)
                                   .where(Candidate.id.in_({a.candidate_id for a in attempts}))).all())
    for attempt in attempts:
        by_exam.setdefault(exam_of[attempt.candidate_id], []).append(attempt)
    for exam_id, group in by_exam.items():
        sections = exam_sections(session, exam_id)
        for attempt in group:
            _apply(attempt, clock(attempt, sections, now))
    return finish(session, attempts, by="deadline", actor="system", now=now)
