"""Key corrections: proposed by one board member, approved by another, applied to the arrays at grading.

A correction concerns one question version of the exam:

* ``rekey``       the correct options become ``correct`` (indices in the author's order);
  each paper shows the options in its own order, so the new key is laid out per paper
  from the ``option_order`` of the affected ``paper_item`` rows (only those are read);
* ``void_award``  everyone who had the question gets its marks, as a right answer (it
  counts as right for the pass rule too), whatever they chose;
* ``void_remove`` the question leaves the test: no points, and the candidate's section
  counts one question fewer, for the pass rule and for the maximum score.

Corrections need two people: ``propose_correction`` by one board member with a written
reason, ``approve_correction`` by another (the proposer is refused), or
``reject_correction``; each is audit-logged (``exam.key_correction.propose`` / ``.approve`` /
``.reject``). Approving changes no score by itself: the board regrades
(``exam.grading.runs.grade_exam``) and sees before publishing whose results change
(``runs.preview_corrections``). When several corrections of one version apply, the last one
(by decision time) replaces the earlier ones: each starts from the bank's key
(``last_per_version``).

Contents: ``CorrectionSpec`` (what grading needs of a correction), ``CorrectedKey`` and
``apply_corrections`` (the arrays as scored after them), ``approved_corrections``; the two-person
rule: ``propose_correction``, ``approve_correction``, ``reject_correction``, with
``version_for_question``, ``parse_options`` / ``letters``, ``current_key``, ``corrections_of``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.grading.arrays import ExamArrays, PoolVersions, ResultsError, option_mask
from exam.grading.models import KeyCorrection
from exam.grading.scoring import SectionRules
from exam.setup.models import BlueprintCell, Exam, ExamPool, ExamSection, Paper, PaperItem
from question_bank.models import QuestionVersion

CORRECTION_ACTIONS = ("rekey", "void_award", "void_remove")
CORRECTION_STATUSES = ("proposed", "approved", "rejected")
MAX_REASON = 4000
OPTION_LETTERS = "ABCDEFGH"


# --- corrections applied to the arrays -------------------------------------------------------------

@dataclass(frozen=True)
class CorrectionSpec:
    """What grading needs of a key correction (a ``KeyCorrection`` row or a preview of one)."""

    id: int | None
    question_version_id: int
    action: str
    correct: tuple[int, ...] = ()

    @classmethod
    def of(cls, correction) -> CorrectionSpec:
        return cls(correction.id, int(correction.question_version_id), correction.action,
                   tuple(int(j) for j in (correction.correct or ())))

    def as_list(self) -> list:
        return [self.id, self.question_version_id, self.action, list(self.correct)]


@dataclass(frozen=True)
class CorrectedKey:
    """The arrays as scored after the corrections."""

    key: np.ndarray  # [C, Q] uint8
    chosen: np.ndarray  # [C, Q] uint8: awarded cells hold the key
    awarded: np.ndarray | None  # [C, Q] bool, or None when no void_award applies
    removed: np.ndarray | None  # [C, Q] bool, or None when no void_remove applies
    rules: SectionRules  # question_count is [C, S] when a question was removed
    author_key: np.ndarray  # [V] uint8: the pool's keys after rekeys (author's order)
    actions: dict[int, str]  # version id → the action applied


def last_per_version(corrections: Sequence[CorrectionSpec]) -> list[CorrectionSpec]:
    """The last correction of each version, in the order given."""
    last: dict[int, CorrectionSpec] = {}
    for correction in corrections:
        last.pop(correction.question_version_id, None)
        last[correction.question_version_id] = correction
    return list(last.values())


def apply_corrections(session: Session, arrays: ExamArrays, pool: PoolVersions, rules: SectionRules,
                      corrections: Sequence[CorrectionSpec]) -> CorrectedKey:
    """The arrays as scored after ``corrections`` (applied in order): the loaded arrays are copied before a
    correction changes them, never written to (the inputs hash is of the arrays as loaded)."""
    key, chosen = arrays.key, arrays.chosen
    awarded = removed = None
    author_key = pool.key.copy()
    actions = {}
    n_sections = len(rules)
    for correction in corrections:
        version = correction.question_version_id
        row = pool.row(version)
        actions[version] = correction.action
        cells = arrays.version_ids == version
        if correction.action == "rekey":
            new_author = option_mask(correction.correct)
            author_key[row] = new_author
            if key is arrays.key:
                key = key.copy()
            _rekey(session, arrays, version, correction.correct, key)
        elif correction.action == "void_award":
            if chosen is arrays.chosen:
                chosen = chosen.copy()
            awarded = cells if awarded is None else awarded | cells
        elif correction.action == "void_remove":
            removed = cells if removed is None else removed | cells
        else:
            raise ResultsError("action", f"unknown correction action {correction.action!r}")
    if awarded is not None:
        chosen[awarded] = key[awarded]
    if removed is not None:
        if key is arrays.key:
            key = key.copy()
        if chosen is arrays.chosen:
            chosen = chosen.copy()
        key[removed] = 0
        chosen[removed] = 0
        gone = np.zeros((arrays.shape[0], n_sections), dtype=np.int64)
        for s in range(n_sections):
            gone[:, s] = np.count_nonzero(removed[:, arrays.section == s], axis=1)
        rules = replace(rules, question_count=rules.question_count[None, :] - gone)
    return CorrectedKey(key=key, chosen=chosen, awarded=awarded, removed=removed, rules=rules,
                        author_key=author_key, actions=actions)


def _rekey(session: Session, arrays: ExamArrays, version: int, correct: Sequence[int], key: np.ndarray) -> None:
    """The new key of one version laid out in each paper's displayed order (reads its paper_item rows)."""
    wanted = set(correct)
    by_paper = np.argsort(arrays.paper_ids, kind="stable")
    sorted_papers = arrays.paper_ids[by_paper]
    masks: dict[str, int] = {}
    rows, cols, values = [], [], []
    for paper_id, position, order in session.execute(
            select(PaperItem.paper_id, PaperItem.position, PaperItem.option_order)
            .join(Paper, Paper.id == PaperItem.paper_id)
            .where(Paper.exam_id == arrays.exam_id, PaperItem.question_version_id == version)):
        at = int(np.searchsorted(sorted_papers, paper_id))
        if at >= len(sorted_papers) or sorted_papers[at] != paper_id:
            continue  # a paper without a submitted attempt
        marker = ",".join(map(str, order))
        if marker not in masks:
            masks[marker] = option_mask(j for j, original in enumerate(order) if original in wanted)
        rows.append(int(by_paper[at]))
        cols.append(position - 1)
        values.append(masks[marker])
    if rows:
        rows_a, cols_a = np.array(rows), np.array(cols)
        if not np.all(arrays.version_ids[rows_a, cols_a] == version):
            raise ResultsError("layout", "the compact columns of a paper disagree with its paper_item rows")
        key[rows_a, cols_a] = np.array(values, dtype=np.uint8)
    if np.count_nonzero(arrays.version_ids == version) != len(rows):
        raise ResultsError("layout", f"question version {version}: paper_item rows missing for some papers")


def approved_corrections(session: Session, exam: Exam) -> list[KeyCorrection]:
    return list(session.scalars(select(KeyCorrection)
                                .where(KeyCorrection.exam_id == exam.id, KeyCorrection.status == "approved")
                                .order_by(KeyCorrection.decided_at, KeyCorrection.id)))


# --- key corrections: two people ------------------------------------------------------------------------

def _pool_version(session: Session, exam: Exam, question_version_id: int):
    in_pool = session.scalar(
        select(ExamPool.question_version_id).join(BlueprintCell, BlueprintCell.id == ExamPool.cell_id)
        .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
        .where(ExamSection.exam_id == exam.id, ExamPool.question_version_id == question_version_id).limit(1))
    if in_pool is None:
        raise ResultsError("unknown_version", f"question version {question_version_id} is not in exam {exam.code}")
    return session.get(QuestionVersion, question_version_id)


def version_for_question(session: Session, exam: Exam, question_id: int) -> int:
    """The version of bank question ``question_id`` that the exam's pool holds."""
    found = session.scalars(
        select(ExamPool.question_version_id).join(BlueprintCell, BlueprintCell.id == ExamPool.cell_id)
        .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
        .join(QuestionVersion, QuestionVersion.id == ExamPool.question_version_id)
        .where(ExamSection.exam_id == exam.id, QuestionVersion.question_id == question_id).distinct()).all()
    if not found:
        raise ResultsError("unknown_question", f"question {question_id} is not in exam {exam.code}")
    if len(found) > 1:
        raise ResultsError("ambiguous_question", f"exam {exam.code} holds several versions of question "
                                                 f"{question_id}: name the version")
    return found[0]


def _reason(text: str | None) -> str:
    reason = (text or "").strip()
    if not reason:
        raise ResultsError("reason_required", "a written reason is required")
    if len(reason) > MAX_REASON:
        raise ResultsError("reason_too_long", f"the reason is too long (at most {MAX_REASON} characters)")
    return reason


def parse_options(text: str) -> list[int]:
    """"B" / "A,C" / "a c" → option indices [1] / [0, 2]; ResultsError on anything else."""
    letters = [part for part in text.replace(",", " ").replace(";", " ").upper().split() if part]
    if not letters or any(len(p) != 1 or p not in OPTION_LETTERS for p in letters):
        raise ResultsError("correct_invalid", "give the correct options as letters, e.g. B or A,C")
    return sorted({OPTION_LETTERS.index(p) for p in letters})


def letters(indices: Iterable[int]) -> str:
    return ",".join(OPTION_LETTERS[j] for j in indices)


def _check_rekey(version, correct: Sequence[int] | None, current: Sequence[int]) -> list[int]:
    chosen = sorted({int(j) for j in (correct or ())})
    if not chosen:
        raise ResultsError("correct_required", "a new key needs at least one correct option")
    if chosen[0] < 0 or chosen[-1] >= len(version.options):
        raise ResultsError("correct_invalid", f"the question has options A-{OPTION_LETTERS[len(version.options) - 1]}")
    if version.qtype == "single" and len(chosen) != 1:
        raise ResultsError("correct_invalid", "a single-answer question has exactly one correct option")
    if chosen == sorted(current):
        raise ResultsError("no_change", "the key already is " + letters(chosen))
    return chosen


def current_key(session: Session, exam: Exam, version) -> list[int]:
    """The version's correct options (author's order) with the approved corrections applied."""
    key = [j for j, option in enumerate(version.options) if option["correct"]]
    for correction in approved_corrections(session, exam):
        if correction.question_version_id == version.id and correction.action == "rekey":
            key = list(correction.correct or ())
    return key


def propose_correction(session: Session, exam: Exam, question_version_id: int, action: str,
                       correct: Sequence[int] | None, reason: str, actor: str, now: datetime) -> KeyCorrection:
    """A board member proposes a key correction; a second one approves it (or anyone rejects it)."""
    if action not in CORRECTION_ACTIONS:
        raise ResultsError("action", f"the action must be one of {', '.join(CORRECTION_ACTIONS)}")
    reason = _reason(reason)
    if exam.status != "published":
        raise ResultsError("not_published", f"exam {exam.code} is not published")
    version = _pool_version(session, exam, question_version_id)
    pending = session.scalar(select(KeyCorrection.id).where(
        KeyCorrection.exam_id == exam.id, KeyCorrection.question_version_id == question_version_id,
        KeyCorrection.status == "proposed").limit(1))
    if pending is not None:
        raise ResultsError("pending", f"correction {pending} of this question awaits a decision")
    if action == "rekey":
        correct = _check_rekey(version, correct, current_key(session, exam, version))
    else:
        correct = None
    correction = KeyCorrection(exam_id=exam.id, question_version_id=question_version_id, action=action,
                               correct=correct, reason=reason, status="proposed", proposed_by=actor, proposed_at=now)
    session.add(correction)
    session.flush()
    audit.append(session, actor=actor, action="exam.key_correction.propose", object_type="exam",
                 object_id=exam.code, details=_correction_details(correction, version), now=now)
    return correction


def _correction_details(correction: KeyCorrection, version, **extra) -> dict:
    return {"correction": correction.id, "question_id": version.question_id, "question_version_id": version.id,
            "version": version.number, "action": correction.action,
            "correct": letters(correction.correct) if correction.correct else None,
            "old_key": version.correct_letters, "reason": correction.reason, **extra}


def _pending(session: Session, correction: KeyCorrection):
    if correction.status != "proposed":
        raise ResultsError("decided", f"correction {correction.id} is already {correction.status}")
    return session.get(QuestionVersion, correction.question_version_id)


def approve_correction(session: Session, correction: KeyCorrection, *, actor: str, now: datetime,
                       note: str = "") -> KeyCorrection:
    """A second board member approves; the proposer cannot. No score changes until the exam is regraded."""
    version = _pending(session, correction)
    if actor == correction.proposed_by:
        raise ResultsError("same_person", "the proposer cannot approve their own correction: a second board "
                                          "member must")
    correction.status = "approved"
    correction.decided_by = actor
    correction.decided_at = now
    exam = session.get(Exam, correction.exam_id)
    audit.append(session, actor=actor, action="exam.key_correction.approve", object_type="exam", object_id=exam.code,
                 details=_correction_details(correction, version, proposed_by=correction.proposed_by,
                                             note=(note or "").strip()[:MAX_REASON]), now=now)
    session.flush()
    return correction


def reject_correction(session: Session, correction: KeyCorrection, *, actor: str, reason: str,
                      now: datetime) -> KeyCorrection:
    """Any board member rejects a proposal (the proposer withdrawing it included), with a reason."""
    reason = _reason(reason)
    version = _pending(session, correction)
    correction.status = "rejected"
    correction.decided_by = actor
    correction.decided_at = now
    exam = session.get(Exam, correction.exam_id)
    audit.append(session, actor=actor, action="exam.key_correction.reject", object_type="exam", object_id=exam.code,
                 details=_correction_details(correction, version, proposed_by=correction.proposed_by,
                                             rejection=reason), now=now)
    session.flush()
    return correction


def corrections_of(session: Session, exam: Exam) -> list[KeyCorrection]:
    return list(session.scalars(select(KeyCorrection).where(KeyCorrection.exam_id == exam.id)
                                .order_by(KeyCorrection.id.desc())))
