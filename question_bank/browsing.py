"""Reading the bank: the browse page's filtered pages (newest first, by keyset), the tags in use, the
topic tree with its question counts, the counts per topic × difficulty a blueprint draws on, the
current version of every question for an export, and a question's versions with what each changed
and its audit entries. Nothing here writes; the rules that change the bank are ``question_bank.bank``.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from exam.audit.models import AuditEntry
from question_bank.bank import VERSION_FIELDS, QuestionDraft, changed_fields, search_pattern, subtree_filter, text_start
from question_bank.formats import DIFFICULTIES, ParsedOption, ParsedQuestion, normalise_text
from question_bank.models import TOPIC_SEPARATOR, Question, QuestionTag, QuestionVersion, Topic

# --- browsing ------------------------------------------------------------------------------------

@dataclass
class BrowseFilters:
    topic_id: int | None = None  # the topic and its subtopics
    difficulty: str = ""
    qtype: str = ""
    tag: str = ""
    status: str = ""  # "", "active" or "retired"
    text: str = ""

    @property
    def active(self) -> bool:
        return any((self.topic_id, self.difficulty, self.qtype, self.tag, self.status, self.text))


@dataclass
class BrowseRow:
    id: int
    topic: str
    difficulty: str
    qtype: str
    status: str
    version: int
    text_start: str


@dataclass
class BrowsePage:
    rows: list[BrowseRow]
    next_after: int | None  # pass as ``after`` for the next page; None on the last page
    total: int  # questions matching the filters, all pages


def _filtered(session: Session, query, filters: BrowseFilters):
    if filters.topic_id:
        topic = session.get(Topic, filters.topic_id)
        if topic is None:
            return query.where(false())
        query = query.where(Question.topic_id.in_(select(Topic.id).where(subtree_filter(topic.path))))
    if filters.difficulty:
        query = query.where(Question.difficulty == filters.difficulty)
    if filters.qtype:
        query = query.where(Question.qtype == filters.qtype)
    if filters.status:
        query = query.where(Question.status == filters.status)
    if filters.tag:
        tag = normalise_text(filters.tag)
        query = query.where(Question.id.in_(select(QuestionTag.question_id).where(QuestionTag.tag == tag)))
    pattern = search_pattern(filters.text)
    if pattern:
        query = query.where(Question.search_text.like(pattern, escape="\\"))
    return query


def browse(session: Session, filters: BrowseFilters, *, after: int | None = None, page_size: int = 50) -> BrowsePage:
    """One page of questions, newest first, by keyset (ids below ``after``): no OFFSET scan at any depth."""
    query = (select(Question.id, Topic.path, Question.difficulty, Question.qtype, Question.status,
                    QuestionVersion.number, func.substr(QuestionVersion.text, 1, 300).label("text"))
             .join(Topic, Topic.id == Question.topic_id)
             .join(QuestionVersion, QuestionVersion.id == Question.current_version_id))
    query = _filtered(session, query, filters)
    if after is not None:
        query = query.where(Question.id < after)
    found = session.execute(query.order_by(Question.id.desc()).limit(page_size + 1)).all()
    rows = [BrowseRow(r.id, r.path, r.difficulty, r.qtype, r.status, r.number, text_start(r.text))
            for r in found[:page_size]]
    next_after = rows[-1].id if len(found) > page_size else None
    total = session.scalar(_filtered(session, select(func.count(Question.id)), filters))
    return BrowsePage(rows, next_after, total)


def all_tags(session: Session, limit: int = 500) -> list[str]:
    return list(session.scalars(select(QuestionTag.tag).distinct().order_by(QuestionTag.tag).limit(limit)))


# --- topics --------------------------------------------------------------------------------------

@dataclass
class TopicRow:
    id: int
    path: str
    name: str
    depth: int
    own: int  # active questions filed directly under it
    total: int  # active questions in it and below


def topic_tree(session: Session) -> list[TopicRow]:
    """Every topic in path order with its active question counts (own, and with subtopics)."""
    counts = dict(session.execute(
        select(Question.topic_id, func.count()).where(Question.status == "active").group_by(Question.topic_id)).all())
    topics = session.execute(select(Topic.id, Topic.path, Topic.name).order_by(Topic.path)).all()
    rows = [TopicRow(t.id, t.path, t.name, t.path.count(TOPIC_SEPARATOR), counts.get(t.id, 0), 0) for t in topics]
    by_path = {row.path: row for row in rows}
    for row in rows:
        segments = row.path.split(TOPIC_SEPARATOR)
        for depth in range(1, len(segments) + 1):
            ancestor = by_path.get(TOPIC_SEPARATOR.join(segments[:depth]))
            if ancestor is not None:
                ancestor.total += row.own
    return rows


# --- stats and export ----------------------------------------------------------------------------

@dataclass
class BankStats:
    rows: list[tuple[str, dict[str, int], int]]  # (topic path, {difficulty: n}, row total), by path
    by_difficulty: dict[str, int]
    total: int

    def count(self, topic: str, difficulty: str) -> int:
        for path, cells, _ in self.rows:
            if path == topic:
                return cells.get(difficulty, 0)
        return 0


def stats(session: Session, status: str = "active") -> BankStats:
    """Questions per topic × difficulty (active ones by default): what a blueprint can draw on."""
    found = session.execute(select(Topic.path, Question.difficulty, func.count())
                            .join(Topic, Topic.id == Question.topic_id).where(Question.status == status)
                            .group_by(Topic.path, Question.difficulty).order_by(Topic.path)).all()
    cells: dict[str, dict[str, int]] = {}
    for path, difficulty, n in found:
        cells.setdefault(path, {})[difficulty] = n
    by_difficulty = {d: sum(c.get(d, 0) for c in cells.values()) for d in DIFFICULTIES}
    rows = [(path, {d: c.get(d, 0) for d in DIFFICULTIES}, sum(c.values())) for path, c in cells.items()]
    return BankStats(rows, by_difficulty, sum(by_difficulty.values()))


def export_questions(session: Session, status: str = "active") -> list[ParsedQuestion]:
    """The current version of every active question, in id order, ready for export_xlsx/csv/json."""
    found = session.execute(select(Question.id, Topic.path, QuestionVersion.difficulty, QuestionVersion.qtype,
                                   QuestionVersion.text, QuestionVersion.options, QuestionVersion.explanation,
                                   QuestionVersion.source, QuestionVersion.tags, QuestionVersion.image)
                            .join(QuestionVersion, QuestionVersion.id == Question.current_version_id)
                            .join(Topic, Topic.id == QuestionVersion.topic_id)
                            .where(Question.status == status).order_by(Question.id))
    return [ParsedQuestion(
        location=f"question {row.id}", topic=row.path, difficulty=row.difficulty, type=row.qtype, text=row.text,
        options=[ParsedOption(o["text"], bool(o["correct"])) for o in row.options], explanation=row.explanation,
        source=row.source, tags=list(row.tags or []), image=row.image) for row in found]


# --- history -------------------------------------------------------------------------------------

@dataclass
class VersionView:
    version: QuestionVersion
    draft: QuestionDraft
    changed: list[str]  # fields that differ from the previous version (all, for version 1)


def history(session: Session, question: Question) -> list[VersionView]:
    """Every version, oldest first, with the fields each one changed."""
    versions = session.scalars(select(QuestionVersion).where(QuestionVersion.question_id == question.id)
                               .order_by(QuestionVersion.number)).all()
    views: list[VersionView] = []
    previous: QuestionDraft | None = None
    for version in versions:
        draft = QuestionDraft.from_version(version)
        changed = list(VERSION_FIELDS) if previous is None else changed_fields(previous, draft)
        views.append(VersionView(version, draft, changed))
        previous = draft
    return views


def audit_entries(session: Session, question_id: int) -> list[AuditEntry]:
    """The audit entries about one question, oldest first."""
    return list(session.scalars(select(AuditEntry)
                                .where(AuditEntry.object_type == "question",
                                       AuditEntry.object_id == str(question_id))
                                .order_by(AuditEntry.seq)))
