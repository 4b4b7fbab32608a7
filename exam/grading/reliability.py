"""The test statistics of an item analysis: reliability, its standard error, the score distribution.

Pure numpy, from the per-item sums of ``exam.grading.item_sums`` (``exam.grading.item_analysis``
calls it).

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
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from exam.grading.item_sums import PointSums, item_means

HISTOGRAM_MAX_BINS = 64


def plain(value: Any) -> Any:
    """numpy scalars → Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


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
        out["form"] = plain(self.form)
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


def alpha(k: float, item_variance: float, total_variance: float) -> float | None:
    """k/(k−1) · (1 − item variance / total variance), None when undefined."""
    if k <= 1 or not total_variance > 1e-12 * max(1.0, item_variance):
        return None
    return float(k / (k - 1) * (1.0 - item_variance / total_variance))


def sem(sd: float | None, reliability: float | None) -> float | None:
    if sd is None or reliability is None or reliability > 1:
        return None
    return float(sd * math.sqrt(1.0 - reliability))


class Pooled(NamedTuple):
    """Terms of the pooled item-centred alpha, over the candidates with at least one item."""

    sat: np.ndarray  # [C] bool: the candidate had at least one item
    candidates: int
    items_per_candidate: float  # k̄
    item_variance: float  # V_item
    total_variance: float  # V_total
    complete: bool  # every such candidate had every item that anyone had


def pooled_terms(sums: PointSums, n: np.ndarray, mean_over_items: np.ndarray) -> Pooled:
    """``mean_over_items[c]``: Σ of ``item_means`` over the items candidate c had."""
    sat = sums.items_sat > 0
    candidates = int(np.count_nonzero(sat))
    if candidates == 0:
        return Pooled(sat, 0, 0.0, 0.0, 0.0, False)
    mean = item_means(sums, n)
    deviation = (sums.totals - mean_over_items)[sat]
    return Pooled(
        sat=sat, candidates=candidates, items_per_candidate=float(sums.items_sat[sat].mean()),
        item_variance=float(np.sum(sums.sxx - n * mean * mean)) / candidates,
        total_variance=float(deviation @ deviation) / candidates,
        complete=bool(np.all((n == 0) | (n == candidates))))


def is_dichotomous(sums: PointSums, n: np.ndarray, max_points: np.ndarray) -> bool:
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


def form_reliability(form, terms, dichotomous: bool) -> tuple[FormReliability, ...]:
    """``terms(rows)``: (point sums, n per item, Σ item means per candidate) over those candidates."""
    labels, inverse = np.unique(np.asarray(form), return_inverse=True)
    found = []
    for f, label in enumerate(labels):  # one pass per form (a handful of fixed forms)
        sums, n, mean_over_items = terms(np.flatnonzero(inverse == f))
        pooled = pooled_terms(sums, n, mean_over_items)
        value = alpha(pooled.items_per_candidate, pooled.item_variance, pooled.total_variance)
        sd = float(sums.totals[pooled.sat].std()) if pooled.candidates else None
        found.append(FormReliability(
            form=plain(label), candidates=pooled.candidates, items=int(np.count_nonzero(n)),
            complete=pooled.complete, method="kr20" if dichotomous else "alpha", reliability=value, sd=sd,
            sem=sem(sd, value)))
    return tuple(found)
