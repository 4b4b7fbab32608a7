"""The passes over candidates behind the item analysis: chunk edges change nothing, and cells naming an item
twice are refused."""
from __future__ import annotations

import numpy as np
import pytest

from exam.grading import item_sums
from exam.grading.item_analysis import analyse_cells, analyse_items
from tests.grading.test_item_analysis import A, assert_close_records, random_exam


def test_small_chunks_give_the_same_numbers(monkeypatch):
    # The float pass and the block counting run in chunks; chunk edges must not matter.
    rng = np.random.default_rng(7)
    scores, correct, choices, key, n_options, multiple = random_exam(rng, 1300, 9, sparse=True)
    args = (scores, correct, choices, key, n_options, np.ones(9))
    whole = analyse_items(*args, multiple=multiple).to_dict()
    monkeypatch.setattr(item_sums, "_CHUNK_CELLS", 9 * 37)
    monkeypatch.setattr(item_sums, "_CHUNK_BLOCKS", 1)
    chunked = analyse_items(*args, multiple=multiple).to_dict()
    assert_close_records(chunked, whole)


def test_cells_naming_an_item_twice_are_refused():
    item = np.array([[0, 1, 1]])
    chunk = item_sums.CellChunk(item, np.ones((1, 3)), np.ones((1, 3), bool), np.ones((1, 3), np.uint8))
    with pytest.raises(item_sums.RepeatedItem):
        analyse_cells(lambda rows: chunk, 1, [A, A], np.full(2, 4), np.ones(2))
