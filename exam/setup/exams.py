"""Exams: created from a specification (TOML file or board form), then published, which freezes its
settings and the exact question versions it may draw."""
from __future__ import annotations

import difflib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import click
from flask import abort
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.core.errors import Refused
from exam.setup.models import BlueprintCell, Exam, ExamPool, ExamSection
from exam.setup.spec import CellSpec, ExamSpec, SpecError, SpecReading, SpecRejected, spec_from_dict
from question_bank.bank import freeze_versions, subtree_filter, topic_by_path
from question_bank.models import Question, Topic


class ExamError(Refused):
    """A refused exam operation; the message names what is wrong."""


def _pool_query(columns, topic_path: str, difficulty: str):
    """Active questions in the topic (with subtopics) at the difficulty ("any": every difficulty)."""
    query = (select(*columns).select_from(Question).join(Topic, Topic.id == Question.topic_id)
             .where(Question.status == "active", subtree_filter(topic_path)))
    if difficulty != "any":
        query = query.where(Question.difficulty == difficulty)
    return query


def cell_pool(session: Session, cell: BlueprintCell) -> list[int]:
    """Current versions of the active questions in the cell's topic (with subtopics) and difficulty."""
    return sorted(session.scalars(_pool_query([Question.current_version_id], cell.topic.path, cell.difficulty)))


def available_questions(session: Session, topic_path: str, difficulty: str) -> int:
    """How many active questions a cell over ``topic_path`` × ``difficulty`` could draw today."""
    return session.scalar(_pool_query([func.count()], topic_path, difficulty))


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


# --- creating an exam from its specification -------------------------------------------------------

def exam_by_code(session: Session, code: str) -> Exam | None:
    return session.scalar(select(Exam).where(Exam.code == (code or "").strip()))


def exam_or_404(session: Session, code: str) -> Exam:
    """The exam a page's URL names, or the 404 page: the one loader every area's pages use."""
    exam = exam_by_code(session, code)
    if exam is None:
        abort(404)
    return exam


def exam_or_exit(session: Session, code: str) -> Exam:
    """The exam a command names, or a clean exit that lists the exams there are: every area's commands use it."""
    exam = exam_by_code(session, code)
    if exam is None:
        known = ", ".join(e.code for e in list_exams(session)[:10]) or "none yet"
        raise click.ClickException(f"no exam with code {code!r} (exams: {known})")
    return exam


def list_exams(session: Session) -> list[Exam]:
    """Every exam, newest first."""
    return list(session.scalars(select(Exam).order_by(Exam.created_at.desc(), Exam.id.desc())))


def check_cells(session: Session, cells: Iterable[tuple[str, CellSpec]]) -> list[SpecError]:
    """Every cell (key, cell) whose topic is missing from the bank or that the bank cannot fill."""
    errors = []
    all_paths: list[str] | None = None
    for key, cell in cells:
        if topic_by_path(session, cell.topic) is None:
            if all_paths is None:
                all_paths = list(session.scalars(select(Topic.path)))
            close = difflib.get_close_matches(cell.topic, all_paths, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(SpecError(f"{key}.topic", f"no topic {cell.topic!r} in the bank{hint}"))
            continue
        available = available_questions(session, cell.topic, cell.difficulty)
        if available < cell.count:
            errors.append(SpecError(f"{key}.count", f"needs {cell.count} questions but the bank has {available} "
                                                    f"active ones in {cell.topic} × {cell.difficulty}"))
    return errors


def _code_taken(session: Session, code: str) -> list[SpecError]:
    if code and exam_by_code(session, code) is not None:
        return [SpecError("code", f"an exam with code {code!r} already exists")]
    return []


def check_spec(session: Session, spec: ExamSpec) -> list[SpecError]:
    """What stops this spec from becoming an exam now: a taken code, missing topics, unfillable cells."""
    cells = [(f"sections[{s}].blueprint[{c}]", cell) for s, section in enumerate(spec.sections)
             for c, cell in enumerate(section.blueprint)]
    return _code_taken(session, spec.code) + check_cells(session, cells)


def check_reading(session: Session, reading: SpecReading) -> list[SpecError]:
    """Every problem of a specification as read (TOML file or board form), the bank's included:
    the database checks run on every part that read well, so all problems come out together."""
    return reading.errors + _code_taken(session, reading.code) + check_cells(session, reading.cells)


def create_exam(session: Session, spec: ExamSpec, actor: str, now: datetime) -> Exam:
    """Write a draft exam from a checked spec (TOML file or board form alike); audit ``exam.create``.

    Raises SpecRejected with every problem when the code is taken or the bank cannot
    fill the blueprint; nothing is written then.
    """
    errors = check_spec(session, spec)
    if errors:
        raise SpecRejected(errors)
    exam = Exam(code=spec.code, title=spec.title, status="draft", seed=secrets.token_hex(32),
                show_score=spec.show_score, forms=spec.forms, instructions=spec.instructions, spec=spec.as_dict(),
                ranking=spec.ranking, created_at=now, created_by=actor)
    for position, section_spec in enumerate(spec.sections, start=1):
        scoring = section_spec.scoring
        section = ExamSection(position=position, code=section_spec.code, title=section_spec.title,
                              minutes=section_spec.minutes, question_count=section_spec.questions,
                              marks_per_question=scoring.marks_per_question,
                              negative_fraction=scoring.negative_fraction, multiple_scoring=scoring.multiple,
                              pass_ratio=scoring.pass_ratio)
        for cell in section_spec.blueprint:
            section.cells.append(BlueprintCell(topic=topic_by_path(session, cell.topic), difficulty=cell.difficulty,
                                               count=cell.count))
        exam.sections.append(section)
    session.add(exam)
    session.flush()
    audit.append(session, actor=actor, action="exam.create", object_type="exam", object_id=exam.code,
                 details={"title": exam.title, "sections": len(spec.sections), "questions": spec.total_questions,
                          "minutes": spec.total_minutes, "spec": exam.spec}, now=now)
    return exam


@dataclass
class CellView:
    """A blueprint cell as the board sees it: what it asks and what it can draw."""

    topic: str
    difficulty: str
    count: int
    available: int  # the frozen pool once published; the bank's active questions before

    @property
    def short(self) -> bool:
        return self.available < self.count


def blueprint_view(session: Session, exam: Exam) -> dict[int, list[CellView]]:
    """Section id → its cells with their availability."""
    frozen = {}
    if exam.status == "published":
        frozen = dict(session.execute(
            select(ExamPool.cell_id, func.count()).join(BlueprintCell, BlueprintCell.id == ExamPool.cell_id)
            .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
            .where(ExamSection.exam_id == exam.id).group_by(ExamPool.cell_id)).all())
    view = {}
    for section in exam.sections:
        view[section.id] = [
            CellView(cell.topic.path, cell.difficulty, cell.count,
                     frozen.get(cell.id, 0) if exam.status == "published"
                     else available_questions(session, cell.topic.path, cell.difficulty))
            for cell in section.cells]
    return view


def spec_of(exam: Exam) -> ExamSpec | None:
    """The exam's stored spec read back (None for an exam made without one, e.g. by an old factory)."""
    spec, errors = spec_from_dict(exam.spec) if exam.spec else (None, [])
    return None if errors else spec
