"""Sittings: the rotating access code the proctor shows, the sitting's time window, and its seats.

Times are typed and shown in Vietnam's time (``parse_local_time``, ``local_time``) and
stored in UTC. ``create_sitting`` and ``assign_seats`` only flush and append their audit
entry in the caller's transaction.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.core.errors import Refused
from exam.core.timeutil import iso_utc
from exam.setup.models import Candidate, Exam, Sitting
from exam.setup.spec import CODE_PATTERN, CODE_RULE

ACCESS_CODE_SECONDS = 120  # long enough to read off a projector and type
ACCESS_CODE_DIGITS = 6


def new_access_secret() -> str:
    return pyotp.random_base32()


def _totp(sitting: Sitting) -> pyotp.TOTP:
    return pyotp.TOTP(sitting.access_secret, digits=ACCESS_CODE_DIGITS, interval=ACCESS_CODE_SECONDS)


def current_access_code(sitting: Sitting, now: datetime) -> str:
    return _totp(sitting).at(now)


def seconds_until_rotation(now: datetime) -> int:
    return ACCESS_CODE_SECONDS - int(now.timestamp()) % ACCESS_CODE_SECONDS


def check_access_code(sitting: Sitting, code: str, now: datetime) -> bool:
    """The current code, or the one just before it (a candidate still typing when it rotated)."""
    code = "".join((code or "").split())
    if not code.isdigit():
        return False
    totp = _totp(sitting)
    return any(secrets.compare_digest(totp.at(now, counter_offset=offset), code) for offset in (0, -1))


# --- local time ----------------------------------------------------------------------------------
# Boards type and read times in Vietnam's time (UTC+7, no daylight saving); the database holds UTC.

try:
    LOCAL_TZ: tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # pragma: no cover - a system without tzdata
    LOCAL_TZ = timezone(timedelta(hours=7), "ICT")

LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                 "%d/%m/%Y %H:%M")
LOCAL_TIME_HINT = "a local time (Asia/Ho_Chi_Minh) such as '2026-12-01 08:00' or '01/12/2026 08:00'"


def parse_local_time(text: str) -> datetime:
    """'2026-12-01 08:00' (Vietnam time) → an aware UTC datetime; ValueError naming the expected form."""
    value = " ".join((text or "").split())
    for fmt in LOCAL_FORMATS:
        try:
            naive = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=LOCAL_TZ).astimezone(UTC)
    raise Refused(f"must be {LOCAL_TIME_HINT} (got {text!r})")


def local_time(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A stored UTC time as the board reads it (Vietnam time)."""
    return value.astimezone(LOCAL_TZ).strftime(fmt) if value else ""


# --- creating sittings ---------------------------------------------------------------------------

MAX_SEATS = 2000
MAX_LATE_ENTRY_MINUTES = 120
MAX_SITTING_MINUTES = 24 * 60


class SittingError(Refused):
    """A refused sitting or seat operation: every problem as (field, message), English."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{name}: {message}" if name else message for name, message in problems))
        self.problems = list(problems)


def sitting_by_code(session: Session, code: str) -> Sitting | None:
    return session.scalar(select(Sitting).where(Sitting.code == (code or "").strip()))


def sittings_of(session: Session, exam: Exam) -> list[Sitting]:
    return list(session.scalars(select(Sitting).where(Sitting.exam_id == exam.id)
                                .order_by(Sitting.starts_at, Sitting.code)))


def create_sitting(session: Session, exam: Exam, *, code: str, room: str, starts_at: datetime, seats: int,
                   ends_at: datetime | None = None, minutes: int | None = None, late_entry_minutes: int = 15,
                   actor: str, now: datetime) -> Sitting:
    """A sitting of ``exam`` in ``room``: ``ends_at`` or ``minutes`` (default: the exam's total plus the
    late-entry window, so the last admitted candidate still gets full time). Audit ``sitting.create``.

    Raises SittingError with every problem; the window must hold the whole exam and not be over already.
    """
    code = (code or "").strip()
    room = " ".join((room or "").split())
    problems = _place_problems(session, code, room, seats)
    if not isinstance(late_entry_minutes, int) or not 0 <= late_entry_minutes <= MAX_LATE_ENTRY_MINUTES:
        problems.append(("late_entry_minutes", f"must be from 0 to {MAX_LATE_ENTRY_MINUTES} minutes "
                                               f"(got {late_entry_minutes!r})"))
        late_entry_minutes = 0
    ends_at, window_problems = _window(exam, starts_at, ends_at, minutes, late_entry_minutes, now)
    problems += window_problems
    if problems:
        raise SittingError(problems)
    sitting = Sitting(exam_id=exam.id, code=code, room=room, starts_at=starts_at, ends_at=ends_at,
                      late_entry_minutes=late_entry_minutes, seats=seats, access_secret=new_access_secret(),
                      created_at=now)
    session.add(sitting)
    session.flush()
    audit.append(session, actor=actor, action="sitting.create", object_type="sitting", object_id=code,
                 details={"exam": exam.code, "room": room, "starts_at": iso_utc(starts_at),
                          "ends_at": iso_utc(ends_at), "seats": seats, "late_entry_minutes": late_entry_minutes},
                 now=now)
    return sitting


def _place_problems(session: Session, code: str, room: str, seats: int) -> list[tuple[str, str]]:
    """What is wrong with the sitting's code (its form, unique), room name and number of seats."""
    problems = []
    if not CODE_PATTERN.match(code):
        problems.append(("code", f"must be {CODE_RULE} (got {code!r})"))
    elif sitting_by_code(session, code) is not None:
        problems.append(("code", f"a sitting with code {code!r} already exists"))
    if not room:
        problems.append(("room", "is required"))
    elif len(room) > 100:
        problems.append(("room", "is too long (at most 100 characters)"))
    if not isinstance(seats, int) or not 1 <= seats <= MAX_SEATS:
        problems.append(("seats", f"must be a whole number from 1 to {MAX_SEATS} (got {seats!r})"))
    return problems


def _window(exam: Exam, starts_at: datetime | None, ends_at: datetime | None, minutes: int | None,
            late_entry_minutes: int, now: datetime) -> tuple[datetime | None, list[tuple[str, str]]]:
    """(the sitting's end, problems): from ``ends_at`` or ``minutes`` (default: the exam's total plus the
    late-entry window)."""
    if starts_at is None or starts_at.tzinfo is None:
        return ends_at, [("starts_at", "is required (" + LOCAL_TIME_HINT + ")")]
    if ends_at is not None and minutes is not None:
        return ends_at, [("ends_at", "give the end time or the minutes, not both")]
    if ends_at is None:
        if minutes is None:
            minutes = exam.total_minutes + late_entry_minutes
        if not isinstance(minutes, int) or not 1 <= minutes <= MAX_SITTING_MINUTES:
            return None, [("minutes", f"must be from 1 to {MAX_SITTING_MINUTES} (got {minutes!r})")]
        ends_at = starts_at + timedelta(minutes=minutes)
    return ends_at, _end_problems(exam, starts_at, ends_at, now)


def _end_problems(exam: Exam, starts_at: datetime, ends_at: datetime, now: datetime) -> list[tuple[str, str]]:
    """The window must hold the whole exam and not be over already."""
    if ends_at.tzinfo is None:
        return [("ends_at", "must be a local time")]
    if ends_at <= starts_at:
        return [("ends_at", f"must be after the start ({local_time(starts_at)})")]
    if ends_at - starts_at < timedelta(minutes=exam.total_minutes):
        length = int((ends_at - starts_at).total_seconds() // 60)
        return [("ends_at", f"the sitting lasts {length} minutes but the exam takes {exam.total_minutes}: "
                            f"nobody could finish it")]
    if ends_at <= now:
        return [("ends_at", f"the sitting would already be over ({local_time(ends_at)})")]
    return []


# --- seats ---------------------------------------------------------------------------------------

@dataclass
class SeatRun:
    seated: int  # candidates given a seat now
    already: int  # candidates of the sitting who had a seat
    seats: int


def assign_seats(session: Session, exam: Exam, sitting: Sitting, *, actor: str, now: datetime) -> SeatRun:
    """Seat, in registration-number order, the exam's candidates who wait for a seat in this sitting:
    those put in it without a seat (by the roster) and those in no sitting yet. Seats already given
    are kept; the free seat numbers are filled from the lowest. Refused, writing nothing, when they do
    not all fit. Audit ``candidates.seat``.
    """
    if sitting.exam_id != exam.id:
        raise SittingError([("sitting", f"sitting {sitting.code} belongs to another exam")])
    in_sitting = session.scalars(select(Candidate).where(Candidate.sitting_id == sitting.id)).all()
    taken = {c.seat for c in in_sitting if c.seat is not None}
    waiting = sorted([c for c in in_sitting if c.seat is None]
                     + list(session.scalars(select(Candidate).where(Candidate.exam_id == exam.id,
                                                                     Candidate.sitting_id.is_(None)))),
                     key=lambda c: c.registration_no)
    free = [seat for seat in range(1, sitting.seats + 1) if seat not in taken]
    if len(waiting) > len(free):
        raise SittingError([("sitting", f"sitting {sitting.code} ({sitting.room}) has {len(free)} free seats of "
                                        f"{sitting.seats} but {len(waiting)} candidates wait for a seat; create "
                                        "another sitting and put candidates in it with the roster's sitting "
                                        "column, or use a larger room")])
    for candidate, seat in zip(waiting, free, strict=False):
        candidate.sitting_id = sitting.id
        candidate.seat = seat
    session.flush()
    if waiting:
        audit.append(session, actor=actor, action="candidates.seat", object_type="sitting", object_id=sitting.code,
                     details={"exam": exam.code, "seated": len(waiting), "first": waiting[0].registration_no,
                              "last": waiting[-1].registration_no, "seats": [free[0], free[len(waiting) - 1]]},
                     now=now)
    return SeatRun(len(waiting), len(taken), sitting.seats)
