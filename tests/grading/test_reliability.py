"""The test statistics' score distribution: nice bins, not finer than the totals' grain. (Reliability itself is
checked through the analysis, by hand and against a slow computation: tests/grading/test_item_analysis.py.)"""
from __future__ import annotations

import numpy as np

from exam.grading.reliability import HISTOGRAM_MAX_BINS, score_distribution


def test_score_distribution_bins():
    quarter = score_distribution(np.array([0.25, 0.5, 1.75, 2.0]))
    assert quarter.bin_edges[:3] == (0.25, 0.5, 0.75) and sum(quarter.counts) == 4
    wide = score_distribution(np.arange(0, 121, dtype=float))
    assert wide.bin_edges[1] - wide.bin_edges[0] == 2.0 and len(wide.counts) <= HISTOGRAM_MAX_BINS
    assert wide.counts[-1] == 1  # the maximum, 120, in its own bin [120, 122)
    assert score_distribution(np.array([3.0, 3.0]), bins=4).counts == (0, 0, 2, 0)
    assert score_distribution(np.array([]), bins=None).n == 0
