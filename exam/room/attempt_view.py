"""The attempt as the candidate's page is shown it (GET /attempt): the section states, the sections whose
questions are sent, the attempt's row and its saved answers read on the driver's cursor, a question's image.

Reads only: nothing here writes, and the clock is read lazily (``attempts.clock``), so a page shown at any
moment costs two reads (the token's attempt and its answers). The questions themselves come from memory
(exam/room/paper_cache.py); the API (exam/room/api.py) puts the body together.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.core.db import Driver, DriverStatement
from exam.room.attempts import Clock, SectionPlan, clock
from exam.room.models import Attempt
from exam.room.sessions import hash_token
from exam.setup.models import PaperItem
from question_bank.models import QuestionVersion


def section_states(attempt: Attempt, sections: Sequence[SectionPlan], moment: Clock) -> list[dict]:
    """Per section: upcoming | open | closed, and the close of the open one. After submission every
    section is closed (those never opened stay unseen)."""
    states = []
    for section in sections:
        deadline = None
        if attempt.status == "not_started":
            state = "upcoming"
        elif attempt.status == "submitted" or section.position < moment.position:
            state = "closed"
        elif section.position == moment.position:
            state, deadline = "open", moment.section_deadline
        else:
            state = "upcoming"
        states.append({"section": section, "state": state, "deadline": deadline})
    return states


def shown_sections(attempt: Attempt | AttemptView, moment: Clock) -> range:
    """The positions of the sections whose questions the candidate is sent: none before the start, then
    every section that has opened (an upcoming section never leaves the server)."""
    return range(1, 1) if attempt.status == "not_started" else range(1, moment.position + 1)


@dataclass(frozen=True)
class AttemptView:
    """An attempt as GET /attempt shows it, with what the page's body is built from: a plain row
    (``clock()`` reads it like an ``Attempt``)."""

    id: int
    public_id: str
    paper_id: int
    content_hash: str  # of the paper: the paper's JSON is kept in memory under it
    exam_id: int
    status: str
    started_at: datetime | None
    section_position: int
    section_started_at: datetime | None
    section_deadline: datetime | None
    deadline: datetime | None
    extra_seconds: int
    last_seq: int
    submitted_at: datetime | None
    paused_at: datetime | None  # the room's pause


_ATTEMPT_VIEW = DriverStatement("""
    SELECT s.ended_at, a.id, a.public_id, a.paper_id, p.content_hash, c.exam_id, a.status, a.started_at,
           a.section_position, a.section_started_at, a.section_deadline, a.deadline, a.extra_seconds, a.last_seq,
           a.submitted_at, r.paused_at
    FROM candidate_session s
    JOIN candidate c ON c.id = s.candidate_id
    JOIN attempt a ON a.candidate_id = c.id
    JOIN paper p ON p.id = a.paper_id
    LEFT JOIN sitting r ON r.id = c.sitting_id
    WHERE s.token_hash = :token_hash""")


def attempt_view(driver: Driver, token: str) -> AttemptView | None:
    """The attempt of a bearer token's live session as the page is shown it (one read; None: no such
    token, or it ended)."""
    if not token:
        return None
    row = driver.first(_ATTEMPT_VIEW, {"token_hash": hash_token(token)})
    if row is None or row[0] is not None:
        return None
    time = driver.read_time
    (_, attempt_id, public_id, paper_id, content_hash, exam_id, status, started_at, position, section_started_at,
     section_deadline, deadline, extra_seconds, last_seq, submitted_at, paused_at) = row
    return AttemptView(attempt_id, public_id, paper_id, content_hash, exam_id, status, time(started_at), position,
                       time(section_started_at), time(section_deadline), time(deadline), extra_seconds or 0,
                       last_seq, time(submitted_at), time(paused_at))


_ANSWERS = DriverStatement("""
    SELECT i.public_id, r.choices, r.flagged, r.seq
    FROM response r JOIN paper_item i ON i.id = r.item_id
    WHERE r.attempt_id = :attempt_id""")


def answers_of(driver: Driver, attempt_id: int) -> dict[str, dict]:
    """The latest saved choice of every answered question of an attempt (one read)."""
    rows = driver.all(_ANSWERS, {"attempt_id": attempt_id})
    read_json = driver.read_json
    return {public_id: {"choices": list(read_json(choices)), "flagged": bool(flagged), "seq": seq}
            for public_id, choices, flagged, seq in rows}


def saved_answers(session: Session, attempt: Attempt) -> dict[str, dict]:
    """``answers_of`` an attempt of this session."""
    return answers_of(Driver(session), attempt.id)


def question_image(session: Session, attempt: Attempt, sections: Sequence[SectionPlan], question_id: str,
                   now: datetime) -> str | None:
    """The image file name of a question the candidate can see, or None."""
    if attempt.status == "not_started":
        return None
    moment = clock(attempt, sections, now)
    row = session.execute(select(PaperItem.section_id, QuestionVersion.image)
                          .join(QuestionVersion, QuestionVersion.id == PaperItem.question_version_id)
                          .where(PaperItem.paper_id == attempt.paper_id, PaperItem.public_id == question_id)).first()
    position_of = {s.id: s.position for s in sections}
    if row is None or not row.image or position_of[row.section_id] > moment.position:
        return None
    return row.image
