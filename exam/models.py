"""Exams, sections and their blueprints, sittings, candidates, papers, attempts and responses.

An exam is drafted, then published: publishing freezes its settings and the exact
question versions it may draw (``exam_pool``). Papers are drawn before the sitting
and stored; an attempt is one candidate's sitting of their paper. Deadlines are
absolute UTC times held by the server. Every answer save is kept in
``response_log`` (append-only, hash-chained per attempt); ``response`` holds the
latest choice per question for fast reads.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime

EXAM_STATUSES = ("draft", "published")
ATTEMPT_STATUSES = ("not_started", "in_progress", "submitted")


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
    topic = relationship("Topic")


class ExamPool(Base):
    """The question versions a published exam may draw, per blueprint cell: frozen at publication."""

    __tablename__ = "exam_pool"

    cell_id: Mapped[int] = mapped_column(ForeignKey("blueprint_cell.id", ondelete="CASCADE"), primary_key=True)
    question_version_id: Mapped[int] = mapped_column(ForeignKey("question_version.id"), primary_key=True)

    version = relationship("QuestionVersion")


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
    # (itertools.permutations(range(n))); see exam.papers.
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

    version = relationship("QuestionVersion")

    __table_args__ = (
        UniqueConstraint("paper_id", "position", name="uq_paper_item_position"),
        UniqueConstraint("paper_id", "public_id", name="uq_paper_item_public_id"),
    )


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
