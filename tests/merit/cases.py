"""The merit lists' pure examples: the civil-service group of candidates computed by hand, and the
hypothesis strategy of random groups, shared by the tests of the rule, the ranking and the stored form."""
from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from exam.merit.ranking import CandidateResult, RankingRule
from exam.merit.rule import rule_from_dict

LAW = "Chuyên viên pháp chế"
ACCOUNTS = "Kế toán viên"


def sections(*failed: str) -> list[tuple]:
    """Round-1 sections as grading reports them: (title, score, max, passed)."""
    return [(title, 20.0 if title in failed else 40.0, 60.0, title not in failed)
            for title in ("Kiến thức chung", "Ngoại ngữ", "Tin học")]


def candidate(reg: str, post: str, round2: float | None, categories: str = "", *, failed: tuple = (),
              absent: bool = False, name: str | None = None, round1_total: float = 100.0) -> CandidateResult:
    return CandidateResult(
        registration_no=reg, full_name=name or f"Thí sinh {reg}", date_of_birth=date(1998, 3, 14), post=post,
        priority_categories=categories, round1_sections=sections(*failed), round1_total=round1_total,
        components={} if round2 is None else {"round2": round2}, absent=absent)


def civil_service(quota: dict[str, int], **overrides) -> RankingRule:
    rule, errors = rule_from_dict({"preset": "civil_service", "quota": quota, **overrides})
    assert errors == []
    return rule


GROUP = [
    candidate("TS01", LAW, 80),                     # 80           rank 1   selected
    candidate("TS02", LAW, 75),                     # 75 (r2 75)   rank 2   tie
    candidate("TS03", LAW, 75),                     # 75 (r2 75)   rank 2   tie
    candidate("TS04", LAW, 75),                     # 75 (r2 75)   rank 2   tie
    candidate("TS05", LAW, 72.5, "Hoàn thành nghĩa vụ quân sự"),  # 72.5 + 2.5 = 75, r2 lower: rank 5
    candidate("TS06", LAW, 95, failed=("Tin học",)),              # ineligible: a failed round-1 section
    candidate("TS07", LAW, 49.5, "Thương binh"),    # ineligible: 49.5 < 50, the bonus cannot rescue it
    candidate("TS08", LAW, None, absent=True),      # ineligible: absent
    candidate("TS09", LAW, None),                   # ineligible: no round-2 score
    candidate("TS10", LAW, 60, "Con thương binh; Thương binh; Hoàn thành nghĩa vụ quân sự"),  # 60 + 7.5 only
    candidate("TS11", ACCOUNTS, 90),                # 90   rank 1 selected
    candidate("TS12", ACCOUNTS, 90),                # 90   rank 1 selected (a tie above the boundary)
    candidate("TS13", ACCOUNTS, 80),                # 80   rank 3 selected
    candidate("TS14", ACCOUNTS, 70),                # 70   rank 4 not selected
    candidate("TS15", ACCOUNTS, 65, "Dân tộc thiểu số"),  # 65 + 5 = 70, r2 lower: rank 5
]
QUOTA = {LAW: 2, ACCOUNTS: 3}


def by_reg(merit_list) -> dict:
    return {row.registration_no: row for row in merit_list.rows}


# --- random groups ---------------------------------------------------------------------------------

CATEGORIES = ("", "", "Con thương binh", "Thương binh", "Hoàn thành nghĩa vụ quân sự",
              "Con liệt sĩ; Hoàn thành nghĩa vụ quân sự")
RULES = (
    {"preset": "civil_service"},
    {"preset": "civil_service", "min_score": 60, "tie_break": ["round2", "interview"]},
    {"score": "round1_total", "require_round1_sections_passed": True, "tie_break": ["bonus"],
     "bonus": {"a": 2.5, "b": 1}},
    {"score": "interview", "tie_break": ["round1_total", "round2"]},
)


@st.composite
def ranked_groups(draw):
    n = draw(st.integers(0, 60))
    results = []
    for k in range(n):
        def score(values):
            return draw(st.sampled_from(values))
        components = {}
        for name, values in (("round2", [None, 45.0, 50.0, 60.0, 62.5, 75.0, 75.00001]),
                             ("interview", [None, 5.0, 7.25, 9.0])):
            if draw(st.integers(0, 5)):
                components[name] = score(values)
        results.append(CandidateResult(
            registration_no=f"R{draw(st.integers(0, 10 ** 6)):07d}-{k}", full_name="An", date_of_birth=None,
            post=draw(st.sampled_from([LAW, ACCOUNTS, " kế toán  VIÊN "])),
            priority_categories=draw(st.sampled_from(CATEGORIES + ("a", "b; a", "unknown"))),
            round1_sections=sections(*(("Tin học",) if draw(st.integers(0, 6)) == 0 else ()))
            if draw(st.integers(0, 12)) else (),
            round1_total=score([None, 55.0, 61.25, 61.25, 80.0]), components=components,
            absent=draw(st.integers(0, 19)) == 0))
    data = {**draw(st.sampled_from(RULES)), "quota": {LAW: draw(st.integers(1, 8)), ACCOUNTS: draw(st.integers(1, 8))}}
    return results, data
