"""The one builder of grading's arrays: the masks, the exam-wide load (compact columns, rows rebuilt, batches in
any order), the pool, and the builder at submission giving the same arrays and scores as the exam-wide one."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from exam.grading import arrays, runs
from exam.grading.arrays import chosen_mask, key_mask, option_mask
from exam.grading.scoring import SectionRules, grade, score_record
from exam.room.models import Attempt
from exam.setup.models import Exam, Paper
from tests.factories import make_ready_candidates
from tests.grading.helpers import T0, fill_choice_masks, random_answers, sit
from tests.grading.test_runs import MIXED_SECTIONS, exam_of


def test_masks_follow_the_displayed_order():
    options = [{"text": "a", "correct": False}, {"text": "b", "correct": True}, {"text": "c", "correct": True}]
    # Displayed: c, a, b → right ones at displayed positions 0 and 2.
    assert key_mask([2, 0, 1], options) == 0b101
    assert chosen_mask(["id-c", "id-a", "id-b"], ["id-b"]) == 0b100
    assert option_mask([]) == 0


def test_submission_grades_from_the_compact_keys_or_else_from_the_rows(db):
    """Submission grades from the paper's key masks; a paper drawn before they existed, from its rows."""
    candidates = make_ready_candidates(db, 8, sections=MIXED_SECTIONS, negative_fraction=0.25,
                                       multiple_scoring="partial")
    exam = exam_of(db, candidates)
    db.execute(Paper.__table__.update().where(Paper.candidate_id.in_([c.id for c in candidates[::2]]))
               .values(key_masks=None))
    db.expire_all()
    attempts = sit(db, candidates, random_answers(seed=5))
    outcome = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert outcome.arrays.rebuilt_rows == 4
    for attempt in attempts:
        assert outcome.record(attempt.candidate_id) == attempt.score


def test_compact_columns_give_the_same_numbers_as_the_rows(db, monkeypatch):
    candidates = make_ready_candidates(db, 10, sections=MIXED_SECTIONS, negative_fraction=0.25,
                                       multiple_scoring="partial")
    exam = exam_of(db, candidates)
    attempts = sit(db, candidates, random_answers(seed=11))
    db.execute(Attempt.__table__.update().values(choice_masks=None))  # as before submission stored them
    db.expire_all()  # the attempts in the session still hold the masks submission stored
    from_rows = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert from_rows.arrays.rebuilt_rows == 10 and from_rows.arrays.compact_rows == 0
    fill_choice_masks(db, exam)
    compact = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert compact.arrays.compact_rows == 10 and compact.arrays.rebuilt_rows == 0
    assert compact.inputs_hash == from_rows.inputs_hash and compact.outputs_hash == from_rows.outputs_hash
    for attempt in attempts:
        assert compact.record(attempt.candidate_id) == attempt.score
    # Some rows compact, some not (submitted before the columns were filled): still the same numbers.
    for attempt in attempts[1::3]:
        attempt.choice_masks = None
    db.flush()
    mixed = runs.grade_exam(db, exam, actor="b", now=T0)
    assert (mixed.arrays.compact_rows, mixed.arrays.rebuilt_rows) == (7, 3)
    assert mixed.outputs_hash == compact.outputs_hash and mixed.inputs_hash == compact.inputs_hash
    assert runs.outputs_hash_of_scores(db, exam) == mixed.outputs_hash
    # Read in one batch or in many, in candidate order or not (the order of the attempts' index): the same.
    db.execute(Paper.__table__.update().where(Paper.candidate_id == attempts[4].candidate_id)
               .values(option_orders=None))
    whole = arrays.load_exam_arrays(db, exam)
    batched = arrays.fetch_batches
    for arrival in (lambda batches: batches, lambda batches: [batch[::-1] for batch in list(batches)[::-1]]):
        monkeypatch.setattr(arrays, "fetch_batches", lambda session, statement, size=3, arrival=arrival:
                            arrival(batched(session, statement, size)))
        streamed = arrays.load_exam_arrays(db, exam)
        for name in ("candidate_ids", "attempt_ids", "paper_ids", "forms", "key", "chosen", "version_ids", "section",
                     "option_orders", "orders_missing"):
            assert np.array_equal(getattr(streamed, name), getattr(whole, name)), name
        assert (streamed.compact_rows, streamed.rebuilt_rows) == (whole.compact_rows, whole.rebuilt_rows) == (7, 3)
        assert streamed.orders_missing.tolist() == [4]
    assert np.all(np.diff(whole.candidate_ids) > 0)


def test_rows_read_past_the_room_made_for_them():
    """More attempts than the exam's papers (the room made at first): the columns grow, keeping what was read."""
    read = arrays._ReadRows(1, 2)
    read.candidate_ids[0], read.key[0] = 7, [1, 2]
    read.make_room(3)
    read.candidate_ids[1:3], read.key[1:3] = [9, 8], [[3, 4], [5, 6]]
    columns, place = read.in_candidate_order(3)
    assert columns["candidate_ids"].tolist() == [7, 8, 9] and columns["key"].tolist() == [[1, 2], [5, 6], [3, 4]]
    assert place.tolist() == [0, 2, 1] and read.capacity == 3


def test_pool_rows_refuse_a_version_outside_the_pool(db):
    candidates = make_ready_candidates(db, 1)
    pool = arrays.load_pool(db, exam_of(db, candidates))
    ids = pool.ids
    assert pool.rows(np.array([[ids[2], ids[0]], [ids[-1], ids[1]]], dtype=np.int32)).tolist() == [
        [2, 0], [len(ids) - 1, 1]]
    outside = sorted(set(range(1, int(ids.max()) + 1)) - set(ids.tolist()))
    for version in [-5, 0, int(ids.max()) + 1, 2 ** 31 - 1] + outside[:1]:
        with pytest.raises(arrays.ResultsError):
            pool.rows(np.array([[ids[0], version]], dtype=np.int32))


CELLS = ("candidate_ids", "attempt_ids", "paper_ids", "forms", "key", "chosen", "version_ids", "section")


def sections_of(db):
    return lambda exam_id: db.get(Exam, exam_id).sections


@pytest.mark.parametrize("scoring", ["all_or_nothing", "partial"])
def test_the_exam_wide_and_the_submission_builders_give_the_same_arrays_and_scores(db, scoring):
    """The same attempts through ``load_exam_arrays`` (a results run) and ``attempt_arrays`` (at submission):
    the same cells, from the compact columns and from the rows alike, and the same scores."""
    candidates = make_ready_candidates(db, 10, sections=MIXED_SECTIONS, negative_fraction=0.25,
                                       multiple_scoring=scoring)
    exam = exam_of(db, candidates)
    db.execute(Paper.__table__.update().where(Paper.candidate_id.in_([c.id for c in candidates[1::3]]))
               .values(key_masks=None))  # drawn before the compact columns: rebuilt from their rows
    db.expire_all()
    attempts = sit(db, candidates, random_answers(seed=17))
    whole = arrays.load_exam_arrays(db, exam)
    (submitted,) = arrays.attempt_arrays(db, attempts[::-1], {a.id: a.choice_masks for a in attempts},
                                         sections_of(db))
    assert submitted.exam_id == whole.exam_id == exam.id
    for name in CELLS:
        assert np.array_equal(getattr(submitted, name), getattr(whole, name)), name
    assert (submitted.compact_rows, submitted.rebuilt_rows) == (whole.compact_rows, whole.rebuilt_rows) == (7, 3)
    pool = arrays.load_pool(db, exam)
    rules = SectionRules.of(exam.sections)
    graded = [grade(a.key, a.chosen, pool.multiple[pool.rows(a.version_ids)], a.section, rules)
              for a in (whole, submitted)]
    for name in ("score", "correct", "answered", "passed", "total", "passed_all"):
        assert np.array_equal(getattr(graded[0], name), getattr(graded[1], name)), name
    outcome = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    by_attempt = {a.id: a for a in attempts}
    for row, attempt_id in enumerate(submitted.attempt_ids.tolist()):
        attempt = by_attempt[attempt_id]
        assert score_record(exam.sections, graded[1], row) == attempt.score == outcome.record(attempt.candidate_id)


def test_attempts_of_several_exams_give_one_set_of_arrays_per_exam(db):
    first = make_ready_candidates(db, 3)
    second = make_ready_candidates(db, 2, sections=MIXED_SECTIONS)
    done = sit(db, first, random_answers(seed=2)) + sit(db, second, random_answers(seed=3))
    found = arrays.attempt_arrays(db, done, {a.id: a.choice_masks for a in done}, sections_of(db))
    assert {a.exam_id: a.shape for a in found} == {
        exam_of(db, first).id: (3, 8), exam_of(db, second).id: (2, 9)}
    for exam_arrays in found:
        whole = arrays.load_exam_arrays(db, db.get(Exam, exam_arrays.exam_id))
        for name in CELLS:
            assert np.array_equal(getattr(exam_arrays, name), getattr(whole, name)), name
    assert arrays.attempt_arrays(db, [], {}, sections_of(db)) == []


def test_at_submission_the_given_choices_are_read_not_the_stored_ones(db):
    """At submission the final choices are not stored yet: the builder puts the masks it is given."""
    candidates = make_ready_candidates(db, 2)
    done = sit(db, candidates, random_answers(seed=4))
    stored = {a.id: a.choice_masks for a in done}
    db.execute(Attempt.__table__.update().values(choice_masks=None))
    db.expire_all()
    again = list(db.scalars(select(Attempt).where(Attempt.id.in_(stored)).order_by(Attempt.candidate_id)))
    (found,) = arrays.attempt_arrays(db, again, stored, sections_of(db))
    assert found.compact_rows == 2 and found.rebuilt_rows == 0
    assert [bytes(row) for row in found.chosen] == [stored[a] for a in found.attempt_ids.tolist()]
