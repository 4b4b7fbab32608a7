"""The room as the proctor sees it, read-only: the console's seats (each seat's state and clock, at
the room's time, frozen while paused), the room's view the console polls (seats, incidents, the
access code, the late-entry cut-off, counts per state), and the sitting's report for the proctors to
sign (attendance, submissions, the time granted, the pauses, every action with its reason, read from
the audit chain). The proctor's actions that change the room are ``proctor.room``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Text, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from exam.room import attempts, sessions
from exam.room.attempts import DISCONNECTED_AFTER
from exam.room.models import Attempt, CandidateSession, Response
from exam.setup.models import Candidate, Exam, Sitting
from exam.setup.sittings import current_access_code, seconds_until_rotation
from proctor.models import Incident
from proctor.room import audit_entries, parse_iso, room_time

SEAT_STATES = ("not_arrived", "checked_in", "logged_in", "reading", "answering", "disconnected", "submitted",
               "absent")
# What the report lists as the proctors' actions (the audit chain holds them all).
ROOM_ACTIONS = ("sitting.open", "sitting.pause", "sitting.resume", "attempt.extend", "attempt.compensate",
                "attempt.force_submit", "candidate.absent", "candidate.present", "candidate.admit_move")
GRANT_ACTIONS = ("attempt.extend", "attempt.compensate")


# --- the console's seats -------------------------------------------------------------------------

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
        return sessions.machine_ip(self.machine)

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
                    seconds_until_rotation(now), sessions.late_entry_cutoff(sitting, now), counts)


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
    for entry, details in audit_entries(session, ROOM_ACTIONS, [sitting.code, *numbers, *attempt_ids]):
        if entry.object_type == "sitting" and entry.object_id != sitting.code:
            continue
        if (details.get("sitting", sitting.code), details.get("exam", view.exam.code)) != (sitting.code,
                                                                                            view.exam.code):
            continue  # the same registration number in another exam
        number = details.get("registration_no") or attempt_ids.get(entry.object_id)
        if entry.object_type == "candidate":
            number = entry.object_id
        actions.append(RoomAction(parse_iso(entry.at), entry.actor, entry.action, number, seat_of.get(number),
                                  details.get("reason", ""), details))
    pauses = []
    for action in actions:
        if action.action == "sitting.resume":
            pauses.append((parse_iso(action.details.get("paused_at")), action.at, action.details.get("seconds"),
                           action.reason))
    opened = [a for a in actions if a.action == "sitting.pause"]
    for pause in opened:  # the reason given when pausing
        for i, (start, end, seconds, _reason) in enumerate(pauses):
            if start == parse_iso(pause.details.get("paused_at")):
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
