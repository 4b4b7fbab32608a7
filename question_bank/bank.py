"""The bank's rules: topics, questions and their versions, near-duplicates, the export's audit entry.
Reading the bank (browsing, the topic tree, stats, the export's questions, history) is
``question_bank.browsing``.

Plain functions over a ``Session``: they take the acting user's name and ``now``,
only flush, and append their audit entry in the caller's transaction, so the
change and the entry describing it commit (or roll back) together.

A question typed on the form is checked by the very rules an import file is
checked by (``check_question`` runs it through ``formats.parse_file``), so
anything in the bank exports and imports back unchanged.

Folded text (``fold``): NFC, case-folded, punctuation turned into spaces,
whitespace collapsed. Diacritics are kept for the near-duplicate key, because
"bán" and "bạn" are different words; the search column also carries a copy
without diacritics so that "hien phap" finds "Hiến pháp".
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event, func, inspect, select, update
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.core.errors import Refused
from question_bank.formats import (
    DIFFICULTIES,
    QUESTION_TYPES,
    ParsedQuestion,
    RowError,
    normalise_text,
    normalise_topic,
    parse_file,
)
from question_bank.models import TOPIC_SEPARATOR, Question, QuestionTag, QuestionVersion, Topic

MAX_TOPIC_PATH_CHARS = 1000  # the topic.path column
MAX_NOTE_CHARS = 500  # the question_version.note column
TEXT_START_CHARS = 120
STATUSES = ("active", "retired")
# Fields of a version as the board sees them, in the order the history page shows them.
VERSION_FIELDS = ("topic", "difficulty", "type", "text", "options", "explanation", "source", "tags", "image")


class BankError(Refused):
    """A refused bank operation: an English message (CLI, logs), the form ``field`` it concerns when there
    is one, and a ``code`` the pages turn into the board's language."""

    def __init__(self, message: str, field: str = "", code: str = ""):
        super().__init__(message)
        self.field = field
        self.code = code  # "" when the message is all there is


class NoChange(BankError):
    """An edit identical to the current version: no version is written."""

    def __init__(self, message: str = "nothing changed: the question is the same as its current version"):
        super().__init__(message, code="no_change")


class InvalidQuestion(BankError):
    """A question that breaks the import rules; ``errors`` lists every problem (field, reason)."""

    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(f"{e.field or 'question'}: {e.reason}" for e in errors),
                         errors[0].field if errors else "", "invalid_question")
        self.errors = errors


# --- folding -----------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


class _CharTable(dict):
    """A str.translate table filled on first sight of each character (imports fold 100,000s of strings)."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def __missing__(self, code: int):
        self[code] = value = self.rule(chr(code))
        return value


# Punctuation (Unicode P*) becomes a space; letters, digits and symbols such as + = < > stay.
_PUNCTUATION_AS_SPACE = _CharTable(lambda ch: " " if unicodedata.category(ch).startswith("P") else ch)
# Combining marks go; đ/Đ (a letter of its own, not a mark) becomes d/D.
_NO_MARKS = _CharTable(lambda ch: "" if unicodedata.combining(ch) else {"đ": "d", "Đ": "D"}.get(ch, ch))


def fold(text: str) -> str:
    """NFC, case-folded, punctuation as spaces, whitespace collapsed; diacritics kept."""
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text or "").casefold())
    return _SPACES.sub(" ", text.translate(_PUNCTUATION_AS_SPACE)).strip()


def strip_diacritics(text: str) -> str:
    """'Hiến pháp' → 'Hien phap', 'đ' → 'd': for searches typed without Vietnamese marks."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).translate(_NO_MARKS))


def dedup_key(text: str) -> str:
    """The near-duplicate key: SHA-256 of the folded question text."""
    return hashlib.sha256(fold(text).encode("utf-8")).hexdigest()


def search_text(text: str, option_texts: Iterable[str]) -> str:
    """Folded text and options, followed by the same without diacritics when that differs."""
    folded = "\n".join(fold(part) for part in (text, *option_texts))
    bare = strip_diacritics(folded)
    return folded if bare == folded else f"{folded}\n{bare}"


def search_pattern(query: str) -> str | None:
    """A LIKE pattern for a text search (% and _ escaped with backslash), or None for an empty query."""
    folded = fold(query)
    if not folded:
        return None
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_start(text: str, length: int = TEXT_START_CHARS) -> str:
    one_line = _SPACES.sub(" ", text or "").strip()
    return one_line if len(one_line) <= length else one_line[: length - 1].rstrip() + "…"


# --- the question as typed ---------------------------------------------------------------------

@dataclass
class QuestionDraft:
    """A question's content as the board typed it (or as a file gave it)."""

    topic: str
    difficulty: str
    type: str
    text: str
    options: list[tuple[str, bool]]
    explanation: str = ""
    source: str = ""
    tags: list[str] = field(default_factory=list)
    image: str = ""

    @classmethod
    def from_parsed(cls, question: ParsedQuestion) -> QuestionDraft:
        return cls(topic=question.topic or "", difficulty=question.difficulty, type=question.type,
                   text=question.text, options=[(o.text, o.correct) for o in question.options],
                   explanation=question.explanation, source=question.source, tags=list(question.tags),
                   image=question.image)

    @classmethod
    def from_version(cls, version: QuestionVersion) -> QuestionDraft:
        return cls(topic=version.topic.path, difficulty=version.difficulty, type=version.qtype, text=version.text,
                   options=[(o["text"], bool(o["correct"])) for o in version.options],
                   explanation=version.explanation, source=version.source, tags=list(version.tags or []),
                   image=version.image)

    def as_import_item(self) -> dict:
        item = {"topic": self.topic, "difficulty": self.difficulty, "type": self.type, "text": self.text,
                "options": [{"text": text, "correct": bool(correct)} for text, correct in self.options],
                "explanation": self.explanation, "source": self.source, "tags": list(self.tags)}
        if self.image:
            item["image"] = self.image
        return item


def check_question(draft: QuestionDraft) -> tuple[ParsedQuestion | None, list[RowError]]:
    """Normalise and check a typed question by the import rules: (question, []) or (None, errors).

    Errors name the field as an import would: topic, difficulty, type, text, option_a..option_f,
    options, correct, explanation, source, tags, image.
    """
    document = json.dumps({"questions": [draft.as_import_item()]}, ensure_ascii=False).encode("utf-8")
    result = parse_file("question.json", document)
    errors = list(result.errors)
    question = result.questions[0] if result.ok and result.questions else None
    if question is not None and len(question.topic or "") > MAX_TOPIC_PATH_CHARS:
        errors.append(RowError(question.location, "topic", f"is too long (at most {MAX_TOPIC_PATH_CHARS} characters)"))
        question = None
    return question, errors


def _version_values(question: ParsedQuestion) -> dict:
    return {
        "difficulty": question.difficulty, "qtype": question.type, "text": question.text,
        "options": [{"text": o.text, "correct": bool(o.correct)} for o in question.options],
        "explanation": question.explanation, "source": question.source, "image": question.image,
        "tags": list(question.tags),
    }


def _derived_values(question: ParsedQuestion) -> dict:
    return {
        "difficulty": question.difficulty, "qtype": question.type,
        "search_text": search_text(question.text, (o.text for o in question.options)),
        "dedup_key": dedup_key(question.text),
    }


# --- topics --------------------------------------------------------------------------------------

def normalise_topic_path(path: str) -> str:
    """'Kiến thức chung>Hiến pháp' → 'Kiến thức chung > Hiến pháp'; BankError when it is not a path."""
    topic, reason = normalise_topic(path)
    if reason:
        raise BankError(reason, "topic", "topic_invalid")
    if not topic:
        raise BankError("is required", "topic", "topic_required")
    if len(topic) > MAX_TOPIC_PATH_CHARS:
        raise BankError(f"is too long (at most {MAX_TOPIC_PATH_CHARS} characters)", "topic", "topic_too_long")
    return topic


def topic_by_path(session: Session, path: str) -> Topic | None:
    return session.scalar(select(Topic).where(Topic.path == path))


def ensure_topic(session: Session, path: str, *, actor: str, now: datetime, audited: bool = True,
                 created: list[str] | None = None) -> Topic:
    """The topic at ``path``, creating it and any missing parents ('A > B > C' makes A, A > B, A > B > C).

    Each topic made gets a ``bank.topic.create`` entry unless ``audited`` is false (the importer
    lists the topics it made in its own entry instead); ``created`` collects the new paths.
    """
    path = normalise_topic_path(path)
    segments = path.split(TOPIC_SEPARATOR)
    parent: Topic | None = None
    for depth in range(1, len(segments) + 1):
        prefix = TOPIC_SEPARATOR.join(segments[:depth])
        topic = topic_by_path(session, prefix)
        if topic is None:
            topic = Topic(parent_id=parent.id if parent else None, name=segments[depth - 1], path=prefix,
                          created_at=now)
            session.add(topic)
            session.flush()
            if created is not None:
                created.append(prefix)
            if audited:
                audit.append(session, actor=actor, action="bank.topic.create", object_type="topic",
                             object_id=str(topic.id), details={"path": prefix}, now=now)
        parent = topic
    return parent


def subtree_filter(path: str):
    """A WHERE clause for a topic and every topic below it."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (Topic.path == path) | Topic.path.like(escaped + TOPIC_SEPARATOR + "%", escape="\\")


def rename_topic(session: Session, topic: Topic, new_path: str, *, actor: str, now: datetime) -> Topic:
    """Give a topic a new full path: a new name, a new parent, or both; its subtopics follow.

    Missing parents of the new path are created. Refused when a topic already has that path
    or when the new path lies under the topic itself.
    """
    new_path = normalise_topic_path(new_path)
    old_path = topic.path
    if new_path == old_path:
        raise BankError("the new path is the same as the old one", "path", "topic_same")
    if new_path.startswith(old_path + TOPIC_SEPARATOR):
        raise BankError("a topic cannot be moved under itself", "path", "topic_under_itself")
    if topic_by_path(session, new_path) is not None:
        raise BankError(f"a topic named {new_path!r} already exists", "path", "topic_exists")
    segments = new_path.split(TOPIC_SEPARATOR)
    parent = None
    if len(segments) > 1:
        parent = ensure_topic(session, TOPIC_SEPARATOR.join(segments[:-1]), actor=actor, now=now)
    old_parent_id = topic.parent_id
    subtree = session.scalars(select(Topic).where(subtree_filter(old_path))).all()
    for member in subtree:
        if len(new_path + member.path[len(old_path):]) > MAX_TOPIC_PATH_CHARS:
            raise BankError(f"the path of subtopic {member.path!r} would be too long", "path", "topic_too_long")
    for member in subtree:
        member.path = new_path + member.path[len(old_path):]
    topic.name = segments[-1]
    topic.parent_id = parent.id if parent else None
    session.flush()
    action = "bank.topic.rename" if topic.parent_id == old_parent_id else "bank.topic.move"
    audit.append(session, actor=actor, action=action, object_type="topic", object_id=str(topic.id),
                 details={"from": old_path, "to": new_path, "topics": len(subtree)}, now=now)
    return topic


def move_topic(session: Session, topic: Topic, new_parent_path: str | None, *, actor: str,
               now: datetime) -> Topic:
    """Put a topic (and its subtopics) under another parent, or at the top level when None."""
    new_path = (topic.name if not new_parent_path
                else normalise_topic_path(new_parent_path) + TOPIC_SEPARATOR + topic.name)
    return rename_topic(session, topic, new_path, actor=actor, now=now)


# --- questions -----------------------------------------------------------------------------------

def _checked(draft: QuestionDraft) -> ParsedQuestion:
    question, errors = check_question(draft)
    if errors:
        raise InvalidQuestion(errors)
    return question


def _note(note: str) -> str:
    note = normalise_text(note or "")
    if len(note) > MAX_NOTE_CHARS:
        raise BankError(f"is too long (at most {MAX_NOTE_CHARS} characters)", "note", "note_too_long")
    return note


def create_question(session: Session, draft: QuestionDraft, *, actor: str, now: datetime,
                    note: str = "") -> Question:
    """A new question with its version 1; ``InvalidQuestion`` lists every problem."""
    parsed = _checked(draft)
    note = _note(note)
    near = [match.id for match in find_near_duplicates(session, parsed.text)]
    topic = ensure_topic(session, parsed.topic, actor=actor, now=now)
    question = Question(topic_id=topic.id, status="active", created_at=now, updated_at=now, **_derived_values(parsed))
    question.tags = [QuestionTag(tag=tag) for tag in parsed.tags]
    session.add(question)
    session.flush()
    version = QuestionVersion(question_id=question.id, number=1, topic_id=topic.id, created_at=now,
                              created_by=actor, note=note, frozen=False, **_version_values(parsed))
    session.add(version)
    session.flush()
    question.current_version_id = version.id
    session.flush()
    audit.append(session, actor=actor, action="bank.question.create", object_type="question",
                 object_id=str(question.id),
                 details={"topic": topic.path, "difficulty": parsed.difficulty, "type": parsed.type,
                          "version": 1, "version_id": version.id, "note": note, "near_duplicates": near}, now=now)
    return question


def changed_fields(before: QuestionDraft, after: QuestionDraft) -> list[str]:
    """Names (VERSION_FIELDS) whose values differ between two versions."""
    pairs = {
        "topic": (before.topic, after.topic), "difficulty": (before.difficulty, after.difficulty),
        "type": (before.type, after.type), "text": (before.text, after.text),
        "options": ([(t, bool(c)) for t, c in before.options], [(t, bool(c)) for t, c in after.options]),
        "explanation": (before.explanation, after.explanation), "source": (before.source, after.source),
        "tags": (list(before.tags), list(after.tags)), "image": (before.image, after.image),
    }
    return [name for name in VERSION_FIELDS if pairs[name][0] != pairs[name][1]]


def edit_question(session: Session, question: Question, draft: QuestionDraft, *, actor: str, now: datetime,
                  note: str = "", based_on: int | None = None) -> QuestionVersion:
    """Write the edit as a new version (number + 1) and make it current; earlier versions stay as they were.

    Refused (``NoChange``) when nothing changed: a version is a change the board made. ``based_on``
    is the version id the editor started from: when someone saved another version meanwhile the
    edit is refused (code ``stale``) rather than silently undoing theirs.
    """
    parsed = _checked(draft)
    note = _note(note)
    _lock(session, question)
    if based_on is not None and question.current_version_id != based_on:
        raise BankError(f"question {question.id} was changed meanwhile (now version "
                        f"{question.current_version.number}); reload it and edit again", "", "stale")
    current = question.current_version
    changes = changed_fields(QuestionDraft.from_version(current), QuestionDraft.from_parsed(parsed))
    if not changes:
        raise NoChange()
    topic = ensure_topic(session, parsed.topic, actor=actor, now=now)
    number = session.scalar(select(func.max(QuestionVersion.number))
                            .where(QuestionVersion.question_id == question.id)) + 1
    version = QuestionVersion(question_id=question.id, number=number, topic_id=topic.id, created_at=now,
                              created_by=actor, note=note, frozen=False, **_version_values(parsed))
    session.add(version)
    session.flush()
    for name, value in _derived_values(parsed).items():
        setattr(question, name, value)
    question.topic_id = topic.id
    question.current_version_id = version.id
    question.updated_at = now
    _replace_tags(question, parsed.tags)
    session.flush()
    audit.append(session, actor=actor, action="bank.question.edit", object_type="question",
                 object_id=str(question.id),
                 details={"version": number, "version_id": version.id, "previous_version_id": current.id,
                          "changed": changes, "note": note}, now=now)
    session.expire(question, ["current_version", "versions"])
    return version


def _replace_tags(question: Question, tags: Sequence[str]) -> None:
    keep = [row for row in question.tags if row.tag in tags]
    have = {row.tag for row in keep}
    question.tags = keep + [QuestionTag(tag=tag) for tag in tags if tag not in have]


def _lock(session: Session, question: Question) -> None:
    """Reload the question holding its row lock (PostgreSQL; SQLite's write lock already serialises)."""
    session.refresh(question, with_for_update=True)
    session.expire(question, ["current_version"])


def _set_status(session: Session, question: Question, status: str, action: str, *, actor: str,
                now: datetime, note: str) -> None:
    _lock(session, question)
    if question.status == status:
        raise BankError(f"question {question.id} is already {status}", "", "status_unchanged")
    note = _note(note)
    question.status = status
    question.updated_at = now
    session.flush()
    audit.append(session, actor=actor, action=action, object_type="question", object_id=str(question.id),
                 details={"version_id": question.current_version_id, "note": note}, now=now)


def retire_question(session: Session, question: Question, *, actor: str, now: datetime, note: str = "") -> None:
    """Take a question out of use: it stays, with its history, and new papers no longer draw it."""
    _set_status(session, question, "retired", "bank.question.retire", actor=actor, now=now, note=note)


def restore_question(session: Session, question: Question, *, actor: str, now: datetime, note: str = "") -> None:
    """Put a retired question back into use."""
    _set_status(session, question, "active", "bank.question.restore", actor=actor, now=now, note=note)


def freeze_versions(session: Session, version_ids: Iterable[int]) -> int:
    """Mark versions as drawn on by a published exam; returns how many were newly frozen.

    The caller (publishing an exam) writes the audit entry for the whole act.
    """
    ids = sorted(set(version_ids))
    frozen = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        frozen += session.execute(update(QuestionVersion).where(QuestionVersion.id.in_(chunk),
                                                                QuestionVersion.frozen.is_(False))
                                  .values(frozen=True).execution_options(synchronize_session="fetch")).rowcount
    session.flush()
    return frozen


@event.listens_for(Session, "before_flush")
def _versions_never_change(session, _flush_context, _instances):
    """A written version is history: refuse any change to it except being frozen."""
    for obj in session.dirty:
        if not isinstance(obj, QuestionVersion):
            continue
        state = inspect(obj)
        for attr in state.mapper.column_attrs:
            history = state.attrs[attr.key].history
            if not history.has_changes():
                continue
            if attr.key == "frozen" and history.added == [True]:
                continue
            raise BankError(f"version {obj.number} of question {obj.question_id} is history and cannot change "
                            f"({attr.key}); edit the question to write a new version")
    for obj in session.deleted:
        if isinstance(obj, QuestionVersion):
            raise BankError("question versions are never deleted")


# --- near-duplicates -----------------------------------------------------------------------------

@dataclass
class NearMatch:
    id: int
    status: str
    topic: str
    text_start: str


def find_near_duplicates(session: Session, text: str, *, exclude_id: int | None = None,
                         limit: int = 20) -> list[NearMatch]:
    """Questions whose folded text equals this text's (same words, whatever the case or punctuation)."""
    query = (select(Question.id, Question.status, Topic.path, QuestionVersion.text)
             .join(Topic, Topic.id == Question.topic_id)
             .join(QuestionVersion, QuestionVersion.id == Question.current_version_id)
             .where(Question.dedup_key == dedup_key(text)).order_by(Question.id).limit(limit))
    if exclude_id is not None:
        query = query.where(Question.id != exclude_id)
    return [NearMatch(row.id, row.status, row.path, text_start(row.text)) for row in session.execute(query)]


def existing_keys(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """dedup_key → the lowest question id holding it, for the keys already in the bank."""
    keys = sorted(set(keys))
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows = session.execute(select(Question.dedup_key, func.min(Question.id))
                               .where(Question.dedup_key.in_(chunk)).group_by(Question.dedup_key))
        found.update({key: question_id for key, question_id in rows})
    return found


# --- export ----------------------------------------------------------------------------------------

def record_export(session: Session, *, fmt: str, count: int, content: bytes, actor: str, now: datetime) -> None:
    """Audit a bank export: who took the bank away, in what format, and the file's hash."""
    audit.append(session, actor=actor, action="bank.export", object_type="bank", object_id="",
                 details={"format": fmt, "count": count, "sha256": hashlib.sha256(content).hexdigest()}, now=now)


__all__ = [
    "DIFFICULTIES", "QUESTION_TYPES", "STATUSES", "BankError", "NoChange", "InvalidQuestion", "QuestionDraft",
    "NearMatch", "fold", "strip_diacritics", "dedup_key", "search_text", "check_question", "ensure_topic",
    "rename_topic", "move_topic", "create_question", "edit_question", "retire_question", "restore_question",
    "freeze_versions", "find_near_duplicates", "record_export",
]
