"""Grading runs: a whole exam graded in one batch, its scores stored, the run recorded and hashed.

Contents
--------
* the outcome: ``SectionInfo``, ``GradeOutcome`` (what a grading found, per candidate);
* stored scores: ``ScoreTable``, ``pack_section_results`` / ``unpack_section_results`` /
  ``section_results_of``, ``stored_scores``;
* the hashes of a run: ``key_hash``, ``inputs_hash``, ``outputs_hash``, ``outputs_hash_of_scores``;
* grading an exam: ``grade_exam`` (load, correct, grade, store, audit), ``latest_run`` (the one
  "latest grading run" of an exam);
* the preview: ``preview_corrections`` (whose result changes under proposed key corrections).

Grading an exam
---------------
``grade_exam`` loads, for every *submitted* attempt of the exam, what grading needs as
[candidates × positions] arrays (``exam.grading.arrays.load_exam_arrays``: see there for the
compact columns and the rows rebuilt), applies the key corrections (``exam.grading.corrections``),
scores them with the one rule (``exam.grading.scoring.grade``, a single call) and, when asked to
write, stores one ``CandidateScore`` per candidate (the exam's rows replaced), a ``GradingRun``,
the item statistics (``exam.grading.item_stats``) and the audit entry ``exam.grade``: one
transaction, committed by the caller.

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from itertools import repeat

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.core.batch import alongside, gc_paused
from exam.grading import item_stats
from exam.grading.arrays import (
    ExamArrays,
    PoolVersions,
    ResultsError,
    fetch_rows,
    id_chunks,
    load_exam_arrays,
    load_pool,
)
from exam.grading.corrections import (
    CorrectedKey,
    CorrectionSpec,
    apply_corrections,
    approved_corrections,
    last_per_version,
)
from exam.grading.models import CandidateScore, GradingRun
from exam.grading.scoring import Grades, SectionRules, grade
from exam.setup.models import Candidate, Exam, ExamSection

SCORE_DECIMALS = 4
_SCALE = 10 ** SCORE_DECIMALS


# --- the outcome -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SectionInfo:
    position: int
    code: str
    title: str
    question_count: int
    marks_per_question: float

    @classmethod
    def of(cls, section: ExamSection) -> SectionInfo:
        return cls(section.position, section.code, section.title, section.question_count,
                   float(section.marks_per_question))


@dataclass
class GradeOutcome:
    """What a grading found, per candidate; ``run`` is the stored GradingRun when written.

    ``totals``, ``sections`` and ``passed`` are dicts by candidate id; ``record(id)`` is the
    score record in the shape of ``attempt.score`` (``exam.grading.scoring.score_record``)."""

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
    def table(self) -> ScoreTable:
        """The results as stored: rounded scores, column by column."""
        g = self.grades
        return ScoreTable(
            sections=self.exam_sections, candidate_ids=self.candidate_ids,
            total=np.round(g.total, SCORE_DECIMALS) + 0.0, passed_all=g.passed_all,
            score=np.round(g.score, SCORE_DECIMALS) + 0.0, questions=self.question_counts, correct=g.correct,
            answered=g.answered, passed=g.passed)

    @cached_property
    def totals(self) -> dict[int, float]:
        return dict(zip(self.candidate_ids.tolist(), self.table.total.tolist(), strict=True))

    @cached_property
    def passed(self) -> dict[int, bool]:
        return dict(zip(self.candidate_ids.tolist(), self.table.passed_all.tolist(), strict=True))

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
        """One candidate's score record, in the shape of ``attempt.score`` (``exam.grading.scoring.score_record``);
        KeyError when the candidate has no result."""
        row = self.row_of(candidate_id)
        if row is None:
            raise KeyError(candidate_id)
        return self._records([row])[0]

    def records(self) -> dict[int, dict]:
        """Candidate id → score record, for every candidate."""
        return dict(zip(self.candidate_ids.tolist(), self._records(slice(None)), strict=True))

    def _records(self, rows) -> list[dict]:
        marks = np.array([s.marks_per_question for s in self.sections], dtype=np.float64)
        questions = self.questions[rows]
        max_scores = (np.round(questions * marks[None, :], SCORE_DECIMALS) + 0.0).tolist()
        info = self.sections
        records = []
        for total, ok, score, count, right, given, passed, top in zip(
                self.total[rows].tolist(), self.passed_all[rows].tolist(), self.score[rows].tolist(),
                questions.tolist(), self.correct[rows].tolist(), self.answered[rows].tolist(),
                self.passed[rows].tolist(), max_scores, strict=True):
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
        for chunk in id_chunks(sorted(set(candidate_ids))):
            rows += session.execute(statement.where(CandidateScore.candidate_id.in_(chunk))).all()
    else:
        rows = fetch_rows(session, statement)
    sections = tuple(SectionInfo.of(s) for s in exam.sections)
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if n else [()] * 5
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
    versions = [[int(v), [j for j in range(8) if (int(k) >> j) & 1]] for v, k in zip(pool.ids, pool.key, strict=True)]
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

def _correction_specs(session: Session, exam: Exam, corrections) -> list[CorrectionSpec]:
    if corrections is None:
        return []
    if corrections == "approved":
        corrections = approved_corrections(session, exam)
    elif isinstance(corrections, str):
        raise ValueError(f"corrections must be 'approved', a list or None, not {corrections!r}")
    return last_per_version([c if isinstance(c, CorrectionSpec) else CorrectionSpec.of(c) for c in corrections])


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
    item statistics of the run (``exam.grading.item_stats``, unless ``item_analysis`` is False;
    ``option_orders`` may give the papers' option orders already loaded) and the audit
    entry, and only flushes. Without, writes nothing.

    ``meanwhile(outcome)``, with ``write``, is called once the scores and the run are written,
    while the item analysis is still computed on the other core; what it returns is
    ``outcome.meanwhile``. It may read the session but should not write to it (the item
    statistics and the audit entry come after it): e.g. ``exam.merit.lists.draft_content``, the
    merit list ranked from the scores, stored afterwards with ``lists.store_draft``.
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
    """The exam's latest grading run, or None: the one "latest grading run" that the results pages, the
    commands and the merit lists read."""
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
    after = _grade(session, exam, loaded, last_per_version(base + extra))
    changed = []
    g0, g1 = before.grades, after.grades
    differs = ((np.abs(g0.score - g1.score) > 1e-9).any(axis=1) | (g0.passed != g1.passed).any(axis=1)
               | (g0.correct != g1.correct).any(axis=1) | (before.question_counts != after.question_counts).any(axis=1))
    ids = before.candidate_ids[differs].tolist()
    if not ids:
        return []
    candidates = {}
    for chunk in id_chunks(ids):
        candidates.update({c.id: c for c in session.scalars(select(Candidate).where(Candidate.id.in_(chunk)))})
    for cid in ids:
        changed.append(ScoreChange(candidates[cid], before.record(cid), after.record(cid)))
    changed.sort(key=lambda change: change.candidate.registration_no)
    return changed
