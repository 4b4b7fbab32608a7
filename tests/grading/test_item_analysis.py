"""Item analysis: hand-computed cases, an independent slow computation on random data (complete
and sparse), the flags; analysis from cells as from matrices."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from exam.grading import item_analysis, item_sums
from exam.grading.item_analysis import (
    LOW_DISCRIMINATION,
    NEGATIVE_DISCRIMINATION,
    POSSIBLE_WRONG_KEY,
    TOO_EASY_FLAG,
    TOO_HARD_FLAG,
    analyse_items,
)

NAN = math.nan
A, B, C, D = 1, 2, 4, 8  # option bit masks, author's order


def analyse(scores, choices, key, *, n_options=4, max_points=1.0, correct=None, **kwargs):
    """Analyse a small case; ``correct`` defaults to full marks."""
    scores = np.array(scores, dtype=float)
    n_items = scores.shape[1]
    if correct is None:
        correct = np.nan_to_num(scores, nan=0.0) >= np.broadcast_to(max_points, (n_items,))
    return analyse_items(scores, np.asarray(correct), np.array(choices, dtype=np.uint8),
                         np.array(key, dtype=np.uint8), np.full(n_items, n_options) if np.ndim(n_options) == 0
                         else np.array(n_options), np.broadcast_to(np.asarray(max_points, dtype=float), (n_items,)),
                         **kwargs)


# --- hand-computed cases ---------------------------------------------------------------------------

# Six candidates × three single-answer items, 1 point each; keys A, B, C.
#
#   cand   item1 item2 item3  total   choices
#   a        1     1     1      3     A B C
#   b        1     1     0      2     A B D
#   c        1     0     1      2     A A C
#   d        0     1     0      1     B B –      (no answer to item 3)
#   e        1     0     0      1     A C A
#   f        0     0     0      0     C D B
HAND_SCORES = [[1, 1, 1], [1, 1, 0], [1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0]]
HAND_CHOICES = [[A, B, C], [A, B, D], [A, A, C], [B, B, 0], [A, C, A], [C, D, B]]
HAND_KEY = [A, B, C]


def test_hand_computed_difficulty_point_biserial_groups_and_kr20():
    result = analyse(HAND_SCORES, HAND_CHOICES, HAND_KEY, item_ids=[11, 12, 13])
    one, two, three = result.items

    # p: 4/6, 3/6, 2/6.
    assert [i.n for i in result.items] == [6, 6, 6]
    assert one.difficulty == pytest.approx(4 / 6, abs=1e-15)
    assert two.difficulty == pytest.approx(3 / 6, abs=1e-15)
    assert three.difficulty == pytest.approx(2 / 6, abs=1e-15)
    assert one.mean_points == pytest.approx(4 / 6, abs=1e-15)

    # r_pb of item 1 against rest = total − item 1: x = 1,1,1,0,1,0; rest = 2,1,1,1,0,0.
    #   mean x = 2/3, mean rest = 5/6, mean(x·rest) = 4/6 → cov = 4/6 − 10/18 = 1/9
    #   var x = 2/3 · 1/3 = 2/9, var rest = 7/6 − 25/36 = 17/36
    #   r = (1/9) / sqrt(2/9 · 17/36) = 2 / sqrt(34)
    assert one.point_biserial == pytest.approx(2 / math.sqrt(34), abs=1e-12)
    # Item 2: x = 1,1,0,1,0,0; rest = 2,1,2,0,1,0: mean(x·rest) = 1/2 = 1/2 · 1 → cov = 0, r = 0.
    assert two.point_biserial == 0.0
    # Item 3: x = 1,0,1,0,0,0; rest = 2,2,1,1,1,0: cov = 1/2 − 1/3 · 7/6 = 1/9; var rest = 11/6 − 49/36
    #   = 17/36 → r = 2 / sqrt(34) again.
    assert three.point_biserial == pytest.approx(2 / math.sqrt(34), abs=1e-12)

    # Groups: g = round(0.27 · 6) = 2. Totals sorted: f 0, d 1, e 1, b 2, c 2, a 3.
    #   lower = f + half of d and e (tied at 1 for the one remaining place)
    #   upper = a + half of b and c (tied at 2)
    # Item 1: upper right = a 1 + ½(b 1 + c 1) = 2 → 1;   lower = f 0 + ½(d 0 + e 1) = ½ → 1/4;  D = 3/4
    # Item 2: upper = 1 + ½(1 + 0) = 3/2 → 3/4;           lower = 0 + ½(1 + 0) = ½ → 1/4;       D = 1/2
    # Item 3: upper = 1 + ½(0 + 1) = 3/2 → 3/4;           lower = 0 + ½(0 + 0) = 0;             D = 3/4
    assert [i.group_size for i in result.items] == [2, 2, 2]
    assert (one.upper_difficulty, one.lower_difficulty, one.discrimination_index) == (1.0, 0.25, 0.75)
    assert (two.upper_difficulty, two.lower_difficulty, two.discrimination_index) == (0.75, 0.25, 0.5)
    assert (three.upper_difficulty, three.lower_difficulty, three.discrimination_index) == (0.75, 0.0, 0.75)

    # Options of item 1 (key A): overall A 4/6, B 1/6 (d), C 1/6 (f), D 0.
    #   upper: a A, ½ b A, ½ c A → A 1.   lower: f C, ½ d B, ½ e A → A 1/4, B 1/4, C 1/2.
    shares = [(o.overall, o.upper, o.lower) for o in one.options]
    assert shares == [(4 / 6, 1.0, 0.25), (1 / 6, 0.0, 0.25), (1 / 6, 0.0, 0.5), (0.0, 0.0, 0.0)]
    assert [o.is_key for o in one.options] == [True, False, False, False] and one.key == (0,)
    # Item 3: d gave no answer: omitted 1/6; in the lower group d weighs ½ of 2 → 1/4.
    assert three.omitted == pytest.approx(1 / 6) and three.omitted_lower == 0.25 and three.omitted_upper == 0.0

    # Flags: item 2 has r_pb = 0 (0 ≤ r < 0.1): low discrimination. Nothing else.
    assert one.flags == () and three.flags == ()
    assert two.flags == (LOW_DISCRIMINATION,)

    # KR-20: k = 3, Σpq = 2/9 + 1/4 + 2/9 = 25/36; totals 3,2,2,1,1,0: mean 1.5, var = 19/6 − 9/4 = 11/12
    #   KR-20 = 3/2 · (1 − (25/36) / (33/36)) = 3/2 · 8/33 = 4/11
    #   SEM = sqrt(11/12) · sqrt(1 − 4/11) = sqrt(7/12)
    rel = result.reliability
    assert (rel.method, rel.basis, rel.dichotomous) == ("kr20", "complete", True)
    assert rel.value == pytest.approx(4 / 11, abs=1e-12)
    assert rel.sem == pytest.approx(math.sqrt(7 / 12), abs=1e-12)
    assert (rel.candidates, rel.items, rel.items_per_candidate) == (6, 3, 3.0)

    # Distribution: integer totals → bins of width 1: [0,1) [1,2) [2,3) [3,4).
    dist = result.distribution
    assert (dist.n, dist.mean, dist.median, dist.minimum, dist.maximum) == (6, 1.5, 1.5, 0.0, 3.0)
    assert dist.sd == pytest.approx(math.sqrt(11 / 12), abs=1e-12)
    assert dist.bin_edges == (0.0, 1.0, 2.0, 3.0, 4.0) and dist.counts == (1, 2, 2, 1)

    # JSON-ready for the question's history.
    record = one.to_dict()
    assert record["item_id"] == 11 and record["key"] == [0] and record["flags"] == []
    assert record["options"][0] == {"option": 0, "is_key": True, "overall": 4 / 6, "upper": 1.0, "lower": 0.25}
    assert result.item(13) is three
    assert set(result.to_dict()) == {"items", "reliability", "distribution", "thresholds"}
    assert result.to_dict()["thresholds"]["too_easy"] == 0.9


def test_hand_computed_sparse_pooled_kr20():
    # Four candidates, three items, each candidate had two (NaN: not on their paper).
    #   P: i1 1, i2 1      Q: i1 0, i2 0      R: i2 1, i3 1      S: i1 0, i3 0
    # Item means: μ1 = 1/3 (P Q S), μ2 = 2/3 (P Q R), μ3 = 1/2 (R S). Deviations d = x − μ:
    #   P (2/3, 1/3): Σd = 1,    Σd² = 5/9         Q (−1/3, −2/3): Σd = −1,   Σd² = 5/9
    #   R (1/3, 1/2): Σd = 5/6,  Σd² = 13/36       S (−1/3, −1/2): Σd = −5/6, Σd² = 13/36
    # V_item = (5/9 + 5/9 + 13/36 + 13/36) / 4 = 11/24;  V_total = (1 + 1 + 25/36 + 25/36) / 4 = 61/72
    # alpha (k = 2) = 2 · (1 − (11/24) / (61/72)) = 2 · 28/61 = 56/61
    # Totals 2, 0, 2, 0: SD 1 → SEM = sqrt(1 − 56/61) = sqrt(5/61).
    scores = [[1, 1, NAN], [0, 0, NAN], [NAN, 1, 1], [0, NAN, 0]]
    choices = [[A, B, 0], [B, A, 0], [0, B, C], [C, 0, A]]
    result = analyse(scores, choices, [A, B, C])
    rel = result.reliability
    assert (rel.method, rel.basis) == ("kr20", "pooled")
    assert rel.value == pytest.approx(56 / 61, abs=1e-12)
    assert rel.sem == pytest.approx(math.sqrt(5 / 61), abs=1e-12)
    assert rel.items_per_candidate == 2.0
    assert [i.n for i in result.items] == [3, 3, 2]
    assert result.items[2].difficulty == 0.5
    # Item 3 (R 1, S 0): rest scores R 1, S 0 → r = 1. Groups g = round(0.54) = 1: upper R, lower S.
    assert result.items[2].point_biserial == pytest.approx(1.0)
    assert result.items[2].discrimination_index == 1.0


def test_hand_computed_alpha_with_partial_credit():
    # Three candidates × two items (multiple answers, partial credit), complete.
    #   scores (1, ½), (½, ½), (0, 0): var1 = 1/6, var2 = 1/18; totals 3/2, 1, 0: var = 7/18
    #   alpha = 2 · (1 − (1/6 + 1/18) / (7/18)) = 2 · 3/7 = 6/7
    scores = [[1, 0.5], [0.5, 0.5], [0, 0]]
    choices = [[A | B, A], [A, A | C], [C, D]]
    result = analyse(scores, choices, [A | B, A | B], multiple=[True, True])
    rel = result.reliability
    assert (rel.method, rel.basis, rel.dichotomous) == ("alpha", "complete", False)
    assert rel.value == pytest.approx(6 / 7, abs=1e-12)
    assert result.items[0].mean_points == 0.5 and result.items[0].difficulty == pytest.approx(1 / 3)
    # Multiple answers: shares *include* each option. Item 1: A in 2 of 3, B 1, C 1, D 0.
    assert [o.overall for o in result.items[0].options] == pytest.approx([2 / 3, 1 / 3, 1 / 3, 0.0])
    assert result.items[0].multiple and result.items[0].key == (0, 1)


def test_negative_marking_is_not_dichotomous():
    # Right 1, wrong −0.25: three values per item, so alpha, not KR-20.
    scores = [[1, 1], [1, -0.25], [-0.25, 0], [0, 1]]
    result = analyse(scores, [[A, A], [A, B], [B, 0], [0, A]], [A, A])
    assert result.reliability.method == "alpha"
    assert result.items[0].mean_points == pytest.approx((1 + 1 - 0.25 + 0) / 4)


# --- against an independent, obvious computation ------------------------------------------------------

def slow_analysis(scores, correct, choices, key, n_options):
    """Per item and per candidate, with Python loops and the textbook formulas."""
    n_cand, n_items = len(scores), len(scores[0])
    has = [[not math.isnan(scores[c][i]) for i in range(n_items)] for c in range(n_cand)]
    total = [round(sum(scores[c][i] for i in range(n_items) if has[c][i]), 9) for c in range(n_cand)]
    items = []
    for i in range(n_items):
        who = [c for c in range(n_cand) if has[c][i]]
        n = len(who)
        out = {"n": n}
        if n == 0:
            items.append(out)
            continue
        x = [scores[c][i] for c in who]
        rest = [total[c] - scores[c][i] for c in who]
        out["p"] = sum(1 for c in who if correct[c][i]) / n
        out["mean"] = sum(x) / n
        mx, mr = sum(x) / n, sum(rest) / n
        sxy = sum((a - mx) * (b - mr) for a, b in zip(x, rest, strict=True))
        sxx = sum((a - mx) ** 2 for a in x)
        syy = sum((b - mr) ** 2 for b in rest)
        out["r"] = sxy / math.sqrt(sxx * syy) if n >= 2 and sxx > 1e-12 and syy > 1e-12 else None
        g = max(1, math.floor(0.27 * n + 0.5)) if n >= 2 else 0
        out["g"] = g
        lower, upper = {}, {}
        for c in who:  # weight in a group: places left for this total, shared by all who have it
            tied = sum(1 for o in who if total[o] == total[c])
            below = sum(1 for o in who if total[o] < total[c])
            above = sum(1 for o in who if total[o] > total[c])
            lower[c] = min(1.0, max(0.0, (g - below) / tied)) if g else 0.0
            upper[c] = min(1.0, max(0.0, (g - above) / tied)) if g else 0.0
        for name, weight in (("lower", lower), ("upper", upper)):
            if g:
                out[f"p_{name}"] = sum(weight[c] for c in who if correct[c][i]) / g
                out[f"options_{name}"] = [sum(weight[c] for c in who if choices[c][i] >> j & 1) / g
                                          for j in range(n_options[i])]
                out[f"omitted_{name}"] = sum(weight[c] for c in who if choices[c][i] == 0) / g
        out["options"] = [sum(1 for c in who if choices[c][i] >> j & 1) / n for j in range(n_options[i])]
        out["omitted"] = sum(1 for c in who if choices[c][i] == 0) / n
        items.append(out)

    # Reliability: alpha from item variances and the covariances of items sat together.
    sat = [c for c in range(n_cand) if any(has[c])]
    mean = {i: statistics.fmean([scores[c][i] for c in sat if has[c][i]]) for i in range(n_items)
            if any(has[c][i] for c in sat)}
    variance_term = sum(sum((scores[c][i] - mean[i]) ** 2 for c in sat if has[c][i]) for i in mean) / len(sat)
    covariance_term = 0.0
    for i in mean:
        for j in mean:
            if i != j:
                covariance_term += sum((scores[c][i] - mean[i]) * (scores[c][j] - mean[j])
                                       for c in sat if has[c][i] and has[c][j])
    covariance_term /= len(sat)
    k = statistics.fmean([sum(has[c]) for c in sat])
    alpha = k / (k - 1) * (1 - variance_term / (variance_term + covariance_term))
    totals = [total[c] for c in sat]
    sd = statistics.pstdev(totals)
    return items, {"alpha": alpha, "sd": sd, "sem": sd * math.sqrt(1 - alpha), "mean": statistics.fmean(totals),
                   "median": statistics.median(totals), "min": min(totals), "max": max(totals)}


def random_exam(rng, n_cand, n_items, *, sparse):
    """Candidates of varying ability; single and multiple answers (2 to 8 options), negative
    marking and partial credit; totals on a quarter-point grid (many ties)."""
    ability = rng.normal(size=n_cand)
    hardness = rng.normal(size=n_items)
    n_options = rng.integers(2, 9, n_items)
    multiple = rng.random(n_items) < 0.3
    key = np.zeros(n_items, dtype=np.uint8)
    for i in range(n_items):
        k = rng.integers(2, n_options[i] + 1) if multiple[i] else 1
        key[i] = sum(1 << int(j) for j in rng.choice(n_options[i], k, replace=False))
    right = rng.random((n_cand, n_items)) < 1 / (1 + np.exp(-(ability[:, None] - hardness[None, :])))
    guess = rng.integers(1, 256, (n_cand, n_items)).astype(np.uint8) & ((1 << n_options) - 1).astype(np.uint8)
    single_guess = (1 << rng.integers(0, n_options, (n_cand, n_items))).astype(np.uint8)
    guess = np.where(multiple, guess, single_guess)
    choices = np.where(right, key, np.where(rng.random((n_cand, n_items)) < 0.15, 0, guess)).astype(np.uint8)
    correct = (choices == key) & (key != 0)
    scores = np.where(correct, 1.0, np.where(choices == 0, 0.0, -0.25))
    partial = multiple & (rng.random(n_items) < 0.5)
    scores = np.where(partial & ~correct & (choices != 0), 0.5 * ((choices & key) != 0), scores)
    if sparse:
        present = rng.random((n_cand, n_items)) < 0.45
        present[:, 0] = False  # nobody had item 0
        present[:, 1] = False
        present[3, 1] = True  # one candidate had item 1
        scores = np.where(present, scores, np.nan)
        choices = np.where(present, choices, rng.integers(0, 256, choices.shape)).astype(np.uint8)  # ignored
    return scores, correct, choices, key, n_options, multiple


def compare(result, slow_items, slow_test):
    for stats, slow in zip(result.items, slow_items, strict=True):
        assert stats.n == slow["n"]
        if slow["n"] == 0:
            assert stats.difficulty is None and stats.point_biserial is None and stats.flags == ()
            continue
        np.testing.assert_allclose(stats.difficulty, slow["p"], rtol=1e-12)
        np.testing.assert_allclose(stats.mean_points, slow["mean"], rtol=1e-9, atol=1e-12)
        if slow["r"] is None:
            assert stats.point_biserial is None
        else:
            np.testing.assert_allclose(stats.point_biserial, slow["r"], rtol=1e-7, atol=1e-9)
        assert stats.group_size == slow["g"]
        np.testing.assert_allclose([o.overall for o in stats.options], slow["options"], rtol=1e-12)
        np.testing.assert_allclose(stats.omitted, slow["omitted"], rtol=1e-12, atol=1e-15)
        if slow["g"]:
            np.testing.assert_allclose([stats.upper_difficulty, stats.lower_difficulty],
                                       [slow["p_upper"], slow["p_lower"]], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(stats.discrimination_index, slow["p_upper"] - slow["p_lower"], atol=1e-12)
            np.testing.assert_allclose([o.upper for o in stats.options], slow["options_upper"], atol=1e-12)
            np.testing.assert_allclose([o.lower for o in stats.options], slow["options_lower"], atol=1e-12)
            np.testing.assert_allclose([stats.omitted_upper, stats.omitted_lower],
                                       [slow["omitted_upper"], slow["omitted_lower"]], atol=1e-12)
        else:
            assert stats.discrimination_index is None and stats.upper_difficulty is None
    rel, dist = result.reliability, result.distribution
    np.testing.assert_allclose(rel.value, slow_test["alpha"], rtol=1e-9)
    np.testing.assert_allclose(rel.sem, slow_test["sem"], rtol=1e-9)
    np.testing.assert_allclose([dist.mean, dist.sd, dist.median, dist.minimum, dist.maximum],
                               [slow_test[k] for k in ("mean", "sd", "median", "min", "max")], rtol=1e-12)


@pytest.mark.parametrize("sparse", [False, True], ids=["complete", "sparse"])
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_slow_computation_on_random_data(sparse, seed):
    rng = np.random.default_rng(seed)
    scores, correct, choices, key, n_options, multiple = random_exam(rng, 700, 14, sparse=sparse)
    result = analyse_items(scores, correct, choices, key, n_options, np.ones(14), multiple=multiple)
    slow_items, slow_test = slow_analysis(scores.tolist(), correct.tolist(), choices.tolist(), key.tolist(),
                                          n_options.tolist())
    compare(result, slow_items, slow_test)
    assert result.reliability.basis == ("pooled" if sparse else "complete")
    assert result.reliability.method == "alpha"
    assert sum(result.distribution.counts) == result.distribution.n
    assert any(o.option >= 4 and o.overall for i in result.items for o in i.options)  # options E-H counted


def assert_close_records(got, expected):
    if isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for name in expected:
            assert_close_records(got[name], expected[name])
    elif isinstance(expected, list):
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert_close_records(a, b)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    else:
        assert got == expected


def test_candidate_order_does_not_matter():
    # Ties at the group boundaries are shared, never broken by the order of the rows.
    rng = np.random.default_rng(3)
    scores, correct, choices, key, n_options, multiple = random_exam(rng, 400, 8, sparse=False)
    args = (key, n_options, np.ones(8))
    before = analyse_items(scores, correct, choices, *args, multiple=multiple).to_dict()
    shuffle = rng.permutation(400)
    after = analyse_items(scores[shuffle], correct[shuffle], choices[shuffle], *args, multiple=multiple).to_dict()
    assert_close_records(after, before)


def test_per_form_reliability_is_classical_within_each_form():
    # Two fixed forms with different questions: each form's block is complete.
    rng = np.random.default_rng(5)
    scores, correct, choices, key, n_options, _ = random_exam(rng, 300, 10, sparse=False)
    correct = rng.random((300, 10)) < 0.6
    scores = correct.astype(float)
    form = np.repeat(["A", "B"], 150)
    scores[:150, 5:] = np.nan  # form A: items 0-4, form B: items 5-9
    scores[150:, :5] = np.nan
    result = analyse_items(scores, correct, choices, [A] * 10, np.full(10, 4), np.ones(10), form=form)
    assert result.reliability.basis == "pooled" and result.reliability.method == "kr20"
    for form_stats, rows, cols in zip(result.reliability.forms, (slice(0, 150), slice(150, 300)),
                                      (slice(0, 5), slice(5, 10)), strict=True):
        block = correct[rows, cols].astype(float)
        p = block.mean(axis=0)
        kr20 = 5 / 4 * (1 - np.sum(p * (1 - p)) / block.sum(axis=1).var())
        assert form_stats.complete and form_stats.items == 5 and form_stats.candidates == 150
        assert form_stats.reliability == pytest.approx(kr20, rel=1e-12)
        assert form_stats.sem == pytest.approx(block.sum(axis=1).std() * math.sqrt(1 - kr20), rel=1e-12)
    assert [f.form for f in result.reliability.forms] == ["A", "B"]
    assert result.reliability.to_dict()["forms"][0]["form"] == "A"


# --- the same analysis read as cells ---------------------------------------------------------------

def as_cells(scores, correct, choices, rng, *, width=None, blanks=0.1):
    """The dense matrices as cells: each candidate's items in a shuffled order, padded with cells that
    hold no item (-1, with garbage values), as papers of different lengths or removed questions give."""
    n_cand, n_items = scores.shape
    present = ~np.isnan(scores)
    width = width or int(present.sum(axis=1).max()) + 2
    item = np.full((n_cand, width), -1, dtype=np.int64)
    for c in range(n_cand):
        mine = rng.permutation(np.flatnonzero(present[c]))
        slots = rng.permutation(width)[:len(mine)]
        item[c, slots] = mine
    safe = np.maximum(item, 0)
    rows = np.arange(n_cand)[:, None]
    points = np.where(item >= 0, np.nan_to_num(scores)[rows, safe], rng.normal(size=item.shape))
    return item_sums.CellChunk(item, points, np.where(item >= 0, correct[rows, safe], rng.random(item.shape) < .5),
                                   np.where(item >= 0, choices[rows, safe], rng.integers(0, 256, item.shape))
                                   .astype(np.uint8))


def reader(cells, seen=None):
    def read(rows):
        assert len(rows) and np.all(np.diff(rows) > 0)
        if seen is not None:
            seen.append(len(rows))
        return item_sums.CellChunk(*(a[rows] for a in cells))
    return read


@pytest.mark.parametrize("sparse", [False, True], ids=["complete", "sparse"])
@pytest.mark.parametrize("seed", [1, 2])
def test_cells_give_the_dense_analysis_and_match_the_slow_computation(sparse, seed):
    rng = np.random.default_rng(seed)
    scores, correct, choices, key, n_options, multiple = random_exam(rng, 700, 14, sparse=sparse)
    dense = analyse_items(scores, correct, choices, key, n_options, np.ones(14), multiple=multiple)
    chunks = []
    cells = item_analysis.analyse_cells(reader(as_cells(scores, correct, choices, rng), chunks), 700, key,
                                        n_options, np.ones(14), multiple=multiple, chunk_rows=97)
    assert chunks == [97] * 7 + [21]  # read once, chunk by chunk
    assert_close_records(cells.to_dict(), dense.to_dict())
    slow_items, slow_test = slow_analysis(scores.tolist(), correct.tolist(), choices.tolist(), key.tolist(),
                                          n_options.tolist())
    compare(cells, slow_items, slow_test)


def test_cells_with_forms_and_empty_candidates():
    rng = np.random.default_rng(11)
    scores, correct, choices, key, n_options, multiple = random_exam(rng, 260, 10, sparse=True)
    scores[5] = np.nan  # a candidate with no item at all
    form = rng.integers(1, 4, 260)
    dense = analyse_items(scores, correct, choices, key, n_options, np.full(10, 2.0), multiple=multiple, form=form)
    cells = item_analysis.analyse_cells(reader(as_cells(scores, correct, choices, rng)), 260, key, n_options,
                                        np.full(10, 2.0), multiple=multiple, form=form, chunk_rows=50)
    assert_close_records(cells.to_dict(), dense.to_dict())
    assert [f.form for f in cells.reliability.forms] == [1, 2, 3]


# --- flags -----------------------------------------------------------------------------------------

def flag_exam():
    """Ten candidates, strongest first, on four anchor items that set their totals, plus:
    item 4: key A, but the strongest choose B (a wrong key?);
    item 5: everyone right (too easy);
    item 6: only the weakest candidate right (negative discrimination, too hard);
    item 7: multiple answer, key A+B; the strongest choose A+C."""
    strength = [4, 4, 4, 3, 3, 2, 2, 1, 0, 0]  # anchor items right
    scores, choices = [], []
    for c, s in enumerate(strength):
        anchors = [1.0 if a < s else 0.0 for a in range(4)]
        anchor_choices = [A if a < s else B for a in range(4)]
        strong = c < 4
        wrong_key = (0.0, B) if strong else ((1.0, A) if c % 2 else (0.0, C))
        weakest = c == 9
        negative = (1.0, A) if weakest else (0.0, D)
        multiple = (0.0, A | C) if strong else ((1.0, A | B) if c < 7 else (0.0, 0))
        scores.append(anchors + [wrong_key[0], 1.0, negative[0], multiple[0]])
        choices.append(anchor_choices + [wrong_key[1], A, negative[1], multiple[1]])
    key = [A, A, A, A, A, A, A, A | B]
    return analyse(scores, choices, key, multiple=[False] * 7 + [True], item_ids=list("abcdwenm"))


def test_upper_group_preferring_a_distractor_flags_a_possible_wrong_key():
    item = flag_exam().item("w")
    by_option = {o.option: o.upper for o in item.options}
    assert by_option[1] > by_option[0]  # B beats the key A in the upper group
    assert POSSIBLE_WRONG_KEY in item.flags
    assert NEGATIVE_DISCRIMINATION in item.flags


def test_multiple_answer_possible_wrong_key():
    item = flag_exam().item("m")
    upper = {o.option: o.upper for o in item.options}
    assert upper[2] > upper[1]  # C (not in the key) beats B (in the key)
    assert item.multiple and POSSIBLE_WRONG_KEY in item.flags


def test_item_everyone_gets_right_is_too_easy():
    item = flag_exam().item("e")
    assert item.difficulty == 1.0 and item.point_biserial is None  # no variance: r undefined
    assert item.discrimination_index == 0.0
    assert item.flags == (LOW_DISCRIMINATION, TOO_EASY_FLAG)


def test_negative_discrimination_and_too_hard():
    item = flag_exam().item("n")
    assert item.point_biserial < 0 and item.discrimination_index < 0
    # p = 1/10; the upper group all chose D over the key A, so the key is questioned too.
    assert item.difficulty == pytest.approx(0.1)
    assert item.flags == (NEGATIVE_DISCRIMINATION, TOO_HARD_FLAG, POSSIBLE_WRONG_KEY)
    assert LOW_DISCRIMINATION not in item.flags  # negative is reported as such, not also as low


def test_good_items_have_no_flags():
    result = flag_exam()
    assert result.item("b").flags == ()
    assert {i.item_id for i in result.flagged()} >= {"w", "e", "n", "m"}


# --- edge cases and input checks ------------------------------------------------------------------

def test_items_nobody_or_one_candidate_had():
    scores = [[1, NAN, NAN], [0, NAN, 1], [1, NAN, NAN]]
    result = analyse(scores, [[A, 0, 0], [B, 0, A], [A, 0, 0]], [A, A, A])
    nobody, one = result.items[1], result.items[2]
    assert nobody.n == 0 and nobody.difficulty is None and nobody.options[0].overall is None
    assert one.n == 1 and one.difficulty == 1.0 and one.group_size == 0
    assert one.point_biserial is None and one.discrimination_index is None and one.options[0].upper is None
    assert result.reliability.items == 2


def test_no_candidates():
    result = analyse_items(np.zeros((0, 2)), np.zeros((0, 2), bool), np.zeros((0, 2), np.uint8), [A, A], [4, 4],
                           [1, 1])
    assert [i.n for i in result.items] == [0, 0]
    assert result.reliability.value is None and result.distribution.n == 0


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="one shape"):
        analyse_items(np.zeros((2, 2)), np.zeros((2, 3), bool), np.zeros((2, 2)), [A, A], [4, 4], [1, 1])
    with pytest.raises(ValueError, match="key"):
        analyse_items(np.zeros((2, 2)), np.zeros((2, 2), bool), np.zeros((2, 2)), [A], [4, 4], [1, 1])
    with pytest.raises(ValueError, match="n_options"):
        analyse_items(np.zeros((2, 2)), np.zeros((2, 2), bool), np.zeros((2, 2)), [A, A], [4, 9], [1, 1])
    with pytest.raises(ValueError, match="finite"):
        analyse_items(np.array([[1, np.inf]]), np.zeros((1, 2), bool), np.zeros((1, 2)), [A, A], [4, 4], [1, 1])
