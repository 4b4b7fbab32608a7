"""The ranking rule: the civil-service preset, the bonus table, every problem of a [ranking] table named by
its key, the TOML shape round trip; and that the rule imports nothing but the core (a lower area imports it)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

from exam.merit.ranking import build_merit_lists
from exam.merit.rule import CIVIL_SERVICE_CATEGORIES, rule_from_dict
from tests.merit.cases import GROUP, LAW, QUOTA, by_reg, candidate, civil_service

ROOT = Path(__file__).resolve().parents[2]


# --- the preset ------------------------------------------------------------------------------------

def test_the_civil_service_preset_fills_in_the_common_rule():
    rule = civil_service(QUOTA)
    assert rule.score == "round2" and rule.min_score == 50 and rule.require_round1_sections_passed
    assert rule.tie_break == ("round2",)
    assert rule.bonus == {"anh_hung_thuong_binh": 7.5, "dan_toc_thieu_so": 5.0, "nghia_vu_quan_su": 2.5}
    assert [c.points for c in CIVIL_SERVICE_CATEGORIES] == [7.5, 5.0, 2.5]
    assert rule.label("dan_toc_thieu_so").startswith("Người dân tộc thiểu số")
    assert rule.label("round2") == "Điểm vòng 2"
    assert rule.preset == "civil_service"


def test_only_the_highest_bonus_counts():
    rule = civil_service(QUOTA)
    assert rule.bonus_for("Con thương binh; Thương binh; Hoàn thành nghĩa vụ quân sự") == (
        7.5, "anh_hung_thuong_binh", ())
    assert rule.bonus_for("Hoàn thành nghĩa vụ quân sự;Con liệt sĩ") == (5.0, "dan_toc_thieu_so", ())
    assert rule.bonus_for("  dân   tộc THIỂU số ") == (5.0, "dan_toc_thieu_so", ())  # case and spaces ignored
    assert rule.bonus_for("nghia_vu_quan_su") == (2.5, "nghia_vu_quan_su", ())  # the code itself
    assert rule.bonus_for("") == (0.0, "", ())
    assert rule.bonus_for(["Thương binh", "Con thương binh"]) == (7.5, "anh_hung_thuong_binh", ())
    row = by_reg(build_merit_lists(GROUP, rule)[LAW])["TS10"]
    assert (row.bonus, row.bonus_category, row.total) == (7.5, "anh_hung_thuong_binh", 67.5)
    assert row.priority_categories == "Con thương binh; Thương binh; Hoàn thành nghĩa vụ quân sự"


# --- other rules -----------------------------------------------------------------------------------

def test_preset_values_are_overridden_by_explicit_keys():
    rule = civil_service(QUOTA, min_score=60, bonus={"dan_toc_thieu_so": 4, "Vận động viên": 1},
                         tie_break=["round2", "round1_total"], labels={"round2": "Điểm thi viết"})
    assert rule.min_score == 60 and rule.tie_break == ("round2", "round1_total")
    assert rule.bonus == {"anh_hung_thuong_binh": 7.5, "dan_toc_thieu_so": 4.0, "nghia_vu_quan_su": 2.5,
                          "Vận động viên": 1.0}  # tables merge key by key
    assert rule.bonus_for("Con liệt sĩ") == (4.0, "dan_toc_thieu_so", ())  # the preset's alias still points there
    assert rule.label("round2") == "Điểm thi viết"
    row = build_merit_lists([candidate("A", LAW, 55)], rule)[LAW].rows[0]
    assert row.reason_text == "Điểm thi viết (55) thấp hơn mức tối thiểu 60"


def test_rule_errors_name_every_key():
    rule, errors = rule_from_dict({
        "preset": "ministry", "score": "Round 2", "min_score": "50", "require_round1_sections_passed": "yes",
        "bonus": {"A": -1, "B": "five", "b": 2}, "aliases": {"Con liệt sĩ": "C"},
        "quota": {"Kế toán": 0, "Văn thư": 2.5, "kế  toán": 3, "Pháp chế": 2},
        "tie_break": ["round2", "full_name", "round2", "total", 3], "labels": {"round2": ""}, "colour": "red"})
    assert rule is None
    assert [(e.key, e.message.split(" (")[0].split(";")[0]) for e in errors] == [
        ("ranking.colour", "unknown key"),
        ("ranking.preset", "must be one of civil_service"),
        ("ranking.score", 'must be "round2", "round1_total" or an external score named with 1 to 40 characters: '
                          "lower-case letters, digits or '_', starting with a letter"),
        ("ranking.min_score", "must be a number"),
        ("ranking.require_round1_sections_passed", "must be true or false"),
        ("ranking.bonus.A", "must be between 0 and 1000"),
        ("ranking.bonus.B", "must be a number"),
        ("ranking.bonus.b", "is the same category as 'B'"),
        ('ranking.aliases."Con liệt sĩ"', "names 'C', which is not a category of the bonus table"),
        ('ranking.labels.round2', "must be non-blank text"),
        ('ranking.quota."Kế toán"', "must be between 1 and 1000000"),
        ('ranking.quota."Văn thư"', "must be a whole number of places"),
        ('ranking.quota."kế toán"', "is the same post as 'Kế toán'"),
        ("ranking.tie_break[1]", "'full_name' cannot break a tie: equal candidates are never ordered by name, "
                                 "number, birth date or order"),
        ("ranking.tie_break[2]", "'round2' is listed twice"),
        ("ranking.tie_break[3]", "the total is already the first key"),
        ("ranking.tie_break[4]", "must be text"),
    ]


def test_rule_needs_a_score_without_preset_and_must_be_a_table():
    assert rule_from_dict({"quota": {LAW: 1}})[1][0].key == "ranking.score"
    assert rule_from_dict(["round2"])[1] == [("ranking", "must be a table (got a list)")]
    for name in ("registration_no", "id", "date_of_birth", "random"):
        assert "cannot break a tie" in rule_from_dict({"score": "round2", "tie_break": [name]})[1][0].message


def test_rule_round_trips_through_its_toml_shape():
    rule = civil_service(QUOTA, min_score=55)
    again, errors = rule_from_dict(rule.as_dict())
    assert errors == [] and again == rule and again.preset is None


# --- what the rule imports -------------------------------------------------------------------------

def test_the_rule_imports_only_the_core():
    """exam.setup.spec (a lower area) imports exam.merit.rule at the top: the rule must import nothing but the
    standard library and exam.core, never the ranking (numpy), the lists' database side or another area."""
    tree = ast.parse((ROOT / "exam" / "merit" / "rule.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    outside = {name for name in imported
               if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("exam.core.")}
    assert outside == set(), outside
