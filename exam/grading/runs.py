"""Results: grading a whole exam in one batch, recording the run, and key corrections.

Grading an exam
---------------
``grade_exam`` loads, for every *submitted* attempt of the exam, what grading needs as
[candidates × positions] arrays, applies the key corrections, scores them with the one
rule (``exam.grading.grade``, a single call) and, when asked to write, stores one
``CandidateScore`` per candidate (the exam's rows replaced), a ``GradingRun`` and the
audit entry ``exam.grade``: one transaction, committed by the caller.

Loading reads the compact columns only: ``paper.key_masks`` (correct options as displayed,
one byte per position), ``paper.version_ids`` (int32 little-endian per position) and
``attempt.choice_masks`` (chosen options as displayed, one byte per position). An attempt
whose compact columns are still empty (papers drawn or answers submitted before they were
filled) is rebuilt from its ``paper_item`` and ``response`` rows, the way submission grades
it; the outcome says how many rows took each path. Rows are ordered by candidate id. The
same query reads ``paper.option_orders`` for the item analysis (``exam.item_stats``).

Stored scores
-------------
One ``candidate_score`` row per graded candidate: ``total`` and ``passed`` as columns (for
queries), and every section's result packed into ``section_results``: per section in
position order the score rounded to 4 decimals (float64 LE), then the questions counted,
right answers and answered questions (int32 LE each), then passed (uint8); 21 bytes a
section (``pack_section_results`` / ``unpack_section_results``). The rows are written as
plain tuples straight to the driver (COPY on PostgreSQL) and read back column by column
(``stored_scores`` → ``ScoreTable``, whose ``record(id)`` is the score record in the shape
of ``attempt.score``, with the sections' position, code, title and maximum). A grading's
own ``GradeOutcome.table`` is the same table, so what follows a grading in the same
transaction (the merit list) takes it from memory instead of reading it back.

Key corrections
---------------
A correction concerns one question version of the exam:

* ``rekey``       the correct options become ``correct`` (indices in the author's order);
  each paper shows the options in its own order, so the new key is laid out per paper
  from the ``option_order`` of the affected ``paper_item`` rows (only those are read);
* ``void_award``  everyone who had the question gets its marks, as a right answer (it
  counts as right for the pass rule too), whatever they chose;
* ``void_remove`` the question leaves the test: no points, and the candidate's section
  counts one question fewer, for the pass rule and for the maximum score.

Corrections need two people: ``propose_correction`` by one board member with a written
reason, ``approve_correction`` by another (the proposer is refused), or
``reject_correction``; each is audit-logged. Approving changes no score by itself: the
board regrades (``grade_exam``) and sees before publishing whose results change
(``preview_corrections``). When several corrections of one version apply, the last one
(by decision time) replaces the earlier ones: each starts from the bank's key.

The hashes of a run
-------------------
SHA-256, hex:

* ``key_hash``     canonical JSON of every question version's key as the bank holds it
  (author's order) and of the corrections applied (id, version, action, correct options),
  in the order applied;
* ``inputs_hash``  the tag ``grading-inputs/1`` then, row by row in candidate id order,
  the candidate ids (int64 LE), then the whole arrays as loaded: version ids (int32 LE),
  key masks (uint8), choice masks (uint8); then the canonical JSON of the section rules;
* ``outputs_hash`` the tag ``grading-outputs/1`` then candidate ids (int64 LE), totals and
  section scores as stored (×10⁴, rounded, int64 LE), right answers per section (int32
  LE) and passed flags (uint8). ``outputs_hash_of_scores`` recomputes it from the stored
  ``candidate_score`` rows, so anyone can check the table against the audit chain.
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from itertools import repeat
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.core.batch import alongside, gc_paused
from exam.core.errors import Refused
from exam.grading.models import CandidateScore, GradingRun, KeyCorrection
from exam.grading.scoring import Grades, SectionRules, chosen_mask, grade, key_mask, option_mask
from exam.room.models import Attempt, Response
from exam.setup.models import BlueprintCell, Candidate, Exam, ExamPool, ExamSection, Paper, PaperItem

CORRECTION_ACTIONS = ("rekey", "void_award", "void_remove")
CORRECTION_STATUSES = ("proposed", "approved", "rejected")
MAX_REASON = 4000
SCORE_DECIMALS = 4
_SCALE = 10 ** SCORE_DECIMALS
OPTION_LETTERS = "ABCDEFGH"


class ResultsError(Refused):
    """A grading or correction request refused; ``code`` names why (pages translate it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


# --- what grading reads ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolVersions:
    """The question versions an exam may draw (its frozen pool), as arrays sorted by id."""

    ids: np.ndarray  # [V] int64
    question_ids: np.ndarray  # [V] int64
    multiple: np.ndarray  # [V] bool: takes several answers
    n_options: np.ndarray  # [V] int64
    key: np.ndarray  # [V] uint8: correct options, author's order (bit j = option j)
    section: np.ndarray  # [V] int64: section index of the version's blueprint cell
    index: np.ndarray  # dense: version id → row in ``ids``, -1 when not in the pool

    def rows(self, version_ids: np.ndarray) -> np.ndarray:
        """Rows of these version ids (any shape), int32; ResultsError when one is not in the pool. In chunks of
        64 Ki ids (numpy's index copy of each stays in the cache), each looked up once with its ids clipped
        to the index, whose first and last entries are -1 (``load_pool``): an id outside it finds a -1."""
        version_ids = np.ascontiguousarray(version_ids)
        rows = np.empty(version_ids.shape, dtype=np.int32)
        flat, out = version_ids.reshape(-1), rows.reshape(-1)
        for start in range(0, flat.size, 1 << 16):
            found = out[start:start + (1 << 16)]
            np.take(self.index, flat[start:start + (1 << 16)], out=found, mode="clip")
            if found.min() < 0:
                raise ResultsError("unknown_version", "a paper holds a question version outside the exam's pool")
        return rows

    def row(self, version_id: int) -> int:
        if 0 <= version_id < len(self.index) and self.index[version_id] >= 0:
            return int(self.index[version_id])
        raise ResultsError("unknown_version", f"question version {version_id} is not in this exam")


def load_pool(session: Session, exam: Exam) -> PoolVersions:
    from question_bank.models import QuestionVersion

    sections = {s.id: i for i, s in enumerate(exam.sections)}
    rows = session.execute(
        select(QuestionVersion.id, QuestionVersion.question_id, QuestionVersion.qtype, QuestionVersion.options,
               BlueprintCell.section_id)
        .join(ExamPool, ExamPool.question_version_id == QuestionVersion.id)
        .join(BlueprintCell, BlueprintCell.id == ExamPool.cell_id)
        .where(BlueprintCell.section_id.in_(sections))
        .order_by(QuestionVersion.id)).all()
    seen: dict[int, tuple] = {}
    for row in rows:
        seen.setdefault(row.id, row)  # a version in two cells: the first cell's section
    rows = list(seen.values())
    ids = np.array([r.id for r in rows], dtype=np.int64)
    # Version id → row, with -1 first and last so that ``rows`` can clip any id into it (ids start at 1).
    if ids.size and ids[0] < 1:
        raise ResultsError("unknown_version", f"question version id {int(ids[0])} is not a database id")
    index = np.full(int(ids.max()) + 2 if ids.size else 1, -1, dtype=np.int32)
    index[ids] = np.arange(len(ids))
    return PoolVersions(
        ids=ids, question_ids=np.array([r.question_id for r in rows], dtype=np.int64),
        multiple=np.array([r.qtype == "multiple" for r in rows], dtype=bool),
        n_options=np.array([len(r.options) for r in rows], dtype=np.int64),
        key=np.array([option_mask(j for j, o in enumerate(r.options) if o["correct"]) for r in rows],
                     dtype=np.uint8),
        section=np.array([sections[r.section_id] for r in rows], dtype=np.int64), index=index)


@dataclass(frozen=True)
class ExamArrays:
    """Every submitted attempt of an exam, one row per candidate (by candidate id), as loaded."""

    exam_id: int
    candidate_ids: np.ndarray  # [C] int64
    attempt_ids: np.ndarray  # [C] int64
    paper_ids: np.ndarray  # [C] int64
    forms: np.ndarray  # [C] int64: the paper's fixed form, 0 without forms
    key: np.ndarray  # [C, Q] uint8: correct options as displayed
    chosen: np.ndarray  # [C, Q] uint8: chosen options as displayed
    version_ids: np.ndarray  # [C, Q] int32
    section: np.ndarray  # [Q] int64: section index of each position
    compact_rows: int  # rows read from the compact columns
    rebuilt_rows: int  # rows rebuilt from paper_item / response rows
    # [C, Q] uint16: each position's option order (``paper.option_orders``: its index among the orders of
    # its n options in lexicographic order); rows whose paper has none are listed in ``orders_missing``.
    option_orders: np.ndarray | None = None
    orders_missing: np.ndarray | None = None  # [k] row numbers

    @property
    def shape(self) -> tuple[int, int]:
        return self.key.shape


def section_layout(sections: Sequence[ExamSection]) -> np.ndarray:
    """Section index of each position: sections in order, each with its question count."""
    return np.repeat(np.arange(len(sections), dtype=np.int64), [s.question_count for s in sections])


def fetch_rows(session: Session, statement) -> list[tuple]:
    """Rows of a SELECT as plain tuples from the driver's cursor, in the session's transaction: no
    per-row work by the ORM (100,000 rows: a third of the time). The only parameter is an integer
    id, written as a literal."""
    with _executed(session, statement) as cursor:
        return cursor.fetchall()


def fetch_batches(session: Session, statement, size: int = 20_000) -> Iterable[list[tuple]]:
    """``fetch_rows`` a batch at a time: the rows of one batch are freed before the next is read."""
    with _executed(session, statement) as cursor:
        while batch := cursor.fetchmany(size):
            yield batch


@contextmanager
def _executed(session: Session, statement) -> Iterator:
    """The driver's cursor with ``statement`` executed on it (its literal SQL), closed on the way out."""
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        yield cursor
    finally:
        cursor.close()


def _submitted(exam: Exam, *columns):
    return select(*columns).join(Paper, Paper.id == Attempt.paper_id) \
        .where(Paper.exam_id == exam.id, Attempt.status == "submitted")


_COMPACT_COLUMNS = (Attempt.candidate_id, Attempt.id, Attempt.paper_id, Paper.form, Paper.key_masks,
                    Paper.version_ids, Attempt.choice_masks, Paper.option_orders)


def load_exam_arrays(session: Session, exam: Exam) -> ExamArrays:
    """The arrays of every submitted attempt (see the module docstring).

    One read, a batch at a time, each batch copied straight into the arrays, so a million papers
    never exist as a million Python objects at once. The rows come in the database's order (on
    SQLite, that of the attempts' status index) and are put in candidate order afterwards only
    when they did not come in it (a second read of the candidates, to place each row as it comes,
    cost as much again as the reading on SQLite: it visits every paper row too)."""
    sections = list(exam.sections)
    layout = section_layout(sections)
    n_questions = len(layout)
    # Room for every paper of the exam (a count on its index); an attempt sits one paper.
    read = _ReadRows(session.scalar(select(func.count()).select_from(Paper).where(Paper.exam_id == exam.id)) or 0,
                     n_questions)
    slow: list[tuple[int, int, int]] = []  # (row as read, attempt id, paper id) without compact columns
    n = 0
    placing = None  # the batch before, its cells being put into the arrays
    # A worker thread puts each batch's cells into the [C, Q] arrays (numpy's copies, and the first touch of
    # their memory, outside the GIL) while this thread reads the next batch (SQLite's stepping): two cores.
    # One batch at a time: it is waited for before the arrays may grow and the next is handed over.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load") as worker:
        for batch in fetch_batches(session, _submitted(exam, *_COMPACT_COLUMNS)):
            cids, aids, pids, fids, keys, versions, choices, orders = (list(map(itemgetter(k), batch))
                                                                       for k in range(8))
            del batch
            rows = slice(n, n + len(cids))
            n = rows.stop
            if placing is not None:
                slow += placing.result()
            read.make_room(n)
            read.candidate_ids[rows] = cids
            read.attempt_ids[rows] = aids
            read.paper_ids[rows] = pids
            read.forms[rows] = [f or 0 for f in fids]
            placing = worker.submit(read.put_cells, rows, keys, versions, choices, orders, aids, pids)
        if placing is not None:
            slow += placing.result()
    columns, place = read.in_candidate_order(n)
    if slow:
        _rebuild_from_rows(session, sections, [(a, p) for _, a, p in slow], place[[r for r, _, _ in slow]].tolist(),
                           columns["key"], columns["chosen"], columns["version_ids"])
    ordered = columns.pop("ordered")
    return ExamArrays(exam_id=exam.id, section=layout, compact_rows=n - len(slow), rebuilt_rows=len(slow),
                      orders_missing=np.flatnonzero(~ordered), **columns)


class _ReadRows:
    """What ``load_exam_arrays`` reads, column by column, one row per attempt in the order read."""

    COLUMNS = {"candidate_ids": np.int64, "attempt_ids": np.int64, "paper_ids": np.int64, "forms": np.int64,
               "ordered": bool}  # [C]
    CELLS = {"key": np.uint8, "chosen": np.uint8, "version_ids": np.int32, "option_orders": np.uint16}  # [C, Q]

    def __init__(self, capacity: int, n_questions: int):
        self.capacity, self.n_questions = capacity, n_questions
        for name in (*self.COLUMNS, *self.CELLS):
            setattr(self, name, self._zeros(name, capacity))

    def _zeros(self, name: str, rows: int) -> np.ndarray:
        if name in self.CELLS:
            return np.zeros((rows, self.n_questions), dtype=self.CELLS[name])
        return np.zeros(rows, dtype=self.COLUMNS[name])

    def make_room(self, rows: int) -> None:
        """Room for ``rows`` rows: the columns copied into larger ones when more attempts than papers came."""
        if rows <= self.capacity:
            return
        capacity = max(rows, 2 * self.capacity)
        for name in (*self.COLUMNS, *self.CELLS):
            larger = self._zeros(name, capacity)
            larger[:self.capacity] = getattr(self, name)
            setattr(self, name, larger)
        self.capacity = capacity

    def put_cells(self, rows: slice, keys: list, versions: list, choices: list, orders: list, aids: list,
                  pids: list) -> list[tuple[int, int, int]]:
        """Put a batch's compact columns into the cell arrays at ``rows``; the (row as read, attempt id,
        paper id) of the attempts without them."""
        n_questions = self.n_questions
        good = _complete(keys, 1, n_questions) & _complete(versions, 4, n_questions) \
            & _complete(choices, 1, n_questions)
        for blobs, target, dtype in ((keys, self.key, np.uint8), (versions, self.version_ids, "<i4"),
                                     (choices, self.chosen, np.uint8)):
            _put_rows(target[rows], good, _blocks(blobs, good, dtype, n_questions))
        have = _complete(orders, 2, n_questions)
        _put_rows(self.option_orders[rows], have, _blocks(orders, have, "<u2", n_questions))
        self.ordered[rows] = have
        return [(rows.start + k, aids[k], pids[k]) for k in np.flatnonzero(~good).tolist()]

    def in_candidate_order(self, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The first n rows of every column by candidate id (the columns themselves when read in that order),
        and the place of each row as read in that order."""
        columns = {name: getattr(self, name)[:n] for name in (*self.COLUMNS, *self.CELLS)}
        ids = columns["candidate_ids"]
        if (ids[1:] > ids[:-1]).all():
            return columns, np.arange(n)
        order = np.argsort(ids, kind="stable")
        place = np.empty(n, dtype=np.int64)
        place[order] = np.arange(n)
        return {name: column[order] for name, column in columns.items()}, place


def _complete(blobs: list, width: int, n_questions: int) -> np.ndarray:
    """Which values of a batch's column have the exam's length (NULL or another length: no)."""
    if _lengths(blobs) == {width * n_questions}:
        return np.ones(len(blobs), dtype=bool)
    return np.fromiter((b is not None and len(b) == width * n_questions for b in blobs), dtype=bool,
                       count=len(blobs))


def _blocks(blobs: list, good: np.ndarray, dtype, n_questions: int) -> np.ndarray:
    chosen_blobs = blobs if good.all() else [b for b, ok in zip(blobs, good.tolist()) if ok]
    return np.frombuffer(b"".join(chosen_blobs), dtype=dtype).reshape(-1, n_questions)


def _put_rows(target: np.ndarray, good: np.ndarray, values: np.ndarray) -> None:
    """``target[good] = values``, as one block copy when every row is good (the usual case)."""
    if len(values) == len(target):
        target[...] = values
    else:
        target[good] = values


def _lengths(blobs: Sequence[bytes | None]) -> set[int]:
    """The distinct lengths of a column's values ({-1} among them when one is missing)."""
    try:
        return set(map(len, blobs))
    except TypeError:  # a NULL
        return {-1}


def _rebuild_from_rows(session: Session, sections: Sequence[ExamSection], attempts: list[tuple[int, int]],
                       targets: list[int], key: np.ndarray, chosen: np.ndarray, version_ids: np.ndarray) -> None:
    """Fill rows ``targets`` from paper_item and response rows, as submission grades them."""
    from question_bank.models import QuestionVersion

    section_of = {s.id: i for i, s in enumerate(sections)}
    layout = section_layout(sections).tolist()
    paper_ids = {paper_id for _, paper_id in attempts}
    items: dict[int, list] = {}
    for chunk in _chunks(sorted(paper_ids)):
        for row in session.execute(
                select(PaperItem.paper_id, PaperItem.id, PaperItem.section_id, PaperItem.question_version_id,
                       PaperItem.option_order, PaperItem.option_ids, QuestionVersion.options)
                .join(QuestionVersion, QuestionVersion.id == PaperItem.question_version_id)
                .where(PaperItem.paper_id.in_(chunk)).order_by(PaperItem.paper_id, PaperItem.position)):
            items.setdefault(row.paper_id, []).append(row)
    answers: dict[int, dict[int, list]] = {}
    for chunk in _chunks([attempt_id for attempt_id, _ in attempts]):
        for attempt_id, item_id, choices in session.execute(
                select(Response.attempt_id, Response.item_id, Response.choices)
                .where(Response.attempt_id.in_(chunk))):
            answers.setdefault(attempt_id, {})[item_id] = choices
    for target, (attempt_id, paper_id) in zip(targets, attempts):
        paper_items = items.get(paper_id, [])
        if [section_of.get(r.section_id) for r in paper_items] != layout:
            raise ResultsError("layout", f"paper {paper_id} does not follow its exam's section layout")
        mine = answers.get(attempt_id, {})
        for q, row in enumerate(paper_items):
            key[target, q] = key_mask(row.option_order, row.options)
            version_ids[target, q] = row.question_version_id
            if row.id in mine:
                chosen[target, q] = chosen_mask(row.option_ids, mine[row.id])


def _chunks(values: Sequence, size: int = 900) -> Iterable[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


# --- corrections applied to the arrays -------------------------------------------------------------

@dataclass(frozen=True)
class CorrectionSpec:
    """What grading needs of a key correction (a ``KeyCorrection`` row or a preview of one)."""

    id: int | None
    question_version_id: int
    action: str
    correct: tuple[int, ...] = ()

    @classmethod
    def of(cls, correction) -> "CorrectionSpec":
        return cls(correction.id, int(correction.question_version_id), correction.action,
                   tuple(int(j) for j in (correction.correct or ())))

    def as_list(self) -> list:
        return [self.id, self.question_version_id, self.action, list(self.correct)]


@dataclass(frozen=True)
class CorrectedKey:
    """The arrays as scored after the corrections."""

    key: np.ndarray  # [C, Q] uint8
    chosen: np.ndarray  # [C, Q] uint8: awarded cells hold the key
    awarded: np.ndarray | None  # [C, Q] bool, or None when no void_award applies
    removed: np.ndarray | None  # [C, Q] bool, or None when no void_remove applies
    rules: SectionRules  # question_count is [C, S] when a question was removed
    author_key: np.ndarray  # [V] uint8: the pool's keys after rekeys (author's order)
    actions: dict[int, str]  # version id → the action applied


def _applied(corrections: Sequence[CorrectionSpec]) -> list[CorrectionSpec]:
    """The last correction of each version, in the order given."""
    last: dict[int, CorrectionSpec] = {}
    for correction in corrections:
        last.pop(correction.question_version_id, None)
        last[correction.question_version_id] = correction
    return list(last.values())


def apply_corrections(session: Session, arrays: ExamArrays, pool: PoolVersions, rules: SectionRules,
                      corrections: Sequence[CorrectionSpec]) -> CorrectedKey:
    key, chosen = arrays.key, arrays.chosen
    awarded = removed = None
    author_key = pool.key.copy()
    actions = {}
    n_sections = len(rules)
    for correction in corrections:
        version = correction.question_version_id
        row = pool.row(version)
        actions[version] = correction.action
        cells = arrays.version_ids == version
        if correction.action == "rekey":
            new_author = option_mask(correction.correct)
            author_key[row] = new_author
            if key is arrays.key:
                key = key.copy()
            _rekey(session, arrays, version, correction.correct, key)
        elif correction.action == "void_award":
            if chosen is arrays.chosen:
                chosen = chosen.copy()
            awarded = cells if awarded is None else awarded | cells
        elif correction.action == "void_remove":
            removed = cells if removed is None else removed | cells
        else:
            raise ResultsError("action", f"unknown correction action {correction.action!r}")
    if awarded is not None:
        chosen[awarded] = key[awarded]
    if removed is not None:
        if key is arrays.key:
            key = key.copy()
        if chosen is arrays.chosen:
            chosen = chosen.copy()
        key[removed] = 0
        chosen[removed] = 0
        gone = np.zeros((arrays.shape[0], n_sections), dtype=np.int64)
        for s in range(n_sections):
            gone[:, s] = np.count_nonzero(removed[:, arrays.section == s], axis=1)
        rules = replace(rules, question_count=rules.question_count[None, :] - gone)
    return CorrectedKey(key=key, chosen=chosen, awarded=awarded, removed=removed, rules=rules,
                        author_key=author_key, actions=actions)


def _rekey(session: Session, arrays: ExamArrays, version: int, correct: Sequence[int], key: np.ndarray) -> None:
    """The new key of one version laid out in each paper's displayed order (reads its paper_item rows)."""
    wanted = set(correct)
    by_paper = np.argsort(arrays.paper_ids, kind="stable")
    sorted_papers = arrays.paper_ids[by_paper]
    masks: dict[str, int] = {}
    rows, cols, values = [], [], []
    for paper_id, position, order in session.execute(
            select(PaperItem.paper_id, PaperItem.position, PaperItem.option_order)
            .join(Paper, Paper.id == PaperItem.paper_id)
            .where(Paper.exam_id == arrays.exam_id, PaperItem.question_version_id == version)):
        at = int(np.searchsorted(sorted_papers, paper_id))
        if at >= len(sorted_papers) or sorted_papers[at] != paper_id:
            continue  # a paper without a submitted attempt
        marker = ",".join(map(str, order))
        if marker not in masks:
            masks[marker] = option_mask(j for j, original in enumerate(order) if original in wanted)
        rows.append(int(by_paper[at]))
        cols.append(position - 1)
        values.append(masks[marker])
    if rows:
        rows_a, cols_a = np.array(rows), np.array(cols)
        if not np.all(arrays.version_ids[rows_a, cols_a] == version):
            raise ResultsError("layout", "the compact columns of a paper disagree with its paper_item rows")
        key[rows_a, cols_a] = np.array(values, dtype=np.uint8)
    if np.count_nonzero(arrays.version_ids == version) != len(rows):
        raise ResultsError("layout", f"question version {version}: paper_item rows missing for some papers")


# --- the outcome -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SectionInfo:
    position: int
    code: str
    title: str
    question_count: int
    marks_per_question: float

    @classmethod
    def of(cls, section: ExamSection) -> "SectionInfo":
        return cls(section.position, section.code, section.title, section.question_count,
                   float(section.marks_per_question))


@dataclass
class GradeOutcome:
    """What a grading found, per candidate; ``run`` is the stored GradingRun when written.

    ``totals``, ``sections`` and ``passed`` are dicts by candidate id; ``record(id)`` is the
    score record in the shape of ``attempt.score`` (``exam.grading.score_record``)."""

    exam_id: int
    exam_code: str
    exam_sections: tuple[SectionInfo, ...]
    candidate_ids: np.ndarray  # [C] int64, ascending
    grades: Grades
    question_counts: np.ndarray  # [C, S] questions counted per section (fewer after void_remove)
    corrections: tuple[CorrectionSpec, ...]
    arrays: ExamArrays
    corrected: CorrectedKey
    pool: PoolVersions
    pool_rows: np.ndarray  # [C, Q] int32: each cell's row in the pool
    key_hash: str
    inputs_hash: str
    outputs_hash: str
    run: GradingRun | None = None
    timings: dict[str, float] = field(default_factory=dict)
    meanwhile: object = None  # what ``grade_exam``'s ``meanwhile`` returned

    @property
    def candidates(self) -> int:
        return len(self.candidate_ids)

    @cached_property
    def table(self) -> "ScoreTable":
        """The results as stored: rounded scores, column by column."""
        g = self.grades
        return ScoreTable(
            sections=self.exam_sections, candidate_ids=self.candidate_ids,
            total=np.round(g.total, SCORE_DECIMALS) + 0.0, passed_all=g.passed_all,
            score=np.round(g.score, SCORE_DECIMALS) + 0.0, questions=self.question_counts, correct=g.correct,
            answered=g.answered, passed=g.passed)

    @cached_property
    def totals(self) -> dict[int, float]:
        return dict(zip(self.candidate_ids.tolist(), self.table.total.tolist()))

    @cached_property
    def passed(self) -> dict[int, bool]:
        return dict(zip(self.candidate_ids.tolist(), self.table.passed_all.tolist()))

    @cached_property
    def sections(self) -> dict[int, list[dict]]:
        return {cid: record["sections"] for cid, record in self.table.records().items()}

    def record(self, candidate_id: int) -> dict:
        return self.table.record(candidate_id)

    def summary(self) -> dict:
        """Counts for the run's record and the results page."""
        g = self.grades
        n = self.candidates
        per_section = []
        for k, s in enumerate(self.exam_sections):
            per_section.append({
                "position": s.position, "code": s.code, "title": s.title, "questions": s.question_count,
                "passed": int(np.count_nonzero(g.passed[:, k])) if n else 0,
                "mean_score": round(float(g.score[:, k].mean()), SCORE_DECIMALS) if n else None,
                "mean_correct": round(float(g.correct[:, k].mean()), SCORE_DECIMALS) if n else None})
        return {
            "candidates": n, "questions": int(self.arrays.shape[1]),
            "passed_all": int(np.count_nonzero(g.passed_all)) if n else 0,
            "mean_total": round(float(g.total.mean()), SCORE_DECIMALS) if n else None,
            "min_total": round(float(g.total.min()), SCORE_DECIMALS) if n else None,
            "max_total": round(float(g.total.max()), SCORE_DECIMALS) if n else None,
            "sections": per_section,
            "corrections": [c.as_list() for c in self.corrections],
            "compact_rows": self.arrays.compact_rows, "rebuilt_rows": self.arrays.rebuilt_rows,
        }


# --- stored scores -----------------------------------------------------------------------------------

ROWS_PER_INSERT = 500  # candidate_score rows per INSERT statement (3,000 parameters)
SECTION_RESULT_BYTES = 8 + 3 * 4 + 1  # per section: score float64, questions/correct/answered int32, passed uint8


@dataclass(frozen=True)
class ScoreTable:
    """Round-1 results of an exam, column by column, one row per candidate (by candidate id): what a
    grading produced (``GradeOutcome.table``) or what ``candidate_score`` holds (``stored_scores``)."""

    sections: tuple[SectionInfo, ...]
    candidate_ids: np.ndarray  # [C] int64, ascending
    total: np.ndarray  # [C] float64, rounded to SCORE_DECIMALS
    passed_all: np.ndarray  # [C] bool
    score: np.ndarray  # [C, S] float64, rounded
    questions: np.ndarray  # [C, S] questions counted (fewer after void_remove)
    correct: np.ndarray  # [C, S] right answers
    answered: np.ndarray  # [C, S]
    passed: np.ndarray  # [C, S] bool
    grading_run_ids: np.ndarray | None = None  # [C], when read from candidate_score

    def __len__(self) -> int:
        return len(self.candidate_ids)

    def row_of(self, candidate_id: int) -> int | None:
        at = int(np.searchsorted(self.candidate_ids, candidate_id))
        return at if at < len(self.candidate_ids) and self.candidate_ids[at] == candidate_id else None

    def record(self, candidate_id: int) -> dict:
        """One candidate's score record, in the shape of ``attempt.score`` (``exam.grading.score_record``);
        KeyError when the candidate has no result."""
        row = self.row_of(candidate_id)
        if row is None:
            raise KeyError(candidate_id)
        return self._records([row])[0]

    def records(self) -> dict[int, dict]:
        """Candidate id → score record, for every candidate."""
        return dict(zip(self.candidate_ids.tolist(), self._records(slice(None))))

    def _records(self, rows) -> list[dict]:
        marks = np.array([s.marks_per_question for s in self.sections], dtype=np.float64)
        questions = self.questions[rows]
        max_scores = (np.round(questions * marks[None, :], SCORE_DECIMALS) + 0.0).tolist()
        info = self.sections
        records = []
        for total, ok, score, count, right, given, passed, top in zip(
                self.total[rows].tolist(), self.passed_all[rows].tolist(), self.score[rows].tolist(),
                questions.tolist(), self.correct[rows].tolist(), self.answered[rows].tolist(),
                self.passed[rows].tolist(), max_scores):
            sections = [{"position": s.position, "code": s.code, "title": s.title, "questions": count[k],
                         "correct": right[k], "answered": given[k], "score": score[k], "max_score": top[k],
                         "passed": passed[k]} for k, s in enumerate(info)]
            records.append({"sections": sections, "total": total,
                            "max_total": round(sum(top), SCORE_DECIMALS), "passed": ok})
        return records


def pack_section_results(table: ScoreTable) -> list[bytes]:
    """One ``candidate_score.section_results`` value per candidate: per section in position order the
    score (float64 LE), then the questions, right answers and answered questions (int32 LE each), then
    passed (uint8). Vectorized: the rows are cut from one [C, 21 × S] byte array."""
    n, s = table.score.shape
    if s == 0:
        return [b""] * n
    packed = np.empty((n, SECTION_RESULT_BYTES * s), dtype=np.uint8)
    packed[:, :8 * s] = np.ascontiguousarray(table.score, dtype="<f8").view(np.uint8).reshape(n, 8 * s)
    for k, counts in enumerate((table.questions, table.correct, table.answered)):
        start = 8 * s + 4 * s * k
        packed[:, start:start + 4 * s] = np.ascontiguousarray(counts, dtype="<i4").view(np.uint8).reshape(n, 4 * s)
    packed[:, 20 * s:] = table.passed
    return packed.view(f"V{SECTION_RESULT_BYTES * s}").ravel().tolist()


def section_results_of(record: Mapping) -> bytes:
    """``candidate_score.section_results`` of one score record (the shape of ``attempt.score``)."""
    sections = list(record.get("sections") or ())
    row = lambda name: np.array([[s.get(name) or 0 for s in sections]])  # noqa: E731
    table = ScoreTable(sections=(), candidate_ids=np.zeros(1, dtype=np.int64), total=np.zeros(1),
                       passed_all=np.zeros(1, dtype=bool), score=row("score").astype(np.float64).reshape(1, -1),
                       questions=row("questions").reshape(1, -1), correct=row("correct").reshape(1, -1),
                       answered=row("answered").reshape(1, -1), passed=row("passed").astype(bool).reshape(1, -1))
    return pack_section_results(table)[0]


def unpack_section_results(blobs: Sequence[bytes], n_sections: int
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(score, questions, correct, answered, passed), each [C, S], from ``pack_section_results``'s values."""
    n, s = len(blobs), n_sections
    width = SECTION_RESULT_BYTES * s
    if any(len(b) != width for b in blobs):
        raise ResultsError("stored_scores", f"a stored score does not hold the exam's {s} sections")
    packed = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(n, width)
    score = packed[:, :8 * s].copy().view("<f8").astype(np.float64)
    counts = [packed[:, 8 * s + 4 * s * k:8 * s + 4 * s * (k + 1)].copy().view("<i4").astype(np.int64)
              for k in range(3)]
    return score, counts[0], counts[1], counts[2], packed[:, 20 * s:].astype(bool)


def stored_scores(session: Session, exam: Exam, candidate_ids: Sequence[int] | None = None) -> ScoreTable:
    """The exam's ``candidate_score`` rows (or those of ``candidate_ids``) as a ScoreTable, read straight
    from the driver's cursor (no per-row ORM work)."""
    statement = select(CandidateScore.candidate_id, CandidateScore.total, CandidateScore.passed,
                       CandidateScore.section_results, CandidateScore.grading_run_id) \
        .where(CandidateScore.exam_id == exam.id).order_by(CandidateScore.candidate_id)
    if candidate_ids is not None:
        rows = []
        for chunk in _chunks(sorted(set(candidate_ids))):
            rows += session.execute(statement.where(CandidateScore.candidate_id.in_(chunk))).all()
    else:
        rows = fetch_rows(session, statement)
    sections = tuple(SectionInfo.of(s) for s in exam.sections)
    n = len(rows)
    columns = list(zip(*rows)) if n else [()] * 5
    score, questions, correct, answered, passed = unpack_section_results(
        [bytes(b) for b in columns[3]], len(sections))
    return ScoreTable(sections=sections, candidate_ids=np.fromiter(columns[0], dtype=np.int64, count=n),
                      total=np.fromiter(columns[1], dtype=np.float64, count=n),
                      passed_all=np.fromiter(columns[2], dtype=bool, count=n), score=score, questions=questions,
                      correct=correct, answered=answered, passed=passed,
                      grading_run_ids=np.fromiter(columns[4], dtype=np.int64, count=n))


# --- hashes ------------------------------------------------------------------------------------------

def _canonical(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def key_hash(pool: PoolVersions, corrections: Sequence[CorrectionSpec]) -> str:
    versions = [[int(v), [j for j in range(8) if (int(k) >> j) & 1]] for v, k in zip(pool.ids, pool.key)]
    return hashlib.sha256(_canonical({"format": "grading-key/1", "versions": versions,
                                      "corrections": [c.as_list() for c in corrections]})).hexdigest()


def _rules_json(sections: Sequence[ExamSection]) -> list:
    return [[s.position, s.code, float(s.marks_per_question), float(s.negative_fraction), s.multiple_scoring,
             float(s.pass_ratio), int(s.question_count)] for s in sections]


def inputs_hash(arrays: ExamArrays, sections: Sequence[ExamSection]) -> str:
    digest = hashlib.sha256(b"grading-inputs/1")
    digest.update(np.ascontiguousarray(arrays.candidate_ids, dtype="<i8"))  # the arrays' own bytes, no copy
    digest.update(np.ascontiguousarray(arrays.version_ids, dtype="<i4"))
    digest.update(np.ascontiguousarray(arrays.key))
    digest.update(np.ascontiguousarray(arrays.chosen))
    digest.update(_canonical(_rules_json(sections)))
    return digest.hexdigest()


def _outputs_digest(candidate_ids, totals, scores, correct, passed) -> str:
    digest = hashlib.sha256(b"grading-outputs/1")
    digest.update(np.asarray(candidate_ids, dtype="<i8").tobytes())
    digest.update(np.rint(np.asarray(totals, dtype=np.float64) * _SCALE).astype("<i8").tobytes())
    digest.update(np.rint(np.asarray(scores, dtype=np.float64) * _SCALE).astype("<i8").tobytes())
    digest.update(np.asarray(correct, dtype="<i4").tobytes())
    digest.update(np.asarray(passed, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def outputs_hash(candidate_ids: np.ndarray, grades: Grades) -> str:
    n_sections = grades.score.shape[1] if grades.score.ndim == 2 else 0
    return _outputs_digest(candidate_ids, np.round(grades.total, SCORE_DECIMALS),
                           np.round(grades.score, SCORE_DECIMALS).reshape(-1, n_sections),
                           grades.correct, grades.passed)


def outputs_hash_of_scores(session: Session, exam: Exam) -> str:
    """The outputs hash recomputed from the stored candidate_score rows of the exam."""
    table = stored_scores(session, exam)
    return _outputs_digest(table.candidate_ids, table.total, table.score, table.correct, table.passed)


# --- grading an exam ---------------------------------------------------------------------------------

def approved_corrections(session: Session, exam: Exam) -> list[KeyCorrection]:
    return list(session.scalars(select(KeyCorrection)
                                .where(KeyCorrection.exam_id == exam.id, KeyCorrection.status == "approved")
                                .order_by(KeyCorrection.decided_at, KeyCorrection.id)))


def _correction_specs(session: Session, exam: Exam, corrections) -> list[CorrectionSpec]:
    if corrections is None:
        return []
    if corrections == "approved":
        corrections = approved_corrections(session, exam)
    elif isinstance(corrections, str):
        raise ValueError(f"corrections must be 'approved', a list or None, not {corrections!r}")
    return _applied([c if isinstance(c, CorrectionSpec) else CorrectionSpec.of(c) for c in corrections])


@dataclass(frozen=True)
class _Loaded:
    arrays: ExamArrays
    pool: PoolVersions
    pool_rows: np.ndarray  # [C, Q] int32: each cell's row in the pool
    sections: list
    rules: SectionRules
    inputs_hash: str
    timings: dict


def _load(session: Session, exam: Exam) -> _Loaded:
    started = time.perf_counter()
    if exam.status != "published":
        raise ResultsError("not_published", f"exam {exam.code} is not published: nobody has sat it")
    sections = list(exam.sections)
    arrays = load_exam_arrays(session, exam)
    pool = load_pool(session, exam)
    pool_rows = pool.rows(arrays.version_ids)  # and every question of every paper is in the pool
    loaded = time.perf_counter()
    digest = inputs_hash(arrays, sections)
    return _Loaded(arrays, pool, pool_rows, sections, SectionRules.of(sections), digest,
                   {"load": loaded - started, "inputs_hash": time.perf_counter() - loaded})


@dataclass(frozen=True)
class _Cells:
    """What the item analysis reads of a grading (``item_stats.analyse_outcome``): known before the grades."""

    arrays: ExamArrays
    pool: PoolVersions
    corrected: CorrectedKey
    pool_rows: np.ndarray


def _grade(session: Session, exam: Exam, loaded: _Loaded, specs: Sequence[CorrectionSpec],
           corrected: CorrectedKey | None = None) -> GradeOutcome:
    """Grade with the corrections ``specs`` (``corrected``: their key applied already, if the caller has it)."""
    started = time.perf_counter()
    arrays, pool = loaded.arrays, loaded.pool
    if corrected is None:
        corrected = apply_corrections(session, arrays, pool, loaded.rules, specs)
    rules = corrected.rules
    multiple = pool.multiple[loaded.pool_rows] if rules.partial.any() else False
    grades = grade(corrected.key, corrected.chosen, multiple, arrays.section, rules)
    if corrected.awarded is not None:  # an awarded question was not answered by everyone who gets it
        unanswered = corrected.awarded & (arrays.chosen == 0)
        fix = np.stack([np.count_nonzero(unanswered[:, arrays.section == s], axis=1) for s in range(len(rules))],
                       axis=1) if arrays.shape[0] else np.zeros((0, len(rules)), dtype=np.int32)
        grades = replace(grades, answered=(grades.answered - fix).astype(np.int32))
    counts = np.broadcast_to(rules.question_count, grades.score.shape).astype(np.int64)
    graded = time.perf_counter()
    outcome = GradeOutcome(
        exam_id=exam.id, exam_code=exam.code, exam_sections=tuple(SectionInfo.of(s) for s in loaded.sections),
        candidate_ids=arrays.candidate_ids, grades=grades, question_counts=counts, corrections=tuple(specs),
        arrays=arrays, corrected=corrected, pool=pool, pool_rows=loaded.pool_rows, key_hash=key_hash(pool, specs),
        inputs_hash=loaded.inputs_hash, outputs_hash=outputs_hash(arrays.candidate_ids, grades),
        timings=dict(loaded.timings))
    outcome.timings["grade"] = graded - started
    outcome.timings["outputs_hash"] = time.perf_counter() - graded
    return outcome


def grade_exam(session: Session, exam: Exam, *, actor: str, now: datetime, corrections="approved",
               write: bool = True, item_analysis: bool = True, option_orders=None,
               meanwhile: Callable[[GradeOutcome], object] | None = None) -> GradeOutcome:
    """Grade every submitted attempt of the exam in one batch.

    ``corrections``: "approved" (the exam's approved key corrections), a list of
    ``KeyCorrection`` (or ``CorrectionSpec``) applied whatever their status (a preview), or
    None (the key as the bank holds it). With ``write``, stores the scores, the run, the
    item statistics of the run (``exam.item_stats``, unless ``item_analysis`` is False;
    ``option_orders`` may give the papers' option orders already loaded) and the audit
    entry, and only flushes. Without, writes nothing.

    ``meanwhile(outcome)``, with ``write``, is called once the scores and the run are written,
    while the item analysis is still computed on the other core; what it returns is
    ``outcome.meanwhile``. It may read the session but should not write to it (the item
    statistics and the audit entry come after it): e.g. ``merit_lists.draft_content``, the
    merit list ranked from the scores, stored afterwards with ``merit_lists.store_draft``.
    """
    specs = _correction_specs(session, exam, corrections)
    with gc_paused():
        loaded = _load(session, exam)
        corrected = apply_corrections(session, loaded.arrays, loaded.pool, loaded.rules, specs)
        if not (write and item_analysis and loaded.arrays.shape[0]):
            outcome = _grade(session, exam, loaded, specs, corrected)
            if write:
                _write(session, exam, outcome, actor=actor, now=now, analysing=None, meanwhile=meanwhile)
            return outcome
        from exam.grading import item_stats

        # The item analysis (numpy) runs on the other core from the corrected key on, while this thread
        # grades, writes the scores (the driver stepping) and does ``meanwhile``: most of the work on
        # either side is outside the GIL. ``_write`` stores its rows after.
        cells = _Cells(loaded.arrays, loaded.pool, corrected, loaded.pool_rows)
        orders = option_orders if option_orders is not None else item_stats.option_orders(session, cells)
        with alongside(item_stats.analyse_outcome, cells, orders, by_form=bool(exam.forms)) as analysing:
            outcome = _grade(session, exam, loaded, specs, corrected)
            _write(session, exam, outcome, actor=actor, now=now, analysing=analysing, meanwhile=meanwhile)
    return outcome


def _store_scores(session: Session, outcome: GradeOutcome, run_id: int) -> None:
    """Replace the exam's candidate_score rows: one DELETE, then the rows as plain tuples straight to the
    driver (executemany; COPY on PostgreSQL), the sections packed (``pack_section_results``)."""
    session.execute(delete(CandidateScore).where(CandidateScore.exam_id == outcome.exam_id))
    if not outcome.candidates:
        return
    table = outcome.table
    rows = zip(outcome.candidate_ids.tolist(), repeat(outcome.exam_id), repeat(run_id), table.total.tolist(),
               table.passed_all.tolist(), pack_section_results(table))
    columns = "candidate_id, exam_id, grading_run_id, total, passed, section_results"
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY candidate_score ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    # Many rows per INSERT (a third faster than one row per statement on SQLite).
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * 6) + ")"
    values = [value for row in rows for value in row]
    per = 6 * ROWS_PER_INSERT
    whole = len(values) // per * per
    if whole:
        connection.exec_driver_sql(f"INSERT INTO candidate_score ({columns}) VALUES "
                                   + ", ".join([one] * ROWS_PER_INSERT),
                                   [tuple(values[start:start + per]) for start in range(0, whole, per)])
    if whole < len(values):
        connection.exec_driver_sql(f"INSERT INTO candidate_score ({columns}) VALUES "
                                   + ", ".join([one] * ((len(values) - whole) // 6)), tuple(values[whole:]))


def _write(session: Session, exam: Exam, outcome: GradeOutcome, *, actor: str, now: datetime,
           analysing: Future | None, meanwhile) -> None:
    """Store the scores, the run, the item statistics (``analysing``: the item analysis computing in a worker
    thread, or None for none) and the audit entry; call ``meanwhile`` before waiting for the analysis."""
    started = time.perf_counter()
    summary = outcome.summary()
    run = GradingRun(exam_id=exam.id, at=now, by=actor, key_hash=outcome.key_hash, inputs_hash=outcome.inputs_hash,
                     outputs_hash=outcome.outputs_hash, summary=summary)
    session.add(run)
    session.flush()
    details = {"run": run.id, "key_hash": run.key_hash, "inputs_hash": run.inputs_hash,
               "outputs_hash": run.outputs_hash, "candidates": summary["candidates"],
               "passed_all": summary["passed_all"], "corrections": summary["corrections"]}
    _store_scores(session, outcome, run.id)
    outcome.timings["write_scores"] = time.perf_counter() - started
    if meanwhile is not None:
        began = time.perf_counter()
        outcome.meanwhile = meanwhile(outcome)
        outcome.timings["meanwhile"] = time.perf_counter() - began
    if analysing is not None:
        from exam.grading import item_stats

        waited = time.perf_counter()
        analysed = analysing.result()
        analysis = item_stats.store_item_analysis(session, exam, outcome, analysed, run=run, now=now)
        run.summary = {**summary, "test": item_stats.test_summary(analysis)}
        details["reliability"] = run.summary["test"]["reliability"]["value"]
        details["flagged_items"] = run.summary["test"]["flagged"]
        # What the analysis adds once the scores are written and ``meanwhile`` done (it ran alongside).
        outcome.timings["item_analysis"] = time.perf_counter() - waited
    audit.append(session, actor=actor, action="exam.grade", object_type="exam", object_id=exam.code,
                 details=details, now=now)
    session.flush()
    outcome.run = run


def latest_run(session: Session, exam: Exam) -> GradingRun | None:
    # By id, not by ``at``: the run written last is the one candidate_score holds (each grading replaces it),
    # while ``at`` is the caller's ``now`` and can go back (a clock set back, a run dated by hand).
    return session.scalar(select(GradingRun).where(GradingRun.exam_id == exam.id)
                          .order_by(GradingRun.id.desc()).limit(1))


# --- previews ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreChange:
    """A candidate whose round-1 result differs under the previewed corrections."""

    candidate: Candidate
    old: dict  # score record without the previewed corrections
    new: dict  # with them


def preview_corrections(session: Session, exam: Exam, corrections: Sequence) -> list[ScoreChange]:
    """Whose score changes if ``corrections`` (e.g. proposed ones) were applied on top of the
    approved ones: loads once, grades twice, writes nothing. By registration number."""
    loaded = _load(session, exam)
    base = _correction_specs(session, exam, "approved")
    extra = [c if isinstance(c, CorrectionSpec) else CorrectionSpec.of(c) for c in corrections]
    before = _grade(session, exam, loaded, base)
    after = _grade(session, exam, loaded, _applied(base + extra))
    changed = []
    g0, g1 = before.grades, after.grades
    differs = ((np.abs(g0.score - g1.score) > 1e-9).any(axis=1) | (g0.passed != g1.passed).any(axis=1)
               | (g0.correct != g1.correct).any(axis=1) | (before.question_counts != after.question_counts).any(axis=1))
    ids = before.candidate_ids[differs].tolist()
    if not ids:
        return []
    candidates = {}
    for chunk in _chunks(ids):
        candidates.update({c.id: c for c in session.scalars(select(Candidate).where(Candidate.id.in_(chunk)))})
    for cid in ids:
        changed.append(ScoreChange(candidates[cid], before.record(cid), after.record(cid)))
    changed.sort(key=lambda change: change.candidate.registration_no)
    return changed


# --- key corrections: two people ------------------------------------------------------------------------

def _pool_version(session: Session, exam: Exam, question_version_id: int):
    from question_bank.models import QuestionVersion

    in_pool = session.scalar(
        select(ExamPool.question_version_id).join(BlueprintCell, BlueprintCell.id == ExamPool.cell_id)
        .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
        .where(ExamSection.exam_id == exam.id, ExamPool.question_version_id == question_version_id).limit(1))
    if in_pool is None:
        raise ResultsError("unknown_version", f"question version {question_version_id} is not in exam {exam.code}")
    return session.get(QuestionVersion, question_version_id)


def version_for_question(session: Session, exam: Exam, question_id: int) -> int:
    """The version of bank question ``question_id`` that the exam's pool holds."""
    from question_bank.models import QuestionVersion

    found = session.scalars(
        select(ExamPool.question_version_id).join(BlueprintCell, BlueprintCell.id == ExamPool.cell_id)
        .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
        .join(QuestionVersion, QuestionVersion.id == ExamPool.question_version_id)
        .where(ExamSection.exam_id == exam.id, QuestionVersion.question_id == question_id).distinct()).all()
    if not found:
        raise ResultsError("unknown_question", f"question {question_id} is not in exam {exam.code}")
    if len(found) > 1:
        raise ResultsError("ambiguous_question", f"exam {exam.code} holds several versions of question "
                                                 f"{question_id}: name the version")
    return found[0]


def _reason(text: str | None) -> str:
    reason = (text or "").strip()
    if not reason:
        raise ResultsError("reason_required", "a written reason is required")
    if len(reason) > MAX_REASON:
        raise ResultsError("reason_too_long", f"the reason is too long (at most {MAX_REASON} characters)")
    return reason


def parse_options(text: str) -> list[int]:
    """"B" / "A,C" / "a c" → option indices [1] / [0, 2]; ResultsError on anything else."""
    letters = [part for part in text.replace(",", " ").replace(";", " ").upper().split() if part]
    if not letters or any(len(p) != 1 or p not in OPTION_LETTERS for p in letters):
        raise ResultsError("correct_invalid", "give the correct options as letters, e.g. B or A,C")
    return sorted({OPTION_LETTERS.index(p) for p in letters})


def letters(indices: Iterable[int]) -> str:
    return ",".join(OPTION_LETTERS[j] for j in indices)


def _check_rekey(version, correct: Sequence[int] | None, current: Sequence[int]) -> list[int]:
    chosen = sorted({int(j) for j in (correct or ())})
    if not chosen:
        raise ResultsError("correct_required", "a new key needs at least one correct option")
    if chosen[0] < 0 or chosen[-1] >= len(version.options):
        raise ResultsError("correct_invalid", f"the question has options A-{OPTION_LETTERS[len(version.options) - 1]}")
    if version.qtype == "single" and len(chosen) != 1:
        raise ResultsError("correct_invalid", "a single-answer question has exactly one correct option")
    if chosen == sorted(current):
        raise ResultsError("no_change", "the key already is " + letters(chosen))
    return chosen


def current_key(session: Session, exam: Exam, version) -> list[int]:
    """The version's correct options (author's order) with the approved corrections applied."""
    key = [j for j, option in enumerate(version.options) if option["correct"]]
    for correction in approved_corrections(session, exam):
        if correction.question_version_id == version.id and correction.action == "rekey":
            key = list(correction.correct or ())
    return key


def propose_correction(session: Session, exam: Exam, question_version_id: int, action: str,
                       correct: Sequence[int] | None, reason: str, actor: str, now: datetime) -> KeyCorrection:
    """A board member proposes a key correction; a second one approves it (or anyone rejects it)."""
    if action not in CORRECTION_ACTIONS:
        raise ResultsError("action", f"the action must be one of {', '.join(CORRECTION_ACTIONS)}")
    reason = _reason(reason)
    if exam.status != "published":
        raise ResultsError("not_published", f"exam {exam.code} is not published")
    version = _pool_version(session, exam, question_version_id)
    pending = session.scalar(select(KeyCorrection.id).where(
        KeyCorrection.exam_id == exam.id, KeyCorrection.question_version_id == question_version_id,
        KeyCorrection.status == "proposed").limit(1))
    if pending is not None:
        raise ResultsError("pending", f"correction {pending} of this question awaits a decision")
    if action == "rekey":
        correct = _check_rekey(version, correct, current_key(session, exam, version))
    else:
        correct = None
    correction = KeyCorrection(exam_id=exam.id, question_version_id=question_version_id, action=action,
                               correct=correct, reason=reason, status="proposed", proposed_by=actor, proposed_at=now)
    session.add(correction)
    session.flush()
    audit.append(session, actor=actor, action="exam.key_correction.propose", object_type="exam",
                 object_id=exam.code, details=_correction_details(correction, version), now=now)
    return correction


def _correction_details(correction: KeyCorrection, version, **extra) -> dict:
    return {"correction": correction.id, "question_id": version.question_id, "question_version_id": version.id,
            "version": version.number, "action": correction.action,
            "correct": letters(correction.correct) if correction.correct else None,
            "old_key": version.correct_letters, "reason": correction.reason, **extra}


def _pending(session: Session, correction: KeyCorrection):
    from question_bank.models import QuestionVersion

    if correction.status != "proposed":
        raise ResultsError("decided", f"correction {correction.id} is already {correction.status}")
    return session.get(QuestionVersion, correction.question_version_id)


def approve_correction(session: Session, correction: KeyCorrection, *, actor: str, now: datetime,
                       note: str = "") -> KeyCorrection:
    """A second board member approves; the proposer cannot. No score changes until the exam is regraded."""
    version = _pending(session, correction)
    if actor == correction.proposed_by:
        raise ResultsError("same_person", "the proposer cannot approve their own correction: a second board "
                                          "member must")
    correction.status = "approved"
    correction.decided_by = actor
    correction.decided_at = now
    exam = session.get(Exam, correction.exam_id)
    audit.append(session, actor=actor, action="exam.key_correction.approve", object_type="exam", object_id=exam.code,
                 details=_correction_details(correction, version, proposed_by=correction.proposed_by,
                                             note=(note or "").strip()[:MAX_REASON]), now=now)
    session.flush()
    return correction


def reject_correction(session: Session, correction: KeyCorrection, *, actor: str, reason: str,
                      now: datetime) -> KeyCorrection:
    """Any board member rejects a proposal (the proposer withdrawing it included), with a reason."""
    reason = _reason(reason)
    version = _pending(session, correction)
    correction.status = "rejected"
    correction.decided_by = actor
    correction.decided_at = now
    exam = session.get(Exam, correction.exam_id)
    audit.append(session, actor=actor, action="exam.key_correction.reject", object_type="exam", object_id=exam.code,
                 details=_correction_details(correction, version, proposed_by=correction.proposed_by,
                                             rejection=reason), now=now)
    session.flush()
    return correction


def corrections_of(session: Session, exam: Exam) -> list[KeyCorrection]:
    return list(session.scalars(select(KeyCorrection).where(KeyCorrection.exam_id == exam.id)
                                .order_by(KeyCorrection.id.desc())))
