"""What the board prepares, as stored: exams with their sections, blueprint cells and frozen pool; sittings;
candidates; papers and their items.

An exam is drafted, then published: publishing freezes its settings and the exact question versions it may draw
(``exam_pool``). Papers are drawn before the sitting and stored.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime
from question_bank.models import QuestionVersion, Topic

EXAM_STATUSES = ("draft", "published")


class Exam(Base):
    __tablename__ = "exam"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # short, used in CLI and URLs
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    seed: Mapped[str] = mapped_column(String(64))  # secret: papers follow from it; never leaves the server
    show_score: Mapped[bool] = mapped_column(default=True)  # the candidate sees section scores at the end
    forms: Mapped[int] = mapped_column(default=0)  # 0: a paper per candidate; K: K fixed parallel forms
    instructions: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict] = mapped_column(JSON)  # the validated specification as built (TOML or board form)
    ranking: Mapped[dict | None] = mapped_column(JSON)  # the merit-list rule; editable until a list is published
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(64))

    sections: Mapped[list[ExamSection]] = relationship(
        back_populates="exam", order_by="ExamSection.position", cascade="all, delete-orphan")

    @property
    def total_minutes(self) -> int:
        return sum(section.minutes for section in self.sections)


class ExamSection(Base):
    __tablename__ = "exam_section"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()  # 1, 2, 3: sections are sat in this order
    code: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    minutes: Mapped[int] = mapped_column()
    question_count: Mapped[int] = mapped_column()
    marks_per_question: Mapped[float] = mapped_column(Float, default=1.0)
    negative_fraction: Mapped[float] = mapped_column(Float, default=0.0)  # of the marks, taken for a wrong answer
    multiple_scoring: Mapped[str] = mapped_column(String(16), default="all_or_nothing")  # or "partial"
    pass_ratio: Mapped[float] = mapped_column(Float, default=0.5)  # share of correct answers to pass

    exam: Mapped[Exam] = relationship(back_populates="sections")
    cells: Mapped[list[BlueprintCell]] = relationship(back_populates="section", cascade="all, delete-orphan",
                                                      order_by="BlueprintCell.id")

    __table_args__ = (UniqueConstraint("exam_id", "position", name="uq_exam_section_position"),)


class BlueprintCell(Base):
    """How many questions to draw from one topic (with its subtopics) at one difficulty."""

    __tablename__ = "blueprint_cell"

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("exam_section.id", ondelete="CASCADE"), index=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topic.id"))
    difficulty: Mapped[str] = mapped_column(String(8))  # easy | medium | hard | any
    count: Mapped[int] = mapped_column()

    section: Mapped[ExamSection] = relationship(back_populates="cells")
    topic = relationship(Topic)


class ExamPool(Base):
    """The question versions a published exam may draw, per blueprint cell: frozen at publication."""

    __tablename__ = "exam_pool"

    cell_id: Mapped[int] = mapped_column(ForeignKey("blueprint_cell.id", ondelete="CASCADE"), primary_key=True)
    question_version_id: Mapped[int] = mapped_column(ForeignKey("question_version.id"), primary_key=True)

    version = relationship(QuestionVersion)


class Sitting(Base):
    __tablename__ = "sitting"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    room: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)  # nobody's clock runs past this
    late_entry_minutes: Mapped[int] = mapped_column(default=15)
    seats: Mapped[int] = mapped_column()
    access_secret: Mapped[str] = mapped_column(String(64))  # base32, for the rotating access code
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the proctor started the sitting
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the whole room is paused since then
    paused_seconds: Mapped[int] = mapped_column(default=0, server_default="0")  # total length of finished pauses
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the proctor closed the sitting

    exam: Mapped[Exam] = relationship()


class Candidate(Base):
    __tablename__ = "candidate"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    registration_no: Mapped[str] = mapped_column(String(40))
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date] = mapped_column(Date)
    citizen_id: Mapped[str] = mapped_column(String(20))
    post: Mapped[str] = mapped_column(String(200))  # the post applied for
    priority_category: Mapped[str] = mapped_column(String(100), default="")
    sitting_id: Mapped[int | None] = mapped_column(ForeignKey("sitting.id"), index=True)
    seat: Mapped[int | None] = mapped_column(Integer)
    move_admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # proctor allowed a new machine
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # admitted at the door
    absent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # marked absent by the proctor
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    sitting: Mapped[Sitting | None] = relationship()
    exam: Mapped[Exam] = relationship()

    __table_args__ = (
        UniqueConstraint("exam_id", "registration_no", name="uq_candidate_exam_registration"),
        UniqueConstraint("sitting_id", "seat", name="uq_candidate_sitting_seat"),
    )


class Paper(Base):
    """One candidate's drawn questions in their order; regenerating it gives the same paper."""

    __tablename__ = "paper"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), unique=True)
    form: Mapped[int | None] = mapped_column()  # the fixed form number, when the exam uses forms
    slot: Mapped[int] = mapped_column()  # the draw position: the paper follows from the seed and this
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What batch grading needs, one byte / int32 per position, so loading 100,000 papers is cheap:
    key_masks: Mapped[bytes | None] = mapped_column(LargeBinary)  # correct options as displayed, bit masks
    version_ids: Mapped[bytes | None] = mapped_column(LargeBinary)  # int32 question version id per position
    # What item analysis needs to read choices in the author's option order: per position, uint16 LE, the
    # index of its option order among the orders of its n options in lexicographic order
    # (itertools.permutations(range(n))); see exam.setup.papers.
    option_orders: Mapped[bytes | None] = mapped_column(LargeBinary)

    items: Mapped[list[PaperItem]] = relationship(order_by="PaperItem.position", cascade="all, delete-orphan")


class PaperItem(Base):
    __tablename__ = "paper_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()  # 1..N across the whole paper
    section_id: Mapped[int] = mapped_column(ForeignKey("exam_section.id"))
    question_version_id: Mapped[int] = mapped_column(ForeignKey("question_version.id"))
    public_id: Mapped[str] = mapped_column(String(24))  # what the candidate's page calls this question
    option_order: Mapped[list] = mapped_column(JSON)  # indices into the version's options, as displayed
    option_ids: Mapped[list] = mapped_column(JSON)  # opaque ids of the displayed options, same order

    version = relationship(QuestionVersion)

    __table_args__ = (
        UniqueConstraint("paper_id", "position", name="uq_paper_item_position"),
        UniqueConstraint("paper_id", "public_id", name="uq_paper_item_public_id"),
    )
