"""The proctor's rules for one room (a sitting), and what the console and the sitting's report show.

Every action is a plain function taking a session, the room or candidate, the actor, a reason and
``now``. It refuses (``ProctorError``) before changing anything, and without a reason it always
refuses; otherwise it changes the rows, appends its audit entry in the caller's transaction and only
flushes (the view commits once).

The semantics (docs/exam-room-contract.md, "The proctor"):

* **open** (``open_sitting``): candidates may sign in from ``starts_at`` on, but start only once the
  proctor has opened the sitting (``sitting_not_open`` before). The late-entry cut-off counts from the
  later of ``starts_at`` and the opening (``attempts.late_entry_cutoff``).
* **pause / resume** (``pause_room``, ``resume_room``): a power cut. While ``sitting.paused_at`` is set
  every clock of the room stands still (the candidate API reports ``paused`` and a frozen time left,
  saves and starts are refused with ``room_paused``, sections do not roll over, the sweeper leaves the
  room alone). Resuming moves every in-progress attempt's deadlines by the pause's length, so everyone
  has exactly the time left they had when the pause began; ``sitting.ends_at`` moves too and
  ``sitting.paused_seconds`` adds the pause.
* **extend** (``extend_time``): the seconds go to the open section and to the whole attempt; before the
  start they are added to the time the attempt will get. Granted time may run past the sitting's
  scheduled end, for that candidate only: ``sitting.ends_at`` (which governs starts and caps the
  regular time) is not changed. Granted time is the candidate's: if they close the section early,
  what they did not use of it carries to the last section (as time granted before the start does);
  the attempt never gets more than its regular time plus what was granted.
* **compensation** (``propose_compensation``, ``grant_compensation``): the time a candidate's machine
  was out, from the last heartbeat before the outage to when it came back (or now, while it is still
  out), minus any part of it when the room was paused (the clock stood still then) and minus what was
  granted for that outage already. The system proposes, the proctor grants it (as an extension).
* **force-submit**, **mark absent** (the candidate never came: they cannot sign in afterwards and their
  paper is not used; undone by ``clear_absent``), **admit a move**, **note an incident**, **door
  check-in** (the page keeps the reason typed once, e.g. "ID checked at the door", for the scans).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Text, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.audit.models import AuditEntry
from exam.core.errors import Refused
from exam.core.timeutil import iso_utc
from exam.room import attempts
from exam.room.attempts import DEFAULT_GRACE, DISCONNECTED_AFTER
from exam.room.models import Attempt, CandidateSession, Response
from exam.setup.models import Candidate, Exam, Paper, Sitting
from exam.setup.sittings import current_access_code, seconds_until_rotation
from proctor.models import Incident

MAX_REASON = 500
MAX_EXTENSION_SECONDS = 4 * 3600
INCIDENT_KINDS = ("violation", "technical", "power", "note")
SEAT_STATES = ("not_arrived", "checked_in", "logged_in", "reading", "answering", "disconnected", "submitted",
               "absent")
# What the report lists as the proctors' actions (the audit chain holds them all).
ROOM_ACTIONS = ("sitting.open", "sitting.pause", "sitting.resume", "attempt.extend", "attempt.compensate",
                "attempt.force_submit", "candidate.absent", "candidate.present", "candidate.admit_move")
GRANT_ACTIONS = ("attempt.extend", "attempt.compensate")


class ProctorError(Refused):
    """A refused proctor action; ``code`` names the reason (the views turn it into a Vietnamese message)."""

    def __init__(self, code: str, **details):
        super().__init__(code, code=code, **details)


def require_reason(reason: str | None) -> str:
    """Every proctor action says why: the reason goes into the audit chain (and the sitting's report)."""
    text = " ".join((reason or "").split())
    if not text:
        raise ProctorError("reason_required")
    if len(text) > MAX_REASON:
        raise ProctorError("reason_too_long", limit=MAX_REASON)
    return text


def room_time(sitting: Sitting, now: datetime) -> datetime:
    """The moment the room's clocks show: the pause's start while paused, else now."""
    return min(now, sitting.paused_at) if sitting.paused_at is not None else now


def candidate_in_sitting(session: Session, sitting: Sitting, registration_no: str) -> Candidate | None:
    number = "".join((registration_no or "").split())
    if not number:
        return None
    return session.scalar(select(Candidate).where(Candidate.sitting_id == sitting.id,
                                                  Candidate.registration_no == number))


def attempt_of(session: Session, candidate: Candidate) -> Attempt | None:
    return session.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))


def _sitting_of(session: Session, candidate: Candidate) -> Sitting:
    sitting = session.get(Sitting, candidate.sitting_id) if candidate.sitting_id else None
    if sitting is None:
        raise ProctorError("not_in_sitting", number=candidate.registration_no)
    return sitting


def _details(candidate: Candidate, sitting: Sitting, reason: str, **more) -> dict:
    return {"registration_no": candidate.registration_no, "sitting": sitting.code, "seat": candidate.seat,
            "reason": reason, **more}


# --- the room -------------------------------------------------------------------------------------

def open_sitting(session: Session, sitting: Sitting, *, actor: str, reason: str, now: datetime) -> Sitting:
    """The proctor starts the sitting: from now on candidates may start their attempts."""
    reason = require_reason(reason)
    if sitting.opened_at is not None:
        raise ProctorError("already_open")
    if now < sitting.starts_at:
        raise ProctorError("too_early", starts_at=sitting.starts_at)
    if now >= sitting.ends_at:
        raise ProctorError("sitting_ended")
    sitting.opened_at = now
    cutoff = attempts.late_entry_cutoff(sitting, now)
    audit.append(session, actor=actor, action="sitting.open", object_type="sitting", object_id=sitting.code,
                 details={"reason": reason, "room": sitting.room, "starts_at": iso_utc(sitting.starts_at),
                          "late_entry_until": iso_utc(cutoff)}, now=now)
    session.flush()
    return sitting


def _in_progress(session: Session, sitting: Sitting, *, lock: bool = False) -> list[Attempt]:
    query = (select(Attempt).join(Candidate, Candidate.id == Attempt.candidate_id)
             .where(Candidate.sitting_id == sitting.id, Attempt.status == "in_progress").order_by(Attempt.id))
    if lock:
        query = query.with_for_update(of=Attempt)
    return list(session.scalars(query))


def pause_room(session: Session, sitting: Sitting, *, actor: str, reason: str, now: datetime) -> Sitting:
    """Every clock of the room stops now (a power cut, an alarm)."""
    reason = require_reason(reason)
    if sitting.opened_at is None:
        raise ProctorError("not_open")
    if sitting.paused_at is not None:
        raise ProctorError("already_paused")
    sitting.paused_at = now
    running = session.scalar(select(func.count()).select_from(Attempt)
                             .join(Candidate, Candidate.id == Attempt.candidate_id)
                             .where(Candidate.sitting_id == sitting.id, Attempt.status == "in_progress"))
    audit.append(session, actor=actor, action="sitting.pause", object_type="sitting", object_id=sitting.code,
                 details={"reason": reason, "paused_at": iso_utc(now), "attempts_in_progress": running}, now=now)
    session.flush()
    return sitting


@dataclass
class Resumed:
    seconds: float  # the pause's length
    moved: int  # in-progress attempts whose deadlines moved
    submitted: int  # attempts that were overdue already when the pause began


def resume_room(session: Session, sitting: Sitting, *, actor: str, reason: str, now: datetime,
                grace: timedelta = DEFAULT_GRACE) -> Resumed:
    """The clocks run again: every in-progress attempt's deadlines move by the pause's length (read at the
    pause first, so a section that was due to close during the pause closes that much later), the
    sitting's end moves too. An attempt that was overdue already when the pause began is submitted."""
    reason = require_reason(reason)
    if sitting.paused_at is None:
        raise ProctorError("not_paused")
    paused_at = sitting.paused_at
    held = max(now - paused_at, timedelta(0))
    sections = attempts.exam_sections(session, sitting.exam_id)
    overdue, moved = [], 0
    for attempt in _in_progress(session, sitting, lock=True):
        moment = attempts.clock(attempt, sections, paused_at)
        attempt.section_position = moment.position
        attempt.section_started_at = moment.section_started_at
        attempt.section_deadline = moment.section_deadline
        attempt.deadline = moment.deadline
        if paused_at > moment.deadline + grace:
            overdue.append(attempt)
            continue
        attempt.section_started_at = moment.section_started_at + held
        attempt.section_deadline = moment.section_deadline + held
        attempt.deadline = moment.deadline + held
        moved += 1
    sitting.paused_at = None
    sitting.paused_seconds = (sitting.paused_seconds or 0) + round(held.total_seconds())
    sitting.ends_at = sitting.ends_at + held
    audit.append(session, actor=actor, action="sitting.resume", object_type="sitting", object_id=sitting.code,
                 details={"reason": reason, "paused_at": iso_utc(paused_at), "resumed_at": iso_utc(now),
                          "seconds": round(held.total_seconds(), 3), "attempts_moved": moved,
                          "ends_at": iso_utc(sitting.ends_at)}, now=now)
    if overdue:
        attempts.finish(session, overdue, by="deadline", actor="system", now=now)
    session.flush()
    return Resumed(held.total_seconds(), moved, len(overdue))


# --- one candidate's time ---------------------------------------------------------------------------

def _attempt_for_time(session: Session, candidate: Candidate) -> Attempt:
    """The attempt time is granted to; created (not started) when the candidate has not signed in yet."""
    attempt = attempt_of(session, candidate)
    if attempt is None:
        paper = session.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
        if paper is None:
            raise ProctorError("no_paper")
        attempt = attempts.ensure_attempt(session, candidate, paper)
    return attempt


def extend_time(session: Session, candidate: Candidate, *, seconds: int, actor: str, reason: str, now: datetime,
                grace: timedelta = DEFAULT_GRACE, action: str = "attempt.extend",
                more: dict | None = None) -> Attempt:
    """Give one candidate ``seconds`` more: the open section and the attempt end that much later
    (before the start: the attempt will get that much more). Refused once submitted, or when the
    deadline plus the grace has passed (the attempt is being submitted)."""
    reason = require_reason(reason)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_EXTENSION_SECONDS:
        raise ProctorError("bad_seconds", limit=MAX_EXTENSION_SECONDS)
    sitting = _sitting_of(session, candidate)
    if candidate.absent_at is not None:
        raise ProctorError("marked_absent")
    existing = attempt_of(session, candidate)
    if existing is not None and existing.status == "submitted":
        raise ProctorError("submitted")
    sections = attempts.exam_sections(session, candidate.exam_id)
    if existing is not None and existing.status == "in_progress":
        at = room_time(sitting, now)
        if at > attempts.clock(existing, sections, at).deadline + grace:
            raise ProctorError("deadline_passed")
    attempt = _attempt_for_time(session, candidate)
    delta = timedelta(seconds=seconds)
    if attempt.status == "in_progress":
        attempts.settle(session, attempt, sections, now, grace)  # the open section as of now (pause-aware)
        attempt.section_deadline = attempt.section_deadline + delta
        attempt.deadline = attempt.deadline + delta
    attempt.extra_seconds = (attempt.extra_seconds or 0) + seconds
    audit.append(session, actor=actor, action=action, object_type="attempt", object_id=attempt.public_id,
                 details=_details(candidate, sitting, reason, seconds=seconds, status=attempt.status,
                                  extra_seconds=attempt.extra_seconds,
                                  deadline=iso_utc(attempt.deadline) if attempt.deadline else None,
                                  section_position=attempt.section_position,
                                  section_deadline=iso_utc(attempt.section_deadline)
                                  if attempt.section_deadline else None, **(more or {})), now=now)
    session.flush()
    return attempt


@dataclass
class Compensation:
    """An outage of one candidate's machine and the time the system proposes to give back."""

    since: datetime  # the last heartbeat before the outage
    until: datetime  # the first heartbeat after it (or now: still out)
    ongoing: bool
    outage_seconds: int
    paused_seconds: int  # of the outage, while the room was paused (the clock stood still: nothing lost)
    granted_seconds: int  # given for this outage already
    seconds: int  # proposed: outage - paused - granted, never below 0


def _entries(session: Session, actions: Sequence[str], object_ids: Sequence[str]) -> list[tuple[AuditEntry, dict]]:
    if not object_ids:
        return []
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action.in_(actions),
                                                    AuditEntry.object_id.in_(list(object_ids)))
                           .order_by(AuditEntry.seq))
    return [(row, json.loads(row.details or "{}")) for row in rows]


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def pauses_of(session: Session, sitting: Sitting, now: datetime) -> list[tuple[datetime, datetime]]:
    """The room's pauses as (start, end) from the audit chain; the current one ends now."""
    spans = []
    for _entry, details in _entries(session, ("sitting.resume",), [sitting.code]):
        start, end = _parse(details.get("paused_at")), _parse(details.get("resumed_at"))
        if start and end:
            spans.append((start, end))
    if sitting.paused_at is not None:
        spans.append((sitting.paused_at, max(now, sitting.paused_at)))
    return spans


def _overlap(start: datetime, end: datetime, spans: Sequence[tuple[datetime, datetime]]) -> timedelta:
    total = timedelta(0)
    for span_start, span_end in spans:
        lo, hi = max(start, span_start), min(end, span_end)
        if hi > lo:
            total += hi - lo
    return total


def propose_compensation(session: Session, candidate: Candidate, now: datetime) -> Compensation | None:
    """The candidate's latest outage (still going on, or ended by a heartbeat after more than
    ``DISCONNECTED_AFTER`` of silence) and the time it cost them; None when there is none."""
    attempt = attempt_of(session, candidate)
    if attempt is None or attempt.status != "in_progress":
        return None
    sitting = _sitting_of(session, candidate)
    last = attempt.last_heartbeat_at
    if last is not None and now - last > DISCONNECTED_AFTER:
        since, until, ongoing = last, now, True
    else:
        found = _entries(session, ("attempt.reconnect",), [attempt.public_id])
        if not found:
            return None
        details = found[-1][1]
        since, until, ongoing = _parse(details["since"]), _parse(details["back_at"]), False
    outage = until - since
    paused = _overlap(since, until, pauses_of(session, sitting, now))
    granted = sum(int(details.get("seconds", 0)) for _entry, details in
                  _entries(session, ("attempt.compensate",), [attempt.public_id])
                  if details.get("outage_since") == iso_utc(since))
    lost = int(round((outage - paused).total_seconds()))
    return Compensation(since, until, ongoing, int(round(outage.total_seconds())), int(round(paused.total_seconds())),
                        granted, max(0, lost - granted))


def grant_compensation(session: Session, candidate: Candidate, *, actor: str, reason: str, now: datetime,
                       seconds: int | None = None, grace: timedelta = DEFAULT_GRACE) -> tuple[Attempt, int]:
    """Give back the time an outage cost (what ``propose_compensation`` says now; at most ``seconds``
    when given: what the proctor saw and agreed to). Returns the attempt and the seconds granted."""
    reason = require_reason(reason)
    proposal = propose_compensation(session, candidate, now)
    if proposal is None or proposal.seconds <= 0:
        raise ProctorError("nothing_to_compensate")
    granted = proposal.seconds if not seconds or seconds <= 0 else min(int(seconds), proposal.seconds)
    attempt = extend_time(session, candidate, seconds=granted, actor=actor, reason=reason, now=now, grace=grace,
                          action="attempt.compensate",
                          more={"outage_since": iso_utc(proposal.since), "outage_until": iso_utc(proposal.until),
                                "outage_seconds": proposal.outage_seconds, "paused_seconds": proposal.paused_seconds,
                                "ongoing": proposal.ongoing})
    return attempt, granted


def force_submit(session: Session, candidate: Candidate, *, actor: str, reason: str, now: datetime,
                 grace: timedelta = DEFAULT_GRACE) -> Attempt:
    """The proctor collects the attempt now, with every saved answer (``submitted_by`` = proctor)."""
    reason = require_reason(reason)
    sitting = _sitting_of(session, candidate)
    attempt = attempt_of(session, candidate)
    if attempt is None or attempt.status != "in_progress":
        raise ProctorError("not_in_progress")
    sections = attempts.exam_sections(session, candidate.exam_id)
    attempts.settle(session, attempt, sections, now, grace)  # overdue already: the deadline submits it
    if attempt.status == "in_progress":
        attempts.finish(session, [attempt], by="proctor", actor=actor, now=now)
    audit.append(session, actor=actor, action="attempt.force_submit", object_type="attempt",
                 object_id=attempt.public_id,
                 details=_details(candidate, sitting, reason, submitted_by=attempt.submitted_by,
                                  submitted_at=iso_utc(attempt.submitted_at)), now=now)
    session.flush()
    return attempt


# --- attendance ------------------------------------------------------------------------------------

def mark_absent(session: Session, candidate: Candidate, *, actor: str, reason: str, now: datetime) -> Candidate:
    """The candidate did not come: they cannot sign in afterwards and their paper is not used. Refused
    once they have started. A live session (signed in, never started) ends."""
    reason = require_reason(reason)
    sitting = _sitting_of(session, candidate)
    if candidate.absent_at is not None:
        raise ProctorError("already_absent")
    attempt = attempt_of(session, candidate)
    if attempt is not None and attempt.status != "not_started":
        raise ProctorError("started")
    live = list(session.scalars(select(CandidateSession).where(CandidateSession.candidate_id == candidate.id,
                                                                CandidateSession.ended_at.is_(None))))
    for old in live:
        old.ended_at, old.end_reason = now, "absent"
    candidate.absent_at = now
    audit.append(session, actor=actor, action="candidate.absent", object_type="candidate",
                 object_id=candidate.registration_no,
                 details=_details(candidate, sitting, reason, ended_sessions=len(live),
                                  checked_in=candidate.checked_in_at is not None), now=now)
    session.flush()
    return candidate


def clear_absent(session: Session, candidate: Candidate, *, actor: str, reason: str, now: datetime) -> Candidate:
    """Undo a mark of absence (the candidate did come, or the wrong seat was marked)."""
    reason = require_reason(reason)
    sitting = _sitting_of(session, candidate)
    if candidate.absent_at is None:
        raise ProctorError("not_absent")
    marked = candidate.absent_at
    candidate.absent_at = None
    audit.append(session, actor=actor, action="candidate.present", object_type="candidate",
                 object_id=candidate.registration_no,
                 details=_details(candidate, sitting, reason, absent_since=iso_utc(marked)), now=now)
    session.flush()
    return candidate


@dataclass
class CheckIn:
    candidate: Candidate
    already: bool  # checked in before: nothing new recorded
    late: bool  # past the late-entry cut-off: they will not be able to sign in


def check_in(session: Session, sitting: Sitting, registration_no: str, *, actor: str, reason: str,
             now: datetime) -> CheckIn:
    """The candidate is admitted at the door (their admit card's QR code scanned, or the number typed)."""
    reason = require_reason(reason)
    candidate = candidate_in_sitting(session, sitting, registration_no)
    if candidate is None:
        raise ProctorError("not_in_sitting", number="".join((registration_no or "").split())[:40])
    if candidate.absent_at is not None:
        raise ProctorError("marked_absent")
    cutoff = attempts.late_entry_cutoff(sitting, now)
    late = cutoff is not None and now > cutoff
    if candidate.checked_in_at is not None:
        return CheckIn(candidate, True, late)
    candidate.checked_in_at = now
    audit.append(session, actor=actor, action="candidate.check_in", object_type="candidate",
                 object_id=candidate.registration_no, details=_details(candidate, sitting, reason, late=late),
                 now=now)
    session.flush()
    return CheckIn(candidate, False, late)


def admit_move(session: Session, candidate: Candidate, *, actor: str, reason: str, now: datetime) -> int:
    """The candidate continues on another machine: the old machine's session ends now (see
    ``attempts.admit_move``). Returns the number of sessions ended."""
    reason = require_reason(reason)
    _sitting_of(session, candidate)
    attempt = attempt_of(session, candidate)
    if attempt is not None and attempt.status == "submitted":
        raise ProctorError("submitted")
    if candidate.absent_at is not None:
        raise ProctorError("marked_absent")
    return attempts.admit_move(session, candidate, actor=actor, reason=reason, now=now)


def note_incident(session: Session, sitting: Sitting, *, kind: str, description: str, actor: str, now: datetime,
                  candidate: Candidate | None = None) -> Incident:
    """Something that happened, against a seat (``candidate``) or the whole room; the description is
    the action's reason."""
    description = require_reason(description)
    if kind not in INCIDENT_KINDS:
        raise ProctorError("bad_kind")
    if candidate is not None and candidate.sitting_id != sitting.id:
        raise ProctorError("not_in_sitting", number=candidate.registration_no)
    incident = Incident(sitting_id=sitting.id, candidate_id=candidate.id if candidate else None, at=now, by=actor,
                        kind=kind, description=description)
    session.add(incident)
    session.flush()
    audit.append(session, actor=actor, action="incident.note", object_type="sitting", object_id=sitting.code,
                 details={"incident": incident.id, "kind": kind, "description": description,
                          "registration_no": candidate.registration_no if candidate else None,
                          "seat": candidate.seat if candidate else None}, now=now)
    session.flush()
    return incident


# --- what the console shows -------------------------------------------------------------------------

@dataclass
class Seat:
    seat: int | None
    registration_no: str
    full_name: str
    state: str
    answered: int
    checked_in_at: datetime | None
    absent_at: datetime | None
    status: str | None  # the attempt's, None before the first sign-in
    started_at: datetime | None
    section_position: int | None
    section_left: float | None  # seconds, at the room's time (frozen while paused)
    total_left: float | None
    deadline: datetime | None
    extra_seconds: int
    last_heartbeat_at: datetime | None
    machine: str
    submitted_at: datetime | None
    submitted_by: str | None

    @property
    def ip(self) -> str:
        return attempts.machine_ip(self.machine)

    @property
    def present(self) -> bool:
        return self.absent_at is None and (self.checked_in_at is not None or self.status is not None)


def seat_state(row, sitting: Sitting, now: datetime) -> str:
    """not_arrived → checked_in (at the door) → logged_in (waiting for the proctor to open the sitting) or
    reading (the instructions, sitting open) → answering | disconnected (no heartbeat for more than
    ``DISCONNECTED_AFTER``, or no live session) → submitted; absent when marked so."""
    if row.absent_at is not None:
        return "absent"
    if row.status == "submitted":
        return "submitted"
    if row.status == "in_progress":
        alive = row.live and row.last_heartbeat_at is not None and now - row.last_heartbeat_at <= DISCONNECTED_AFTER
        return "answering" if alive else "disconnected"
    if row.live:
        return "reading" if sitting.opened_at is not None else "logged_in"
    if row.status is not None:
        return "logged_in"  # signed in before, signed out since
    if row.checked_in_at is not None:
        return "checked_in"
    return "not_arrived"


def _seat_rows(session: Session, sitting: Sitting):
    """Every seat of the room with its attempt, answered count and live session: one statement."""
    answered = (select(func.count()).select_from(Response)
                .where(Response.attempt_id == Attempt.id, cast(Response.choices, Text) != "[]")
                .correlate(Attempt).scalar_subquery())
    live = exists().where(CandidateSession.candidate_id == Candidate.id, CandidateSession.ended_at.is_(None))
    return session.execute(
        select(Candidate.seat, Candidate.registration_no, Candidate.full_name, Candidate.checked_in_at,
               Candidate.absent_at, Attempt.status, Attempt.started_at, Attempt.section_position,
               Attempt.section_started_at, Attempt.section_deadline, Attempt.deadline, Attempt.extra_seconds,
               Attempt.last_heartbeat_at, Attempt.machine, Attempt.submitted_at, Attempt.submitted_by,
               answered.label("answered"), live.label("live"))
        .outerjoin(Attempt, Attempt.candidate_id == Candidate.id)
        .where(Candidate.sitting_id == sitting.id)
        .order_by(Candidate.seat.is_(None), Candidate.seat, Candidate.registration_no)).all()


def seats_of(session: Session, sitting: Sitting, now: datetime) -> list[Seat]:
    sections = attempts.exam_sections(session, sitting.exam_id)
    at = room_time(sitting, now)
    seats = []
    for row in _seat_rows(session, sitting):
        section_left = total_left = None
        position, deadline = row.section_position, row.deadline
        if row.status == "in_progress":
            moment = attempts.clock(row, sections, at)
            position, deadline = moment.position, moment.deadline
            section_left = max(0.0, (moment.section_deadline - at).total_seconds())
            total_left = max(0.0, (moment.deadline - at).total_seconds())
        seats.append(Seat(row.seat, row.registration_no, row.full_name, seat_state(row, sitting, now),
                          int(row.answered or 0), row.checked_in_at, row.absent_at, row.status, row.started_at,
                          position, section_left, total_left, deadline, int(row.extra_seconds or 0),
                          row.last_heartbeat_at, row.machine or "", row.submitted_at, row.submitted_by))
    return seats


@dataclass
class RoomView:
    sitting: Sitting
    now: datetime
    seats: list[Seat]
    incidents: list[tuple[Incident, str | None, int | None]]  # incident, registration number, seat
    questions: int  # per paper
    access_code: str
    code_seconds_left: int
    late_entry_until: datetime | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exam(self) -> Exam:
        return self.sitting.exam  # read when a page needs it, not by every poll

    @property
    def phase(self) -> str:
        return sitting_phase(self.sitting, self.now,
                             running=any(seat.status == "in_progress" for seat in self.seats))


def sitting_phase(sitting: Sitting, now: datetime, *, running: bool = False) -> str:
    """upcoming (before its start) | waiting (for the proctor to open it) | running | paused | over
    (past its end with nobody still answering: granted time may run past the end)."""
    if sitting.paused_at is not None:
        return "paused"
    if now >= sitting.ends_at and not running:
        return "over"
    if sitting.opened_at is None:
        return "upcoming" if now < sitting.starts_at else "waiting"
    return "running"


def incidents_of(session: Session, sitting: Sitting, limit: int | None = None):
    query = (select(Incident, Candidate.registration_no, Candidate.seat)
             .outerjoin(Candidate, Candidate.id == Incident.candidate_id)
             .where(Incident.sitting_id == sitting.id).order_by(Incident.at.desc(), Incident.id.desc()))
    if limit:
        query = query.limit(limit)
    return [tuple(row) for row in session.execute(query).all()]


def room_view(session: Session, sitting: Sitting, now: datetime, *, incidents: int = 50) -> RoomView:
    """What the console polls: a bounded number of statements whatever the number of seats (the
    seats in one, the incidents in one; the exam's sections are kept in memory once published)."""
    seats = seats_of(session, sitting, now)
    sections = attempts.exam_sections(session, sitting.exam_id)
    counts = {state: 0 for state in SEAT_STATES}
    for seat in seats:
        counts[seat.state] += 1
    return RoomView(sitting, now, seats, incidents_of(session, sitting, incidents),
                    sum(s.question_count for s in sections), current_access_code(sitting, now),
                    seconds_until_rotation(now), attempts.late_entry_cutoff(sitting, now), counts)


# --- the sitting's report --------------------------------------------------------------------------

@dataclass
class RoomAction:
    at: datetime
    actor: str
    action: str
    registration_no: str | None
    seat: int | None
    reason: str
    details: dict


@dataclass
class RoomReport:
    view: RoomView
    actions: list[RoomAction]  # the proctors' actions, in order
    grants: list[RoomAction]  # extensions and compensations
    pauses: list[tuple[datetime, datetime | None, float | None, str]]  # start, end, seconds, reason

    @property
    def present(self) -> list[Seat]:
        return [seat for seat in self.view.seats if seat.present]

    @property
    def absent(self) -> list[Seat]:
        return [seat for seat in self.view.seats if seat.absent_at is not None]

    @property
    def unaccounted(self) -> list[Seat]:
        return [seat for seat in self.view.seats if not seat.present and seat.absent_at is None]

    def submitted_by(self, by: str) -> int:
        return sum(1 for seat in self.view.seats if seat.status == "submitted" and seat.submitted_by == by)

    @property
    def submitted(self) -> int:
        return sum(1 for seat in self.view.seats if seat.status == "submitted")

    @property
    def in_progress(self) -> int:
        return sum(1 for seat in self.view.seats if seat.status == "in_progress")


def room_report(session: Session, sitting: Sitting, now: datetime) -> RoomReport:
    """The sitting's record for the proctors to sign: attendance, submissions, incidents, the time
    granted and the pauses, every action with its reason (read from the audit chain)."""
    view = room_view(session, sitting, now, incidents=0)
    numbers = [seat.registration_no for seat in view.seats]
    attempt_ids = dict(session.execute(select(Attempt.public_id, Candidate.registration_no)
                                       .join(Candidate, Candidate.id == Attempt.candidate_id)
                                       .where(Candidate.sitting_id == sitting.id)).all())
    seat_of = {seat.registration_no: seat.seat for seat in view.seats}
    actions = []
    for entry, details in _entries(session, ROOM_ACTIONS, [sitting.code, *numbers, *attempt_ids]):
        if entry.object_type == "sitting" and entry.object_id != sitting.code:
            continue
        if (details.get("sitting", sitting.code), details.get("exam", view.exam.code)) != (sitting.code,
                                                                                            view.exam.code):
            continue  # the same registration number in another exam
        number = details.get("registration_no") or attempt_ids.get(entry.object_id)
        if entry.object_type == "candidate":
            number = entry.object_id
        actions.append(RoomAction(_parse(entry.at), entry.actor, entry.action, number, seat_of.get(number),
                                  details.get("reason", ""), details))
    pauses = []
    for action in actions:
        if action.action == "sitting.resume":
            pauses.append((_parse(action.details.get("paused_at")), action.at, action.details.get("seconds"),
                           action.reason))
    opened = [a for a in actions if a.action == "sitting.pause"]
    for pause in opened:  # the reason given when pausing
        for i, (start, end, seconds, _reason) in enumerate(pauses):
            if start == _parse(pause.details.get("paused_at")):
                pauses[i] = (start, end, seconds, pause.reason)
    if sitting.paused_at is not None:
        reason = next((a.reason for a in reversed(opened)), "")
        pauses.append((sitting.paused_at, None, None, reason))
    return RoomReport(view, actions, [a for a in actions if a.action in GRANT_ACTIONS], pauses)


def sittings_for_console(session: Session, now: datetime, *, days: int = 2) -> list[Sitting]:
    """The sittings a proctor may be running: from ``days`` ago on, soonest first."""
    return list(session.scalars(select(Sitting).where(or_(Sitting.ends_at >= now - timedelta(days=days),
                                                          Sitting.paused_at.is_not(None)))
                                .order_by(Sitting.starts_at, Sitting.code)))
