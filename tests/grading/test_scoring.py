"""Grading: hand-computed cases for every scoring option, and batch == one by one on random data."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from exam.grading import scoring
from exam.grading.scoring import SectionRules, grade


@dataclass
class Rules:
    position: int
    code: str
    title: str
    question_count: int
    marks_per_question: float = 1.0
    negative_fraction: float = 0.0
    multiple_scoring: str = "all_or_nothing"
    pass_ratio: float = 0.5


def rules(*sections: Rules) -> SectionRules:
    return SectionRules.of(sections)


def test_single_and_multiple_all_or_nothing_with_negative_marking():
    # Section 0: 2 marks a question, a quarter of the marks off for a wrong answer, all-or-nothing.
    key = [[0b0100, 0b0001, 0b1000, 0b0011, 0b0011]]
    chosen = [[0b0100,  # right: +2
               0b0010,  # wrong: -0.5
               0b0000,  # no answer: 0
               0b0011,  # multiple, exactly right: +2
               0b0001]]  # multiple, only part of it: wrong under all-or-nothing: -0.5
    multiple = [False, False, False, True, True]
    grades = grade(np.array(key), np.array(chosen), np.array(multiple), np.zeros(5, dtype=int),
                   rules(Rules(1, "a", "A", 5, marks_per_question=2, negative_fraction=0.25)))
    assert grades.score.tolist() == [[3.0]]
    assert grades.correct.tolist() == [[2]]
    assert grades.answered.tolist() == [[4]]
    assert grades.passed.tolist() == [[False]]  # 2 right of 5: below 50%
    assert grades.total.tolist() == [3.0] and grades.passed_all.tolist() == [False]


def test_partial_credit_for_multiple_answers():
    key = [[0b0111, 0b0011, 0b0001, 0b0110]]
    chosen = [[0b0011,  # 2 of 3 right, none wrong: 2/3
               0b0101,  # 1 right, 1 wrong: (1 - 1)/2 = 0
               0b0001,  # single, right: 1
               0b1111]]  # both right ones and two wrong ones: (2 - 2)/2 = 0
    multiple = [True, True, False, True]
    grades = grade(np.array(key), np.array(chosen), np.array(multiple), np.zeros(4, dtype=int),
                   rules(Rules(1, "b", "B", 4, multiple_scoring="partial")))
    assert grades.score[0, 0] == pytest.approx(2 / 3 + 1)
    assert grades.correct.tolist() == [[1]]
    # Floored at 0 per question: more wrong than right earns nothing, never less.
    floored = grade(np.array([[0b0001]]), np.array([[0b1110]]), np.array([True]), np.zeros(1, dtype=int),
                    rules(Rules(1, "b", "B", 1, multiple_scoring="partial")))
    assert floored.score.tolist() == [[0.0]]


def test_partial_credit_with_negative_marking_pays_the_penalty_when_not_fully_right():
    # 3 marks; 2 of 3 right options chosen: 2/3 × 3 = 2 credit, minus 0.5 × 3 = 1.5 penalty.
    grades = grade(np.array([[0b0111, 0b0111]]), np.array([[0b0011, 0b0111]]), np.array([True, True]),
                   np.zeros(2, dtype=int),
                   rules(Rules(1, "c", "C", 2, marks_per_question=3, negative_fraction=0.5,
                               multiple_scoring="partial")))
    assert grades.score[0, 0] == pytest.approx(0.5 + 3.0)


def test_sections_are_scored_and_passed_separately():
    # 4 questions in section 0, 2 in section 1; the second candidate gets everything right.
    key = np.array([[1, 2, 4, 8, 1, 2]] * 2)
    chosen = np.array([[1, 2, 1, 0, 1, 1],
                       [1, 2, 4, 8, 1, 2]])
    section = np.array([0, 0, 0, 0, 1, 1])
    grades = grade(key, chosen, np.zeros(6, dtype=bool), section,
                   rules(Rules(1, "gk", "Kiến thức chung", 4), Rules(2, "fl", "Ngoại ngữ", 2, marks_per_question=5)))
    assert grades.correct.tolist() == [[2, 1], [4, 2]]
    assert grades.score.tolist() == [[2.0, 5.0], [4.0, 10.0]]
    assert grades.passed.tolist() == [[True, True], [True, True]]  # exactly 50% passes
    assert grades.total.tolist() == [7.0, 14.0]
    one_short = grade(key[:1], np.array([[1, 0, 0, 0, 1, 0]]), np.zeros(6, dtype=bool), section,
                      rules(Rules(1, "gk", "GK", 4), Rules(2, "fl", "FL", 2)))
    assert one_short.passed.tolist() == [[False, True]] and one_short.passed_all.tolist() == [False]


def test_the_round_one_example_pass_rule_counts_correct_answers():
    # 60 / 30 / 30 questions: at least 30 / 15 / 15 correct answers.
    key = np.ones((2, 120), dtype=np.uint8)
    chosen = np.zeros((2, 120), dtype=np.uint8)
    chosen[0, :30] = 1; chosen[0, 60:75] = 1; chosen[0, 90:105] = 1  # noqa: E702
    chosen[1, :29] = 1; chosen[1, 60:75] = 1; chosen[1, 90:120] = 1  # noqa: E702
    section = np.repeat([0, 1, 2], [60, 30, 30])
    grades = grade(key, chosen, False, section,
                   rules(Rules(1, "gk", "GK", 60), Rules(2, "fl", "FL", 30), Rules(3, "it", "IT", 30)))
    assert grades.passed.tolist() == [[True, True, True], [False, True, True]]
    assert grades.passed_all.tolist() == [True, False]


def test_a_batch_grades_exactly_like_one_candidate_at_a_time():
    rng = np.random.default_rng(20261125)
    n_candidates, layout = 300, np.repeat([0, 1, 2], [12, 6, 6])
    n_questions = layout.size
    multiple = rng.random((n_candidates, n_questions)) < 0.25
    key = (1 << rng.integers(0, 4, (n_candidates, n_questions))).astype(np.uint8)
    key[multiple] |= (1 << rng.integers(0, 4, multiple.sum())).astype(np.uint8)
    chosen = np.where(rng.random(key.shape) < 0.5, key, rng.integers(0, 16, key.shape)).astype(np.uint8)
    section_rules = rules(Rules(1, "a", "A", 12, marks_per_question=1, negative_fraction=0.25),
                          Rules(2, "b", "B", 6, marks_per_question=2, multiple_scoring="partial"),
                          Rules(3, "c", "C", 6, marks_per_question=0.5, negative_fraction=0.5,
                                multiple_scoring="partial", pass_ratio=0.6))
    batch = grade(key, chosen, multiple, layout, section_rules)
    for c in range(n_candidates):
        one = grade(key[c:c + 1], chosen[c:c + 1], multiple[c:c + 1], layout, section_rules)
        assert np.allclose(one.score, batch.score[c:c + 1])
        assert (one.correct == batch.correct[c:c + 1]).all()
        assert (one.passed == batch.passed[c:c + 1]).all()
    # A shuffled section layout (non-contiguous columns) scores the same as the sorted one.
    order = rng.permutation(n_questions)
    shuffled = grade(key[:, order], chosen[:, order], multiple[:, order], layout[order], section_rules)
    assert np.allclose(shuffled.score, batch.score) and (shuffled.correct == batch.correct).all()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        grade(np.zeros((2, 3)), np.zeros((2, 4)), False, np.zeros(3, dtype=int), rules(Rules(1, "a", "A", 3)))
    with pytest.raises(ValueError, match="outside"):
        grade(np.zeros((1, 2)), np.zeros((1, 2)), False, np.array([0, 1]), rules(Rules(1, "a", "A", 2)))


def test_a_whole_exam_graded_block_by_block_gives_the_same_numbers(monkeypatch):
    """Past GRADE_ROWS candidates, grading runs a block of rows at a time: the blocks change nothing,
    per-candidate question counts (a removed question) and multiple flags included."""
    rng = np.random.default_rng(3)
    n, q = 50, 12
    key = (1 << rng.integers(0, 4, (n, q))).astype(np.uint8)
    key[:, 3] |= 1 << 3
    chosen = np.where(rng.random((n, q)) < 0.6, key, rng.integers(0, 16, (n, q))).astype(np.uint8)
    multiple = (key & 8) > 0  # the question with two keys takes several answers
    section = np.repeat([0, 1], [7, 5])
    rules = scoring.SectionRules(marks=np.array([1.0, 0.5]), negative_fraction=np.array([0.25, 0.0]),
                                 partial=np.array([True, False]), pass_ratio=np.array([0.5, 0.5]),
                                 question_count=np.array([7, 5]))
    counts = replace(rules, question_count=np.tile([7, 5], (n, 1)) - (rng.random((n, 2)) < 0.2))
    whole = [scoring.grade(key, chosen, multiple, section, r) for r in (rules, counts)]
    monkeypatch.setattr(scoring, "GRADE_ROWS", 7)
    blocks = [scoring.grade(key, chosen, multiple, section, r) for r in (rules, counts)]
    for a, b in zip(whole, blocks, strict=True):
        for name in ("score", "correct", "answered", "passed", "total", "passed_all"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
