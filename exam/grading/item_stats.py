"""Item analysis of a graded exam: the graded arrays read per question, analysed, stored.

``exam.grading.item_analysis`` (pure) wants each candidate's cells labelled by *question version*;
grading holds one column per *paper position*, and papers differ in which versions they
drew, where, and in which order they showed the options. This module maps one to the
other, vectorized, chunk by chunk of candidates (``item_cells`` for ``analyse_cells``: no
[C, I] float matrices, so 1,000,000 candidates fit):

* item: the version id of each cell (``paper.version_ids``) → its item index;
* points and "fully right" of each cell: the one scoring rule (``exam.grading.scoring.grade``)
  tabulated once per section over every (key mask, chosen mask, multiple) combination,
  then looked up per cell, so a cell scores exactly as grading scores it (negative marking
  and partial credit included) at the cost of one table lookup;
* choices in the author's order: each (paper, position) has an option order index
  (``paper.option_orders``: its index among the orders of its n options in lexicographic
  order; from ``paper_item.option_order`` for papers stored without it), and a table maps
  a displayed mask to the author's mask for every order.

The item statistics are those of the grading run: corrected keys, awarded questions right
for everyone who had them, removed questions (void_remove) left out of the analysis (their
cells hold no item). ``record_item_analysis`` writes one ``ItemStatistic`` per version
(question's history in the bank) and returns the analysis; the test statistics go into the
grading run's summary (``test_summary``). ``item_matrices`` lays the same out as [C, I]
matrices for ``analyse_items`` (a paper holding one version twice is analysed that way).
"""
from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import permutations

import numpy as np
from sqlalchemy import Text, cast, delete, insert, select
from sqlalchemy.orm import Session

from exam.grading.arrays import ResultsError
from exam.grading.item_analysis import FLAGS, ItemAnalysis, analyse_cells, analyse_items
from exam.grading.item_sums import CellChunk, RepeatedItem
from exam.grading.models import GradingRun, ItemStatistic
from exam.grading.scoring import SectionRules, grade
from exam.setup.models import Exam, PaperItem
from exam.setup.papers import option_order_index
from question_bank.models import QuestionVersion

# Plain Vietnamese for files and the CLI; the pages translate the same words.
FLAG_LABELS = {
    "negative_discrimination": "Độ phân biệt âm",
    "low_discrimination": "Độ phân biệt thấp",
    "too_easy": "Quá dễ",
    "too_hard": "Quá khó",
    "possible_wrong_key": "Nghi sai đáp án",
}
CORRECTION_LABELS = {"rekey": "Đã sửa đáp án", "void_award": "Hủy câu (cộng điểm cho mọi người)",
                     "void_remove": "Hủy câu (loại khỏi bài)"}
OPTION_LETTERS = "ABCDEFGH"


# --- option orders -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptionOrders:
    """Per cell, which option order the paper showed: its index among the orders of the question's n
    options (``ranks``); the orders of n options start at ``offsets[pool row]`` in ``table``."""

    ranks: np.ndarray  # [C, Q] uint16
    pool_rows: np.ndarray  # [C, Q] each cell's row in the PoolVersions
    offsets: np.ndarray  # [V] int32: where the orders of each pool version's option count start in table
    sizes: np.ndarray  # [V] int32: how many orders (n!)
    table: np.ndarray  # [P, 256] uint8: displayed mask → author's mask

    def author(self, displayed: np.ndarray, rows=slice(None)) -> np.ndarray:
        """The author's masks of the displayed masks of ``rows`` (every row by default: [C, Q])."""
        pool_rows, ranks = self.pool_rows[rows], self.ranks[rows]
        if (ranks >= self.sizes[pool_rows]).any():
            raise ResultsError("option_orders",
                               "a paper's option order index is out of range for its question's options")
        index = self.offsets[pool_rows]
        index += ranks
        index <<= 8
        index |= displayed
        return self.table.ravel()[index]


def permutation_table(orders: Sequence[Sequence[int]]) -> np.ndarray:
    """[P, 256]: for each order (author's index of each displayed option), displayed mask → author's mask."""
    orders = np.asarray(orders, dtype=np.int64).reshape(len(orders), -1) if len(orders) else np.zeros((0, 0), int)
    masks = np.arange(256, dtype=np.int64)
    table = np.zeros((max(len(orders), 1), 256), dtype=np.int64)
    for j in range(orders.shape[1]):  # displayed option j is the author's option orders[:, j]
        table[:len(orders)] |= ((masks[None, :] >> j) & 1) << orders[:, j:j + 1]
    return table.astype(np.uint8)


@cache
def _orders_of(n: int) -> np.ndarray:
    """Every order of n options, in lexicographic order: row k is the order of ``option_order_index`` k."""
    return np.array(list(permutations(range(n))), dtype=np.int64).reshape(-1, n)


def option_orders(session: Session, outcome) -> OptionOrders:
    """The option orders of every cell of a grading: from the papers' ``option_orders`` column (each index
    read against the orders of its question's n options), and for papers without it from their
    ``paper_item`` rows."""
    arrays, pool = outcome.arrays, outcome.pool
    counts = sorted(set(pool.n_options.tolist()))
    offsets, start = {}, 0
    for n in counts:
        offsets[n] = start
        start += len(_orders_of(n))
    table = np.vstack([permutation_table(_orders_of(n)) for n in counts] or [permutation_table([])])
    offset_of_row = np.array([offsets[n] for n in pool.n_options.tolist()] or [0], dtype=np.int32)
    size_of_row = np.array([len(_orders_of(n)) for n in pool.n_options.tolist()] or [1], dtype=np.int32)
    ranks = arrays.option_orders
    if ranks is None:
        ranks = np.zeros(arrays.shape, dtype=np.uint16)
        missing = np.arange(arrays.shape[0])
    else:
        missing = arrays.orders_missing
    if len(missing):
        ranks = ranks.copy()
        ranks[missing] = _ranks_from_items(session, arrays, missing)
    return OptionOrders(ranks, outcome.pool_rows, offset_of_row, size_of_row, table)


def _ranks_from_items(session: Session, arrays, rows: np.ndarray) -> np.ndarray:
    """Option order indices of some rows (papers) from their paper_item rows (read as text: each distinct
    order is parsed once)."""
    q = arrays.shape[1]
    wanted = {int(arrays.paper_ids[r]): k for k, r in enumerate(rows.tolist())}
    found = np.full((len(rows), q), -1, dtype=np.int64)
    index_of: dict[str, int] = {}
    paper_ids = sorted(wanted)
    for first in range(0, len(paper_ids), 900):
        for paper_id, position, text in session.execute(
                select(PaperItem.paper_id, PaperItem.position, cast(PaperItem.option_order, Text))
                .where(PaperItem.paper_id.in_(paper_ids[first:first + 900]))):
            k = index_of.get(text)
            if k is None:
                k = index_of[text] = option_order_index(json.loads(text))
            if not 1 <= position <= q:
                raise ResultsError("layout", "a paper_item position lies outside the exam's section layout")
            found[wanted[paper_id], position - 1] = k
    if (found < 0).any():
        raise ResultsError("option_orders", "some papers have neither option_orders nor paper_item rows: their "
                                            "option orders are unknown")
    return found.astype(np.uint16)


# --- cell scores: the grading rule, tabulated ----------------------------------------------------------

def _cell_tables(rules: SectionRules) -> tuple[np.ndarray, np.ndarray]:
    """Points and "fully right" for every (section, multiple, key mask, chosen mask), flat:
    index = ((section × 2 + multiple) × 256 + key) × 256 + chosen. Computed by ``grade`` with
    one question per row, so a cell scores as grading scores it."""
    key = np.repeat(np.arange(256, dtype=np.uint8), 256)[:, None]
    chosen = np.tile(np.arange(256, dtype=np.uint8), 256)[:, None]
    points, right = [], []
    for s in range(len(rules)):
        one = SectionRules(marks=rules.marks[s:s + 1], negative_fraction=rules.negative_fraction[s:s + 1],
                           partial=rules.partial[s:s + 1], pass_ratio=rules.pass_ratio[s:s + 1],
                           question_count=np.ones(1, dtype=np.int64))
        for multiple in (False, True):
            graded = grade(key, chosen, multiple, np.zeros(1, dtype=np.int64), one)
            points.append(graded.score[:, 0])
            right.append(graded.correct[:, 0] > 0)
    return np.concatenate(points), np.concatenate(right)


def versions_used(pool_rows: np.ndarray, n_versions: int) -> np.ndarray:
    """The pool rows some cell holds, ascending (counted in chunks of rows: no copy of the whole array)."""
    counts = np.zeros(n_versions, dtype=np.int64)
    step = max(1, (1 << 20) // max(pool_rows.shape[1] if pool_rows.ndim == 2 else 1, 1))
    for start in range(0, len(pool_rows), step):
        counts += np.bincount(pool_rows[start:start + step].ravel(), minlength=n_versions)
    return np.flatnonzero(counts > 0)


@dataclass(frozen=True)
class ItemMatrices:
    """What ``analyse_items`` takes, with the version id of each item column."""

    version_ids: np.ndarray  # [I]
    pool_rows: np.ndarray  # [I] rows in the PoolVersions
    scores: np.ndarray  # [C, I] float64, NaN where missing
    correct: np.ndarray  # [C, I] bool
    choices: np.ndarray  # [C, I] uint8, author's order
    key: np.ndarray  # [I] uint8, author's order, corrected
    n_options: np.ndarray  # [I]
    max_points: np.ndarray  # [I]
    multiple: np.ndarray  # [I]
    section: np.ndarray  # [I] section index


def item_matrices(outcome, orders: OptionOrders) -> ItemMatrices:
    """Per-question matrices of a ``GradeOutcome``."""
    arrays, pool, corrected = outcome.arrays, outcome.pool, outcome.corrected
    n, q = arrays.shape
    rows = outcome.pool_rows  # [C, Q] pool row of each cell
    used = versions_used(rows, len(pool.ids))
    column_of = np.full(len(pool.ids), -1, dtype=np.int64)
    column_of[used] = np.arange(len(used))
    n_items = len(used)
    # Flat index of each cell in the [C, I] matrices (int64 past 2³¹ cells).
    kind = np.int32 if n * max(n_items, 1) < 2 ** 31 else np.int64
    flat = column_of.astype(kind)[rows]
    flat += (np.arange(n, dtype=kind) * n_items)[:, None]

    rules = corrected.rules
    points_table, right_table = _cell_tables(replace_counts(rules))
    index = corrected.key.astype(np.int32)
    index <<= 8
    index |= corrected.chosen
    if pool.multiple.any():
        index |= pool.multiple.astype(np.int32)[rows] << 16
    index |= (arrays.section.astype(np.int32) << 17)[None, :]
    points_table = np.append(points_table, np.nan)  # the last entry: a removed cell
    right_table = np.append(right_table, False)
    if corrected.removed is not None:
        index[corrected.removed] = len(points_table) - 1

    scores = np.empty((n, n_items))
    scores.fill(np.nan)
    np.put(scores, flat, points_table[index])
    correct = np.zeros((n, n_items), dtype=bool)
    np.put(correct, flat, right_table[index])
    del index
    choices = np.zeros((n, n_items), dtype=np.uint8)
    np.put(choices, flat, orders.author(arrays.chosen))

    section = pool.section[used]
    return ItemMatrices(version_ids=pool.ids[used], pool_rows=used, scores=scores, correct=correct, choices=choices,
                        key=corrected.author_key[used], n_options=pool.n_options[used],
                        max_points=np.asarray(rules.marks)[section], multiple=pool.multiple[used], section=section)


def replace_counts(rules: SectionRules) -> SectionRules:
    """The rules with plain per-section question counts (cell scoring does not use them)."""
    return SectionRules(rules.marks, rules.negative_fraction, rules.partial, rules.pass_ratio,
                        np.ones(len(rules.marks), dtype=np.int64))


@dataclass(frozen=True)
class ItemColumns:
    """The items of an analysis: the pool versions some paper drew, in pool order."""

    version_ids: np.ndarray  # [I]
    pool_rows: np.ndarray  # [I] rows in the PoolVersions
    section: np.ndarray  # [I] section index


def item_cells(outcome, orders: OptionOrders) -> tuple[ItemColumns, dict, object]:
    """What ``analyse_cells`` reads for a ``GradeOutcome``: (the items, their per-item arguments, and
    ``cells(rows)``, which scores the candidates' cells of those rows as grading does, by table lookup,
    chunk by chunk: no [C, I] float matrices)."""
    arrays, pool, corrected = outcome.arrays, outcome.pool, outcome.corrected
    pool_rows = outcome.pool_rows  # [C, Q] pool row of each cell
    used = versions_used(pool_rows, len(pool.ids))
    column_of = np.full(len(pool.ids), -1, dtype=np.intp)
    column_of[used] = np.arange(len(used))
    rules = corrected.rules
    points_table, right_table = _cell_tables(replace_counts(rules))
    multiple = pool.multiple.astype(np.int32) << 16 if pool.multiple.any() else None
    sections = (arrays.section.astype(np.int32) << 17)[None, :]

    def cells(rows: np.ndarray) -> CellChunk:
        at = slice(int(rows[0]), int(rows[-1]) + 1) if len(rows) and rows[-1] - rows[0] + 1 == len(rows) else rows
        chosen = corrected.chosen[at]
        index = corrected.key[at].astype(np.int32)
        index <<= 8
        index |= chosen
        cell_rows = pool_rows[at]
        if multiple is not None:
            index |= multiple[cell_rows]
        index |= sections
        item = column_of[cell_rows]
        if corrected.removed is not None:
            item[corrected.removed[at]] = -1  # out of the test: not an item of the candidate
        return CellChunk(item, points_table[index], right_table[index], orders.author(arrays.chosen[at], at))

    section = pool.section[used]
    columns = ItemColumns(version_ids=pool.ids[used], pool_rows=used, section=section)
    per_item = dict(key=corrected.author_key[used], n_options=pool.n_options[used],
                    max_points=np.asarray(rules.marks)[section], multiple=pool.multiple[used],
                    item_ids=columns.version_ids.tolist())
    return columns, per_item, cells


def analyse_outcome(outcome, orders: OptionOrders, *, exam: Exam | None = None,
                    by_form: bool | None = None) -> tuple[ItemAnalysis, ItemColumns]:
    """The item analysis of a grading (``exam.grading.item_analysis.analyse_cells``); per fixed form too when
    ``by_form``, or (``by_form`` None) when ``exam`` is given and has forms. Plain values only, no
    session: it may run in a worker thread (``record_item_analysis``)."""
    if by_form is None:
        by_form = exam is not None and bool(exam.forms)
    forms = outcome.arrays.forms if by_form else None
    columns, per_item, cells = item_cells(outcome, orders)
    try:
        return analyse_cells(cells, outcome.arrays.shape[0], form=forms, **per_item), columns
    except RepeatedItem:  # a paper holding one version twice (in two cells of the pool): the matrices keep one
        matrices = item_matrices(outcome, orders)
        analysis = analyse_items(matrices.scores, matrices.correct, matrices.choices, matrices.key,
                                 matrices.n_options, matrices.max_points, multiple=matrices.multiple,
                                 item_ids=matrices.version_ids.tolist(), form=forms)
        return analysis, ItemColumns(matrices.version_ids, matrices.pool_rows, matrices.section)


# --- stored results ----------------------------------------------------------------------------------

def test_summary(analysis: ItemAnalysis) -> dict:
    """The test statistics of an analysis, as kept in the grading run's summary."""
    counts = {flag: 0 for flag in FLAGS}
    for item in analysis.items:
        for flag in item.flags:
            counts[flag] += 1
    return {"reliability": analysis.reliability.to_dict(), "distribution": analysis.distribution.to_dict(),
            "items": len(analysis.items), "flagged": len(analysis.flagged()), "flag_counts": counts}


def record_item_analysis(session: Session, exam: Exam, outcome, *, run: GradingRun, now: datetime,
                         orders: OptionOrders | None = None) -> ItemAnalysis:
    """Analyse a graded exam and store one ItemStatistic per question version (the exam's rows replaced)."""
    orders = orders if orders is not None else option_orders(session, outcome)
    analysed = analyse_outcome(outcome, orders, exam=exam)
    return store_item_analysis(session, exam, outcome, analysed, run=run, now=now)


def store_item_analysis(session: Session, exam: Exam, outcome, analysed: tuple[ItemAnalysis, ItemColumns], *,
                        run: GradingRun, now: datetime) -> ItemAnalysis:
    """Store ``analyse_outcome``'s analysis: one ItemStatistic per question version (the exam's rows
    replaced)."""
    analysis, columns = analysed
    codes = [s.code for s in outcome.exam_sections]
    actions = outcome.corrected.actions
    question_ids = outcome.pool.question_ids[columns.pool_rows].tolist()
    session.execute(delete(ItemStatistic).where(ItemStatistic.exam_id == exam.id))
    rows = []
    for item, question_id, section in zip(analysis.items, question_ids, columns.section.tolist(), strict=True):
        stats = item.to_dict()
        stats.update({"grading_run_id": run.id, "section": codes[section], "exam_code": exam.code,
                      "correction": actions.get(int(item.item_id))})
        rows.append({"exam_id": exam.id, "question_version_id": int(item.item_id), "question_id": question_id,
                     "computed_at": now, "stats": stats})
    if rows:
        session.execute(insert(ItemStatistic), rows)
    return analysis


@dataclass(frozen=True)
class ItemRow:
    """One stored item statistic, flattened for tables and files."""

    question_id: int
    version_id: int
    version: int
    text: str
    section: str
    correction: str | None
    stats: dict

    @property
    def key_letters(self) -> str:
        return ",".join(OPTION_LETTERS[j] for j in self.stats.get("key", ()))


SORT_KEYS = {
    "question": lambda r: r.question_id,
    "section": lambda r: r.section,
    "n": lambda r: r.stats.get("n"),
    "p": lambda r: r.stats.get("difficulty"),
    "rpb": lambda r: r.stats.get("point_biserial"),
    "d": lambda r: r.stats.get("discrimination_index"),
    "omitted": lambda r: r.stats.get("omitted"),
    "flags": lambda r: len(r.stats.get("flags", ())),
}


def stored_items(session: Session, exam: Exam, *, sort: str = "question", descending: bool = False) -> list[ItemRow]:
    """The exam's stored item statistics; sorted by a SORT_KEYS column, missing values last."""
    rows = [ItemRow(r.question_id, r.question_version_id, r.number, r.text, r.stats.get("section", ""),
                    r.stats.get("correction"), r.stats)
            for r in session.execute(
                select(ItemStatistic.question_id, ItemStatistic.question_version_id, ItemStatistic.stats,
                       QuestionVersion.number, QuestionVersion.text)
                .join(QuestionVersion, QuestionVersion.id == ItemStatistic.question_version_id)
                .where(ItemStatistic.exam_id == exam.id))]
    value = SORT_KEYS.get(sort, SORT_KEYS["question"])
    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=lambda r: (value(r), r.question_id), reverse=descending)
    missing.sort(key=lambda r: r.question_id)
    return present + missing


def question_performance(session: Session, question_id: int) -> list[dict]:
    """How a bank question performed in every exam that used it (newest first)."""
    found = []
    for stat, exam, number in session.execute(
            select(ItemStatistic, Exam, QuestionVersion.number)
            .join(Exam, Exam.id == ItemStatistic.exam_id)
            .join(QuestionVersion, QuestionVersion.id == ItemStatistic.question_version_id)
            .where(ItemStatistic.question_id == question_id)
            .order_by(ItemStatistic.computed_at.desc(), Exam.code)):
        s = stat.stats
        found.append({"exam_code": exam.code, "exam_title": exam.title, "version": number,
                      "computed_at": stat.computed_at, "n": s.get("n"), "difficulty": s.get("difficulty"),
                      "point_biserial": s.get("point_biserial"), "discrimination_index": s.get("discrimination_index"),
                      "omitted": s.get("omitted"), "flags": list(s.get("flags", ())),
                      "correction": s.get("correction"), "options": s.get("options", []),
                      "key": ",".join(OPTION_LETTERS[j] for j in s.get("key", ()))})
    return found


# --- the spreadsheet ----------------------------------------------------------------------------------

def _round(value, places: int = 4):
    return None if value is None else round(float(value), places)


def items_workbook(exam: Exam, rows: Sequence[ItemRow], test: dict | None) -> bytes:
    """XLSX: one row per question ("Câu hỏi") and the test statistics ("Thống kê bài thi")."""
    # openpyxl deferred: a heavy library that only the spreadsheet needs.
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    n_options = max([len(r.stats.get("options", ())) for r in rows] + [4])
    book = Workbook()
    sheet = book.active
    sheet.title = "Câu hỏi"
    header = ["Câu hỏi", "Phiên bản", "Mã phiên bản", "Phần thi", "Đáp án", "Số thí sinh", "Độ khó p",
              "Điểm trung bình", "r_pb", "D (nhóm cao − nhóm thấp)", "p nhóm cao", "p nhóm thấp", "Bỏ trống"]
    for j in range(n_options):
        letter = OPTION_LETTERS[j]
        header += [f"{letter}: chung", f"{letter}: nhóm cao", f"{letter}: nhóm thấp"]
    header += ["Cảnh báo", "Điều chỉnh đáp án"]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for r in rows:
        s = r.stats
        line = [r.question_id, r.version, r.version_id, r.section, r.key_letters, s.get("n"),
                _round(s.get("difficulty")), _round(s.get("mean_points")), _round(s.get("point_biserial")),
                _round(s.get("discrimination_index")), _round(s.get("upper_difficulty")),
                _round(s.get("lower_difficulty")), _round(s.get("omitted"))]
        options = {o["option"]: o for o in s.get("options", ())}
        for j in range(n_options):
            o = options.get(j)
            line += [_round(o["overall"]), _round(o["upper"]), _round(o["lower"])] if o else [None, None, None]
        line += ["; ".join(FLAG_LABELS.get(f, f) for f in s.get("flags", ())),
                 CORRECTION_LABELS.get(r.correction, "") if r.correction else ""]
        sheet.append(line)
    sheet.freeze_panes = "B2"
    for j in range(1, len(header) + 1):
        sheet.column_dimensions[get_column_letter(j)].width = 12 if j > 4 else 10
    sheet.auto_filter.ref = sheet.dimensions

    stats = book.create_sheet("Thống kê bài thi")
    stats.append(["Kỳ thi", exam.code])
    stats.append(["Tên kỳ thi", exam.title])
    if test:
        rel, dist = test["reliability"], test["distribution"]
        stats.append(["Hệ số tin cậy", "KR-20" if rel["method"] == "kr20" else "Cronbach alpha",
                      _round(rel["value"])])
        stats.append(["Cơ sở tính", "đầy đủ" if rel["basis"] == "complete" else "gộp (đề khác nhau)"])
        stats.append(["Sai số chuẩn đo lường (SEM)", _round(rel["sem"])])
        stats.append(["Số thí sinh", rel["candidates"]])
        stats.append(["Số câu hỏi", rel["items"]])
        stats.append(["Số câu mỗi thí sinh (trung bình)", _round(rel["items_per_candidate"])])
        stats.append(["Điểm trung bình", _round(dist["mean"])])
        stats.append(["Độ lệch chuẩn", _round(dist["sd"])])
        stats.append(["Trung vị", _round(dist["median"])])
        stats.append(["Thấp nhất", _round(dist["minimum"])])
        stats.append(["Cao nhất", _round(dist["maximum"])])
        stats.append(["Số câu có cảnh báo", test["flagged"]])
        for flag, count in test.get("flag_counts", {}).items():
            stats.append([f"  {FLAG_LABELS.get(flag, flag)}", count])
        for form in rel.get("forms", ()):
            stats.append([f"Mã đề {form['form']}: hệ số tin cậy", _round(form["reliability"])])
        stats.append([])
        stats.append(["Phân bố điểm: từ", "đến (không gồm)", "số thí sinh"])
        edges, counts = dist["bin_edges"], dist["counts"]
        for a, b, c in zip(edges, edges[1:], counts, strict=False):
            stats.append([a, b, c])
    stats.column_dimensions["A"].width = 36
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
