"""The exam room as stored: attempts, the latest response per question, every save ever acknowledged (hash-chained
per attempt), the lab machines' sessions.

An attempt is one candidate's sitting of their paper. Deadlines are absolute UTC times held by the server. Every
answer save is kept in ``response_log`` (append-only, hash-chained per attempt); ``response`` holds the latest
choice per question for fast reads.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime
from exam.setup.models import Candidate, Paper

ATTEMPT_STATUSES = ("not_started", "in_progress", "submitted")


class Attempt(Base):
    __tablename__ = "attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # opaque: no guessable ids in URLs
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), unique=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id"))
    status: Mapped[str] = mapped_column(String(16), default="not_started")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # of the whole attempt
    section_position: Mapped[int] = mapped_column(default=1)  # the open section
    section_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    section_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extra_seconds: Mapped[int] = mapped_column(default=0)  # extensions granted by the proctor
    last_seq: Mapped[int] = mapped_column(default=0)
    history_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)  # head of this attempt's save chain
    history_count: Mapped[int] = mapped_column(default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str | None] = mapped_column(String(32))  # candidate | deadline | proctor
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    machine: Mapped[str] = mapped_column(String(200), default="")
    score: Mapped[dict | None] = mapped_column(JSON)  # section scores computed at submission
    choice_masks: Mapped[bytes | None] = mapped_column(LargeBinary)  # final choices per position, set at submission

    candidate: Mapped[Candidate] = relationship()
    paper: Mapped[Paper] = relationship()

    __table_args__ = (Index("ix_attempt_open_deadline", "status", "deadline"),)


class Response(Base):
    """The latest saved choice for one question of an attempt."""

    __tablename__ = "response"

    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("paper_item.id"), primary_key=True)
    choices: Mapped[list] = mapped_column(JSON)  # opaque option ids
    flagged: Mapped[bool] = mapped_column(default=False)
    seq: Mapped[int] = mapped_column()
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ResponseLog(Base):
    """Every save ever acknowledged, chained by hash within the attempt; append-only."""

    __tablename__ = "response_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id"), index=True)
    seq: Mapped[int] = mapped_column()
    item_id: Mapped[int] = mapped_column()
    choices: Mapped[str] = mapped_column(Text)  # canonical JSON list, hashed as stored
    flagged: Mapped[bool] = mapped_column(default=False)
    at: Mapped[str] = mapped_column(String(32))  # server time, ISO UTC
    machine: Mapped[str] = mapped_column(String(200), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CandidateSession(Base):
    """A lab machine's login: the bearer token's hash. One live session per candidate."""

    __tablename__ = "candidate_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))  # logout | moved | submitted
    machine: Mapped[str] = mapped_column(String(200), default="")

    candidate: Mapped[Candidate] = relationship()
