"""What the board's key corrections would change, before they are applied: whose round-1 score, and whose
rank or status on the merit list.

``preview_key_corrections`` regrades the exam in memory with the approved corrections (and,
if asked, those still awaiting a second board member), ranks the list from those scores and
from the stored ones, and compares the two (``ranking.compare_merit_lists``). It writes
nothing: the board sees the effect on the merit-list page before anyone regrades.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.core.errors import Refused
from exam.grading import runs as results
from exam.grading.models import KeyCorrection
from exam.merit import ranking as merit
from exam.merit.lists import MeritListError, compute_lists
from exam.merit.rule import MeritRejected
from exam.setup.models import Candidate, Exam


@dataclass
class ScoreChange:
    registration_no: str
    full_name: str
    post: str
    before: float | None
    after: float | None
    passed_before: bool | None
    passed_after: bool | None


@dataclass
class CorrectionPreview:
    """Whose round-1 score, and whose rank or status on the list, an approved key correction would change."""

    corrections: list[KeyCorrection]
    scores: list[ScoreChange] = field(default_factory=list)
    changes: list[merit.MeritChange] = field(default_factory=list)  # on the list (rank, status, total…)
    problem: str = ""  # the list could not be built (e.g. a post without a quota)


def pending_corrections(session: Session, exam: Exam) -> list[KeyCorrection]:
    """The exam's key corrections (every status), newest first."""
    return list(session.scalars(select(KeyCorrection).where(KeyCorrection.exam_id == exam.id)
                                .order_by(KeyCorrection.proposed_at.desc(), KeyCorrection.id.desc())))


def preview_key_corrections(session: Session, exam: Exam, *, actor: str, now: datetime,
                            include_proposed: bool = False) -> CorrectionPreview:
    """Regrade in memory with every approved key correction (and, with ``include_proposed``, those still
    awaiting a second board member) through the grading's ``grade_exam(write=False)``, rebuild the list
    from it and compare with the list from the stored scores. Writes nothing."""
    preview = CorrectionPreview(corrections=pending_corrections(session, exam))
    applied = results.approved_corrections(session, exam)
    if include_proposed:
        applied += sorted((c for c in preview.corrections if c.status == "proposed"),
                          key=lambda c: (c.proposed_at, c.id))
    try:
        outcome = results.grade_exam(session, exam, actor=actor, now=now, corrections=applied, write=False)
    except Refused as exc:  # the grading refused (results.ResultsError): shown to the board, nothing written
        preview.problem = str(exc)
        return preview
    after_round1 = outcome.table
    before_round1 = results.stored_scores(session, exam)
    preview.scores = _score_changes(session, before_round1, after_round1)
    try:
        before = compute_lists(session, exam, round1=before_round1)
        after = compute_lists(session, exam, round1=after_round1)
    except (MeritRejected, MeritListError) as exc:
        preview.problem = str(exc)
        return preview
    preview.changes = merit.compare_merit_lists(before, after)
    return preview


def _score_changes(session: Session, before, after) -> list[ScoreChange]:
    """Candidates whose round-1 total or pass differs between two score tables, by registration number."""
    ids = np.union1d(before.candidate_ids, after.candidate_ids)

    def aligned(table):
        at = np.minimum(np.searchsorted(table.candidate_ids, ids), max(len(table) - 1, 0))
        has = (table.candidate_ids[at] == ids) if len(table) else np.zeros(len(ids), dtype=bool)
        return has, np.where(has, table.total[at] if len(table) else 0.0, np.nan), \
            np.where(has, table.passed_all[at] if len(table) else False, False)

    had, old_total, old_passed = aligned(before)
    has, new_total, new_passed = aligned(after)
    differs = (had != has) | (had & has & ((old_total != new_total) | (old_passed != new_passed)))
    changed = ids[differs].tolist()
    if not changed:
        return []
    people = {}
    for start in range(0, len(changed), 900):
        people.update({cid: (reg, name, post) for cid, reg, name, post in session.execute(
            select(Candidate.id, Candidate.registration_no, Candidate.full_name, Candidate.post)
            .where(Candidate.id.in_(changed[start:start + 900])))})
    found = []
    for k in np.flatnonzero(differs).tolist():
        cid = int(ids[k])
        found.append(ScoreChange(*people[cid], float(old_total[k]) if had[k] else None,
                                 float(new_total[k]) if has[k] else None, bool(old_passed[k]) if had[k] else None,
                                 bool(new_passed[k]) if has[k] else None))
    found.sort(key=lambda change: change.registration_no)
    return found
