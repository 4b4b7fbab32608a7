"""Grading: responses × key → section scores, vectorized over candidates × questions (numpy).

``grade`` is the one scoring rule. It takes arrays and returns arrays, so a single
submission (a batch of one), the deadline sweeper (a batch of overdue attempts) and
the results run (every candidate of an exam at once) all score the same way. Pure numpy:
no database, no project import; the arrays are built by ``exam.grading.arrays`` (for a
whole exam and at submission alike), and ``score_record`` turns one row of grades into
the JSON kept in ``attempt.score``.

Representation, one cell per [candidate, question position]:

* ``key[c, q]``      bit mask of the correct options, bit j = the j-th option *as displayed*
  on that candidate's paper (at most 8 options, uint8);
* ``chosen[c, q]``   bit mask of the options the candidate chose (0: no answer);
* ``multiple[c, q]`` the question takes several answers (a [Q] vector also works);
* ``section[q]``     section index 0..S-1 of each position (all papers of an exam share
  their section layout: sections in order, each with its blueprint's count).

Per question, with the rules of its section:

* right   = chosen == key (and the key is not empty);
* wrong   = an answer was given (chosen ≠ 0) and it is not right;
* credit  = marks when right; for a multiple-answer question in a section with partial
  credit, (right options chosen − wrong options chosen) / right options, floored at 0,
  times marks; otherwise 0;
* penalty = negative_fraction × marks when wrong (a partly right answer under partial
  credit is "not fully right", so it earns its partial credit and pays the penalty);
* points  = credit − penalty (section totals are not floored).

Per section: ``score`` = Σ points, ``correct`` = number of right answers, ``passed`` =
correct ≥ pass_ratio × question_count ("at least 50% correct answers"). The attempt
passes when every section passes; ``total`` = Σ section scores.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

MAX_OPTIONS = 8
GRADE_ROWS = 65536  # candidates scored at a time by a whole-exam grading
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int8)
_EPS = 1e-9


@dataclass(frozen=True)
class SectionRules:
    """The scoring rules of an exam's S sections, as arrays of length S."""

    marks: np.ndarray  # float64: marks per question
    negative_fraction: np.ndarray  # float64: share of the marks taken for a wrong answer
    partial: np.ndarray  # bool: multiple-answer questions earn partial credit
    pass_ratio: np.ndarray  # float64: share of correct answers needed to pass
    question_count: np.ndarray  # int64: questions in the section (the pass rule counts against it)

    @classmethod
    def of(cls, sections: Sequence) -> SectionRules:
        """From ExamSection rows (or anything with the same attributes), in position order."""
        return cls(
            marks=np.array([s.marks_per_question for s in sections], dtype=np.float64),
            negative_fraction=np.array([s.negative_fraction for s in sections], dtype=np.float64),
            partial=np.array([s.multiple_scoring == "partial" for s in sections], dtype=bool),
            pass_ratio=np.array([s.pass_ratio for s in sections], dtype=np.float64),
            question_count=np.array([s.question_count for s in sections], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.marks)


@dataclass(frozen=True)
class Grades:
    """Scores of C candidates over S sections."""

    score: np.ndarray  # [C, S] float64
    correct: np.ndarray  # [C, S] int32: right answers
    answered: np.ndarray  # [C, S] int32: questions with an answer
    passed: np.ndarray  # [C, S] bool
    total: np.ndarray  # [C] float64
    passed_all: np.ndarray  # [C] bool


def _section_columns(section: np.ndarray, n_sections: int) -> list:
    """Per section, a slice (when its positions are contiguous, the usual case) or an index array."""
    columns = []
    for s in range(n_sections):
        where = np.flatnonzero(section == s)
        if where.size and where[-1] - where[0] + 1 == where.size:
            columns.append(slice(int(where[0]), int(where[-1]) + 1))
        else:
            columns.append(where)
    return columns


def grade(key: np.ndarray, chosen: np.ndarray, multiple: np.ndarray, section: np.ndarray,
          rules: SectionRules) -> Grades:
    """Score a batch: arrays in (see the module docstring), arrays out."""
    key = np.asarray(key, dtype=np.uint8)
    chosen = np.asarray(chosen, dtype=np.uint8)
    if key.ndim != 2 or chosen.shape != key.shape:
        raise ValueError(f"key and chosen must be [candidates, questions] of one shape, got {key.shape} "
                         f"and {chosen.shape}")
    n_candidates, n_questions = key.shape
    section = np.asarray(section, dtype=np.int64)
    if section.shape != (n_questions,):
        raise ValueError(f"section must give one section index per question ({n_questions}), got {section.shape}")
    n_sections = len(rules)
    if n_questions and (section.min() < 0 or section.max() >= n_sections):
        raise ValueError("a section index is outside the exam's sections")
    multiple = np.asarray(multiple, dtype=bool)
    if n_candidates <= GRADE_ROWS:
        return _grade_rows(key, chosen, np.broadcast_to(multiple, key.shape), section, rules)
    # A whole exam a block of candidates at a time: the same numbers, without [C × Q] temporaries.
    parts = []
    counts = np.asarray(rules.question_count)
    for start in range(0, n_candidates, GRADE_ROWS):
        rows = slice(start, start + GRADE_ROWS)
        block_rules = replace(rules, question_count=counts[rows]) if counts.ndim == 2 else rules
        block_multiple = multiple[rows] if multiple.ndim == 2 else multiple
        parts.append(_grade_rows(key[rows], chosen[rows], np.broadcast_to(block_multiple, key[rows].shape), section,
                                 block_rules))
    return Grades(*(np.concatenate([getattr(part, name) for part in parts]) for name in Grades.__dataclass_fields__))


def _grade_rows(key: np.ndarray, chosen: np.ndarray, multiple: np.ndarray, section: np.ndarray,
                rules: SectionRules) -> Grades:
    n_candidates, n_questions = key.shape
    n_sections = len(rules)
    right = (chosen == key) & (key != 0)
    answered = chosen != 0
    wrong = answered & ~right

    score = np.zeros((n_candidates, n_sections), dtype=np.float64)
    correct = np.zeros((n_candidates, n_sections), dtype=np.int32)
    answered_count = np.zeros((n_candidates, n_sections), dtype=np.int32)
    for s, columns in enumerate(_section_columns(section, n_sections)):
        marks = rules.marks[s]
        right_s = np.count_nonzero(right[:, columns], axis=1)
        wrong_s = np.count_nonzero(wrong[:, columns], axis=1)
        correct[:, s] = right_s
        answered_count[:, s] = np.count_nonzero(answered[:, columns], axis=1)
        points = marks * right_s - rules.negative_fraction[s] * marks * wrong_s
        if rules.partial[s]:
            # Only the wrong answers to multiple-answer questions can earn partial credit: few cells.
            rows, cols = np.nonzero(wrong[:, columns] & multiple[:, columns])
            if rows.size:
                chosen_cells = chosen[:, columns][rows, cols]
                key_cells = key[:, columns][rows, cols]
                right_chosen = POPCOUNT[chosen_cells & key_cells].astype(np.float64)
                wrong_chosen = POPCOUNT[chosen_cells & ~key_cells].astype(np.float64)
                n_right = np.maximum(POPCOUNT[key_cells], 1).astype(np.float64)
                fraction = np.maximum(right_chosen - wrong_chosen, 0.0) / n_right
                points = points + marks * np.bincount(rows, weights=fraction, minlength=n_candidates)
        score[:, s] = points
    passed = correct + _EPS >= rules.pass_ratio * rules.question_count
    return Grades(score=score, correct=correct, answered=answered_count, passed=passed,
                  total=score.sum(axis=1), passed_all=passed.all(axis=1))


# --- the score record ----------------------------------------------------------------------------

def score_record(sections: Sequence, grades: Grades, row: int) -> dict:
    """One candidate's grades as the JSON stored in ``attempt.score``."""
    per_section = []
    for s, section in enumerate(sections):
        per_section.append({
            "position": section.position, "code": section.code, "title": section.title,
            "questions": int(section.question_count), "correct": int(grades.correct[row, s]),
            "answered": int(grades.answered[row, s]), "score": round(float(grades.score[row, s]), 4),
            "max_score": round(float(section.marks_per_question * section.question_count), 4),
            "passed": bool(grades.passed[row, s]),
        })
    return {"sections": per_section, "total": round(float(grades.total[row]), 4),
            "max_total": round(sum(s["max_score"] for s in per_section), 4), "passed": bool(grades.passed_all[row])}
