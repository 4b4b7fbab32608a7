"""Item analysis wired to the database: per-question matrices from papers that differ, stored per
question version, checked against a straightforward computation from the rows; shown on the bank's
question page; the permutation table."""
from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from sqlalchemy import select

from exam.grading import corrections, item_stats, runs
from exam.grading.models import GradingRun, ItemStatistic
from exam.room.models import Attempt, Response
from exam.setup.models import Exam, Paper
from question_bank.models import QuestionVersion
from tests.conftest import login
from tests.factories import make_ready_candidates
from tests.grading.helpers import T0, correct_options, random_answers, sit
from tests.grading.test_item_analysis import assert_close_records
from tests.grading.test_runs import MIXED_SECTIONS


def test_permutation_table_maps_displayed_masks_to_the_authors_order():
    table = item_stats.permutation_table([(2, 0, 3, 1), (0, 1, 2, 3)])
    # Order (2, 0, 3, 1): displayed A is the author's C, displayed B is A, C is D, D is B.
    assert table[0, 0b0001] == 0b0100 and table[0, 0b0010] == 0b0001
    assert table[0, 0b0100] == 0b1000 and table[0, 0b1000] == 0b0010
    assert table[0, 0b0011] == 0b0101 and table[0, 0] == 0
    assert (table[1, :16] == np.arange(16)).all()


def brute_force(db, exam):
    """Per version: n, right, and per author option how many chose it, straight from the rows."""
    found = {}
    for paper in db.scalars(select(Paper).where(Paper.exam_id == exam.id)):
        attempt = db.scalar(select(Attempt).where(Attempt.paper_id == paper.id))
        if attempt is None or attempt.status != "submitted":
            continue
        answers = {r.item_id: set(r.choices) for r in db.scalars(select(Response).where(
            Response.attempt_id == attempt.id))}
        for item in paper.items:
            version = db.get(QuestionVersion, item.question_version_id)
            chosen_ids = answers.get(item.id, set())
            chosen = {original for oid, original in zip(item.option_ids, item.option_order, strict=True)
                      if oid in chosen_ids}
            entry = found.setdefault(version.id, {"n": 0, "right": 0, "options": [0] * len(version.options)})
            entry["n"] += 1
            entry["right"] += chosen == set(correct_options(version))
            for j in chosen:
                entry["options"][j] += 1
    return found


def test_item_statistics_match_a_straightforward_count(db):
    candidates = make_ready_candidates(db, 15, sections=MIXED_SECTIONS)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=21))
    outcome = runs.grade_exam(db, exam, actor="b", now=T0)
    db.commit()
    expected = brute_force(db, exam)
    rows = {r.question_version_id: r for r in db.scalars(select(ItemStatistic).where(ItemStatistic.exam_id == exam.id))}
    assert set(rows) == set(expected)
    for version_id, want in expected.items():
        stats = rows[version_id].stats
        assert stats["n"] == want["n"]
        assert stats["difficulty"] == pytest.approx(want["right"] / want["n"])
        assert [o["overall"] for o in stats["options"]] == pytest.approx([c / want["n"] for c in want["options"]])
        assert stats["grading_run_id"] == outcome.run.id and stats["exam_code"] == exam.code
        assert stats["section"] in ("general", "language")
    run = db.scalar(select(GradingRun))
    test = run.summary["test"]
    assert test["items"] == len(expected) and test["reliability"]["candidates"] == 15
    assert test["distribution"]["n"] == 15 and sum(test["distribution"]["counts"]) == 15


def test_a_rekeyed_question_is_analysed_against_its_new_key(db):
    candidates = make_ready_candidates(db, 8)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=4, blank=0.0))
    paper = db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id))
    version = next(v for v in (db.get(QuestionVersion, i.question_version_id) for i in paper.items)
                   if v.qtype == "single")
    new_key = [j for j in range(len(version.options)) if j not in correct_options(version)][0]
    correction = corrections.propose_correction(db, exam, version.id, "rekey", [new_key], "Đáp án sai", "a", T0)
    corrections.approve_correction(db, correction, actor="b", now=T0)
    runs.grade_exam(db, exam, actor="b", now=T0)
    stats = db.get(ItemStatistic, (exam.id, version.id)).stats
    assert stats["key"] == [new_key] and stats["correction"] == "rekey"
    chose_new = next(o for o in stats["options"] if o["option"] == new_key)["overall"]
    assert stats["difficulty"] == pytest.approx(chose_new)  # single answer: right = chose the key


def test_removed_questions_leave_the_analysis(db):
    candidates = make_ready_candidates(db, 6)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=8))
    version = db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id)).items[0].question_version_id
    correction = corrections.propose_correction(db, exam, version, "void_remove", None, "Ngoài phạm vi", "a", T0)
    corrections.approve_correction(db, correction, actor="b", now=T0)
    runs.grade_exam(db, exam, actor="b", now=T0)
    stats = db.get(ItemStatistic, (exam.id, version)).stats
    assert stats["n"] == 0 and stats["difficulty"] is None and stats["correction"] == "void_remove"


def test_the_bank_question_page_shows_how_the_question_performed(db, client, staff):
    candidates = make_ready_candidates(db, 5)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=2))
    runs.grade_exam(db, exam, actor="b", now=T0)
    db.commit()
    stat = db.scalar(select(ItemStatistic).where(ItemStatistic.exam_id == exam.id).limit(1))
    performance = item_stats.question_performance(db, stat.question_id)
    assert performance[0]["exam_code"] == exam.code and performance[0]["n"] == stat.stats["n"]
    login(client, staff.create("board"))
    page = client.get(f"/bank/questions/{stat.question_id}").get_data(as_text=True)
    assert 'id="performance"' in page and exam.code in page
    assert f"/board/results/{exam.code}/items" in page
    unused = client.get("/bank/questions/1").get_data(as_text=True)
    assert 'id="performance"' in unused


def test_xlsx_has_a_row_per_question_and_the_test_statistics(db):
    from openpyxl import load_workbook

    candidates = make_ready_candidates(db, 6)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=9))
    outcome = runs.grade_exam(db, exam, actor="b", now=T0)
    rows = item_stats.stored_items(db, exam, sort="p", descending=True)
    ps = [r.stats["difficulty"] for r in rows if r.stats["difficulty"] is not None]
    assert ps == sorted(ps, reverse=True)
    book = load_workbook(BytesIO(item_stats.items_workbook(exam, rows, outcome.run.summary["test"])))
    assert book.sheetnames == ["Câu hỏi", "Thống kê bài thi"]
    sheet = book["Câu hỏi"]
    assert sheet.max_row == len(rows) + 1 and sheet["G1"].value == "Độ khó p"
    labels = [row[0].value for row in book["Thống kê bài thi"].iter_rows()]
    assert "Hệ số tin cậy" in labels and "Sai số chuẩn đo lường (SEM)" in labels


def test_cells_and_matrices_give_the_same_analysis_with_every_kind_of_correction(db):
    """The analysis reads each candidate's cells chunk by chunk (no [C, I] matrices); with a rekey, an awarded
    and a removed question it equals the matrices' analysis, chunk size whatever."""
    candidates = make_ready_candidates(db, 14, sections=MIXED_SECTIONS, negative_fraction=0.25,
                                       multiple_scoring="partial")
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=31))
    versions = [db.get(QuestionVersion, i.question_version_id)
                for i in db.scalar(select(Paper).where(Paper.candidate_id == candidates[0].id)).items]
    single = [v for v in versions if v.qtype == "single"]
    new_key = [j for j in range(len(single[0].options)) if j not in correct_options(single[0])][0]
    for version, action, correct in ((single[0], "rekey", [new_key]), (single[1], "void_award", None),
                                     (single[2], "void_remove", None)):
        correction = corrections.propose_correction(db, exam, version.id, action, correct, "Sửa đáp án", "a", T0)
        corrections.approve_correction(db, correction, actor="b", now=T0)
    outcome = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    orders = item_stats.option_orders(db, outcome)
    matrices = item_stats.item_matrices(outcome, orders)
    dense = item_stats.analyse_items(matrices.scores, matrices.correct, matrices.choices, matrices.key,
                                     matrices.n_options, matrices.max_points, multiple=matrices.multiple,
                                     item_ids=matrices.version_ids.tolist())
    columns, per_item, cells = item_stats.item_cells(outcome, orders)
    assert columns.version_ids.tolist() == matrices.version_ids.tolist()
    for chunk_rows in (3, 8192):
        analysis = item_stats.analyse_cells(cells, outcome.candidates, chunk_rows=chunk_rows, **per_item)
        assert_close_records(analysis.to_dict(), dense.to_dict())
    removed = analysis.item(single[2].id)
    assert removed.n == 0


def test_papers_without_option_orders_are_read_from_their_items(db):
    """Papers stored before the option_orders column: the orders come from their paper_item rows, the same."""
    candidates = make_ready_candidates(db, 6, sections=MIXED_SECTIONS)
    exam = db.get(Exam, candidates[0].exam_id)
    sit(db, candidates, random_answers(seed=5))
    outcome = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    compact = item_stats.option_orders(db, outcome)
    assert outcome.arrays.orders_missing.size == 0
    for paper in db.scalars(select(Paper).where(Paper.exam_id == exam.id)):
        if paper.candidate_id in (candidates[1].id, candidates[4].id):
            paper.option_orders = None
    db.flush()
    again = runs.grade_exam(db, exam, actor="b", now=T0, write=False)
    assert again.arrays.orders_missing.tolist() == [1, 4]
    fallback = item_stats.option_orders(db, again)
    assert (fallback.ranks == compact.ranks).all()
    for paper in db.scalars(select(Paper).where(Paper.exam_id == exam.id)):
        for item, index in zip(paper.items, np.frombuffer(paper.option_orders or b"", dtype="<u2"), strict=False):
            assert list(item_stats._orders_of(len(item.option_order))[index]) == item.option_order
