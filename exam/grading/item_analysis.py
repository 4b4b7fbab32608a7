"""Item analysis: how each question of an exam performed, and how reliable the test was.

Pure numpy, no database: arrays in, dataclasses out. The caller loads one exam's graded
responses and lays them out per *item* (question version), not per paper position: papers
shuffle positions and draw different questions from the pool, so column ``i`` is the same
question for every candidate, and a candidate who did not get that question has a missing
cell. ``analyse_items`` is the one entry point.

Input, C candidates × I items:

* ``scores[c, i]``   float, points earned (negative marking and partial credit included);
  NaN where candidate c did not get item i. The missing cells define the *item mask*;
* ``correct[c, i]``  bool, fully right (ignored where ``scores`` is NaN);
* ``choices[c, i]``  uint8 bit mask of the chosen options in the author's option order
  (bit j = option j, "A" = bit 0); 0 = no answer (ignored where ``scores`` is NaN);
* ``key[i]``         uint8 bit mask of the correct options, author's order;
* ``n_options[i]``   options shown (1..8); ``max_points[i]`` marks for a fully right answer;
* ``multiple[i]``    optional: the item takes several answers (default: the key has >1 bit);
* ``item_ids``       optional labels (question version ids) carried into the results;
* ``form[c]``        optional paper-form label per candidate (fixed forms, "mã đề"):
  reliability is then also reported per form.

Definitions (n = candidates who had the item; every statistic of an item is over them):

* difficulty p       share fully right (``correct``).
* mean_points        mean of ``scores``.
* point_biserial     Pearson correlation, over the item's candidates, between the item's
  points and the *rest score* (total − this item's points): the corrected item-total
  correlation. For an item scored right/wrong it is the point-biserial correlation; for
  partial credit or negative marking it uses the points as scored. None when either side
  has no variance (e.g. everyone right).
* upper/lower groups the g = round(27 % × n) candidates with the highest / lowest *total*
  score among the item's candidates (n ≥ 2, g ≥ 1). Candidates tied on the boundary total
  share the remaining places equally (fractional weights), so the groups hold exactly g
  candidates, do not depend on the order candidates were given in, and tied candidates are
  treated alike. Totals are rounded to 9 decimals first so float noise makes no ranking.
* discrimination_index D = p_upper − p_lower.
* options            per option: the share of the group who chose it (single answer) or whose
  answer included it (multiple answer); ``omitted`` is the share who gave no answer.
* flags, thresholds in the constants below:
  ``negative_discrimination``  r_pb < 0;
  ``low_discrimination``       not negative, and 0 ≤ r_pb < LOW_POINT_BISERIAL or
                               D < LOW_DISCRIMINATION_INDEX;
  ``too_easy``                 p > TOO_EASY; ``too_hard``  p < TOO_HARD;
  ``possible_wrong_key``       single answer: a distractor chosen by more of the upper group
                               than the key; multiple answer: a non-key option included by
                               more of the upper group than some key option.

Test statistics (over the candidates who had at least one item; variances are population
variances, ddof = 0, as in KR-20's Σpq):

* reliability
  - complete matrix (every candidate had every item that anyone had): KR-20 when every item
    is dichotomous (all observed points are 0 or the item's marks, and all items carry the
    same marks), Cronbach's alpha otherwise. ``basis = "complete"``.
  - sparse matrix (candidates drew different questions): *pooled item-centred alpha*,
    ``basis = "pooled"``. Every observed score is centred on its item's mean over the
    candidates who had it, d = x − μ_i. Then
        V_item  = mean over candidates of Σ_i d²          (item variances, by exposure)
        V_total = mean over candidates of (Σ_i d)²        (variances + within-paper covariances)
        alpha   = k/(k−1) · (1 − V_item / V_total),  k = mean items per candidate.
    This is alpha computed from the item variances and the pairwise covariances of the
    items that were sat together, each pair weighted by how many candidates had both and
    taken about the items' overall means. It estimates the internal consistency of a typical
    candidate's paper, with the spread due to papers of different difficulty taken out.
    On a complete matrix it equals classical alpha (KR-20 for dichotomous items) exactly.
    Labelled ``kr20`` or ``alpha`` by the same dichotomy rule.
  - per form (when ``form`` is given): the same statistic over each form's candidates;
    ``complete`` says whether every candidate of the form had every item of the form (then
    it is that form's classical KR-20/alpha).
* sem = SD(total) × sqrt(1 − reliability) (the form's SD for a form).
* distribution: histogram counts over bins of a "nice" width (0.25, 0.5, 1, 2, 5, 10, 20,
  50, ...: the smallest giving at most HISTOGRAM_MAX_BINS bins, and not finer than the totals'
  grain, e.g. 1 when all totals are whole points; each bin [a, a + width)), mean, SD,
  median, min, max.

Cost: a fixed number of vectorized passes over the C × I arrays and no Python loop over
candidates or items; the passes run over chunks of rows with reused buffers (allocating and
touching C × I temporaries costs more than the arithmetic), and use einsum rather than BLAS
(numpy's threaded BLAS stalls when other processes hold the cores). 100,000 candidates × a
300-question pool (120 each, sparse) take about 0.26 s of CPU, single-threaded, on the 2-core
machine, and about 130 MB of temporary memory.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Hashable, NamedTuple, Sequence

import numpy as np

# --- thresholds and settings ----------------------------------------------------------------------

GROUP_SHARE = 0.27  # upper and lower groups: 27 % of the item's candidates each (Kelley)
LOW_POINT_BISERIAL = 0.10  # 0 ≤ r_pb < this: low discrimination
LOW_DISCRIMINATION_INDEX = 0.10  # D < this: low discrimination
TOO_EASY = 0.90  # p > this: too easy
TOO_HARD = 0.20  # p < this: too hard
TOTAL_DECIMALS = 9  # totals are rounded to this before ranking into groups
HISTOGRAM_MAX_BINS = 64
MAX_OPTIONS = 8

NEGATIVE_DISCRIMINATION = "negative_discrimination"
LOW_DISCRIMINATION = "low_discrimination"
TOO_EASY_FLAG = "too_easy"
TOO_HARD_FLAG = "too_hard"
POSSIBLE_WRONG_KEY = "possible_wrong_key"
FLAGS = (NEGATIVE_DISCRIMINATION, LOW_DISCRIMINATION, TOO_EASY_FLAG, TOO_HARD_FLAG, POSSIBLE_WRONG_KEY)
# Recorded with the results (ItemAnalysis.to_dict), so a stored flag says what it was measured against.
THRESHOLDS = {"group_share": GROUP_SHARE, "low_point_biserial": LOW_POINT_BISERIAL,
              "low_discrimination_index": LOW_DISCRIMINATION_INDEX, "too_easy": TOO_EASY, "too_hard": TOO_HARD}

_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.int64)
_BLOCK = 255  # candidates per counting block: a byte lane never overflows
_CHUNK_BLOCKS = 40  # blocks per vectorized chunk (~10,000 candidates)
_CHUNK_CELLS = 1 << 20  # cells per chunk of the floating-point pass (8 MiB per float64 buffer)
# Byte lane j of _CODE_LANES[code] is bit j of the 7-bit event code (see _event_codes), so
# summing these words counts seven events at once; _HIGH_LANES does options E-H.
# Little-endian words: byte j of the word is lane j on any machine.
_CODE_LANES = np.array([sum(((v >> j) & 1) << (8 * j) for j in range(7)) for v in range(256)], dtype="<u8")
_HIGH_LANES = np.array([sum(((v >> j) & 1) << (8 * j) for j in range(4)) for v in range(256)], dtype="<u4")
_PRESENT, _CORRECT, _ANSWERED = 0, 1, 2  # flag lanes


# --- results -------------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    """A plain float, or None for NaN / undefined."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class OptionStatistics:
    """One option of an item: shares of the item's candidates, the upper and the lower group
    who chose it (single answer) or whose answer included it (multiple answer)."""

    option: int  # index in the author's order: 0 = A
    is_key: bool
    overall: float | None
    upper: float | None
    lower: float | None


@dataclass(frozen=True)
class ItemStatistics:
    """How one question performed in one exam (see the module docstring for definitions)."""

    item_id: Hashable
    column: int  # index of the item in the input arrays
    n: int  # candidates who had the item
    max_points: float
    multiple: bool
    key: tuple[int, ...]  # indices of the correct options (author's order)
    difficulty: float | None  # p: share fully right
    mean_points: float | None
    point_biserial: float | None  # against the rest score
    group_size: int  # g: candidates in each of the upper and lower groups (0: none)
    upper_difficulty: float | None
    lower_difficulty: float | None
    discrimination_index: float | None  # D = p_upper − p_lower
    options: tuple[OptionStatistics, ...]
    omitted: float | None  # share with no answer
    omitted_upper: float | None
    omitted_lower: float | None
    flags: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready, for the question's history (``asdict`` without its deep copies: the fields are plain)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["item_id"] = _plain(self.item_id)
        out["key"] = list(self.key)
        out["options"] = [{f.name: getattr(o, f.name) for f in fields(o)} for o in self.options]
        out["flags"] = list(self.flags)
        return out


@dataclass(frozen=True)
class FormReliability:
    """Reliability over the candidates of one paper form."""

    form: Hashable
    candidates: int
    items: int  # items sat by at least one candidate of the form
    complete: bool  # every candidate of the form had every one of those items
    method: str  # "kr20" or "alpha"
    reliability: float | None
    sd: float | None
    sem: float | None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["form"] = _plain(self.form)
        return out


@dataclass(frozen=True)
class Reliability:
    """Internal consistency of the test (see the module docstring for the sparse case)."""

    method: str  # "kr20" (dichotomous items) or "alpha"
    basis: str  # "complete" (classical) or "pooled" (sparse: pooled item-centred alpha)
    value: float | None
    sem: float | None  # SD(total) × sqrt(1 − value)
    candidates: int
    items: int  # items sat by at least one candidate
    items_per_candidate: float  # mean; the k of the formula
    dichotomous: bool
    forms: tuple[FormReliability, ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["forms"] = [f.to_dict() for f in self.forms]
        return out


@dataclass(frozen=True)
class ScoreDistribution:
    """Totals of the candidates who had at least one item."""

    n: int
    mean: float | None
    sd: float | None  # population SD (ddof = 0)
    median: float | None
    minimum: float | None
    maximum: float | None
    bin_edges: tuple[float, ...]  # len(counts) + 1 edges; bin k is [edge k, edge k+1)
    counts: tuple[int, ...]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bin_edges"] = list(self.bin_edges)
        out["counts"] = list(self.counts)
        return out


@dataclass(frozen=True)
class ItemAnalysis:
    """Everything ``analyse_items`` found: per item, and for the test."""

    items: tuple[ItemStatistics, ...]
    reliability: Reliability
    distribution: ScoreDistribution

    def item(self, item_id: Hashable) -> ItemStatistics:
        for stats in self.items:
            if stats.item_id == item_id:
                return stats
        raise KeyError(item_id)

    def flagged(self) -> tuple[ItemStatistics, ...]:
        return tuple(stats for stats in self.items if stats.flags)

    def to_dict(self) -> dict:
        return {"items": [i.to_dict() for i in self.items], "reliability": self.reliability.to_dict(),
                "distribution": self.distribution.to_dict(), "thresholds": dict(THRESHOLDS)}


# --- counting over candidates ranked by total --------------------------------------------------------

def _event_codes(choices: np.ndarray, correct: np.ndarray, present: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per cell, one byte: bits 0-3 options A-D chosen, bit 4 had the item, bit 5 fully right,
    bit 6 answered; and, only when some answer includes options E-H, a second byte with them
    in bits 0-3. Missing cells are 0. In chunks of rows with reused buffers (cache-sized)."""
    n_candidates, n_items = choices.shape
    code = np.empty((n_candidates, n_items), dtype=np.uint8)
    high = np.empty((n_candidates, n_items), dtype=np.uint8)
    rows = max(1, _CHUNK_CELLS // max(n_items, 1))
    scratch = np.empty((min(rows, n_candidates), n_items), dtype=np.uint8)
    for start in range(0, n_candidates, rows):
        stop = min(start + rows, n_candidates)
        had = present[start:stop].view(np.uint8)
        chosen = np.multiply(choices[start:stop], had, out=high[start:stop])
        cell, bits = code[start:stop], scratch[:stop - start]
        np.bitwise_and(chosen, 0x0F, out=cell)
        np.left_shift(had, 4, out=bits)
        cell |= bits
        np.bitwise_and(correct[start:stop].view(np.uint8), had, out=bits)
        bits <<= 5
        cell |= bits
        np.not_equal(chosen, 0, out=bits.view(bool))
        bits <<= 6
        cell |= bits
        chosen >>= 4
    return code, (high if high.any() else None)


class _RankedCounts:
    """Per item, counts of events (had the item, fully right, answered, chose option j) among
    the first ``p`` candidates in order of total score, for any ``p``, in O(items × block).

    Candidates are taken in order of total once, in chunks; per block of 255 of them the
    events are counted in byte lanes (seven events in one uint64 add, through a lookup table
    from the event code to its lanes), and block counts are cumulated. A query adds the
    cumulated count before its block to the part of the block below ``p``, read from the
    event codes through ``order``.
    """

    def __init__(self, code: np.ndarray, high: np.ndarray | None, order: np.ndarray):
        self.code, self.high, self.order = code, high, order
        n_candidates, n_items = code.shape
        n_blocks = max(1, -(-n_candidates // _BLOCK))
        low_blocks = np.empty((n_blocks, n_items), dtype="<u8")
        high_blocks = np.zeros((n_blocks, n_items), dtype="<u4")
        step = _CHUNK_BLOCKS * _BLOCK
        for start in range(0, n_blocks * _BLOCK, step):  # chunks of ~10,000 candidates: bounded memory
            rows = order[start:start + step]
            blocks = -(-len(rows) // _BLOCK)
            first = start // _BLOCK
            low_blocks[first:first + blocks] = self._block_sums(_CODE_LANES, code[rows], blocks)
            if high is not None:
                high_blocks[first:first + blocks] = self._block_sums(_HIGH_LANES, high[rows], blocks)
        lanes = np.zeros((n_blocks, n_items, 11), dtype=np.uint8)
        lanes[:, :, 0:4] = low_blocks.view(np.uint8).reshape(n_blocks, n_items, 8)[:, :, 0:4]
        lanes[:, :, 4:8] = high_blocks.view(np.uint8).reshape(n_blocks, n_items, 4)
        lanes[:, :, 8:11] = low_blocks.view(np.uint8).reshape(n_blocks, n_items, 8)[:, :, 4:7]
        self.before = np.zeros((n_blocks + 1, n_items, 11), dtype=np.int64)
        np.cumsum(lanes, axis=0, dtype=np.int64, out=self.before[1:])
        self.n_candidates = n_candidates
        self.columns = np.arange(n_items)
        self.within = np.arange(_BLOCK)[None, :]
        self.bits = np.arange(8, dtype=np.uint8)

    @staticmethod
    def _block_sums(table: np.ndarray, cells: np.ndarray, blocks: int) -> np.ndarray:
        if len(cells) < blocks * _BLOCK:  # the last chunk: pad with empty cells to whole blocks
            cells = np.concatenate([cells, np.zeros((blocks * _BLOCK - len(cells), cells.shape[1]), np.uint8)])
        return table[cells].reshape(blocks, _BLOCK, cells.shape[1]).sum(axis=1)

    @property
    def option_totals(self) -> np.ndarray:
        """[I, 8] candidates who chose (or included) each option."""
        return self.before[-1, :, 0:8]

    @property
    def flag_totals(self) -> np.ndarray:
        """[I, 3] candidates who had the item, were fully right, answered."""
        return self.before[-1, :, 8:11]

    def _block_lanes(self, block: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Events of item i's cells in sorted rows [255 × block_i, +255) that come before sorted
        row ``stop[i]``, as 0/1 lanes: [items, 255, 11]."""
        rows = block[:, None] * _BLOCK + self.within
        take = rows < np.minimum(stop, self.n_candidates)[:, None]
        candidates = self.order[np.minimum(rows, max(self.n_candidates - 1, 0))]
        code = self.code[candidates, self.columns[:, None]] * take
        lanes = np.zeros(code.shape + (11,), dtype=np.uint8)
        lanes[:, :, 0:4] = (code[:, :, None] >> self.bits[:4]) & 1
        lanes[:, :, 8:11] = (code[:, :, None] >> self.bits[4:7]) & 1
        if self.high is not None:
            high = self.high[candidates, self.columns[:, None]] * take
            lanes[:, :, 4:8] = (high[:, :, None] >> self.bits[:4]) & 1
        return lanes

    def below(self, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Counts among sorted candidates [0, position[i]) per item: options [I, 8], flags [I, 3]."""
        block = position // _BLOCK
        counts = self.before[block, self.columns] + self._block_lanes(block, position).sum(axis=1)
        return counts[:, 0:8], counts[:, 8:11]

    def position_of(self, k: np.ndarray) -> np.ndarray:
        """Sorted position of each item's k-th candidate (1 ≤ k ≤ the item's n)."""
        present = 8 + _PRESENT
        block = np.count_nonzero(self.before[1:, :, present] < k[None, :], axis=0)
        block = np.minimum(block, len(self.before) - 2)
        lanes = self._block_lanes(block, np.full(len(k), self.n_candidates))
        reached = self.before[block, self.columns, present][:, None] + np.cumsum(lanes[:, :, present], axis=1)
        return block * _BLOCK + np.argmax(reached >= k[:, None], axis=1)


class _PointSums(NamedTuple):
    """Per-candidate and per-item sums of the points, from one chunked pass over ``scores``."""

    totals: np.ndarray  # [C] Σ points of each candidate
    items_sat: np.ndarray  # [C] items each candidate had
    sx: np.ndarray  # [I] Σ x
    sxx: np.ndarray  # [I] Σ x²
    xmin: np.ndarray  # [I] min x over the item's candidates (0 counted for missing cells)
    xmax: np.ndarray  # [I] max x, likewise
    centre: float  # c: the totals below are centred on it (any value near the mean)
    st: np.ndarray  # [I] Σ (T − c) over the item's candidates
    stt: np.ndarray  # [I] Σ (T − c)²
    sxt: np.ndarray  # [I] Σ x (T − c)


def _point_sums(scores: np.ndarray, present: np.ndarray) -> _PointSums:
    """One pass in chunks of rows, so the temporaries stay small and are reused (allocating
    C × I floats costs more than the arithmetic); no loop over single candidates."""
    n_candidates, n_items = scores.shape
    rows = max(1, min(n_candidates, _CHUNK_CELLS // max(n_items, 1)))
    x_buffer = np.empty((rows, n_items))
    negative = np.empty((rows, n_items))
    mask = np.empty((rows, n_items))
    totals = np.zeros(n_candidates)
    items_sat = np.zeros(n_candidates)
    sx, sxx, st, stt, sxt = (np.zeros(n_items) for _ in range(5))
    xmin, xmax = np.zeros(n_items), np.zeros(n_items)
    centre = 0.0
    for start in range(0, n_candidates, rows):
        stop = min(start + rows, n_candidates)
        r = stop - start
        x, m = x_buffer[:r], mask[:r]
        # NaN → 0 without a masked copy (np.where on a scattered mask is several times slower):
        # fmax/fmin ignore NaN, and max(x, 0) + min(x, 0) = x.
        np.fmax(scores[start:stop], 0.0, out=x)
        x += np.fmin(scores[start:stop], 0.0, out=negative[:r])
        np.copyto(m, present[start:stop])
        t = x.sum(axis=1)
        if not np.isfinite(t).all():
            raise ValueError("scores must be finite where present (NaN marks a missing item)")
        totals[start:stop] = t
        items_sat[start:stop] = present[start:stop].view(np.uint8).sum(axis=1, dtype=np.int64)
        if start == 0:
            centre = float(t.mean())
        t = t - centre
        sx += x.sum(axis=0)
        sxx += np.einsum("ci,ci->i", x, x)
        np.minimum(xmin, x.min(axis=0), out=xmin)
        np.maximum(xmax, x.max(axis=0), out=xmax)
        # einsum, not BLAS: numpy's threaded BLAS stalls on a busy 2-core machine
        st += np.einsum("c,ci->i", t, m)
        stt += np.einsum("c,ci->i", t * t, m)
        sxt += np.einsum("c,ci->i", t, x)
    return _PointSums(totals, items_sat, sx, sxx, xmin, xmax, centre, st, stt, sxt)


def _sum_over_items(present: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ values[i] over the items each candidate had, in chunks of rows: [C]."""
    n_candidates, n_items = present.shape
    rows = max(1, min(n_candidates, _CHUNK_CELLS // max(n_items, 1)))
    out = np.empty(n_candidates)
    mask = np.empty((rows, n_items))
    for start in range(0, n_candidates, rows):
        stop = min(start + rows, n_candidates)
        np.copyto(mask[:stop - start], present[start:stop])
        out[start:stop] = np.einsum("ci,i->c", mask[:stop - start], values)
    return out


# --- the same sums from cells (candidates × the items each had), chunk by chunk ----------------------

class CellChunk(NamedTuple):
    """The cells of some candidates, one row per candidate, one cell per item they had: what
    ``analyse_cells`` reads instead of [C, I] matrices (a paper holds 120 of a 300-question pool)."""

    item: np.ndarray  # [r, q] int: the item (column) of each cell, -1 where the cell holds none
    points: np.ndarray  # [r, q] float64 points earned (ignored where item is -1)
    correct: np.ndarray  # [r, q] bool fully right
    choices: np.ndarray  # [r, q] uint8 chosen options, author's order (0 = no answer)


class RepeatedItem(ValueError):
    """A candidate's cells name one item twice: the cells are not one per item."""


def _cell_sums(cells, rows: np.ndarray, n_items: int, chunk_rows: int, code: np.ndarray | None = None,
               high: list | None = None) -> tuple[_PointSums, np.ndarray]:
    """The point sums of the candidates ``rows`` (and the item counts n) in one pass over their cells,
    chunk by chunk, each chunk holding whole candidates (so the totals of its candidates are known
    within it). With ``code``, also writes the event codes of each cell into code[rows] ([C, I],
    ``_event_codes``' layout; ``rows`` then ascending and contiguous) and E-H options into a [C, I]
    array made in ``high[0]`` when some answer has them."""
    totals = np.zeros(len(rows))
    items_sat = np.zeros(len(rows))
    n = np.zeros(n_items, dtype=np.int64)
    sx, sxx, st, stt, sxt = (np.zeros(n_items) for _ in range(5))
    xmin, xmax = np.zeros(n_items), np.zeros(n_items)
    centre = None
    for first in range(0, len(rows), chunk_rows):
        part = rows[first:first + chunk_rows]
        chunk = cells(part)
        item = np.asarray(chunk.item)
        has = item >= 0
        full = bool(has.all())
        it = item.astype(np.intp, copy=False).ravel() if full else item[has].astype(np.intp)  # no copy of intp cells
        x = np.asarray(chunk.points, dtype=np.float64)
        if not full:
            x = np.where(has, x, 0.0)
        t = x.sum(axis=1)
        if not np.isfinite(t).all():
            raise ValueError("scores must be finite where present")
        if it.size and (it.max() >= n_items):
            raise ValueError(f"a cell names item {int(it.max())}, outside the {n_items} items")
        x = x.ravel() if full else x[has]
        totals[first:first + len(part)] = t
        items_sat[first:first + len(part)] = has.sum(axis=1)
        if centre is None:
            centre = float(t.mean()) if len(t) else 0.0
        tc = np.repeat(t - centre, has.shape[1]) if full else np.broadcast_to((t - centre)[:, None], has.shape)[has]
        n += np.bincount(it, minlength=n_items)
        sx += np.bincount(it, x, n_items)
        sxx += np.bincount(it, x * x, n_items)
        st += np.bincount(it, tc, n_items)
        stt += np.bincount(it, tc * tc, n_items)
        sxt += np.bincount(it, x * tc, n_items)
        negative = x < 0
        if negative.any():
            np.minimum.at(xmin, it[negative], x[negative])
        np.maximum.at(xmax, it, x)
        if code is not None:
            _put_codes(chunk, has, full, it, code, high, int(part[0]) if len(part) else 0, n_items)
    return _PointSums(totals, items_sat, sx, sxx, xmin, xmax, centre or 0.0, st, stt, sxt), n


def _put_codes(chunk: CellChunk, has: np.ndarray, full: bool, it: np.ndarray, code: np.ndarray, high: list,
               start: int, n_items: int) -> None:
    choices = np.asarray(chunk.choices, dtype=np.uint8)
    cell = (choices & 0x0F) | np.uint8(1 << 4)
    cell |= np.asarray(chunk.correct, dtype=np.uint8) << 5
    cell |= (choices != 0).view(np.uint8) << 6
    rows = len(has)
    where = (np.arange(rows, dtype=np.intp)[:, None] * n_items)
    where = (where + it.reshape(rows, -1)).ravel() if full else np.broadcast_to(where, has.shape)[has] + it
    block = code[start:start + rows]
    before = int(np.count_nonzero(block & (1 << 4)))
    np.put(block, where, cell.ravel() if full else cell[has])
    if int(np.count_nonzero(block & (1 << 4))) - before != where.size:
        raise RepeatedItem("a candidate's cells name one item more than once")
    upper = choices >> 4
    if upper.any():
        if high[0] is None:
            high[0] = np.zeros(code.shape, dtype=np.uint8)
        np.put(high[0][start:start + rows], where, upper.ravel() if full else upper[has])


def _sum_over_codes(code: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ values[i] over the items each of the candidates ``rows`` had (the present bit of their codes)."""
    out = np.empty(len(rows))
    step = max(1, _CHUNK_CELLS // max(code.shape[1], 1))
    for first in range(0, len(rows), step):
        part = rows[first:first + step]
        block = code[part[0]:part[-1] + 1] if len(part) and part[-1] - part[0] + 1 == len(part) else code[part]
        present = ((block >> 4) & 1).astype(np.float64)
        out[first:first + len(part)] = np.einsum("ci,i->c", present, values)
    return out


# --- the analysis ----------------------------------------------------------------------------------

def _shares(counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """counts / n broadcast over trailing axes; NaN where n is 0."""
    n = np.asarray(n, dtype=np.float64)
    shape = n.shape + (1,) * (counts.ndim - n.ndim)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n.reshape(shape) > 0, counts / n.reshape(shape), np.nan)


def _histogram_edges(totals: np.ndarray) -> np.ndarray:
    """Bins of a nice width, at least the grain of the totals (1 for whole-point totals, so no
    bin holds a different number of possible scores than another)."""
    low, high = float(totals.min()), float(totals.max())
    grain = next((g for g in (1.0, 0.5, 0.25) if np.all(np.abs(totals / g - np.round(totals / g)) < 1e-9)), 0.0)
    steps = [0.25, 0.5] + [m * 10 ** e for e in range(0, 12) for m in (1, 2, 5)]
    step = steps[-1]
    for step in steps:
        if step >= grain and math.floor(high / step) - math.floor(low / step) + 1 <= HISTOGRAM_MAX_BINS:
            break
    first, last = math.floor(low / step), math.floor(high / step)
    return np.arange(first, last + 2) * step


def score_distribution(totals: np.ndarray, bins: int | Sequence[float] | None = None) -> ScoreDistribution:
    """Summary and histogram of candidates' totals. ``bins``: None (nice width, see the module
    docstring), a number of equal bins over [min, max], or the bin edges."""
    totals = np.asarray(totals, dtype=np.float64)
    if totals.size == 0:
        return ScoreDistribution(0, None, None, None, None, None, (), ())
    low, high = float(totals.min()), float(totals.max())
    # Nice edges end past the maximum, so every bin is [a, a + width) as stated.
    counts, edges = np.histogram(totals, bins=_histogram_edges(totals) if bins is None else bins)
    return ScoreDistribution(
        n=int(totals.size), mean=float(totals.mean()), sd=float(totals.std()), median=float(np.median(totals)),
        minimum=low, maximum=high, bin_edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts))


def _alpha(k: float, item_variance: float, total_variance: float) -> float | None:
    """k/(k−1) · (1 − item variance / total variance), None when undefined."""
    if k <= 1 or not total_variance > 1e-12 * max(1.0, item_variance):
        return None
    return float(k / (k - 1) * (1.0 - item_variance / total_variance))


def _sem(sd: float | None, reliability: float | None) -> float | None:
    if sd is None or reliability is None or reliability > 1:
        return None
    return float(sd * math.sqrt(1.0 - reliability))


class _Pooled(NamedTuple):
    """Terms of the pooled item-centred alpha, over the candidates with at least one item."""

    sat: np.ndarray  # [C] bool: the candidate had at least one item
    candidates: int
    items_per_candidate: float  # k̄
    item_variance: float  # V_item
    total_variance: float  # V_total
    complete: bool  # every such candidate had every item that anyone had


def _item_means(sums: _PointSums, n: np.ndarray) -> np.ndarray:
    return sums.sx / np.maximum(n, 1)


def _pooled_terms(sums: _PointSums, n: np.ndarray, mean_over_items: np.ndarray) -> _Pooled:
    """``mean_over_items[c]``: Σ of ``_item_means`` over the items candidate c had."""
    sat = sums.items_sat > 0
    candidates = int(np.count_nonzero(sat))
    if candidates == 0:
        return _Pooled(sat, 0, 0.0, 0.0, 0.0, False)
    mean = _item_means(sums, n)
    deviation = (sums.totals - mean_over_items)[sat]
    return _Pooled(
        sat=sat, candidates=candidates, items_per_candidate=float(sums.items_sat[sat].mean()),
        item_variance=float(np.sum(sums.sxx - n * mean * mean)) / candidates,
        total_variance=float(deviation @ deviation) / candidates,
        complete=bool(np.all((n == 0) | (n == candidates))))


def _is_dichotomous(sums: _PointSums, n: np.ndarray, max_points: np.ndarray) -> bool:
    """Every observed score is 0 or the item's marks, and all sat items carry the same marks.

    With every value in [0, m], Σ x(x − m) = 0 holds only when each x is 0 or m."""
    used = n > 0
    if not used.any():
        return False
    marks = max_points[used]
    if not np.allclose(marks, marks[0]) or marks[0] <= 0:
        return False
    if (sums.xmin[used] < 0).any() or (sums.xmax[used] > marks * (1 + 1e-12)).any():
        return False
    sx, sxx = sums.sx[used], sums.sxx[used]
    return bool(np.all(np.abs(sxx - marks * sx) <= 1e-9 * np.maximum(1.0, marks * sx)))


def _form_reliability(form, terms, dichotomous: bool) -> tuple[FormReliability, ...]:
    """``terms(rows)``: (point sums, n per item, Σ item means per candidate) over those candidates."""
    labels, inverse = np.unique(np.asarray(form), return_inverse=True)
    found = []
    for f, label in enumerate(labels):  # one pass per form (a handful of fixed forms)
        sums, n, mean_over_items = terms(np.flatnonzero(inverse == f))
        pooled = _pooled_terms(sums, n, mean_over_items)
        value = _alpha(pooled.items_per_candidate, pooled.item_variance, pooled.total_variance)
        sd = float(sums.totals[pooled.sat].std()) if pooled.candidates else None
        found.append(FormReliability(
            form=_plain(label), candidates=pooled.candidates, items=int(np.count_nonzero(n)),
            complete=pooled.complete, method="kr20" if dichotomous else "alpha", reliability=value, sd=sd,
            sem=_sem(sd, value)))
    return tuple(found)


def _validate(scores, correct, choices, key, n_options, max_points, multiple):
    if scores.ndim != 2:
        raise ValueError(f"scores must be [candidates, items], got shape {scores.shape}")
    shape = scores.shape
    if correct.shape != shape or choices.shape != shape:
        raise ValueError(f"scores, correct and choices must share one shape, got {shape}, {correct.shape}, "
                         f"{choices.shape}")
    n_items = shape[1]
    for name, array in (("key", key), ("n_options", n_options), ("max_points", max_points), ("multiple", multiple)):
        if array.shape != (n_items,):
            raise ValueError(f"{name} must give one value per item ({n_items}), got shape {array.shape}")
    if n_items and (n_options.min() < 1 or n_options.max() > MAX_OPTIONS):
        raise ValueError(f"n_options must be between 1 and {MAX_OPTIONS}")


def analyse_items(scores, correct, choices, key, n_options, max_points, *, multiple=None,
                  item_ids: Sequence[Hashable] | None = None, form=None,
                  bins: int | Sequence[float] | None = None) -> ItemAnalysis:
    """Item and test statistics of one exam: arrays in (see the module docstring), results out.

    Column i of every [C, I] array is one question version; the caller builds them from the
    graded responses, mapping each displayed option back to the author's order (a paper item's
    ``option_order[j]`` is the author's index of displayed option j), e.g. with exam.grading's
    masks: ``author_mask = Σ 1 << option_order[j] over displayed bits j``.

    ``scores``   [C, I] float points, NaN where the candidate did not have the item;
    ``correct``  [C, I] bool fully right; ``choices`` [C, I] uint8 author-order masks, 0 = none;
    ``key``      [I] uint8 author-order masks; ``n_options`` [I]; ``max_points`` [I];
    ``multiple`` [I] bool, default: the key has more than one option;
    ``item_ids`` labels carried into the results (default 0..I−1);
    ``form``     [C] labels of fixed paper forms, for reliability per form;
    ``bins``     the score histogram's bins (default: nice widths, see ``score_distribution``).

    Raises ValueError for inconsistent shapes, n_options outside 1..8, or infinite scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    choices = np.asarray(choices, dtype=np.uint8)
    key = np.asarray(key, dtype=np.uint8)
    n_options = np.asarray(n_options, dtype=np.int64)
    max_points = np.asarray(max_points, dtype=np.float64)
    multiple = (_POPCOUNT[key] > 1) if multiple is None else np.asarray(multiple, dtype=bool)
    _validate(scores, correct, choices, key, n_options, max_points, multiple)
    n_candidates, n_items = scores.shape
    item_ids = list(range(n_items)) if item_ids is None else list(item_ids)
    if len(item_ids) != n_items:
        raise ValueError(f"item_ids must name each of the {n_items} items")
    if form is not None and np.shape(form) != (n_candidates,):
        raise ValueError(f"form must give one label per candidate ({n_candidates})")

    present = ~np.isnan(scores)
    sums = _point_sums(scores, present)
    n = present.sum(axis=0)

    def dense_terms(rows):
        rows_present = present[rows]
        rows_sums = _point_sums(scores[rows], rows_present)
        rows_n = rows_present.sum(axis=0)
        return rows_sums, rows_n, _sum_over_items(rows_present, _item_means(rows_sums, rows_n))

    return _analyse(sums, _sum_over_items(present, _item_means(sums, n)), _event_codes(choices, correct, present),
                    key, n_options, max_points, multiple, item_ids, form, dense_terms, bins)


def analyse_cells(cells, n_candidates: int, key, n_options, max_points, *, multiple=None,
                  item_ids: Sequence[Hashable] | None = None, form=None, bins: int | Sequence[float] | None = None,
                  chunk_rows: int = 8192) -> ItemAnalysis:
    """``analyse_items`` for data read as cells: the same statistics (equal up to floating-point
    rounding) without [C, I] float matrices, so 1,000,000 candidates fit in memory.

    ``cells(rows)`` gives the ``CellChunk`` of the candidates ``rows`` (an ascending index array,
    whole candidates, at most ``chunk_rows`` of them): row r of each array is candidate rows[r],
    each cell one item they had (at most once: ``RepeatedItem`` otherwise) or -1. Each chunk is
    read once, plus once per fixed form when ``form`` is given. The other arguments are those of
    ``analyse_items``, per item (``key``, ``n_options``, ``max_points``, ``multiple``) or per
    candidate (``form``)."""
    key = np.asarray(key, dtype=np.uint8)
    n_items = len(key)
    n_options = np.asarray(n_options, dtype=np.int64)
    max_points = np.asarray(max_points, dtype=np.float64)
    multiple = (_POPCOUNT[key] > 1) if multiple is None else np.asarray(multiple, dtype=bool)
    for name, array in (("n_options", n_options), ("max_points", max_points), ("multiple", multiple)):
        if array.shape != (n_items,):
            raise ValueError(f"{name} must give one value per item ({n_items}), got shape {array.shape}")
    if n_items and (n_options.min() < 1 or n_options.max() > MAX_OPTIONS):
        raise ValueError(f"n_options must be between 1 and {MAX_OPTIONS}")
    item_ids = list(range(n_items)) if item_ids is None else list(item_ids)
    if len(item_ids) != n_items:
        raise ValueError(f"item_ids must name each of the {n_items} items")
    if form is not None and np.shape(form) != (n_candidates,):
        raise ValueError(f"form must give one label per candidate ({n_candidates})")

    everyone = np.arange(n_candidates)
    code = np.zeros((n_candidates, n_items), dtype=np.uint8)
    high: list = [None]
    sums, n = _cell_sums(cells, everyone, n_items, chunk_rows, code, high)

    def cell_terms(rows):
        rows_sums, rows_n = _cell_sums(cells, rows, n_items, chunk_rows)
        return rows_sums, rows_n, _sum_over_codes(code, rows, _item_means(rows_sums, rows_n))

    return _analyse(sums, _sum_over_codes(code, everyone, _item_means(sums, n)), (code, high[0]), key, n_options,
                    max_points, multiple, item_ids, form, cell_terms, bins)


def _analyse(sums: _PointSums, mean_over_items: np.ndarray, codes: tuple[np.ndarray, np.ndarray | None],
             key: np.ndarray, n_options: np.ndarray, max_points: np.ndarray, multiple: np.ndarray,
             item_ids: list, form, form_terms, bins) -> ItemAnalysis:
    """The statistics from the candidates' point sums and the [C, I] event codes (both layouts)."""
    n_items = len(key)
    # Rank candidates by total and count events per item (present, correct, answered, options).
    ranking = np.round(sums.totals, TOTAL_DECIMALS)
    order = np.argsort(ranking, kind="stable")
    ranked = ranking[order]
    counts = _RankedCounts(*codes, order)
    n = counts.flag_totals[:, _PRESENT]
    nf = n.astype(np.float64)

    # Point-biserial against the rest score R = T − x, from the column sums (T centred).
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_points = sums.sx / nf
        mean_rest = (sums.st - sums.sx) / nf
        var_x = sums.sxx / nf - mean_points ** 2
        var_rest = (sums.stt - 2 * sums.sxt + sums.sxx) / nf - mean_rest ** 2
        cov = (sums.sxt - sums.sxx) / nf - mean_points * mean_rest
        defined = ((n >= 2) & (var_x > 1e-12 * (1 + sums.sxx / nf))
                   & (var_rest > 1e-12 * (1 + (sums.stt + sums.sxx) / nf)))
        point_biserial = np.where(defined, np.clip(cov / np.sqrt(np.abs(var_x * var_rest)), -1.0, 1.0), np.nan)
    # A zero correlation must not read as negative through rounding noise.
    point_biserial[np.abs(point_biserial) < 1e-12] = 0.0
    difficulty = _shares(counts.flag_totals[:, _CORRECT], n)
    omitted = _shares(n - counts.flag_totals[:, _ANSWERED], n)

    # Upper and lower groups: g per item, boundary ties shared (see the module docstring).
    g = np.where(n >= 2, np.maximum(1, np.floor(GROUP_SHARE * n + 0.5)), 0).astype(np.int64)
    lower_options, lower_flags = _group_counts(counts, ranked, g, g, from_top=False)
    upper_options, upper_flags = _group_counts(counts, ranked, n - g + 1, g, from_top=True)
    lower_options, lower_flags = _shares(lower_options, g), _shares(lower_flags, g)
    upper_options, upper_flags = _shares(upper_options, g), _shares(upper_flags, g)
    overall_options = _shares(counts.option_totals, n)
    discrimination = upper_flags[:, _CORRECT] - lower_flags[:, _CORRECT]

    # Test statistics.
    pooled = _pooled_terms(sums, n, mean_over_items)
    dichotomous = _is_dichotomous(sums, n, max_points)
    value = _alpha(pooled.items_per_candidate, pooled.item_variance, pooled.total_variance)
    distribution = score_distribution(sums.totals[pooled.sat], bins)
    reliability = Reliability(
        method="kr20" if dichotomous else "alpha",
        basis="complete" if pooled.complete else "pooled", value=value, sem=_sem(distribution.sd, value),
        candidates=pooled.candidates, items=int(np.count_nonzero(n)),
        items_per_candidate=pooled.items_per_candidate, dichotomous=dichotomous,
        forms=() if form is None else _form_reliability(form, form_terms, dichotomous))

    items = []
    for i in range(n_items):  # assembling results: per item, no candidate data touched
        key_options = tuple(j for j in range(int(n_options[i])) if (int(key[i]) >> j) & 1)
        options = tuple(OptionStatistics(
            option=j, is_key=j in key_options, overall=_number(overall_options[i, j]),
            upper=_number(upper_options[i, j]), lower=_number(lower_options[i, j]))
            for j in range(int(n_options[i])))
        p, r, d = _number(difficulty[i]), _number(point_biserial[i]), _number(discrimination[i])
        items.append(ItemStatistics(
            item_id=_plain(item_ids[i]), column=i, n=int(n[i]), max_points=float(max_points[i]),
            multiple=bool(multiple[i]), key=key_options, difficulty=p, mean_points=_number(mean_points[i]),
            point_biserial=r, group_size=int(g[i]), upper_difficulty=_number(upper_flags[i, _CORRECT]),
            lower_difficulty=_number(lower_flags[i, _CORRECT]), discrimination_index=d, options=options,
            omitted=_number(omitted[i]), omitted_upper=_number(1 - upper_flags[i, _ANSWERED]),
            omitted_lower=_number(1 - lower_flags[i, _ANSWERED]),
            flags=item_flags(p, r, d, options)))
    return ItemAnalysis(items=tuple(items), reliability=reliability, distribution=distribution)


def _group_counts(counts: _RankedCounts, ranked: np.ndarray, k: np.ndarray, g: np.ndarray, *,
                  from_top: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weighted event counts of each item's lower (or upper) group of g candidates.

    The boundary total t is that of the item's k-th candidate by total (k = g for the lower
    group, n − g + 1 for the upper). Candidates strictly beyond t count fully; the candidates
    tied at t share the remaining places: weight (g − beyond) / tied.
    """
    if not len(ranked):
        return np.zeros((len(k), 8)), np.zeros((len(k), 3))
    position = counts.position_of(np.maximum(k, 1))  # k < 1 only where g = 0: no group, weight 0
    boundary = ranked[np.minimum(position, len(ranked) - 1)]
    first = np.searchsorted(ranked, boundary, side="left")
    after = np.searchsorted(ranked, boundary, side="right")
    options_first, flags_first = counts.below(first)
    options_after, flags_after = counts.below(after)
    tied = flags_after[:, _PRESENT] - flags_first[:, _PRESENT]
    if from_top:
        beyond_options = counts.option_totals - options_after
        beyond_flags = counts.flag_totals - flags_after
    else:
        beyond_options, beyond_flags = options_first, flags_first
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tied > 0, (g - beyond_flags[:, _PRESENT]) / np.maximum(tied, 1), 0.0)
    share = np.where(g > 0, share, 0.0)
    options = beyond_options + share[:, None] * (options_after - options_first)
    flags = beyond_flags + share[:, None] * (flags_after - flags_first)
    return options, flags


def item_flags(difficulty: float | None, point_biserial: float | None, discrimination_index: float | None,
               options: Sequence[OptionStatistics]) -> tuple[str, ...]:
    """The flags of one item from its statistics (thresholds: the module constants)."""
    flags = []
    negative = point_biserial is not None and point_biserial < 0
    if negative:
        flags.append(NEGATIVE_DISCRIMINATION)
    elif ((point_biserial is not None and point_biserial < LOW_POINT_BISERIAL)
          or (discrimination_index is not None and discrimination_index < LOW_DISCRIMINATION_INDEX)):
        flags.append(LOW_DISCRIMINATION)
    if difficulty is not None and difficulty > TOO_EASY:
        flags.append(TOO_EASY_FLAG)
    if difficulty is not None and difficulty < TOO_HARD:
        flags.append(TOO_HARD_FLAG)
    if _upper_prefers_a_non_key(options):
        flags.append(POSSIBLE_WRONG_KEY)
    return tuple(flags)


def _upper_prefers_a_non_key(options: Sequence[OptionStatistics]) -> bool:
    keys = [o.upper for o in options if o.is_key and o.upper is not None]
    others = [o.upper for o in options if not o.is_key and o.upper is not None]
    if not keys or not others:
        return False
    # Single answer: the key's share is its own (there is one key option). Multiple: the
    # least-chosen key option, so a non-key option more popular than any key option counts.
    return max(others) > min(keys) + 1e-12
