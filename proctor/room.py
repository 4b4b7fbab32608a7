"""The proctor's rules for one room (a sitting): the actions that change it. What the console and the
sitting's report show is ``proctor.room_state``.

Every action is a plain function taking a session, the room or candidate, the actor, a reason and
``now``. It refuses (``ProctorError``) before changing anything, and without a reason it always
refuses; otherwise it changes the rows, appends its audit entry in the caller's transaction and only
flushes (the view commits once).

The semantics (docs/exam-room-contract.md, "The proctor"):

* **open** (``open_sitting``): candidates may sign in from ``starts_at`` on, but start only once the
  proctor has opened the sitting (``sitting_not_open`` before). The late-entry cut-off counts from the
  later of ``starts_at`` and the opening (``sessions.late_entry_cutoff``).
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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.audit.models import AuditEntry
from exam.core.errors import Refused
from exam.core.timeutil import iso_utc
from exam.room import attempts, sessions
from exam.room.attempts import DEFAULT_GRACE, DISCONNECTED_AFTER
from exam.room.models import Attempt
from exam.setup.models import Candidate, Paper, Sitting
from proctor.models import Incident

MAX_REASON = 500
MAX_EXTENSION_SECONDS = 4 * 3600
INCIDENT_KINDS = ("violation", "technical", "power", "note")


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
    cutoff = sessions.late_entry_cutoff(sitting, now)
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
        attempt = sessions.ensure_attempt(session, candidate, paper)
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


def audit_entries(session: Session, actions: Sequence[str],
                  object_ids: Sequence[str]) -> list[tuple[AuditEntry, dict]]:
    if not object_ids:
        return []
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action.in_(actions),
                                                    AuditEntry.object_id.in_(list(object_ids)))
                           .order_by(AuditEntry.seq))
    return [(row, json.loads(row.details or "{}")) for row in rows]


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def pauses_of(session: Session, sitting: Sitting, now: datetime) -> list[tuple[datetime, datetime]]:
    """The room's pauses as (start, end) from the audit chain; the current one ends now."""
    spans = []
    for _entry, details in audit_entries(session, ("sitting.resume",), [sitting.code]):
        start, end = parse_iso(details.get("paused_at")), parse_iso(details.get("resumed_at"))
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
        found = audit_entries(session, ("attempt.reconnect",), [attempt.public_id])
        if not found:
            return None
        details = found[-1][1]
        since, until, ongoing = parse_iso(details["since"]), parse_iso(details["back_at"]), False
    outage = until - since
    paused = _overlap(since, until, pauses_of(session, sitting, now))
    granted = sum(int(details.get("seconds", 0)) for _entry, details in
                  audit_entries(session, ("attempt.compensate",), [attempt.public_id])
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
    live = sessions.end_live_sessions(session, candidate, "absent", now)
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
    cutoff = sessions.late_entry_cutoff(sitting, now)
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
    ``sessions.admit_move``). Returns the number of sessions ended."""
    reason = require_reason(reason)
    _sitting_of(session, candidate)
    attempt = attempt_of(session, candidate)
    if attempt is not None and attempt.status == "submitted":
        raise ProctorError("submitted")
    if candidate.absent_at is not None:
        raise ProctorError("marked_absent")
    return sessions.admit_move(session, candidate, actor=actor, reason=reason, now=now)


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
