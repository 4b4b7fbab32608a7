"""The SVG charts of an item analysis: self-contained, Vietnamese glyphs, from results or their stored dicts."""
from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET

import numpy as np

from exam.grading.charts import difficulty_discrimination_svg, score_histogram_svg
from exam.grading.item_analysis import analyse_items
from tests.grading.test_item_analysis import HAND_CHOICES, HAND_KEY, HAND_SCORES, analyse, flag_exam, random_exam


def assert_self_contained_svg(svg: str):
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    ET.fromstring(svg)  # well-formed
    outside = re.sub(r'xmlns="http://www\.w3\.org/2000/svg"', "", svg)
    assert "http" not in outside and "<image" not in outside and "url(" not in re.sub(r"url\(#", "", outside)
    assert len(svg.encode()) < 200_000


def test_score_histogram_svg():
    result = analyse(HAND_SCORES, HAND_CHOICES, HAND_KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing Vietnamese glyph would warn
        svg = score_histogram_svg(result.distribution, "Phân bố điểm — Kỳ thi tuyển công chức, vòng 1")
    assert_self_contained_svg(svg)
    assert "<title>Phân bố điểm — Kỳ thi tuyển công chức, vòng 1</title>" in svg
    # From the stored dict as well, and with an English label set.
    svg = score_histogram_svg(result.distribution.to_dict(), "Scores & <ranks>",
                              labels={"score": "Score", "candidates": "Candidates"}, decimal=".")
    assert_self_contained_svg(svg)
    assert "<title>Scores &amp; &lt;ranks&gt;</title>" in svg


def test_difficulty_discrimination_svg():
    rng = np.random.default_rng(9)
    scores, correct, choices, key, n_options, multiple = random_exam(rng, 2000, 300, sparse=True)
    result = analyse_items(scores, correct, choices, key, n_options, np.ones(300), multiple=multiple)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = difficulty_discrimination_svg(result.items)
    assert_self_contained_svg(svg)
    flagged = flag_exam()
    svg = difficulty_discrimination_svg([i.to_dict() for i in flagged.items], title="Độ khó – độ phân biệt")
    assert_self_contained_svg(svg)
    assert difficulty_discrimination_svg([]).startswith("<svg")
