"""The stored form of merit lists: the hash follows every score and never the input order, the canonical JSON
is written column by column exactly as json.dumps would, and the stored text (both formats) reads back the same."""
from __future__ import annotations

import json
import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exam.merit.content import (
    dump_merit_lists,
    load_merit_lists,
    merit_hash,
    merit_lists_as_data,
    merit_lists_from_data,
)
from exam.merit.ranking import CandidateResult, apply_decisions, build_merit_lists
from exam.merit.rule import MeritRejected, rule_from_dict
from tests.merit.cases import ACCOUNTS, GROUP, LAW, QUOTA, civil_service, ranked_groups

# --- hash and storage ------------------------------------------------------------------------------

def test_hash_changes_when_any_score_changes_and_not_with_input_order():
    rule = civil_service(QUOTA)
    base = merit_hash(build_merit_lists(GROUP, rule))
    assert len(base) == 64 and int(base, 16) >= 0
    shuffled = GROUP[:]
    random.Random(7).shuffle(shuffled)
    assert merit_hash(build_merit_lists(shuffled, rule)) == base
    for k, c in enumerate(GROUP):
        for change in ({"components": {"round2": (c.components.get("round2") or 0) + 0.25}},
                       {"round1_total": c.round1_total + 1}):
            changed = GROUP[:k] + [CandidateResult(**{**c.__dict__, **change})] + GROUP[k + 1:]
            assert merit_hash(build_merit_lists(changed, rule)) != base, (c.registration_no, change)
    assert merit_hash(build_merit_lists(GROUP, civil_service({LAW: 3, ACCOUNTS: 3}))) != base


def test_the_stored_form_reads_back_to_the_same_lists_and_hash():
    lists = build_merit_lists(GROUP, civil_service(QUOTA))
    stored = dump_merit_lists(lists)
    assert stored.decode("utf-8").startswith('{"format":"merit-lists/2"')
    again = load_merit_lists(stored)
    assert again == lists and merit_hash(again) == merit_hash(lists) and dump_merit_lists(again) == stored
    with pytest.raises(MeritRejected):
        load_merit_lists(b'{"format": "other"}')
    with pytest.raises(MeritRejected):
        load_merit_lists(b"not json")


def test_the_data_form_survives_a_json_column():
    lists = build_merit_lists(GROUP, civil_service(QUOTA))
    stored = json.loads(json.dumps(merit_lists_as_data(lists)))  # what a JSON column gives back
    again = merit_lists_from_data(stored)
    assert again == lists and merit_hash(again) == merit_hash(lists)
    with pytest.raises(MeritRejected):
        merit_lists_from_data({"format": "merit-lists/1", "lists": [{"post": LAW}]})


@settings(max_examples=100, deadline=None)
@given(ranked_groups(), st.sampled_from(['', 'Tên "trong" ngoặc', "a\\b, c", "dòng\nmới", "\u0001\u2028"]))
def test_the_canonical_json_is_written_column_by_column_exactly(case, odd):
    results, data = case
    results = [CandidateResult(**{**r.__dict__, "full_name": r.full_name + odd,
                                  "date_of_birth": date(1990, 1, 1 + k % 28)}) for k, r in enumerate(results)]
    rule, _ = rule_from_dict(data)
    lists = build_merit_lists(results, rule)
    for ml in list(lists.values()):
        for tie in ml.ties:
            decided = {reg: "selected" if k < tie.places else "not_selected"
                       for k, reg in enumerate(tie.registration_nos)}
            lists[ml.post] = apply_decisions(lists[ml.post], decided, reason=f"Biên bản {odd}")
    straight = json.dumps(merit_lists_as_data(lists), ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    assert dump_merit_lists(lists) == straight
    again = load_merit_lists(straight)
    assert again == lists and dump_merit_lists(again) == straight


# --- the earlier row format (merit-lists/1) --------------------------------------------------------

def rows_format(data: dict) -> dict:
    """Lists data in the earlier format (merit-lists/1: one list per row), as lists published with it hold."""
    lists = []
    for item in data["lists"]:
        columns, table = item["columns"], item["reasons"]
        names = item["row_fields"]
        rows = [list(values) for values in zip(*(columns[name] for name in names if name != "components"), strict=True)]
        for row, values, reasons in zip(rows, zip(*columns["components"], strict=True) if item["components"]
                                        else [()] * len(rows), columns["reasons"], strict=True):
            row.insert(names.index("components"), list(values))
            row[names.index("reasons")] = [table[k] for k in reasons]
        lists.append({key: value for key, value in item.items() if key not in ("columns", "reasons")} | {"rows": rows})
    return {"format": "merit-lists/1", "lists": lists}


def test_lists_stored_in_the_earlier_row_format_read_back_the_same():
    lists = build_merit_lists(GROUP, civil_service(QUOTA))
    old = rows_format(merit_lists_as_data(lists))
    text = json.dumps(old, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert load_merit_lists(text) == lists
