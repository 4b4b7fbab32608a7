"""Grading as stored: each grading run with its hashes, every candidate's score, key corrections (proposed by one
board member, approved by another), and each question's statistics from the item analysis.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime


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
    # Per section in position order, packed (exam.grading.runs.pack_section_results): scores float64 LE, then
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


class ItemStatistic(Base):
    """How a question version performed in one exam: written back so the bank shows it."""

    __tablename__ = "item_statistic"

    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), primary_key=True)
    question_version_id: Mapped[int] = mapped_column(ForeignKey("question_version.id"), primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stats: Mapped[dict] = mapped_column(JSON)
