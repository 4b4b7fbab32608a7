"""Grading a whole exam through the database: hand cases, batch == submission, the run's hashes
and audit entry, the compact-column path and the row path agreeing."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from exam.audit.models import AuditEntry
from exam.grading import arrays, runs
from exam.grading.models import CandidateScore, GradingRun
from exam.setup.models import Exam, Paper
from tests.factories import make_exam, make_ready_candidates
from tests.grading.helpers import T0, correct_options, random_answers, right_answers, sit

# Section 1: 4 hard (some multiple-answer in the demo bank) + 2 easy; section 2: 3 easy.
MIXED_SECTIONS = (
    ("general", "Kiến thức chung", 10, [("Kiến thức chung", "hard", 4), ("Kiến thức chung", "easy", 2)]),
    ("language", "Ngoại ngữ", 5, [("Tiếng Anh", "easy", 3)]),
)


def exam_of(db, candidates) -> Exam:
    return db.get(Exam, candidates[0].exam_id)


def test_hand_cases_through_the_database(db):
    # 5 + 3 questions, 1 mark each. Candidate i answers the first 2 + i positions right, the rest wrong.
    candidates = make_ready_candidates(db, 4)
    exam = exam_of(db, candidates)
    sit(db, candidates, right_answers(lambda i: 2 + i))
    outcome = runs.grade_exam(db, exam, actor="hoi-dong-1", now=T0)
    db.commit()
    scores = {s.candidate_id: s for s in db.scalars(select(CandidateScore).where(CandidateScore.exam_id == exam.id))}
    stored_records = runs.stored_scores(db, exam).records()
    expected = [  # (total, section 1 right, section 2 right, passed section 1 (≥ 2.5 of 5), section 2 (≥ 1.5 of 3))
        (2, 2, 0, False, False), (3, 3, 0, True, False), (4, 4, 0, True, False), (5, 5, 0, True, False)]
    for candidate, (total, right1, right2, pass1, pass2) in zip(candidates, expected, strict=True):
        stored = scores[candidate.id]
        assert stored.total == total and stored.grading_run_id == outcome.run.id
        sections = stored_records[candidate.id]["sections"]
        assert [s["correct"] for s in sections] == [right1, right2]
        assert [s["passed"] for s in sections] == [pass1, pass2]
        assert stored.passed is False
        assert outcome.totals[candidate.id] == total and outcome.passed[candidate.id] is False
    assert outcome.run.summary["candidates"] == 4
    assert [s["passed"] for s in outcome.run.summary["sections"]] == [3, 0]


def test_negative_marking_and_blanks_hand_case(db):
    candidates = make_ready_candidates(db, 1, negative_fraction=0.25)
    exam = exam_of(db, candidates)

    def choose(index, item, version):  # right, right, wrong, blank, blank | right, wrong, wrong
        right = correct_options(version)
        wrong = [j for j in range(len(version.options)) if j not in right][:1]
        return {1: right, 2: right, 3: wrong, 6: right, 7: wrong, 8: wrong}.get(item.position, [])

    sit(db, candidates, choose)
    outcome = runs.grade_exam(db, exam, actor="hoi-dong-1", now=T0)
    record = outcome.record(candidates[0].id)
    assert [s["score"] for s in record["sections"]] == [1.75, 0.5]
    assert [s["answered"] for s in record["sections"]] == [3, 3]
    assert record["total"] == 2.25 and record["max_total"] == 8


@pytest.mark.parametrize("scoring", ["all_or_nothing", "partial"])
def test_batch_equals_submission_time_grading(db, scoring):
    candidates = make_ready_candidates(db, 12, sections=MIXED_SECTIONS, negative_fraction=0.25,
                                       multiple_scoring=scoring)
    exam = exam_of(db, candidates)
    attempts = sit(db, candidates, random_answers(seed=7))
    outcome = runs.grade_exam(db, exam, actor="hoi-dong-1", now=T0)
    assert outcome.candidates == 12
    for attempt in attempts:
        assert outcome.record(attempt.candidate_id) == attempt.score  # the submission's own score record
    stored = {s.candidate_id: s for s in db.scalars(select(CandidateScore).where(CandidateScore.exam_id == exam.id))}
    records = runs.stored_scores(db, exam).records()
    for attempt in attempts:
        assert records[attempt.candidate_id] == attempt.score  # the packed row reads back to the same record
        assert stored[attempt.candidate_id].total == attempt.score["total"]


def test_run_hashes_and_audit_entry(db):
    candidates = make_ready_candidates(db, 5)
    exam = exam_of(db, candidates)
    sit(db, candidates, random_answers(seed=3))
    outcome = runs.grade_exam(db, exam, actor="hoi-dong-1", now=T0)
    db.commit()
    run = db.scalar(select(GradingRun).where(GradingRun.exam_id == exam.id))
    assert run.by == "hoi-dong-1" and run.at == T0
    for digest in (run.key_hash, run.inputs_hash, run.outputs_hash):
        assert len(digest) == 64 and int(digest, 16) >= 0
    # The stored scores rehash to the run's outputs hash: anyone can check the table against the chain.
    assert runs.outputs_hash_of_scores(db, exam) == run.outputs_hash
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "exam.grade"))
    details = json.loads(entry.details)
    assert entry.actor == "hoi-dong-1" and entry.object_id == exam.code
    assert (details["key_hash"], details["inputs_hash"], details["outputs_hash"], details["run"]) == (
        run.key_hash, run.inputs_hash, run.outputs_hash, run.id)
    # Grading again with nothing changed: the same hashes, a second run, the scores replaced.
    again = runs.grade_exam(db, exam, actor="hoi-dong-2", now=T0)
    db.commit()
    assert (again.key_hash, again.inputs_hash, again.outputs_hash) == (run.key_hash, run.inputs_hash,
                                                                      run.outputs_hash)
    assert db.scalar(select(CandidateScore.grading_run_id).limit(1)) == again.run.id
    assert len(db.scalars(select(CandidateScore).where(CandidateScore.exam_id == exam.id)).all()) == 5
    assert outcome.summary()["candidates"] == 5


def test_write_false_writes_nothing(db):
    candidates = make_ready_candidates(db, 3)
    exam = exam_of(db, candidates)
    sit(db, candidates, random_answers(seed=5))
    outcome = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert outcome.run is None and len(outcome.totals) == 3
    assert db.scalar(select(GradingRun.id).limit(1)) is None
    assert db.scalar(select(CandidateScore.candidate_id).limit(1)) is None


def test_only_submitted_attempts_are_graded_and_draft_exams_refused(db):
    candidates = make_ready_candidates(db, 3)
    exam = exam_of(db, candidates)
    sit(db, candidates[:2], random_answers(seed=1))
    outcome = runs.grade_exam(db, exam, actor="b", now=T0)
    assert sorted(outcome.totals) == sorted(c.id for c in candidates[:2])
    draft = make_exam(db, publish=False)
    with pytest.raises(arrays.ResultsError) as refused:
        runs.grade_exam(db, draft, actor="b", now=T0)
    assert refused.value.code == "not_published"


def test_empty_exam_grades_to_an_empty_run(db):
    candidates = make_ready_candidates(db, 2)
    exam = exam_of(db, candidates)
    outcome = runs.grade_exam(db, exam, actor="b", now=T0)
    assert outcome.candidates == 0 and outcome.run.summary["candidates"] == 0
    assert db.scalar(select(Paper.id).limit(1)) is not None
