"""Merit lists as stored: scores from outside the system (round 2 on paper, an interview), the lists (draft,
published, superseded) as their canonical JSON text, and the board's decisions on ties.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime


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
    # The ranked rows per post as computed (and frozen): the canonical JSON text of exam.merit.content.dump_merit_lists,
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
