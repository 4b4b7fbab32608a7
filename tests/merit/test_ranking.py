"""Merit lists: the civil-service preset on hand-computed groups, board decisions, comparison of two builds,
and properties: a candidate's rank and status never depend on the order of the input, and the vectorized
ranking equals a straightforward one."""
from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exam.merit.content import dump_merit_lists, load_merit_lists, merit_hash
from exam.merit.ranking import (
    CandidateResult,
    CandidateTable,
    SectionResult,
    apply_decisions,
    build_merit_lists,
    compare_merit_lists,
    format_points,
    rank_candidates,
    round1_from_score_record,
)
from exam.merit.rule import MeritRejected, rule_from_dict
from tests.merit.cases import (
    ACCOUNTS,
    CATEGORIES,
    GROUP,
    LAW,
    QUOTA,
    by_reg,
    candidate,
    civil_service,
    ranked_groups,
    sections,
)

# --- the civil-service preset on the group ---------------------------------------------------------



def test_preset_on_a_post_with_a_three_way_tie_at_the_last_place():
    lists = build_merit_lists(GROUP, civil_service(QUOTA))
    assert list(lists) == [LAW, ACCOUNTS]
    law = lists[LAW]
    rows = by_reg(law)
    expected = {  # reg: (rank, total, bonus, status)
        "TS01": (1, 80.0, 0.0, "selected"),
        "TS02": (2, 75.0, 0.0, "tie"), "TS03": (2, 75.0, 0.0, "tie"), "TS04": (2, 75.0, 0.0, "tie"),
        "TS05": (5, 75.0, 2.5, "not_selected"),
        "TS10": (6, 67.5, 7.5, "not_selected"),
        "TS06": (None, None, 0.0, "ineligible"), "TS07": (None, None, 7.5, "ineligible"),
        "TS08": (None, None, 0.0, "ineligible"), "TS09": (None, None, 0.0, "ineligible"),
    }
    assert {reg: (r.rank, r.total, r.bonus, r.status) for reg, r in rows.items()} == expected
    # No silent break: all three tied candidates are "tie", one place left for the board.
    assert len(law.ties) == 1
    tie = law.ties[0]
    assert (tie.rank, tie.places, tie.total, tie.registration_nos) == (2, 1, 75.0, ("TS02", "TS03", "TS04"))
    assert law.places_left == 1
    assert law.counts() == {"selected": 1, "tie": 3, "not_selected": 2, "ineligible": 4}
    assert rows["TS02"].status_label == "Bằng điểm (chờ Hội đồng quyết định)"


def test_reasons_for_ineligible_have_a_code_and_a_vietnamese_sentence():
    rows = by_reg(build_merit_lists(GROUP, civil_service(QUOTA))[LAW])
    assert rows["TS06"].reason_codes == "round1_section_failed: Tin học"
    assert rows["TS06"].reason_text == "Không đạt phần thi Tin học ở vòng 1"
    assert rows["TS07"].reason_codes == "round2_below_min"
    assert rows["TS07"].reason_text == "Điểm vòng 2 (49,5) thấp hơn mức tối thiểu 50"
    assert rows["TS08"].reason_codes == "absent" and rows["TS08"].reason_text == "Không dự thi"
    assert rows["TS09"].reason_codes == "missing_round2"
    assert rows["TS09"].reason_text == "Không có điểm vòng 2"
    assert rows["TS01"].reasons == () and rows["TS01"].reason_text == ""
    # Several reasons at once: every one is listed.
    lists = build_merit_lists([candidate("X1", LAW, 40, failed=("Kiến thức chung", "Tin học"))], civil_service(QUOTA))
    assert lists[LAW].rows[0].reason_codes == ("round1_section_failed: Kiến thức chung; "
                                               "round1_section_failed: Tin học; round2_below_min")


def test_a_score_given_as_none_means_absent_from_that_round():
    absent = CandidateResult("X1", "X1", None, LAW, "", sections(), 100.0, {"round2": None})
    missing = CandidateResult("X2", "X2", None, LAW, "", sections(), 100.0, {})
    rows = by_reg(build_merit_lists([absent, missing], civil_service(QUOTA))[LAW])
    assert (str(rows["X1"].reasons[0]), rows["X1"].reason_text) == ("absent: round2", "Không dự thi (điểm vòng 2)")
    assert (str(rows["X2"].reasons[0]), rows["X2"].reason_text) == ("missing_round2", "Không có điểm vòng 2")


def test_unknown_category_earns_nothing_and_is_noted():
    rule = civil_service(QUOTA)
    assert rule.bonus_for("Con thuong binh; Hoàn thành nghĩa vụ quân sự") == (
        2.5, "nghia_vu_quan_su", ("Con thuong binh",))
    lists = build_merit_lists([candidate("X1", LAW, 70, "Vận động viên")], rule)
    row = lists[LAW].rows[0]
    assert (row.bonus, row.total, row.status) == (0.0, 70.0, "selected")
    assert [(n.registration_no, n.code) for n in lists[LAW].notes] == [("X1", "unknown_priority_category")]
    assert "Vận động viên" in lists[LAW].notes[0].message


def test_competition_ranks_and_a_tie_above_the_quota_is_no_problem():
    accounts = build_merit_lists(GROUP, civil_service(QUOTA))[ACCOUNTS]
    assert [(r.registration_no, r.rank, r.total, r.status) for r in accounts.rows] == [
        ("TS11", 1, 90.0, "selected"), ("TS12", 1, 90.0, "selected"), ("TS13", 3, 80.0, "selected"),
        ("TS14", 4, 70.0, "not_selected"), ("TS15", 5, 70.0, "not_selected")]
    assert accounts.ties == ()
    assert accounts.components == ("round1_total", "round2")
    assert accounts.rows[0].components == {"round1_total": 100.0, "round2": 90.0}


def test_equal_rows_are_displayed_by_registration_number_with_identical_status():
    # Names chosen so that alphabetical order and registration order disagree.
    group = [candidate("B2", LAW, 75, name="An"), candidate("A9", LAW, 75, name="Yến"),
             candidate("C1", LAW, 75, name="Bình"), candidate("Z0", LAW, 90, name="Ánh")]
    law = build_merit_lists(group, civil_service({LAW: 2}))[LAW]
    assert [(r.registration_no, r.rank, r.status) for r in law.rows] == [
        ("Z0", 1, "selected"), ("A9", 2, "tie"), ("B2", 2, "tie"), ("C1", 2, "tie")]
    # Same ranks and statuses whatever the names and numbers: swap them around.
    renamed = [CandidateResult(f"N{9 - k}", f"Tên {k}", c.date_of_birth, c.post, c.priority_categories,
                               c.round1_sections, c.round1_total, c.components) for k, c in enumerate(group)]
    again = build_merit_lists(renamed, civil_service({LAW: 2}))[LAW]
    assert sorted((r.rank, r.status) for r in again.rows) == sorted((r.rank, r.status) for r in law.rows)


def test_ties_at_the_first_place_and_everything_fits():
    two = [candidate("A", LAW, 70), candidate("B", LAW, 70)]
    law = build_merit_lists(two, civil_service({LAW: 1}))[LAW]
    assert [r.status for r in law.rows] == ["tie", "tie"] and law.ties[0].places == 1
    law = build_merit_lists(two, civil_service({LAW: 2}))[LAW]
    assert [r.status for r in law.rows] == ["selected", "selected"] and law.ties == ()
    law = build_merit_lists(two, civil_service({LAW: 5}))[LAW]
    assert [r.status for r in law.rows] == ["selected", "selected"]


def test_a_post_with_a_quota_and_no_candidates_gets_an_empty_list():
    lists = build_merit_lists([], civil_service({LAW: 2}))
    assert lists[LAW].rows == () and lists[LAW].ties == ()
    assert merit_hash(lists) == merit_hash(load_merit_lists(dump_merit_lists(lists)))


def test_posts_match_the_quota_table_ignoring_case_and_spaces():
    lists = build_merit_lists([candidate("A", "  chuyên viên   PHÁP CHẾ ", 70)], civil_service({LAW: 1}))
    assert lists[LAW].rows[0].status == "selected"


def test_a_post_without_quota_is_an_error_naming_the_post():
    with pytest.raises(MeritRejected) as caught:
        build_merit_lists(GROUP + [candidate("X1", "Văn thư", 70), candidate("X2", "Văn thư", 60),
                                   candidate("X3", "", 60)], civil_service(QUOTA))
    assert [(p.key, p.message) for p in caught.value.problems] == [
        ('ranking.quota."Văn thư"', "2 candidate(s) applied for this post but it has no quota"),
        ('ranking.quota."(no post)"', "1 candidate(s) applied for this post but it has no quota")]


def test_bad_input_is_refused_with_every_problem():
    bad = [candidate("A", LAW, 70), candidate("A", LAW, float("nan")),
           CandidateResult("B", "B", None, LAW, components={"round2": "70"}),
           CandidateResult("C", "C", None, LAW, components={"bonus": 3.0, "round2": 60.0})]
    with pytest.raises(MeritRejected) as caught:
        build_merit_lists(bad, civil_service(QUOTA))
    assert [str(p) for p in caught.value.problems] == [
        "A: is given twice", "A: round2 must be a finite number (got nan)",
        "B: round2 must be a finite number (got '70')", "C: external score 'bonus' uses a reserved name"]


# --- other rules -----------------------------------------------------------------------------------



def test_a_rule_without_preset_on_round1_total_and_the_bonus_as_tie_break():
    rule, errors = rule_from_dict({"score": "round1_total", "min_score": 30, "bonus": {"A": 2, "B": 1},
                                   "tie_break": ["bonus", "interview"], "quota": {LAW: 1}})
    assert errors == [] and not rule.require_round1_sections_passed
    results = [
        CandidateResult("P1", "P1", None, LAW, "B", round1_total=41.0, components={"interview": 5.0}),  # 42
        CandidateResult("P2", "P2", None, LAW, "A", round1_total=40.0),  # 42, bonus 2 beats 1
        CandidateResult("P3", "P3", None, LAW, "", round1_total=29.0),  # below 30
        CandidateResult("P4", "P4", None, LAW, "", round1_sections=sections("Tin học")),  # no total
    ]
    law = build_merit_lists(results, rule)[LAW]
    assert [(r.registration_no, r.rank, r.total, r.status, r.reason_codes) for r in law.rows] == [
        ("P2", 1, 42.0, "selected", ""), ("P1", 2, 42.0, "not_selected", ""),
        ("P3", None, None, "ineligible", "round1_total_below_min"),
        ("P4", None, None, "ineligible", "missing_round1_total")]
    assert law.components == ("round1_total", "interview")
    # P2 has no interview score: it counts as the lowest, and the board is told.
    assert [(n.registration_no, n.code) for n in law.notes] == [("P2", "missing_tie_break")]


# --- board decisions -------------------------------------------------------------------------------



def law_list():
    return build_merit_lists(GROUP, civil_service(QUOTA))[LAW]


def test_decisions_that_fill_the_places_resolve_the_tie():
    law = law_list()
    decided = apply_decisions(law, {"TS02": "not_selected", "TS03": "selected", "TS04": "not_selected"},
                              reason="Biên bản họp Hội đồng số 12: ưu tiên người có kinh nghiệm")
    rows = by_reg(decided)
    assert [rows[r].status for r in ("TS01", "TS02", "TS03", "TS04")] == [
        "selected", "not_selected", "selected", "not_selected"]
    assert rows["TS03"].decided_by_board and not rows["TS01"].decided_by_board
    assert rows["TS03"].rank == 2  # the rank stays: the decision is the board's, not the score's
    assert decided.ties == () and decided.places_left == 0
    (decision,) = decided.decisions
    assert (decision.rank, decision.places, decision.selected, decision.not_selected) == (
        2, 1, ("TS03",), ("TS02", "TS04"))
    assert decision.reason.startswith("Biên bản")
    assert law.ties and by_reg(law)["TS03"].status == "tie"  # the original list is unchanged
    assert merit_hash([decided]) != merit_hash([law])
    assert load_merit_lists(dump_merit_lists([decided]))[LAW] == decided


@pytest.mark.parametrize("decisions, problems", [
    ({"TS02": "selected", "TS03": "selected", "TS04": "not_selected"},
     ["tie at rank 2: 2 selected for 1 place(s) left; select exactly 1 of 3"]),
    ({"TS02": "not_selected", "TS03": "not_selected", "TS04": "not_selected"},
     ["tie at rank 2: 0 selected for 1 place(s) left; select exactly 1 of 3"]),
    ({"TS02": "selected"},
     ["tie at rank 2: every member needs a decision; undecided: TS03, TS04"]),
    ({"TS02": "selected", "TS03": "not_selected", "TS04": "not_selected", "TS05": "not_selected"},
     ["TS05: is not in an unresolved tie (status 'not_selected')"]),
    ({"TS02": "selected", "TS03": "không", "TS04": "not_selected"},
     ["TS03: the decision must be one of selected, not_selected (got 'không')"]),
    ({"TS99": "selected"}, ["TS99: is not on the list of 'Chuyên viên pháp chế'"]),
])
def test_decisions_that_do_not_fill_the_places_exactly_are_refused(decisions, problems):
    with pytest.raises(MeritRejected) as caught:
        apply_decisions(law_list(), decisions)
    assert [str(p) for p in caught.value.problems] == problems


def test_decisions_on_a_list_without_tie_are_refused_and_none_change_nothing():
    accounts = build_merit_lists(GROUP, civil_service(QUOTA))[ACCOUNTS]
    with pytest.raises(MeritRejected, match="not in an unresolved tie"):
        apply_decisions(accounts, {"TS11": "selected"})
    assert apply_decisions(accounts, {}) is accounts


# --- comparison, input, display --------------------------------------------------------------------



def test_compare_shows_whose_score_rank_and_status_change():
    rule = civil_service(QUOTA)
    before = build_merit_lists(GROUP, rule)
    regraded = [CandidateResult(**{**c.__dict__, "components": {"round2": 76.0}}) if c.registration_no == "TS04"
                else c for c in GROUP]
    after = build_merit_lists(regraded, rule)
    changes = {(c.registration_no, c.what): (c.before, c.after) for c in compare_merit_lists(before, after)}
    assert changes == {
        ("TS04", "score"): (75.0, 76.0), ("TS04", "total"): (75.0, 76.0),
        ("TS02", "rank"): (2, 3), ("TS03", "rank"): (2, 3),
        ("TS04", "status"): ("tie", "selected"), ("TS02", "status"): ("tie", "not_selected"),
        ("TS03", "status"): ("tie", "not_selected")}


def test_round1_from_a_grading_score_record():
    record = {"sections": [{"title": "Kiến thức chung", "score": 40.0, "max_score": 60.0, "passed": True},
                           {"title": "Tin học", "score": 10.0, "max_score": 30.0, "passed": False}],
              "total": 50.0, "max_total": 90.0, "passed": False}
    assert round1_from_score_record(record) == (
        (SectionResult("Kiến thức chung", 40.0, 60.0, True), SectionResult("Tin học", 10.0, 30.0, False)), 50.0)
    assert round1_from_score_record(None) == ((), None)


def test_points_are_written_the_vietnamese_way():
    assert [format_points(x) for x in (75.0, 72.5, 33.3333, 0.0, None)] == ["75", "72,5", "33,3333", "0", ""]
    assert format_points(7.5, 2) == "7,50"


# --- the property: order never matters -------------------------------------------------------------



@st.composite
def groups(draw):
    n = draw(st.integers(0, 40))
    results = []
    for k in range(n):
        round2 = draw(st.sampled_from([None, 45.0, 50.0, 60.0, 62.5, 65.0, 70.0, 75.0]))
        results.append(CandidateResult(
            registration_no=f"R{k:03d}", full_name=draw(st.sampled_from(["An", "Bình", "Chi"])),
            date_of_birth=date(1990 + k % 10, 1, 1), post=draw(st.sampled_from([LAW, ACCOUNTS])),
            priority_categories=draw(st.sampled_from(CATEGORIES)),
            round1_sections=sections(*(("Tin học",) if draw(st.integers(0, 9)) == 0 else ())),
            round1_total=100.0, components={} if round2 is None else {"round2": round2},
            absent=draw(st.integers(0, 19)) == 0))
    quota = {LAW: draw(st.integers(1, 6)), ACCOUNTS: draw(st.integers(1, 6))}
    return results, quota, draw(st.randoms(use_true_random=False))


@settings(max_examples=200, deadline=None)
@given(groups())
def test_status_and_rank_never_depend_on_input_order(case):
    results, quota, rnd = case
    rule = civil_service(quota)
    lists = build_merit_lists(results, rule)
    shuffled = results[:]
    rnd.shuffle(shuffled)
    again = build_merit_lists(shuffled, rule)

    def outcome(lists):
        return {row.registration_no: (row.rank, row.status, row.total) for ml in lists.values() for row in ml.rows}

    assert outcome(again) == outcome(lists)
    assert merit_hash(again) == merit_hash(lists)
    for post, ml in lists.items():
        # Candidates equal on the whole key (total, round-2 score) always share rank and status.
        by_key: dict = {}
        for row in ml.rows:
            if row.status != "ineligible":
                by_key.setdefault((row.total, row.score), set()).add((row.rank, row.status))
        assert all(len(v) == 1 for v in by_key.values())
        # The quota is filled exactly, by the selected and the places left to the board.
        counts = ml.counts()
        eligible = len(ml.rows) - counts["ineligible"]
        assert counts["selected"] + ml.places_left == min(quota[post], eligible)
        assert counts["tie"] == sum(len(t.registration_nos) for t in ml.ties)
        assert all(len(t.registration_nos) > t.places for t in ml.ties)


# --- the vectorized ranking against a straightforward one ------------------------------------------



def straightforward(results, rule):
    """Rank, status and total per registration number, the slow obvious way: eligibility by the rule's
    words, the key (total, tie-breaks…), rank = 1 + how many have a strictly greater key, status from
    the quota and the size of the group of equal keys."""
    def eligible(r):
        if r.absent:
            return False
        if rule.require_round1_sections_passed and (not r.round1_sections
                                                    or not all(s[3] for s in r.round1_sections)):
            return False
        score = r.round1_total if rule.score == "round1_total" else r.components.get(rule.score)
        return score is not None and (rule.min_score is None or round(score, 4) + 1e-9 >= rule.min_score)

    def value(r, name, bonus):
        if name == "bonus":
            return bonus
        found = r.round1_total if name == "round1_total" else r.components.get(name)
        return -math.inf if found is None else round(found, 4)

    outcome = {}
    for post in rule.quota:
        mine = [r for r in results if rule.post_of(r.post) == post]
        keys = {}
        for r in mine:
            bonus = rule.bonus_for(r.priority_categories)[0]
            if eligible(r):
                score = value(r, rule.score, bonus)
                total = round(score + bonus, 4)
                keys[r.registration_no] = (total, *(value(r, name, bonus) for name in rule.tie_break))
            else:
                outcome[r.registration_no] = (None, "ineligible", None)
        for reg, key in keys.items():
            rank = 1 + sum(1 for other in keys.values() if other > key)
            group = sum(1 for other in keys.values() if other == key)
            quota = rule.quota[post]
            status = "selected" if rank + group - 1 <= quota else "tie" if rank <= quota else "not_selected"
            outcome[reg] = (rank, status, key[0])
    return outcome


@settings(max_examples=300, deadline=None)
@given(ranked_groups())
def test_vectorized_ranking_equals_the_straightforward_one(case):
    results, data = case
    rule, errors = rule_from_dict(data)
    assert errors == []
    lists = build_merit_lists(results, rule)
    got = {row.registration_no: (row.rank, row.status, row.total) for ml in lists.values() for row in ml.rows}
    assert got == straightforward(results, rule)
    for ml in lists.values():  # ties: exactly the groups straddling the last place
        assert sorted(r for t in ml.ties for r in t.registration_nos) == sorted(
            row.registration_no for row in ml.rows if row.status == "tie")


def test_the_column_table_ranks_like_the_rows():
    rule = civil_service(QUOTA)
    table, problems = CandidateTable.of(GROUP)
    assert problems == [] and table.problems() == []
    assert dump_merit_lists(rank_candidates(table, rule)) == dump_merit_lists(build_merit_lists(GROUP, rule))
    twice, _ = CandidateTable.of(GROUP + [GROUP[0]])
    with pytest.raises(MeritRejected, match="TS01: is given twice"):
        rank_candidates(twice, rule)
