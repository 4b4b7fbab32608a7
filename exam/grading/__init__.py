"""Grading: the numpy scoring rule, the [candidates x questions] arrays, grading runs and their hashes, two-person
key corrections, the item analysis and its charts; the results pages (/board/results) and the grading commands."""
