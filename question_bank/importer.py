"""Importing a question file into the bank: all or nothing, in the caller's transaction.

``import_file`` parses the file (``question_bank.formats``), reports what it would
add per topic × difficulty, the near-duplicates (within the file and against the
bank: warnings, not errors) and every error. With any error nothing is written;
otherwise the questions, their first versions and tags go in with a few bulk
statements and one ``bank.import`` audit entry, committed by the caller. The web
page and ``flask bank import`` both call it, first as a dry run.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from question_bank import bank
from question_bank.formats import DIFFICULTIES, MAX_FILE_BYTES, ParsedQuestion, RowError, parse_file
from question_bank.models import TOPIC_SEPARATOR, Question, QuestionTag, QuestionVersion, Topic


@dataclass
class NearDuplicate:
    """A question of the file whose folded text equals an existing question's, or an earlier one's in the file."""

    location: str
    text_start: str
    question_id: int | None = None  # the existing question, when it is in the bank
    other_location: str | None = None  # the earlier question of the same file

    def __str__(self) -> str:
        other = f"question {self.question_id} in the bank" if self.question_id else self.other_location
        return f"{self.location}: same text as {other} ({self.text_start})"


@dataclass
class ImportReport:
    filename: str
    format: str
    file_sha256: str
    dry_run: bool
    added: int = 0  # questions added (or, on a dry run without errors, that would be added)
    by_cell: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic path, difficulty) → questions
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    new_topics: list[str] = field(default_factory=list)  # topic paths created (or to be created)
    first_id: int | None = None
    last_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def table(self) -> list[tuple[str, dict[str, int], int]]:
        """by_cell as rows: (topic path, {difficulty: n}, row total), by path."""
        topics: dict[str, dict[str, int]] = {}
        for (topic, difficulty), n in sorted(self.by_cell.items()):
            topics.setdefault(topic, {d: 0 for d in DIFFICULTIES})[difficulty] = n
        return [(topic, cells, sum(cells.values())) for topic, cells in topics.items()]

    def column_totals(self) -> dict[str, int]:
        return {d: sum(n for (_, difficulty), n in self.by_cell.items() if difficulty == d) for d in DIFFICULTIES}


def import_file(session: Session, filename: str, content: bytes, *, actor: str, now: datetime,
                default_topic: str | None = None, dry_run: bool = False,
                max_bytes: int = MAX_FILE_BYTES) -> ImportReport:
    """Check a question file and, unless ``dry_run`` or any error, add every question in it.

    Never raises for a bad file: the report carries the errors and nothing is written.
    Near-duplicates are reported but do not stop the import. Files over ``max_bytes``
    (20 MB unless a caller such as a benchmark says otherwise) are refused unread.
    """
    report = ImportReport(filename=filename, format="", file_sha256=hashlib.sha256(content).hexdigest(),
                          dry_run=dry_run)
    result = parse_file(filename, content, default_topic=default_topic, max_bytes=max_bytes)
    report.format = result.format
    report.errors = list(result.errors)
    questions = result.questions
    for question in questions:
        if len(question.topic or "") > bank.MAX_TOPIC_PATH_CHARS:
            report.errors.append(RowError(question.location, "topic",
                                          f"is too long (at most {bank.MAX_TOPIC_PATH_CHARS} characters)"))
    report.by_cell = dict(Counter((q.topic, q.difficulty) for q in questions))
    keys = [bank.dedup_key(q.text) for q in questions]
    report.near_duplicates = _near_duplicates(session, questions, keys)
    report.new_topics = _missing_topics(session, {q.topic for q in questions})
    if report.errors:
        return report
    report.added = len(questions)
    if dry_run or not questions:
        return report
    _write(session, report, questions, keys, actor=actor, now=now)
    return report


def _near_duplicates(session: Session, questions: list[ParsedQuestion], keys: list[str]) -> list[NearDuplicate]:
    in_bank = bank.existing_keys(session, keys)
    first_in_file: dict[str, str] = {}
    found = []
    for question, key in zip(questions, keys, strict=True):
        start = bank.text_start(question.text, 80)
        if key in in_bank:
            found.append(NearDuplicate(question.location, start, question_id=in_bank[key]))
        if key in first_in_file:
            found.append(NearDuplicate(question.location, start, other_location=first_in_file[key]))
        else:
            first_in_file[key] = question.location
    return found


def _missing_topics(session: Session, paths: set[str]) -> list[str]:
    wanted = set()
    for path in paths:
        segments = path.split(TOPIC_SEPARATOR)
        wanted.update(TOPIC_SEPARATOR.join(segments[:depth]) for depth in range(1, len(segments) + 1))
    have = set()
    ordered = sorted(wanted)
    for start in range(0, len(ordered), 500):
        have.update(session.scalars(select(Topic.path).where(Topic.path.in_(ordered[start:start + 500]))))
    return sorted(wanted - have)


def _write(session: Session, report: ImportReport, questions: list[ParsedQuestion], keys: list[str], *,
           actor: str, now: datetime) -> None:
    topic_ids: dict[str, int] = {}
    created: list[str] = []
    for path in sorted({q.topic for q in questions}):
        topic_ids[path] = bank.ensure_topic(session, path, actor=actor, now=now, audited=False, created=created).id
    report.new_topics = created

    question_rows = []
    for question, key in zip(questions, keys, strict=True):
        question_rows.append({
            "topic_id": topic_ids[question.topic], "status": "active", "difficulty": question.difficulty,
            "qtype": question.type, "dedup_key": key,
            "search_text": bank.search_text(question.text, (o.text for o in question.options)),
            "created_at": now, "updated_at": now,
        })
    ids = list(session.scalars(insert(Question).returning(Question.id, sort_by_parameter_order=True), question_rows))

    note = f"import {report.filename}"[:bank.MAX_NOTE_CHARS]
    version_rows = []
    tag_rows = []
    for question_id, question in zip(ids, questions, strict=True):
        version_rows.append({
            "question_id": question_id, "number": 1, "topic_id": topic_ids[question.topic],
            "difficulty": question.difficulty, "qtype": question.type, "text": question.text,
            "options": [{"text": o.text, "correct": bool(o.correct)} for o in question.options],
            "explanation": question.explanation, "source": question.source, "image": question.image,
            "tags": list(question.tags), "created_at": now, "created_by": actor, "note": note, "frozen": False,
        })
        tag_rows.extend({"question_id": question_id, "tag": tag} for tag in question.tags)
    session.execute(insert(QuestionVersion), version_rows)
    if tag_rows:
        session.execute(insert(QuestionTag), tag_rows)
    first_id, last_id = min(ids), max(ids)
    # One statement points every new question at its version 1 (the questions of this import are
    # the only ones in the id range still without a current version).
    first_version = (select(QuestionVersion.id)
                     .where(QuestionVersion.question_id == Question.id, QuestionVersion.number == 1)
                     .scalar_subquery())
    session.execute(update(Question)
                    .where(Question.id.between(first_id, last_id), Question.current_version_id.is_(None))
                    .values(current_version_id=first_version)
                    .execution_options(synchronize_session=False))
    session.flush()
    report.first_id, report.last_id = first_id, last_id
    audit.append(session, actor=actor, action="bank.import", object_type="import", object_id=report.file_sha256,
                 details={"filename": report.filename, "sha256": report.file_sha256, "format": report.format,
                          "count": len(ids), "first_question_id": first_id, "last_question_id": last_id,
                          "by_cell": [[topic, difficulty, n]
                                      for (topic, difficulty), n in sorted(report.by_cell.items())],
                          "topics_created": created, "near_duplicates": len(report.near_duplicates)},
                 now=now)
