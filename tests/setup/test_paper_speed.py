"""What the fast paper paths store and read: the grading columns written at generation (key masks and
version ids per position), the option orders drawn from one digest, and the per-process cache of
frozen versions behind GET /attempt. No timings here: bench/papers.py and bench/load.py measure."""
from __future__ import annotations

import struct
from datetime import timedelta
from itertools import permutations

from sqlalchemy import event, select

from exam.core.db import utcnow
from exam.grading.arrays import key_mask, load_exam_arrays
from exam.room import attempts, paper_cache, sessions
from exam.room.models import Attempt
from exam.setup.models import Exam, Paper, PaperItem
from exam.setup.papers import generate_papers, permutation_table, shuffled
from exam.setup.sittings import current_access_code
from question_bank.models import QuestionVersion
from tests.factories import make_candidates, make_exam, make_ready_candidates


def test_papers_carry_their_key_masks_and_version_ids_as_displayed(db):
    exam = make_exam(db)
    make_candidates(db, exam, 8)
    generate_papers(db, exam, actor="test", now=utcnow())
    db.commit()
    options = dict(db.execute(select(QuestionVersion.id, QuestionVersion.options)).all())
    papers = db.scalars(select(Paper).where(Paper.exam_id == exam.id)).all()
    assert len(papers) == 8
    for paper in papers:
        items = paper.items
        assert len(paper.key_masks) == len(items) and len(paper.version_ids) == 4 * len(items)
        assert list(struct.unpack(f"<{len(items)}i", paper.version_ids)) == [i.question_version_id for i in items]
        for item, mask in zip(items, paper.key_masks, strict=True):
            assert mask == key_mask(item.option_order, options[item.question_version_id]) != 0
            assert sorted(item.option_order) == list(range(len(options[item.question_version_id])))


def test_the_permutation_table_is_the_fisher_yates_reading_of_the_number():
    for n in range(1, 7):
        size, table = permutation_table(n)
        assert size == len(table) and set(table) == set(permutations(range(n)))  # every order, once
        for number in (0, 1, 7, 2**63 + 12345, 2**64 - 1):
            assert table[number % size] == shuffled(n, number)


def test_frozen_versions_are_served_from_memory_and_never_the_key(db):
    exam = make_exam(db)  # publishing froze the pool
    make_candidates(db, exam, 1)
    generate_papers(db, exam, actor="test", now=utcnow())
    db.commit()
    ids = set(db.scalars(select(PaperItem.question_version_id)))
    views = paper_cache.versions(db, ids)
    assert set(views) == ids
    version = db.get(QuestionVersion, next(iter(ids)))
    view = views[version.id]
    assert view.text == version.text and view.option_texts == tuple(o["text"] for o in version.options)
    assert set(paper_cache.VersionView.__dataclass_fields__) == {"qtype", "text", "image", "option_texts"}  # no key
    # Frozen versions never change: the second time they come from memory, without a query.
    statements = []
    engine = db.get_bind()

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        again = paper_cache.versions(db, ids)
        header = paper_cache.exam_header(db, exam.id)
        paper_cache.exam_header(db, exam.id)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert again == views
    assert not [sql for sql in statements if "question_version" in sql]
    assert len([sql for sql in statements if "FROM exam" in sql]) <= 1  # the header once, then from memory
    assert (header.code, header.title) == (exam.code, exam.title)


def test_submission_stores_the_final_choices_as_displayed_masks(db):
    candidate, other = make_ready_candidates(db, 2)
    db.commit()
    now = utcnow()
    result = sessions.login(db, registration_no=candidate.registration_no, date_of_birth=candidate.date_of_birth,
                            access_code=current_access_code(candidate.sitting, now), machine="10.0.0.1 x", now=now)
    sections = attempts.exam_sections(db, candidate.exam_id)
    attempt = attempts.start(db, result.attempt, candidate.sitting, sections, now=now)
    items = db.scalars(select(PaperItem).where(PaperItem.paper_id == attempt.paper_id)
                       .order_by(PaperItem.position)).all()
    first, second = items[0], items[1]
    attempts.save_answer(db, attempt, sections, question_id=first.public_id, choices=[first.option_ids[2]], seq=1,
                         flagged=None, machine="10.0.0.1 x", now=now)
    attempts.save_answer(db, attempt, sections, question_id=second.public_id, choices=[second.option_ids[0]],
                         seq=2, flagged=None, machine="10.0.0.1 x", now=now)
    attempts.save_answer(db, attempt, sections, question_id=second.public_id, choices=[second.option_ids[1]],
                         seq=3, flagged=None, machine="10.0.0.1 x", now=now)  # an answer change: the last counts
    attempts.submit(db, attempt, sections, now=now + timedelta(seconds=5))
    db.commit()
    db.expire_all()
    stored = db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
    assert stored.status == "submitted"
    assert stored.choice_masks == bytes([0b100, 0b010] + [0] * (len(items) - 2))
    arrays = load_exam_arrays(db, db.get(Exam, candidate.exam_id))
    assert (arrays.compact_rows, arrays.rebuilt_rows) == (1, 0)  # graded from the compact columns only
    assert list(arrays.chosen[0][:3]) == [0b100, 0b010, 0]
