"""Publishing an exam: freeze its settings and the exact question versions it may draw."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from exam import audit
from exam.models import BlueprintCell, Exam, ExamPool


class ExamError(ValueError):
    """A refused exam operation; the message names what is wrong."""


def cell_pool(session: Session, cell: BlueprintCell) -> list[int]:
    """Current versions of the active questions in the cell's topic (with subtopics) and difficulty."""
    from question_bank.bank import subtree_filter
    from question_bank.models import Question, Topic

    query = (select(Question.current_version_id).join(Topic, Topic.id == Question.topic_id)
             .where(Question.status == "active", subtree_filter(cell.topic.path)))
    if cell.difficulty != "any":
        query = query.where(Question.difficulty == cell.difficulty)
    return sorted(session.scalars(query))


def pool_shortfalls(session: Session, exam: Exam) -> list[str]:
    """Every blueprint cell the bank cannot fill, as 'section X, topic × difficulty: needs N, bank has M'."""
    problems = []
    for section in exam.sections:
        for cell in section.cells:
            available = len(cell_pool(session, cell))
            if available < cell.count:
                problems.append(f"section {section.code}, {cell.topic.path} × {cell.difficulty}: needs {cell.count}, "
                                f"the bank has {available} active questions")
    return problems


def publish_exam(session: Session, exam: Exam, *, actor: str, now: datetime) -> int:
    """Freeze the exam and its pool; returns the number of question versions frozen into the pool."""
    from question_bank.bank import freeze_versions

    if exam.status == "published":
        raise ExamError(f"exam {exam.code} is already published")
    shortfalls = pool_shortfalls(session, exam)
    if shortfalls:
        raise ExamError("the bank cannot fill the blueprint: " + "; ".join(shortfalls))
    rows = []
    for section in exam.sections:
        for cell in section.cells:
            rows.extend({"cell_id": cell.id, "question_version_id": v} for v in cell_pool(session, cell))
    session.execute(insert(ExamPool), rows)
    freeze_versions(session, {row["question_version_id"] for row in rows})
    exam.status = "published"
    exam.published_at = now
    exam.published_by = actor
    audit.append(session, actor=actor, action="exam.publish", object_type="exam", object_id=exam.code,
                 details={"pool_versions": len({r["question_version_id"] for r in rows}), "cells": len(
                     {r["cell_id"] for r in rows}), "spec": exam.spec}, now=now)
    session.flush()
    return len(rows)
