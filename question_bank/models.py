"""Topics, questions and their versions.

A question is a stable identity; its content lives in numbered versions. Every
edit writes a new version, so a published exam that froze version 3 keeps it
while the bank moves on, and the versions are the question's full history. The
``question`` row carries the current version's filter fields so the bank page
filters and pages over one indexed table.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime

DIFFICULTIES = ("easy", "medium", "hard")
QUESTION_TYPES = ("single", "multiple")
TOPIC_SEPARATOR = " > "


class Topic(Base):
    __tablename__ = "topic"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("topic.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(1000), unique=True)  # "General knowledge > Law on cadres"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    parent: Mapped[Topic | None] = relationship(remote_side=[id])

    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_topic_parent_name"),)

    @property
    def depth(self) -> int:
        return self.path.count(TOPIC_SEPARATOR)


class Question(Base):
    __tablename__ = "question"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topic.id"), index=True)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("question_version.id", use_alter=True, name="fk_question_current_version"))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | retired
    difficulty: Mapped[str] = mapped_column(String(8))
    qtype: Mapped[str] = mapped_column(String(8))
    search_text: Mapped[str] = mapped_column(Text)  # folded text of the current version, for text search
    dedup_key: Mapped[str] = mapped_column(String(64), index=True)  # hash of the normalised text
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    topic: Mapped[Topic] = relationship()
    current_version: Mapped[QuestionVersion] = relationship(foreign_keys=[current_version_id], post_update=True)
    versions: Mapped[list[QuestionVersion]] = relationship(
        foreign_keys="QuestionVersion.question_id", back_populates="question", order_by="QuestionVersion.number")
    tags: Mapped[list[QuestionTag]] = relationship(cascade="all, delete-orphan")

    __table_args__ = (
        Index("ix_question_browse", "status", "topic_id", "difficulty", "id"),
    )


class QuestionVersion(Base):
    __tablename__ = "question_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    number: Mapped[int] = mapped_column()
    topic_id: Mapped[int] = mapped_column(ForeignKey("topic.id"))
    difficulty: Mapped[str] = mapped_column(String(8))
    qtype: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list] = mapped_column(JSON)  # [{"text": ..., "correct": bool}] in the author's order
    explanation: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str] = mapped_column(String(255), default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(500), default="")  # why this version was made
    frozen: Mapped[bool] = mapped_column(default=False)  # a published exam drew on it: never changes again

    question: Mapped[Question] = relationship(foreign_keys=[question_id], back_populates="versions")
    topic: Mapped[Topic] = relationship()

    __table_args__ = (UniqueConstraint("question_id", "number", name="uq_question_version_number"),)

    @property
    def correct_letters(self) -> str:
        return ",".join("ABCDEF"[i] for i, option in enumerate(self.options) if option["correct"])


class QuestionTag(Base):
    __tablename__ = "question_tag"

    question_id: Mapped[int] = mapped_column(ForeignKey("question.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
