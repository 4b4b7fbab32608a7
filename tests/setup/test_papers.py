"""Papers: deterministic from the seed and the candidate, balanced within each cell, shuffled, no key in ids."""
from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select, text

from exam.core.db import utcnow
from exam.setup.models import Candidate, ExamPool, Paper, PaperItem
from exam.setup.papers import PaperError, form_for_seat, generate_papers
from question_bank.models import QuestionVersion
from tests.factories import make_candidates, make_exam, make_sitting


def paper_contents(db, exam):
    rows = db.execute(select(Paper.candidate_id, PaperItem.position, PaperItem.question_version_id,
                             PaperItem.option_order, PaperItem.option_ids)
                      .join(PaperItem, PaperItem.paper_id == Paper.id).where(Paper.exam_id == exam.id)
                      .order_by(Paper.candidate_id, PaperItem.position)).all()
    return [tuple(r[:3]) + (tuple(r[3]), tuple(r[4])) for r in rows]


def test_papers_follow_the_blueprint_and_regenerate_identically(db):
    exam = make_exam(db)
    make_candidates(db, exam, 12)
    run = generate_papers(db, exam, actor="test", now=utcnow())
    db.commit()
    assert run.created == 12
    first = paper_contents(db, exam)
    papers = db.scalars(select(Paper).where(Paper.exam_id == exam.id)).all()
    for paper in papers:
        assert len(paper.items) == sum(s.question_count for s in exam.sections)
        assert len({i.question_version_id for i in paper.items}) == len(paper.items)  # no repeats
        # Sections in order, each with its blueprint's count.
        assert [i.section_id for i in paper.items] == sorted((i.section_id for i in paper.items),
                                                             key=lambda s: [x.id for x in exam.sections].index(s))
    # Regenerate from scratch: same seed, same candidates, same papers.
    db.execute(text("DELETE FROM paper_item"))
    db.execute(text("DELETE FROM paper"))
    db.expunge_all()
    generate_papers(db, exam, actor="test", now=utcnow())
    assert paper_contents(db, exam) == first
    # Running again only checks the stored papers.
    again = generate_papers(db, exam, actor="test", now=utcnow())
    assert (again.created, again.checked) == (0, 12)


def test_question_and_option_order_differ_between_candidates(db):
    exam = make_exam(db)
    make_candidates(db, exam, 6)
    generate_papers(db, exam, actor="test", now=utcnow())
    papers = db.scalars(select(Paper).where(Paper.exam_id == exam.id)).all()
    orders = {tuple(i.question_version_id for i in p.items) for p in papers}
    assert len(orders) == len(papers)
    assert any(tuple(i.option_order) != tuple(sorted(i.option_order)) for p in papers for i in p.items)


def test_draw_is_balanced_within_each_cell(db):
    exam = make_exam(db)
    make_candidates(db, exam, 40)
    generate_papers(db, exam, actor="test", now=utcnow())
    uses = Counter(db.scalars(select(PaperItem.question_version_id)
                              .join(Paper, Paper.id == PaperItem.paper_id).where(Paper.exam_id == exam.id)))
    for section in exam.sections:
        for cell in section.cells:
            pool = db.scalars(select(ExamPool.question_version_id).where(ExamPool.cell_id == cell.id)).all()
            counts = [uses.get(v, 0) for v in pool]
            assert max(counts) - min(counts) <= 1, (cell.topic.path, cell.difficulty, counts)


def test_option_ids_are_opaque_and_uncorrelated_with_the_key(db):
    exam = make_exam(db)
    make_candidates(db, exam, 30)
    generate_papers(db, exam, actor="test", now=utcnow())
    items = db.scalars(select(PaperItem).join(Paper).where(Paper.exam_id == exam.id)).all()
    correct_positions = Counter()
    for item in items:
        version = db.get(QuestionVersion, item.question_version_id)
        assert len(set(item.option_ids)) == len(item.option_ids)
        for shown, original in enumerate(item.option_order):
            if version.options[original]["correct"]:
                correct_positions[shown] += 1
            assert item.option_ids[shown] != str(original)
    # The right answer is spread over the displayed positions, not stuck where the author put it.
    assert len(correct_positions) >= 3


def test_fixed_forms_never_repeat_on_neighbouring_seats(db):
    exam = make_exam(db, forms=3)
    sitting = make_sitting(db, exam)
    make_candidates(db, exam, 10, sitting=sitting)
    generate_papers(db, exam, actor="test", now=utcnow())
    papers = db.scalars(select(Paper).where(Paper.exam_id == exam.id)).all()
    by_seat = {p.form: None for p in papers}
    assert set(by_seat) == {1, 2, 3}
    seat_form = {db.get(Candidate, p.candidate_id).seat: p.form for p in papers}
    for seat in range(1, 10):
        assert seat_form[seat] != seat_form[seat + 1]
    assert form_for_seat(4, 3) == 1
    # Same form, same paper.
    form_hashes = {}
    for p in papers:
        form_hashes.setdefault(p.form, set()).add(p.content_hash)
    assert all(len(hashes) == 1 for hashes in form_hashes.values())


def test_unpublished_exam_and_altered_paper_are_refused(db):
    exam = make_exam(db, publish=False)
    with pytest.raises(PaperError, match="not published"):
        generate_papers(db, exam, actor="test", now=utcnow())
    exam = make_exam(db)
    make_candidates(db, exam, 3)
    generate_papers(db, exam, actor="test", now=utcnow())
    item = db.scalars(select(PaperItem).join(Paper).where(Paper.exam_id == exam.id)).first()
    db.execute(text("UPDATE paper SET content_hash = 'x' WHERE id = :id"), {"id": item.paper_id})
    with pytest.raises(PaperError, match="differs from its regeneration"):
        generate_papers(db, exam, actor="test", now=utcnow())


def test_a_late_candidate_gets_the_next_slot_and_others_keep_theirs(db):
    exam = make_exam(db)
    make_candidates(db, exam, 5)
    generate_papers(db, exam, actor="test", now=utcnow())
    before = paper_contents(db, exam)

    db.add(Candidate(exam_id=exam.id, registration_no="0000-early-number", full_name="Muộn", citizen_id="1",
                     date_of_birth=date(1995, 5, 5), post="Chuyên viên", created_at=utcnow()))
    db.flush()
    run = generate_papers(db, exam, actor="test", now=utcnow())
    assert (run.created, run.checked) == (1, 5)
    after = [row for row in paper_contents(db, exam) if row[0] in {r[0] for r in before}]
    assert after == before
