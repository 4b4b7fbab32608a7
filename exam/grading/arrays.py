"""What grading reads: the [candidates × positions] arrays of submitted attempts, built one way.

Every grading scores arrays (``exam.grading.scoring.grade``); this module is the one place that
makes them, for a whole exam (``load_exam_arrays``, ``runs.grade_exam``) and for the attempts just
submitted (``attempt_arrays``, ``exam.room.attempts.finish``: the score shown to the candidate at
once). Both put their rows through the same ``_ReadRows``, so a submission and a results run read
the same cells from the same columns. It imports only ``exam.core``, ``scoring`` and the models,
so the room may call it at submission as it calls ``scoring``.

Contents
--------
* masks: ``option_mask``, ``key_mask``, ``chosen_mask`` (bit j = the j-th option *as displayed*);
* ``ResultsError``: a grading or correction request refused;
* the pool: ``PoolVersions`` / ``load_pool``, the question versions an exam may draw;
* the arrays: ``ExamArrays``, ``section_layout``;
* reading rows straight from the driver: ``fetch_rows``, ``fetch_batches``, ``id_chunks``;
* the builders: ``load_exam_arrays`` (every submitted attempt of an exam), ``attempt_arrays`` (some
  attempts, with their final choices given), both through ``_ReadRows`` and ``_rebuild_from_rows``.

The compact columns
-------------------
Loading reads ``paper.key_masks`` (correct options as displayed, one byte per position),
``paper.version_ids`` (int32 little-endian per position) and ``attempt.choice_masks`` (chosen
options as displayed, one byte per position; at submission, given by the caller since they are
not stored yet). An attempt whose compact columns are empty or of another length (papers drawn or
answers submitted before they were filled) is rebuilt from its ``paper_item`` and ``response``
rows; ``ExamArrays`` says how many rows took each path. Rows end up ordered by candidate id. The
exam-wide read also takes ``paper.option_orders`` for the item analysis (``exam.grading.item_stats``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam.core.errors import Refused
from exam.room.models import Attempt, Response
from exam.setup.models import BlueprintCell, Exam, ExamPool, Paper, PaperItem
from question_bank.models import QuestionVersion


class ResultsError(Refused):
    """A grading or correction request refused; ``code`` names why (pages translate it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


# --- masks -------------------------------------------------------------------------------------------

def option_mask(displayed: Iterable[int]) -> int:
    """Bit mask of displayed option positions."""
    mask = 0
    for j in displayed:
        mask |= 1 << j
    return mask


def key_mask(option_order: Sequence[int], options: Sequence[dict]) -> int:
    """The correct options of a question version, as displayed in this paper's order."""
    return option_mask(j for j, original in enumerate(option_order) if options[original]["correct"])


def chosen_mask(option_ids: Sequence[str], choices: Iterable[str]) -> int:
    chosen = set(choices)
    return option_mask(j for j, option_id in enumerate(option_ids) if option_id in chosen)


# --- the pool ----------------------------------------------------------------------------------------

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


# --- the arrays --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExamArrays:
    """Submitted attempts of one exam, one row per candidate (by candidate id), as loaded."""

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


def section_layout(sections: Sequence) -> np.ndarray:
    """Section index of each position: sections in order, each with its question count."""
    return np.repeat(np.arange(len(sections), dtype=np.int64), [s.question_count for s in sections])


# --- reading rows ------------------------------------------------------------------------------------

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


def id_chunks(values: Iterable, size: int = 900) -> Iterable[list]:
    """``values`` in lists of at most ``size``: ids for an ``IN (...)`` within every database's limits."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


# --- the builders ------------------------------------------------------------------------------------

def _submitted(exam: Exam, *columns):
    return select(*columns).join(Paper, Paper.id == Attempt.paper_id) \
        .where(Paper.exam_id == exam.id, Attempt.status == "submitted")


_COMPACT_COLUMNS = (Attempt.candidate_id, Attempt.id, Attempt.paper_id, Paper.form, Paper.key_masks,
                    Paper.version_ids, Attempt.choice_masks, Paper.option_orders)


def load_exam_arrays(session: Session, exam: Exam) -> ExamArrays:
    """The arrays of every submitted attempt of the exam (see the module docstring).

    One read, a batch at a time, each batch copied straight into the arrays, so a million papers
    never exist as a million Python objects at once. The rows come in the database's order (on
    SQLite, that of the attempts' status index) and are put in candidate order afterwards only
    when they did not come in it (a second read of the candidates, to place each row as it comes,
    cost as much again as the reading on SQLite: it visits every paper row too)."""
    sections = list(exam.sections)
    layout = section_layout(sections)
    # Room for every paper of the exam (a count on its index); an attempt sits one paper.
    read = _ReadRows(session.scalar(select(func.count()).select_from(Paper).where(Paper.exam_id == exam.id)) or 0,
                     len(layout))
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
            read.put_columns(rows, cids, aids, pids, fids)
            placing = worker.submit(read.put_cells, rows, keys, versions, choices, orders, aids, pids)
        if placing is not None:
            slow += placing.result()
    return read.arrays(session, exam.id, sections, layout, n, slow)


def attempt_arrays(session: Session, attempts: Sequence[Attempt], choice_masks: Mapping[int, bytes],
                   sections_of: Callable[[int], Sequence]) -> list[ExamArrays]:
    """The arrays of some attempts, one ``ExamArrays`` per exam: what grading at submission scores.

    ``choice_masks``: attempt id → its final choices, one byte per position (computed from the
    responses at submission, not stored yet). The papers' compact columns are read in one query and
    put with those masks by the same rows as ``load_exam_arrays``; a paper drawn before its compact
    columns existed is rebuilt from its rows, the same way. ``sections_of(exam id)``: the exam's
    sections in order (``ExamSection`` rows, or anything with their ``id`` and ``question_count``,
    such as the room's cached plans)."""
    if not attempts:
        return []
    papers = {row.id: row for row in session.execute(
        select(Paper.id, Paper.exam_id, Paper.form, Paper.key_masks, Paper.version_ids)
        .where(Paper.id.in_({a.paper_id for a in attempts})))}
    groups: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        groups.setdefault(papers[attempt.paper_id].exam_id, []).append(attempt)
    found = []
    for exam_id, group in groups.items():
        sections = list(sections_of(exam_id))
        layout = section_layout(sections)
        mine = [papers[a.paper_id] for a in group]
        aids, pids = [a.id for a in group], [a.paper_id for a in group]
        read = _ReadRows(len(group), len(layout))
        rows = slice(0, len(group))
        read.put_columns(rows, [a.candidate_id for a in group], aids, pids, [p.form for p in mine])
        slow = read.put_cells(rows, [p.key_masks for p in mine], [p.version_ids for p in mine],
                              [choice_masks[a] for a in aids], [None] * len(group), aids, pids)
        found.append(read.arrays(session, exam_id, sections, layout, len(group), slow))
    return found


class _ReadRows:
    """What a builder reads, column by column, one row per attempt in the order read: ``load_exam_arrays``
    a batch at a time (its cells put by a worker thread), ``attempt_arrays`` in one batch."""

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

    def put_columns(self, rows: slice, cids: list, aids: list, pids: list, fids: list) -> None:
        """Put a batch's candidate, attempt and paper ids and forms at ``rows``."""
        self.candidate_ids[rows] = cids
        self.attempt_ids[rows] = aids
        self.paper_ids[rows] = pids
        self.forms[rows] = [f or 0 for f in fids]

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

    def arrays(self, session: Session, exam_id: int, sections: Sequence, layout: np.ndarray, n: int,
               slow: list[tuple[int, int, int]]) -> ExamArrays:
        """The first n rows read, in candidate order, the ``slow`` ones rebuilt from their rows."""
        columns, place = self.in_candidate_order(n)
        if slow:
            _rebuild_from_rows(session, sections, [(a, p) for _, a, p in slow],
                               place[[r for r, _, _ in slow]].tolist(), columns["key"], columns["chosen"],
                               columns["version_ids"])
        ordered = columns.pop("ordered")
        return ExamArrays(exam_id=exam_id, section=layout, compact_rows=n - len(slow), rebuilt_rows=len(slow),
                          orders_missing=np.flatnonzero(~ordered), **columns)


def _complete(blobs: list, width: int, n_questions: int) -> np.ndarray:
    """Which values of a batch's column have the exam's length (NULL or another length: no)."""
    if _lengths(blobs) == {width * n_questions}:
        return np.ones(len(blobs), dtype=bool)
    return np.fromiter((b is not None and len(b) == width * n_questions for b in blobs), dtype=bool,
                       count=len(blobs))


def _blocks(blobs: list, good: np.ndarray, dtype, n_questions: int) -> np.ndarray:
    chosen_blobs = blobs if good.all() else [b for b, ok in zip(blobs, good.tolist(), strict=True) if ok]
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


def _rebuild_from_rows(session: Session, sections: Sequence, attempts: list[tuple[int, int]],
                       targets: list[int], key: np.ndarray, chosen: np.ndarray, version_ids: np.ndarray) -> None:
    """Fill rows ``targets`` from paper_item and response rows: ``key_mask`` of each item's option order,
    ``chosen_mask`` of the attempt's latest response to it."""
    section_of = {s.id: i for i, s in enumerate(sections)}
    layout = section_layout(sections).tolist()
    paper_ids = {paper_id for _, paper_id in attempts}
    items: dict[int, list] = {}
    for chunk in id_chunks(sorted(paper_ids)):
        for row in session.execute(
                select(PaperItem.paper_id, PaperItem.id, PaperItem.section_id, PaperItem.question_version_id,
                       PaperItem.option_order, PaperItem.option_ids, QuestionVersion.options)
                .join(QuestionVersion, QuestionVersion.id == PaperItem.question_version_id)
                .where(PaperItem.paper_id.in_(chunk)).order_by(PaperItem.paper_id, PaperItem.position)):
            items.setdefault(row.paper_id, []).append(row)
    answers: dict[int, dict[int, list]] = {}
    for chunk in id_chunks([attempt_id for attempt_id, _ in attempts]):
        for attempt_id, item_id, choices in session.execute(
                select(Response.attempt_id, Response.item_id, Response.choices)
                .where(Response.attempt_id.in_(chunk))):
            answers.setdefault(attempt_id, {})[item_id] = choices
    for target, (attempt_id, paper_id) in zip(targets, attempts, strict=True):
        paper_items = items.get(paper_id, [])
        if [section_of.get(r.section_id) for r in paper_items] != layout:
            raise ResultsError("layout", f"paper {paper_id} does not follow its exam's section layout")
        mine = answers.get(attempt_id, {})
        for q, row in enumerate(paper_items):
            key[target, q] = key_mask(row.option_order, row.options)
            version_ids[target, q] = row.question_version_id
            if row.id in mine:
                chosen[target, q] = chosen_mask(row.option_ids, mine[row.id])
