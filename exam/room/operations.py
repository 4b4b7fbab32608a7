"""The exam room's frequent writes (answer saves, heartbeats, and the starts and submissions of a whole
lab at once) as named operations: plain arguments in, the API's JSON body out, so the same operation runs
wherever the room's write door (exam/room/writes.py) sends it: in the writer process (exam/room/writer.py),
in the group commit's writer thread of the request's process, or in the request's own transaction, with
the same answer.

An operation returns the body to send, or None when the bearer token has no live session (the
view answers 401 ``invalid_token``); a refusal raises ``RoomError`` as the rules do.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from exam.core.timeutil import iso_utc
from exam.room import attempts, sessions


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and a Z (what every browser's Date.parse reads)."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


def save_answer(session: Session, *, token: str, question_id: str, choices: Any, seq: Any, flagged: Any,
                machine: str, now: datetime, grace_seconds: float) -> dict | None:
    receipt = attempts.save_answer_for_token(session, token, question_id=question_id, choices=choices, seq=seq,
                                             flagged=flagged, machine=machine, now=now,
                                             grace=timedelta(seconds=grace_seconds))
    if receipt is None:
        return None
    return {"question_id": receipt.question_id, "seq": receipt.seq, "saved_at": iso(receipt.saved_at),
            "server_time": iso(now)}


def heartbeat(session: Session, *, token: str, now: datetime, grace_seconds: float) -> dict | None:
    found = attempts.heartbeat_for_token(session, token, now=now, grace=timedelta(seconds=grace_seconds))
    if found is None:
        return None
    attempt, moment, paused_at = found  # the clock as shown: frozen while the room is paused
    return {"server_time": iso(now), "status": attempt.status, "paused": paused_at is not None,
            "deadline": iso(moment.deadline), "section_position": moment.position,
            "section_deadline": iso(moment.section_deadline) if attempt.status == "in_progress" else None}


def start(session: Session, *, token: str, now: datetime, grace_seconds: float) -> dict | None:
    """The start (idempotent); the view answers with the attempt body, read after the commit."""
    if not attempts.start_for_token(session, token, now=now, grace=timedelta(seconds=grace_seconds)):
        return None
    return {"started": True}


def submit(session: Session, *, token: str, now: datetime, grace_seconds: float) -> dict | None:
    """The candidate's submission (idempotent): final, graded, audit-logged."""
    found = sessions.session_for_token(session, token, lock=True)
    if found is None:
        return None
    _live, candidate, attempt = found
    attempt = attempts.submit(session, attempt, attempts.exam_sections(session, candidate.exam_id), by="candidate",
                              now=now, grace=timedelta(seconds=grace_seconds))
    return {"status": attempt.status, "submitted_at": iso(attempt.submitted_at), "server_time": iso(now)}


OPERATIONS: dict[str, Callable[..., dict | None]] = {"save_answer": save_answer, "heartbeat": heartbeat,
                                                     "start": start, "submit": submit}


# --- plain values across the writer process's socket (JSON: no pickle between processes) -----------------

def encode_arguments(arguments: dict) -> dict:
    return {name: {"$time": iso_utc(value)} if isinstance(value, datetime) else value
            for name, value in arguments.items()}


def decode_arguments(arguments: dict) -> dict:
    return {name: datetime.fromisoformat(value["$time"].replace("Z", "+00:00"))
            if isinstance(value, dict) and set(value) == {"$time"} else value
            for name, value in arguments.items()}
