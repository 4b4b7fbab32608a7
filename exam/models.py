"""Exams, sections and their blueprints, sittings, candidates, papers, attempts and responses.

An exam is drafted, then published: publishing freezes its settings and the exact
question versions it may draw (``exam_pool``). Papers are drawn before the sitting
and stored; an attempt is one candidate's sitting of their paper. Deadlines are
absolute UTC times held by the server. Every answer save is kept in
``response_log`` (append-only, hash-chained per attempt); ``response`` holds the
latest choice per question for fast reads.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime
from exam.setup.models import (
    Candidate,
    Paper,
)

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


# --- results: grading runs, key corrections, outside scores, merit lists (grading issue) ---------

class GradingRun(Base):
    """One grading of a whole exam: what it used and what it produced, hashed into the audit chain."""

    __tablename__ = "grading_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))  # of the key versions and corrections applied
    inputs_hash: Mapped[str] = mapped_column(String(64))
    outputs_hash: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict] = mapped_column(JSON)


class CandidateScore(Base):
    """A candidate's round-1 result from the latest grading run."""

    __tablename__ = "candidate_score"

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    grading_run_id: Mapped[int] = mapped_column(ForeignKey("grading_run.id"))
    total: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column()
    # Per section in position order, packed (exam.results.pack_section_results): scores float64 LE, then
    # questions, right answers, answered (int32 LE each), then passed (uint8): 21 bytes per section.
    section_results: Mapped[bytes] = mapped_column(LargeBinary)


class KeyCorrection(Base):
    """A change to the key of one question of an exam: proposed by one board member, approved by another."""

    __tablename__ = "key_correction"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    question_version_id: Mapped[int] = mapped_column(ForeignKey("question_version.id"))
    action: Mapped[str] = mapped_column(String(16))  # rekey | void_award | void_remove
    correct: Mapped[list | None] = mapped_column(JSON)  # new correct option indices (author's order), for rekey
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed | approved | rejected
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExternalScore(Base):
    """A score from outside the system (e.g. round 2 marked on paper), per candidate and component."""

    __tablename__ = "external_score"

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    component: Mapped[str] = mapped_column(String(40), primary_key=True)  # e.g. "round2"
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    score: Mapped[float | None] = mapped_column(Float)  # None: absent from that round
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[str] = mapped_column(String(64))
    source_sha256: Mapped[str] = mapped_column(String(64))


class MeritList(Base):
    """A merit list of an exam (all posts); once published it is frozen and its hash is in the audit chain."""

    __tablename__ = "merit_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | published
    rule: Mapped[dict] = mapped_column(JSON)
    # The ranked rows per post as computed (and frozen): the canonical JSON text of exam.merit.dump_merit_lists,
    # whose SHA-256 is ``hash``. Loaded only when read (it holds every candidate).
    content: Mapped[str] = mapped_column(Text, deferred=True)
    hash: Mapped[str] = mapped_column(String(64))
    grading_run_id: Mapped[int | None] = mapped_column(ForeignKey("grading_run.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(64))


class TieDecision(Base):
    """The board's decision on a candidate in an unresolved tie at a quota boundary."""

    __tablename__ = "tie_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    post: Mapped[str] = mapped_column(String(200))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    decision: Mapped[str] = mapped_column(String(16))  # selected | not_selected
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ItemStatistic(Base):
    """How a question version performed in one exam: written back so the bank shows it."""

    __tablename__ = "item_statistic"

    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), primary_key=True)
    question_version_id: Mapped[int] = mapped_column(ForeignKey("question_version.id"), primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stats: Mapped[dict] = mapped_column(JSON)


# --- the room: incidents (proctor issue) ------------------------------------------------------------

class Incident(Base):
    """Something the proctor noted against a seat or the whole room."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    sitting_id: Mapped[int] = mapped_column(ForeignKey("sitting.id"), index=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidate.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. violation, technical, power, note
    description: Mapped[str] = mapped_column(Text)
