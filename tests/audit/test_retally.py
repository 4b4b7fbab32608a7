"""Re-tally: a separate plain-Python scoring path, checked against the vectorized grader on random
papers and by hand; altering an answer or a score in the database is caught."""
from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from exam.audit import retally
from exam.grading import arrays
from exam.grading import runs as results
from exam.grading import scoring as grading
from exam.grading.models import CandidateScore, KeyCorrection
from exam.merit.models import MeritList
from exam.room.history import log_hash
from exam.room.models import Attempt, Response, ResponseLog
from question_bank.models import QuestionVersion
from tests.audit.conftest import T0, attempt_of, drop_response_log_guard
from tests.merit.test_content import rows_format

ROOT = Path(__file__).resolve().parents[2]


def run_retally(runner, exam):
    return runner.invoke(args=["audit", "retally", exam.code])


# --- the rule, against the grader and by hand -------------------------------------------------------

def test_retally_imports_neither_numpy_nor_the_grader():
    imported = set()
    for module in ("retally.py", "records.py"):  # the rule and checks, and the records they read
        tree = ast.parse((ROOT / "exam" / "audit" / module).read_text(encoding="utf-8"))
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    # It may read what grading and ranking stored (their models), never the code that computed it.
    checked = {name for name in imported if name.startswith(("numpy", "exam.grading", "exam.merit", "exam.room"))}
    # The save history's chain is the room's record format, checked with the room's own verifier.
    assert checked <= {"exam.grading.models", "exam.merit.models", "exam.room.models", "exam.room.history"}, checked


@pytest.mark.parametrize("seed", range(6))
def test_plain_tally_agrees_with_the_vectorized_grader_on_random_papers(seed):
    rng = random.Random(seed)
    sections = [{"id": s + 1, "position": s + 1, "code": f"s{s}", "title": f"Phần {s}", "question_count": 6,
                 "marks_per_question": rng.choice([1.0, 2.5, 0.3]), "negative_fraction": rng.choice([0.0, 0.25]),
                 "multiple_scoring": rng.choice(["all_or_nothing", "partial"]), "pass_ratio": 0.5} for s in range(3)]
    versions, items = {}, []
    for q in range(18):
        n = rng.randint(2, 6)
        qtype = rng.choice(["single", "multiple"])
        right = set(rng.sample(range(n), rng.randint(1, n - 1) if qtype == "multiple" else 1))
        versions[q] = {"qtype": qtype, "options": [{"text": str(i), "correct": i in right} for i in range(n)]}
        order = list(range(n))
        rng.shuffle(order)
        items.append({"id": 100 + q, "section_id": q // 6 + 1, "question_version_id": q, "option_order": order,
                      "option_ids": [f"o{q}-{i}" for i in range(n)]})
    papers = []
    for _ in range(40):
        answers = {}
        for item in items:
            if rng.random() < 0.85:
                k = rng.randint(1, len(item["option_ids"])) if versions[item["question_version_id"]]["qtype"] == \
                    "multiple" else 1
                answers[item["id"]] = rng.sample(item["option_ids"], k)
        papers.append(answers)

    key = np.array([[arrays.key_mask(i["option_order"], versions[i["question_version_id"]]["options"])
                     for i in items]] * len(papers), dtype=np.uint8)
    chosen = np.array([[arrays.chosen_mask(i["option_ids"], answers.get(i["id"], ())) for i in items]
                       for answers in papers], dtype=np.uint8)
    multiple = np.array([versions[i["question_version_id"]]["qtype"] == "multiple" for i in items])
    rules = grading.SectionRules.of([type("S", (), {"marks_per_question": s["marks_per_question"],
                                                    "negative_fraction": s["negative_fraction"],
                                                    "multiple_scoring": s["multiple_scoring"],
                                                    "pass_ratio": s["pass_ratio"],
                                                    "question_count": s["question_count"]}) for s in sections])
    grades = grading.grade(key, chosen, multiple, np.array([i["section_id"] - 1 for i in items]), rules)
    for c, answers in enumerate(papers):
        mine = retally.tally(sections, items, answers, versions)
        assert mine["total"] == pytest.approx(grades.total[c], abs=1e-4)
        assert mine["passed"] == bool(grades.passed_all[c])
        for s, section in enumerate(mine["sections"]):
            assert section["score"] == pytest.approx(grades.score[c, s], abs=1e-4)
            assert (section["correct"], section["answered"]) == (grades.correct[c, s], grades.answered[c, s])


def test_key_corrections_by_hand():
    sections = [{"id": 1, "position": 1, "code": "g", "title": "Chung", "question_count": 4,
                 "marks_per_question": 2.0, "negative_fraction": 0.0, "multiple_scoring": "all_or_nothing",
                 "pass_ratio": 0.5}]
    versions = {v: {"qtype": "single", "options": [{"text": "x", "correct": True}, {"text": "y", "correct": False},
                                                     {"text": "z", "correct": False}]} for v in range(4)}
    # Displayed order C, A, B: the correct original option A is shown as B.
    items = [{"id": 10 + v, "section_id": 1, "question_version_id": v, "option_order": [2, 0, 1],
              "option_ids": [f"{v}c", f"{v}a", f"{v}b"]} for v in range(4)]
    answers = {10: ["0a"], 11: ["1c"], 12: ["2c"]}  # right, wrong, wrong, blank
    plain = retally.tally(sections, items, answers, versions)
    assert (plain["sections"][0]["correct"], plain["total"], plain["passed"]) == (1, 2.0, False)
    corrections = {1: {"action": "rekey", "correct": [2]},  # original C was right after all
                   2: {"action": "void_award", "correct": None},
                   3: {"action": "void_remove", "correct": None}}
    fixed = retally.tally(sections, items, answers, versions, corrections)
    assert fixed["sections"][0] | {} == {"position": 1, "code": "g", "title": "Chung", "questions": 3, "correct": 3,
                                         "answered": 3, "score": 6.0, "max_score": 6.0, "passed": True}
    assert fixed["total"] == 6.0


# --- the exam ---------------------------------------------------------------------------------------------

def test_clean_exam_retallies_clean(runner, results_exam):
    result = run_retally(runner, results_exam.exam)
    assert result.exit_code == 0, result.output
    assert "4 submitted attempts re-tallied" in result.output and "published merit list" in result.output
    assert "no differences" in result.output


def test_altered_response_row_is_caught(runner, db, sat_exam):
    attempt = sat_exam.attempts[0]
    item, right, wrong, _ = sat_exam.keys[attempt.id][1]  # answered right
    db.execute(update(Response).where(Response.attempt_id == attempt.id, Response.item_id == item.id)
               .values(choices=wrong[:1]))
    db.commit()
    result = run_retally(runner, sat_exam.exam)
    assert result.exit_code == 1
    assert f"{sat_exam.candidates[0].registration_no} [answers] question 2" in result.output


def test_altered_save_history_is_caught(runner, db, sat_exam):
    attempt = sat_exam.attempts[1]
    drop_response_log_guard(db)
    last = db.scalars(select(ResponseLog).where(ResponseLog.attempt_id == attempt.id)
                      .order_by(ResponseLog.id.desc())).first()
    item = next(entry for entry in sat_exam.keys[attempt.id] if entry[0].id == last.item_id)
    db.execute(update(ResponseLog).where(ResponseLog.id == last.id).values(choices=json.dumps(item[1][:1])))
    db.commit()
    result = run_retally(runner, sat_exam.exam)
    assert result.exit_code == 1
    assert "[history] the save history is broken" in result.output and "was altered" in result.output


def test_rewritten_history_with_recomputed_hashes_is_caught_by_the_submission_entry(runner, db, sat_exam):
    """The intruder recomputes every hash and the attempt's head: the chain's submission entry still
    holds the original head, and the stored response disagrees."""

    attempt = sat_exam.attempts[0]
    drop_response_log_guard(db)
    item, right, wrong, _ = sat_exam.keys[attempt.id][4]
    prev = "0" * 64
    for row in db.scalars(select(ResponseLog).where(ResponseLog.attempt_id == attempt.id).order_by(ResponseLog.id)):
        if row.item_id == item.id:
            row.choices = json.dumps(wrong[:1] if json.loads(row.choices) == right else right, separators=(",", ":"))
        row.prev_hash = prev
        row.hash = prev = log_hash(attempt_public_id=attempt.public_id, seq=row.seq, item_id=row.item_id,
                                   choices=json.loads(row.choices), flagged=row.flagged, at=row.at,
                                   machine=row.machine, prev_hash=prev)
    db.execute(update(Attempt).where(Attempt.id == attempt.id).values(history_hash=prev))
    db.commit()
    result = run_retally(runner, sat_exam.exam)
    assert result.exit_code == 1
    assert "[submission] the audit chain's submission entry" in result.output


def test_altered_scores_are_caught(runner, db, results_exam):
    first, second = results_exam.attempts[:2]
    score = dict(attempt_of(db, results_exam.candidates[0]).score)
    score["total"] += 1
    score["sections"] = [dict(s) for s in score["sections"]]
    score["sections"][0]["score"] += 1
    db.execute(update(Attempt).where(Attempt.id == first.id).values(score=score))
    db.execute(update(CandidateScore).where(CandidateScore.candidate_id == second.candidate_id)
               .values(total=CandidateScore.total + 0.5))
    db.commit()
    result = run_retally(runner, results_exam.exam)
    assert result.exit_code == 1
    one, two = (c.registration_no for c in results_exam.candidates[:2])
    assert f"{one} [attempt_score] total" in result.output
    assert f"{one} [attempt_score] section general: score" in result.output
    assert f"{two} [candidate_score] total" in result.output


def test_published_list_total_that_does_not_add_up_is_caught(runner, db, results_exam):
    merit_list = db.scalar(select(MeritList))
    content = json.loads(merit_list.content)
    columns = content["lists"][0]["columns"]
    columns["total"][0] += 10
    db.execute(update(MeritList).where(MeritList.id == merit_list.id).values(content=json.dumps(content)))
    db.commit()
    result = run_retally(runner, results_exam.exam)
    assert result.exit_code == 1
    assert f"{columns['registration_no'][0]} [merit_list] merit list (Chuyên viên): total" in result.output
    # A list published in the earlier format (one list per row) is read the same.
    old = rows_format(content)
    db.execute(update(MeritList).where(MeritList.id == merit_list.id).values(content=json.dumps(old)))
    db.commit()
    again = run_retally(runner, results_exam.exam)
    assert again.exit_code == 1
    assert f"{columns['registration_no'][0]} [merit_list] merit list (Chuyên viên): total" in again.output


def test_an_approved_key_correction_is_applied_to_the_grading_run_not_to_the_submission(runner, db, results_exam):
    """Rekey question 1 of the first candidate's paper to an option they did not choose: their
    round-1 score in the grading run must now be one mark lower (and the submission's stays)."""

    attempt = results_exam.attempts[0]
    item, right, wrong, _ = results_exam.keys[attempt.id][0]  # answered right (after one change)
    version = db.get(QuestionVersion, item.question_version_id)
    wrong_original = item.option_order[item.option_ids.index(wrong[0])]
    db.add(KeyCorrection(exam_id=results_exam.exam.id, question_version_id=version.id, action="rekey",
                         correct=[wrong_original], reason="đáp án in sai", status="approved", proposed_by="a",
                         proposed_at=T0, decided_by="b", decided_at=T0))
    db.commit()
    result = run_retally(runner, results_exam.exam)
    assert result.exit_code == 1
    number = results_exam.candidates[0].registration_no
    assert f"{number} [candidate_score] total" in result.output
    assert "[attempt_score]" not in result.output and "[submission]" not in result.output
    assert "1 approved key corrections applied" in result.output
    # The board regrades: the stored round-1 score follows the corrected key and all is well again.
    score = db.scalar(select(CandidateScore).where(CandidateScore.candidate_id == attempt.candidate_id))
    fixed = results.stored_scores(db, results_exam.exam, [attempt.candidate_id]).record(attempt.candidate_id)
    fixed["sections"][0]["correct"] -= 1
    fixed["sections"][0]["score"] -= 1.0
    others = [c for c in results_exam.candidates if c.id != attempt.candidate_id]
    db.execute(update(CandidateScore).where(CandidateScore.candidate_id == attempt.candidate_id)
               .values(total=score.total - 1.0, section_results=results.section_results_of(fixed),
                       passed=score.passed))
    db.commit()
    result = run_retally(runner, results_exam.exam)
    assert f"{number} [candidate_score]" not in result.output
    # Whoever else drew that question may differ in the grading run too (not regraded here); the scores of
    # submission never do.
    for other in others:
        assert f"{other.registration_no} [attempt_score]" not in result.output
