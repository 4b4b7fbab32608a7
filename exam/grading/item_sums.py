"""The passes over candidates that the item analysis (``exam.grading.item_analysis``) is made of.

Pure numpy. Per item, the sums of the points and of the candidates' totals (``PointSums``), in
one chunked pass over [C, I] matrices (``point_sums``) or over the cells each candidate had
(``cell_sums``, reading ``CellChunk`` rows: no [C, I] float matrix, so a million candidates fit);
each cell's events as one byte (``event_codes``: had the item, fully right, answered, the options
chosen); and the counts of those events among the candidates ranked by total (``RankedCounts``),
from which the upper and lower groups are read.

Cost: a fixed number of vectorized passes over the C × I arrays and no Python loop over
candidates or items; the passes run over chunks of rows with reused buffers (allocating and
touching C × I temporaries costs more than the arithmetic), and use einsum rather than BLAS
(numpy's threaded BLAS stalls when other processes hold the cores). 100,000 candidates × a
300-question pool (120 each, sparse) take about 0.26 s of CPU, single-threaded, on the 2-core
machine, and about 130 MB of temporary memory.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

_BLOCK = 255  # candidates per counting block: a byte lane never overflows
_CHUNK_BLOCKS = 40  # blocks per vectorized chunk (~10,000 candidates)
_CHUNK_CELLS = 1 << 20  # cells per chunk of the floating-point pass (8 MiB per float64 buffer)
# Byte lane j of _CODE_LANES[code] is bit j of the 7-bit event code (see event_codes), so
# summing these words counts seven events at once; _HIGH_LANES does options E-H.
# Little-endian words: byte j of the word is lane j on any machine.
_CODE_LANES = np.array([sum(((v >> j) & 1) << (8 * j) for j in range(7)) for v in range(256)], dtype="<u8")
_HIGH_LANES = np.array([sum(((v >> j) & 1) << (8 * j) for j in range(4)) for v in range(256)], dtype="<u4")
PRESENT, CORRECT, ANSWERED = 0, 1, 2  # flag lanes


# --- counting over candidates ranked by total --------------------------------------------------------

def event_codes(choices: np.ndarray, correct: np.ndarray, present: np.ndarray
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


class RankedCounts:
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
        present = 8 + PRESENT
        block = np.count_nonzero(self.before[1:, :, present] < k[None, :], axis=0)
        block = np.minimum(block, len(self.before) - 2)
        lanes = self._block_lanes(block, np.full(len(k), self.n_candidates))
        reached = self.before[block, self.columns, present][:, None] + np.cumsum(lanes[:, :, present], axis=1)
        return block * _BLOCK + np.argmax(reached >= k[:, None], axis=1)


class PointSums(NamedTuple):
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


def point_sums(scores: np.ndarray, present: np.ndarray) -> PointSums:
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
    return PointSums(totals, items_sat, sx, sxx, xmin, xmax, centre, st, stt, sxt)


def sum_over_items(present: np.ndarray, values: np.ndarray) -> np.ndarray:
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


def item_means(sums: PointSums, n: np.ndarray) -> np.ndarray:
    return sums.sx / np.maximum(n, 1)


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


def cell_sums(cells, rows: np.ndarray, n_items: int, chunk_rows: int, code: np.ndarray | None = None,
               high: list | None = None) -> tuple[PointSums, np.ndarray]:
    """The point sums of the candidates ``rows`` (and the item counts n) in one pass over their cells,
    chunk by chunk, each chunk holding whole candidates (so the totals of its candidates are known
    within it). With ``code``, also writes the event codes of each cell into code[rows] ([C, I],
    ``event_codes``' layout; ``rows`` then ascending and contiguous) and E-H options into a [C, I]
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
    return PointSums(totals, items_sat, sx, sxx, xmin, xmax, centre or 0.0, st, stt, sxt), n


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


def sum_over_codes(code: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ values[i] over the items each of the candidates ``rows`` had (the present bit of their codes)."""
    out = np.empty(len(rows))
    step = max(1, _CHUNK_CELLS // max(code.shape[1], 1))
    for first in range(0, len(rows), step):
        part = rows[first:first + step]
        block = code[part[0]:part[-1] + 1] if len(part) and part[-1] - part[0] + 1 == len(part) else code[part]
        present = ((block >> 4) & 1).astype(np.float64)
        out[first:first + len(part)] = np.einsum("ci,i->c", present, values)
    return out
