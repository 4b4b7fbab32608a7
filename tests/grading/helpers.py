"""Sitting an exam for the results tests: answers written as the room stores them, submitted
by the room's own ``finish`` (which grades each attempt as at submission)."""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select

from exam.grading.arrays import chosen_mask, key_mask
from exam.room import attempts, sessions
from exam.room.models import Attempt, Response
from exam.setup.models import Candidate, Paper, PaperItem
from question_bank.models import QuestionVersion

T0 = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội


def versions_of(db, paper: Paper) -> dict[int, object]:
    ids = {item.question_version_id for item in paper.items}
    return {v.id: v for v in db.scalars(select(QuestionVersion).where(QuestionVersion.id.in_(ids)))}


def correct_options(version) -> list[int]:
    return [j for j, option in enumerate(version.options) if option["correct"]]


def sit(db, candidates: list[Candidate], choose: Callable, *, now: datetime = T0) -> list[Attempt]:
    """Each candidate answers: ``choose(index, item, version)`` gives the chosen options in the
    author's order (empty: no answer); then the attempts are submitted together."""
    done = []
    for index, candidate in enumerate(candidates):
        paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
        attempt = sessions.ensure_attempt(db, candidate, paper)
        attempt.status = "in_progress"
        attempt.started_at = now
        attempt.deadline = now + timedelta(hours=3)
        versions = versions_of(db, paper)
        for seq, item in enumerate(paper.items, start=1):
            picks = choose(index, item, versions[item.question_version_id])
            if picks:
                ids = [item.option_ids[item.option_order.index(j)] for j in picks]
                db.add(Response(attempt_id=attempt.id, item_id=item.id, choices=ids, flagged=False, seq=seq,
                                saved_at=now))
        db.flush()
        done.append(attempt)
    attempts.finish(db, done, by="candidate", actor="", now=now + timedelta(minutes=90))
    return done


def right_answers(count: int):
    """A chooser: candidate i answers the first ``count(i)`` questions of their paper right, the rest wrong."""

    def choose(index, item: PaperItem, version):
        right = correct_options(version)
        if item.position <= count(index):
            return right
        wrong = [j for j in range(len(version.options)) if j not in right]
        return wrong[:1]

    return choose


def random_answers(seed: int, blank: float = 0.1):
    """A chooser: any subset of the options, seeded; some questions left blank."""
    rng = random.Random(seed)

    def choose(index, item: PaperItem, version):
        if rng.random() < blank:
            return []
        if rng.random() < 0.5:
            return correct_options(version)
        n = len(version.options)
        return sorted(rng.sample(range(n), rng.randint(1, 2 if version.qtype == "multiple" else 1)))

    return choose


def fill_choice_masks(db, exam) -> None:
    """Fill ``attempt.choice_masks`` (and the paper's compact columns if still empty) from the rows,
    as submission and paper generation store them: the fast path's input."""
    for attempt in db.scalars(select(Attempt).join(Paper, Paper.id == Attempt.paper_id)
                              .where(Paper.exam_id == exam.id, Attempt.status == "submitted")):
        paper = db.get(Paper, attempt.paper_id)
        answers = {r.item_id: r.choices for r in db.scalars(select(Response).where(Response.attempt_id == attempt.id))}
        keys, versions, chosen = [], [], []
        for item in paper.items:
            version = db.get(QuestionVersion, item.question_version_id)
            keys.append(key_mask(item.option_order, version.options))
            versions.append(item.question_version_id)
            chosen.append(chosen_mask(item.option_ids, answers.get(item.id, [])))
        if paper.key_masks is None or paper.version_ids is None:
            paper.key_masks = bytes(keys)
            paper.version_ids = np.array(versions, dtype="<i4").tobytes()
        attempt.choice_masks = bytes(chosen)
    db.flush()
