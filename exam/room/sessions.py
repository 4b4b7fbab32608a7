"""Lab-machine sessions: a candidate's login, the bearer token, logout, and the proctor's admitted move.

A login opens a ``candidate_session`` on one machine and gives the page an opaque bearer token, stored only
as its hash; every other call of the page sends it, and ``session_for_token`` finds the live session with
its candidate and attempt in one query (the attempt row locked for a write). One live session per candidate
while the attempt is open: a login from another machine is refused unless the proctor admitted a move
(``admit_move``). Every login, refusal, logout and move is audit-logged in the caller's transaction.

Rules take a session and ``now`` and only flush; a refusal raises ``RoomError(code)`` (the contract's codes,
docs/exam-room-contract.md), after auditing a failed login, so the caller commits on a refusal too.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from exam.audit import chain as audit
from exam.core.errors import Refused
from exam.room import paper_cache
from exam.room.errors import RoomError
from exam.room.history import GENESIS_HASH
from exam.room.models import Attempt, CandidateSession
from exam.setup.models import Candidate, Paper, Sitting
from exam.setup.sittings import check_access_code


def candidate_actor(candidate: Candidate | str) -> str:
    number = candidate if isinstance(candidate, str) else candidate.registration_no
    return f"candidate:{number}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def machine_ip(machine: str) -> str:
    """A machine is recorded as "<ip> <short user agent>"; the same machine means the same IP."""
    return (machine or "").split(" ", 1)[0]


def late_entry_cutoff(sitting: Sitting, now: datetime) -> datetime | None:
    """The last moment a candidate who has not started may still sign in: ``late_entry_minutes`` after the
    sitting began (the later of its scheduled start and the proctor's opening), plus the time the room
    has been paused. None before the proctor opens the sitting: nothing has begun, the door stays open."""
    if sitting.opened_at is None:
        return None
    began = max(sitting.starts_at, sitting.opened_at)
    paused = timedelta(seconds=sitting.paused_seconds or 0)
    if sitting.paused_at is not None and now > sitting.paused_at:
        paused += now - sitting.paused_at
    return began + timedelta(minutes=sitting.late_entry_minutes) + paused


# --- login ----------------------------------------------------------------------------------------------

@dataclass
class LoginResult:
    token: str
    candidate: Candidate
    sitting: Sitting
    attempt: Attempt
    candidate_session: CandidateSession


def _refuse_login(session: Session, registration_no: str, code: str, machine: str, now: datetime,
                  **details) -> RoomError:
    audit.append(session, actor=candidate_actor(registration_no), action="candidate.login_failed",
                 object_type="candidate", object_id=registration_no,
                 details={"reason": code, "machine": machine, **details}, now=now)
    return RoomError(code)


def ensure_attempt(session: Session, candidate: Candidate, paper: Paper) -> Attempt:
    """The candidate's attempt, created (not started) on first login."""
    attempt = session.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
    if attempt is None:
        attempt = Attempt(public_id=secrets.token_hex(12), candidate_id=candidate.id, paper_id=paper.id,
                          status="not_started", section_position=1, extra_seconds=0, last_seq=0,
                          history_hash=GENESIS_HASH, history_count=0, machine="")
        session.add(attempt)
        session.flush()
    return attempt


def login(session: Session, *, registration_no: str, date_of_birth: date, access_code: str, machine: str,
          now: datetime) -> LoginResult:
    """Open a lab machine's session: registration number + date of birth + the sitting's access code.

    Unknown number and wrong date of birth give the same ``bad_credentials``. The access
    code must be the candidate's own sitting's current one (or the one just before it).
    One live session per candidate while the attempt is open: a second login is refused
    (``active_elsewhere``) unless it comes from the same machine (it then replaces the
    old session) or a move was admitted after the live session began (``admit_move``).
    Every login and every refusal is audit-logged.
    """
    registration_no = registration_no.strip()
    found = session.scalars(select(Candidate).where(Candidate.registration_no == registration_no)
                            .options(joinedload(Candidate.sitting))  # the access code is checked against it
                            .order_by(Candidate.id).with_for_update(of=Candidate)).all()
    matching = [c for c in found if c.date_of_birth == date_of_birth]
    if not matching:
        raise _refuse_login(session, registration_no, "bad_credentials", machine, now,
                            known_number=bool(found))
    # Registration numbers are unique per exam; the access code tells which sitting is meant.
    admitted = [c for c in matching if c.sitting is not None and check_access_code(c.sitting, access_code, now)]
    if not admitted:
        raise _refuse_login(session, registration_no, "bad_access_code", machine, now)
    admitted.sort(key=lambda c: not (c.sitting.starts_at <= now < c.sitting.ends_at))
    candidate = admitted[0]
    sitting = candidate.sitting
    if now < sitting.starts_at:
        raise _refuse_login(session, registration_no, "sitting_not_started", machine, now, sitting=sitting.code)
    if candidate.absent_at is not None:
        raise _refuse_login(session, registration_no, "marked_absent", machine, now, sitting=sitting.code)
    paper = session.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
    if paper is None:
        raise _refuse_login(session, registration_no, "not_ready", machine, now, sitting=sitting.code)
    attempt = session.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
    not_started = attempt is None or attempt.status == "not_started"
    cutoff = late_entry_cutoff(sitting, now)
    if not_started and cutoff is not None and now > cutoff:
        raise _refuse_login(session, registration_no, "late_entry_closed", machine, now, sitting=sitting.code)

    live = list(session.scalars(select(CandidateSession).where(CandidateSession.candidate_id == candidate.id,
                                                                CandidateSession.ended_at.is_(None))))
    ended_reason = None
    if live and (attempt is None or attempt.status != "submitted"):
        if candidate.move_admitted_at is not None and candidate.move_admitted_at >= max(s.created_at for s in live):
            ended_reason = "moved"
        elif all(machine_ip(s.machine) == machine_ip(machine) for s in live):
            ended_reason = "replaced"
        else:
            raise _refuse_login(session, registration_no, "active_elsewhere", machine, now, sitting=sitting.code,
                                live_machine=live[-1].machine)
        for old in live:
            old.ended_at, old.end_reason = now, ended_reason

    attempt = attempt or ensure_attempt(session, candidate, paper)
    if attempt.status != "submitted":
        attempt.machine = machine[:200]
    token = secrets.token_urlsafe(32)
    candidate_session = CandidateSession(candidate_id=candidate.id, token_hash=hash_token(token), created_at=now,
                                         machine=machine[:200])
    session.add(candidate_session)
    audit.append(session, actor=candidate_actor(candidate), action="candidate.login", object_type="candidate",
                 object_id=candidate.registration_no,
                 details={"exam": paper_cache.exam_header(session, candidate.exam_id).code, "sitting": sitting.code,
                          "machine": machine, "attempt": attempt.public_id, "status": attempt.status,
                          "ended_sessions": len(live) if ended_reason else 0, "end_reason": ended_reason},
                 now=now)
    session.flush()
    return LoginResult(token, candidate, sitting, attempt, candidate_session)


# --- the bearer token -------------------------------------------------------------------------------------

_BY_TOKEN: dict = {}  # lock → the query, built on first use (once every model is mapped)


def _by_token(lock: bool):
    """The token's session, candidate and attempt in one query; the candidate's sitting comes along
    (``candidate.sitting``), so the room checks (``room_paused_at``) find it in the session."""
    query = _BY_TOKEN.get(lock)
    if query is None:
        query = (select(CandidateSession, Candidate, Attempt)
                 .join(Candidate, Candidate.id == CandidateSession.candidate_id)
                 .join(Attempt, Attempt.candidate_id == Candidate.id)
                 .outerjoin(Candidate.sitting).options(contains_eager(Candidate.sitting))
                 .where(CandidateSession.token_hash == bindparam("token_hash")))
        _BY_TOKEN[lock] = query = query.with_for_update(of=Attempt) if lock else query
    return query


def session_for_token(session: Session, token: str, *, lock: bool = False
                      ) -> tuple[CandidateSession, Candidate, Attempt] | None:
    """The live session of a bearer token with its candidate and attempt (one query).

    With ``lock`` the attempt row is locked (PostgreSQL ``FOR UPDATE``; SQLite write
    transactions are serialized already), so one attempt's saves queue on their own
    row and never on anybody else's.
    """
    if not token:
        return None
    row = session.execute(_by_token(lock), {"token_hash": hash_token(token)}).first()
    if row is None or row[0].ended_at is not None:
        return None
    return row[0], row[1], row[2]


def ended_session(session: Session, token: str) -> CandidateSession | None:
    """The session of a token that is no longer live (to tell the page why)."""
    if not token:
        return None
    found = session.scalar(select(CandidateSession).where(CandidateSession.token_hash == hash_token(token)))
    return found if found is not None and found.ended_at is not None else None


# --- the session's end: logout, a move to another machine --------------------------------------------------

def logout(session: Session, candidate_session: CandidateSession, candidate: Candidate, *, now: datetime) -> None:
    candidate_session.ended_at, candidate_session.end_reason = now, "logout"
    audit.append(session, actor=candidate_actor(candidate), action="candidate.logout", object_type="candidate",
                 object_id=candidate.registration_no, details={"machine": candidate_session.machine}, now=now)
    session.flush()


def end_live_sessions(session: Session, candidate: Candidate, reason: str, now: datetime) -> list[CandidateSession]:
    """End every live session of the candidate (their machines' tokens stop working), with the reason
    (``moved``, ``absent``, ...); the sessions ended."""
    live = list(session.scalars(select(CandidateSession).where(CandidateSession.candidate_id == candidate.id,
                                                                CandidateSession.ended_at.is_(None))))
    for old in live:
        old.ended_at, old.end_reason = now, reason
    return live


def admit_move(session: Session, candidate: Candidate, *, actor: str, reason: str, now: datetime) -> int:
    """The proctor lets the candidate continue on another machine: their live sessions end
    (reason ``moved``; the old machine's token stops working) and the next login is admitted
    from anywhere. Returns the number of sessions ended."""
    reason = (reason or "").strip()
    if not reason:
        raise Refused("give the reason for the move (it goes into the audit log)")
    live = end_live_sessions(session, candidate, "moved", now)
    candidate.move_admitted_at = now
    audit.append(session, actor=actor, action="candidate.admit_move", object_type="candidate",
                 object_id=candidate.registration_no,
                 details={"exam": candidate.exam.code, "reason": reason, "ended_sessions": len(live),
                          "machines": [s.machine for s in live]}, now=now)
    session.flush()
    return len(live)
