"""Key corrections: the two-person rule, written reasons, audit entries, and each action's effect
on the scores (rekey, void_award, void_remove) once the exam is regraded."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from exam.audit.models import AuditEntry
from exam.grading import arrays, corrections, runs
from exam.grading.models import CandidateScore, GradingRun, KeyCorrection
from exam.setup.models import Exam, Paper, PaperItem
from question_bank.models import QuestionVersion
from tests.factories import make_ready_candidates
from tests.grading.helpers import T0, correct_options, right_answers, sit


@pytest.fixture
def sat(db):
    """Six candidates of the small exam (5 + 3 questions): candidate i answers the first 2 + i right."""
    candidates = make_ready_candidates(db, 6)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, right_answers(lambda i: 2 + i))
    db.commit()
    return exam, candidates


def item_at(db, candidate, position) -> PaperItem:
    paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
    return next(i for i in paper.items if i.position == position)


def approved(db, exam, version_id, action, correct=None):
    correction = corrections.propose_correction(db, exam, version_id, action, correct, "Sai đáp án theo văn bản mới",
                                                "hoi-dong-1", T0)
    corrections.approve_correction(db, correction, actor="hoi-dong-2", now=T0)
    return correction


def audit_actions(db):
    return [e.action for e in db.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


# --- two people ----------------------------------------------------------------------------------------

def test_the_proposer_cannot_approve_and_a_second_member_can(db, sat):
    exam, candidates = sat
    version = item_at(db, candidates[0], 1).question_version_id
    correction = corrections.propose_correction(db, exam, version, "void_award", None, "Câu hỏi có hai đáp án đúng",
                                                "hoi-dong-1", T0)
    assert correction.status == "proposed" and correction.proposed_by == "hoi-dong-1"
    with pytest.raises(arrays.ResultsError) as refused:
        corrections.approve_correction(db, correction, actor="hoi-dong-1", now=T0)
    assert refused.value.code == "same_person" and correction.status == "proposed"
    corrections.approve_correction(db, correction, actor="hoi-dong-2", now=T0, note="Đã đối chiếu")
    assert (correction.status, correction.decided_by) == ("approved", "hoi-dong-2")
    with pytest.raises(arrays.ResultsError) as again:
        corrections.reject_correction(db, correction, actor="hoi-dong-3", reason="muộn", now=T0)
    assert again.value.code == "decided"
    db.commit()
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action.like("exam.key_correction.%"))
                         .order_by(AuditEntry.seq)).all()
    assert [(e.action, e.actor) for e in entries] == [("exam.key_correction.propose", "hoi-dong-1"),
                                                      ("exam.key_correction.approve", "hoi-dong-2")]
    details = json.loads(entries[1].details)
    assert details["proposed_by"] == "hoi-dong-1" and details["note"] == "Đã đối chiếu"
    assert details["reason"] == "Câu hỏi có hai đáp án đúng"


def test_reasons_are_required_and_rejection_is_logged(db, sat):
    exam, candidates = sat
    version = item_at(db, candidates[0], 1).question_version_id
    for blank in ("", "   ", None):
        with pytest.raises(arrays.ResultsError) as refused:
            corrections.propose_correction(db, exam, version, "void_remove", None, blank, "hoi-dong-1", T0)
        assert refused.value.code == "reason_required"
    correction = corrections.propose_correction(db, exam, version, "void_remove", None, "Nội dung ngoài phạm vi",
                                                "hoi-dong-1", T0)
    with pytest.raises(arrays.ResultsError) as pending:
        corrections.propose_correction(db, exam, version, "void_award", None, "khác", "hoi-dong-3", T0)
    assert pending.value.code == "pending"
    with pytest.raises(arrays.ResultsError):
        corrections.reject_correction(db, correction, actor="hoi-dong-2", reason=" ", now=T0)
    corrections.reject_correction(db, correction, actor="hoi-dong-1", reason="Rút lại đề xuất", now=T0)
    assert correction.status == "rejected"
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "exam.key_correction.reject"))
    assert json.loads(entry.details)["rejection"] == "Rút lại đề xuất"
    # Rejected corrections are never applied.
    assert runs.grade_exam(db, exam, actor="b", now=T0, write=False).corrections == ()


def test_proposals_are_checked(db, sat):
    exam, candidates = sat
    paper = db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id))
    version = next(v for v in (db.get(QuestionVersion, i.question_version_id) for i in paper.items)
                   if v.qtype == "single")
    key = correct_options(version)
    with pytest.raises(arrays.ResultsError) as same:
        corrections.propose_correction(db, exam, version.id, "rekey", key, "lý do", "a", T0)
    assert same.value.code == "no_change"
    with pytest.raises(arrays.ResultsError) as two:
        corrections.propose_correction(db, exam, version.id, "rekey", [0, 1], "lý do", "a", T0)
    assert two.value.code == "correct_invalid"  # a single-answer question
    with pytest.raises(arrays.ResultsError) as outside:
        corrections.propose_correction(db, exam, version.id, "rekey", [7], "lý do", "a", T0)
    assert outside.value.code == "correct_invalid"
    with pytest.raises(arrays.ResultsError) as action:
        corrections.propose_correction(db, exam, version.id, "delete", None, "lý do", "a", T0)
    assert action.value.code == "action"
    assert corrections.parse_options(" b ") == [1] and corrections.parse_options("A,c") == [0, 2]
    with pytest.raises(arrays.ResultsError):
        corrections.parse_options("Z")


# --- effects -------------------------------------------------------------------------------------------

def test_approving_changes_nothing_until_the_exam_is_regraded(db, sat):
    exam, candidates = sat
    before = runs.grade_exam(db, exam, actor="b", now=T0)
    approved(db, exam, item_at(db, candidates[0], 5).question_version_id, "void_award")
    stored = {s.candidate_id: s.total for s in db.scalars(select(CandidateScore))}
    assert stored == before.totals  # nothing published or rescored by the approval itself
    after = runs.grade_exam(db, exam, actor="b", now=T0)
    assert after.totals != before.totals and after.key_hash != before.key_hash
    assert after.inputs_hash == before.inputs_hash


def test_rekey_changes_scores(db, sat):
    exam, candidates = sat
    item = item_at(db, candidates[0], 1)  # candidate 0 answered it right (positions 1-2 right)
    version = db.get(QuestionVersion, item.question_version_id)
    old_key = correct_options(version)
    wrong = [j for j in range(len(version.options)) if j not in old_key]
    before = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    # The first wrong option is what right_answers() chose for a wrong answer: rekey to it.
    correction = approved(db, exam, version.id, "rekey", [wrong[0]])
    after = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert after.totals[candidates[0].id] == before.totals[candidates[0].id] - 1
    for candidate in candidates:
        paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
        had = next((i for i in paper.items if i.question_version_id == version.id), None)
        if had is None:
            assert after.totals[candidate.id] == before.totals[candidate.id]
            continue
        index = candidates.index(candidate)
        was_right = had.position <= 2 + index
        delta = -1 if was_right else 1  # the wrong answers chose exactly the new key
        assert after.totals[candidate.id] == before.totals[candidate.id] + delta
    assert [c.id for c in after.corrections] == [correction.id]
    assert corrections.current_key(db, exam, version) == [wrong[0]]


def test_void_award_gives_everyone_the_mark(db, sat):
    exam, candidates = sat
    version = item_at(db, candidates[0], 5).question_version_id  # candidate 0 answered position 5 wrong
    before = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    approved(db, exam, version, "void_award")
    after = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    for index, candidate in enumerate(candidates):
        paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
        had = next((i for i in paper.items if i.question_version_id == version), None)
        gain = 1 if had is not None and had.position > 2 + index else 0  # right already: nothing changes
        assert after.totals[candidate.id] == before.totals[candidate.id] + gain
        if had is not None:
            s = (0 if had.position <= 5 else 1)
            assert after.sections[candidate.id][s]["correct"] == before.sections[candidate.id][s]["correct"] + gain
            assert after.sections[candidate.id][s]["questions"] == before.sections[candidate.id][s]["questions"]
    assert after.totals[candidates[0].id] == before.totals[candidates[0].id] + 1


def test_void_remove_changes_totals_and_the_pass_rule_count(db, sat):
    exam, candidates = sat
    # Candidate 0: 2 right of 5 in section 1 (positions 1-2): fails (needs 2.5). Remove a question they
    # answered wrong (position 5): 2 right of 4 → passes (needs 2).
    version = item_at(db, candidates[0], 5).question_version_id
    before = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    first = before.sections[candidates[0].id][0]
    assert (first["correct"], first["questions"], first["passed"]) == (2, 5, False)
    approved(db, exam, version, "void_remove")
    after = runs.grade_exam(db, exam, actor="b", now=T0)
    first = after.sections[candidates[0].id][0]
    assert (first["correct"], first["questions"], first["max_score"], first["passed"]) == (2, 4, 4.0, True)
    assert after.record(candidates[0].id)["max_total"] == 7
    # A candidate who had it right loses its mark; one who did not have it keeps everything.
    for index, candidate in enumerate(candidates):
        paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
        had = next((i for i in paper.items if i.question_version_id == version), None)
        if had is None:
            assert after.record(candidate.id) == before.record(candidate.id)
        else:
            was_right = had.position <= 2 + index
            assert after.totals[candidate.id] == before.totals[candidate.id] - (1 if was_right else 0)
    # The stored rows carry the reduced count too.
    stored = db.get(CandidateScore, candidates[0].id)
    sections = runs.stored_scores(db, exam).record(candidates[0].id)["sections"]
    assert sections[0]["questions"] == 4 and stored.passed is False  # section 2: 0 of 3


def test_preview_lists_whose_score_changes(db, sat):
    exam, candidates = sat
    version = item_at(db, candidates[0], 5).question_version_id
    correction = corrections.propose_correction(db, exam, version, "void_award", None, "Hai đáp án đúng",
                                                "hoi-dong-1", T0)
    changes = runs.preview_corrections(db, exam, [correction])
    changed = {c.candidate.id: c for c in changes}
    assert candidates[0].id in changed
    change = changed[candidates[0].id]
    assert change.new["total"] == change.old["total"] + 1
    assert [c.candidate.registration_no for c in changes] == sorted(c.candidate.registration_no for c in changes)
    assert db.scalar(select(KeyCorrection.status)) == "proposed"  # nothing decided, nothing written
    assert db.scalar(select(GradingRun.id).limit(1)) is None


def test_the_last_correction_of_a_version_wins(db, sat):
    exam, candidates = sat
    version = item_at(db, candidates[0], 5).question_version_id
    approved(db, exam, version, "void_award")
    approved(db, exam, version, "void_remove")
    outcome = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert [c.action for c in outcome.corrections] == ["void_remove"]
    assert outcome.sections[candidates[0].id][0]["questions"] == 4
