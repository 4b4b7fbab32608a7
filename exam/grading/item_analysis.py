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

Test statistics: the reliability (KR-20 or Cronbach's alpha; pooled item-centred alpha when
candidates drew different questions; per fixed form), its SEM and the score distribution, defined
and computed in ``exam.grading.reliability``. The passes over candidates (point sums, event codes,
counts among candidates ranked by total), and what they cost, are ``exam.grading.item_sums``.

Contents: thresholds and flags; the results (``OptionStatistics``, ``ItemStatistics``,
``ItemAnalysis``); the entry points ``analyse_items`` ([C, I] matrices) and ``analyse_cells``
(cells read chunk by chunk), both through ``_analyse``; the groups (``_group_counts``) and
``item_flags``.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from exam.grading.item_sums import (
    ANSWERED,
    CORRECT,
    PRESENT,
    PointSums,
    RankedCounts,
    cell_sums,
    event_codes,
    item_means,
    point_sums,
    sum_over_codes,
    sum_over_items,
)
from exam.grading.reliability import (
    Reliability,
    ScoreDistribution,
    alpha,
    form_reliability,
    is_dichotomous,
    plain,
    pooled_terms,
    score_distribution,
    sem,
)

# --- thresholds and settings ----------------------------------------------------------------------

GROUP_SHARE = 0.27  # upper and lower groups: 27 % of the item's candidates each (Kelley)
LOW_POINT_BISERIAL = 0.10  # 0 ≤ r_pb < this: low discrimination
LOW_DISCRIMINATION_INDEX = 0.10  # D < this: low discrimination
TOO_EASY = 0.90  # p > this: too easy
TOO_HARD = 0.20  # p < this: too hard
TOTAL_DECIMALS = 9  # totals are rounded to this before ranking into groups
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


# --- results -------------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    """A plain float, or None for NaN / undefined."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


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
        out["item_id"] = plain(self.item_id)
        out["key"] = list(self.key)
        out["options"] = [{f.name: getattr(o, f.name) for f in fields(o)} for o in self.options]
        out["flags"] = list(self.flags)
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


# --- the analysis ----------------------------------------------------------------------------------

def _shares(counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """counts / n broadcast over trailing axes; NaN where n is 0."""
    n = np.asarray(n, dtype=np.float64)
    shape = n.shape + (1,) * (counts.ndim - n.ndim)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n.reshape(shape) > 0, counts / n.reshape(shape), np.nan)


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
    sums = point_sums(scores, present)
    n = present.sum(axis=0)

    def dense_terms(rows):
        rows_present = present[rows]
        rows_sums = point_sums(scores[rows], rows_present)
        rows_n = rows_present.sum(axis=0)
        return rows_sums, rows_n, sum_over_items(rows_present, item_means(rows_sums, rows_n))

    return _analyse(sums, sum_over_items(present, item_means(sums, n)), event_codes(choices, correct, present),
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
    sums, n = cell_sums(cells, everyone, n_items, chunk_rows, code, high)

    def cell_terms(rows):
        rows_sums, rows_n = cell_sums(cells, rows, n_items, chunk_rows)
        return rows_sums, rows_n, sum_over_codes(code, rows, item_means(rows_sums, rows_n))

    return _analyse(sums, sum_over_codes(code, everyone, item_means(sums, n)), (code, high[0]), key, n_options,
                    max_points, multiple, item_ids, form, cell_terms, bins)


def _analyse(sums: PointSums, mean_over_items: np.ndarray, codes: tuple[np.ndarray, np.ndarray | None],
             key: np.ndarray, n_options: np.ndarray, max_points: np.ndarray, multiple: np.ndarray,
             item_ids: list, form, form_terms, bins) -> ItemAnalysis:
    """The statistics from the candidates' point sums and the [C, I] event codes (both layouts)."""
    n_items = len(key)
    # Rank candidates by total and count events per item (present, correct, answered, options).
    ranking = np.round(sums.totals, TOTAL_DECIMALS)
    order = np.argsort(ranking, kind="stable")
    ranked = ranking[order]
    counts = RankedCounts(*codes, order)
    n = counts.flag_totals[:, PRESENT]
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
    difficulty = _shares(counts.flag_totals[:, CORRECT], n)
    omitted = _shares(n - counts.flag_totals[:, ANSWERED], n)

    # Upper and lower groups: g per item, boundary ties shared (see the module docstring).
    g = np.where(n >= 2, np.maximum(1, np.floor(GROUP_SHARE * n + 0.5)), 0).astype(np.int64)
    lower_options, lower_flags = _group_counts(counts, ranked, g, g, from_top=False)
    upper_options, upper_flags = _group_counts(counts, ranked, n - g + 1, g, from_top=True)
    lower_options, lower_flags = _shares(lower_options, g), _shares(lower_flags, g)
    upper_options, upper_flags = _shares(upper_options, g), _shares(upper_flags, g)
    overall_options = _shares(counts.option_totals, n)
    discrimination = upper_flags[:, CORRECT] - lower_flags[:, CORRECT]

    # Test statistics.
    pooled = pooled_terms(sums, n, mean_over_items)
    dichotomous = is_dichotomous(sums, n, max_points)
    value = alpha(pooled.items_per_candidate, pooled.item_variance, pooled.total_variance)
    distribution = score_distribution(sums.totals[pooled.sat], bins)
    reliability = Reliability(
        method="kr20" if dichotomous else "alpha",
        basis="complete" if pooled.complete else "pooled", value=value, sem=sem(distribution.sd, value),
        candidates=pooled.candidates, items=int(np.count_nonzero(n)),
        items_per_candidate=pooled.items_per_candidate, dichotomous=dichotomous,
        forms=() if form is None else form_reliability(form, form_terms, dichotomous))

    items = []
    for i in range(n_items):  # assembling results: per item, no candidate data touched
        key_options = tuple(j for j in range(int(n_options[i])) if (int(key[i]) >> j) & 1)
        options = tuple(OptionStatistics(
            option=j, is_key=j in key_options, overall=_number(overall_options[i, j]),
            upper=_number(upper_options[i, j]), lower=_number(lower_options[i, j]))
            for j in range(int(n_options[i])))
        p, r, d = _number(difficulty[i]), _number(point_biserial[i]), _number(discrimination[i])
        items.append(ItemStatistics(
            item_id=plain(item_ids[i]), column=i, n=int(n[i]), max_points=float(max_points[i]),
            multiple=bool(multiple[i]), key=key_options, difficulty=p, mean_points=_number(mean_points[i]),
            point_biserial=r, group_size=int(g[i]), upper_difficulty=_number(upper_flags[i, CORRECT]),
            lower_difficulty=_number(lower_flags[i, CORRECT]), discrimination_index=d, options=options,
            omitted=_number(omitted[i]), omitted_upper=_number(1 - upper_flags[i, ANSWERED]),
            omitted_lower=_number(1 - lower_flags[i, ANSWERED]),
            flags=item_flags(p, r, d, options)))
    return ItemAnalysis(items=tuple(items), reliability=reliability, distribution=distribution)


def _group_counts(counts: RankedCounts, ranked: np.ndarray, k: np.ndarray, g: np.ndarray, *,
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
    tied = flags_after[:, PRESENT] - flags_first[:, PRESENT]
    if from_top:
        beyond_options = counts.option_totals - options_after
        beyond_flags = counts.flag_totals - flags_after
    else:
        beyond_options, beyond_flags = options_first, flags_first
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tied > 0, (g - beyond_flags[:, PRESENT]) / np.maximum(tied, 1), 0.0)
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
