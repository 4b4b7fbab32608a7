"""Merit lists: eligibility, priority bonus, quotas and tie-breaks → ranked rows per post, ties flagged.

Pure rules: plain values in (``CandidateResult`` rows, or the same column by column in a
``CandidateTable``, and a ``RankingRule`` of ``exam.merit.rule``), plain values out (a
``MeritList`` per post). No database, no Flask, no clock. The caller loads the results, calls
``build_merit_lists`` (``rank_candidates`` for a table), records board decisions with
``apply_decisions``, and publishes the lists' canonical JSON with its hash
(``exam.merit.content``: ``dump_merit_lists``, ``merit_hash``).

Ranking is vectorized (numpy: one lexsort over post, eligibility and the key; ranks and
groups from its runs) and a list keeps its rows column by column (``RowColumns``), so
100,000 candidates are ranked, written as canonical JSON and hashed without a Python
object per candidate; ``MeritList.rows`` makes the ``MeritRow`` tuples when first read.

One concept, the ranking, in the order it happens (past 600 lines because its records come with it):

* scores as the lists write them: ``format_points``;
* input: ``SectionResult``, ``CandidateResult``, ``round1_from_score_record``, ``CandidateTable`` (the same
  column by column, as the database side loads it);
* output: ``Reason``, ``MeritNote``, ``MeritRow``, ``TieGroup``, ``BoardDecision``, ``RowColumns``,
  ``MeritList``;
* ranking: ``build_merit_lists``, ``rank_candidates`` and their steps (posts and bonus, scores and
  eligibility, the order and groups, reasons, notes, the lists);
* the board's decisions: ``apply_decisions``;
* comparing two builds: ``MeritChange``, ``compare_merit_lists``.

The ranking
-----------
Each candidate is ranked within the post they applied for (vị trí việc làm). First the
screening, every failed condition giving a reason (a code and a Vietnamese sentence):

1. ``absent`` (did not sit): ineligible, no other reason is looked at.
2. With ``require_round1_sections_passed``: every round-1 section passed, as graded
   (``exam.grading``: at least ``pass_ratio``, 50%, of its questions right). Each failed
   section gives ``round1_section_failed: <section title>``; no round-1 result at all
   gives ``missing_round1``.
3. The counted score (``score``: ``round2``, ``round1_total`` or a named external
   component such as ``interview``) is present (else ``missing_<score>``) and at least
   ``min_score`` (else ``<score>_below_min``).

An eligible candidate's total is::

    total = score + bonus      bonus = the highest points among the candidate's priority
                               categories: only the highest counts, never a sum; none → 0

The candidates of a post are ordered on the key ``(total, tie_break[0], tie_break[1], …)``,
every part descending (a tie-break value a candidate lacks counts as the lowest, and is
noted). Ranks are standard competition ranks on the whole key (1, 1, 3): candidates equal
on every part share a rank and the next rank skips. Nothing else ever orders them: not the
name, the registration number, the date of birth, the input order.

With the post's quota q, a candidate of rank r whose group of equal candidates has g
members is

* ``selected``     when r + g − 1 ≤ q: the whole group fits (a tie above the boundary
                   is no problem: all of it is selected);
* ``tie``          when r ≤ q < r + g − 1: the group straddles the last place. Every member
                   is "tie" (bằng điểm, chờ Hội đồng quyết định) and the group is listed in
                   ``MeritList.ties`` with its q − r + 1 places left. The system never
                   breaks such a tie;
* ``not_selected`` when r > q.

Ineligible candidates have no rank. ``apply_decisions`` records the board's decision on a
tie, accepted only when it names every member of the group and selects exactly the places
left. Rows are displayed by rank, equal ranks by registration number (display only: their
status is the same), then the ineligible by registration number.

Scores are compared at ``SCORE_DECIMALS`` (4) decimal places, as grading stores them. The
civil-service preset, the rule's TOML shape and how categories and posts are matched are in
``exam.merit.rule``. An unknown category earns nothing and is noted on the list for the board.
"""
from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from itertools import islice, repeat
from typing import NamedTuple

import numpy as np

from exam.core.batch import gc_paused
from exam.merit.rule import (
    BONUS,
    RESERVED_COMPONENTS,
    ROUND1_TOTAL,
    SCORE_DECIMALS,
    MeritRejected,
    RankingRule,
    RuleError,
    key_path,
)

_EPS = 1e-9

STATUSES = ("selected", "tie", "not_selected", "ineligible")
STATUS_LABELS = {
    "selected": "Trúng tuyển",
    "tie": "Bằng điểm (chờ Hội đồng quyết định)",
    "not_selected": "Không trúng tuyển",
    "ineligible": "Không đủ điều kiện",
}
DECISIONS = ("selected", "not_selected")


# --- scores as the lists write them ----------------------------------------------------------------

def format_points(value: float | None, decimals: int | None = None) -> str:
    """A score the Vietnamese way: decimal comma, no trailing zeros unless ``decimals`` is given."""
    if value is None:
        return ""
    if decimals is None:
        text = f"{value:.{SCORE_DECIMALS}f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.{decimals}f}"
    return "0" if text in ("-0", "") else text.replace(".", ",")


def _round(value: float) -> float:
    return round(float(value), SCORE_DECIMALS) + 0.0  # + 0.0: no negative zero


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- input -----------------------------------------------------------------------------------------

class SectionResult(NamedTuple):
    """One round-1 section as graded: a plain tuple (title, score, max_score, passed) works too."""

    title: str
    score: float
    max_score: float
    passed: bool


@dataclass(frozen=True)
class CandidateResult:
    """What the merit list needs about one candidate."""

    registration_no: str
    full_name: str
    date_of_birth: date | None
    post: str
    priority_categories: str | Sequence[str] = ""  # the roster's text, several separated by ";"
    round1_sections: Sequence[SectionResult] = ()  # in section order
    round1_total: float | None = None
    # External scores, e.g. {"round2": 72.5}. A score given as None means absent from that part (as the
    # imported scores record it): reason "absent: round2"; a score not given at all is "missing_round2".
    components: Mapping[str, float | None] = field(default_factory=dict)
    absent: bool = False  # did not sit at all (the reason "absent"; nothing else is looked at)


def round1_from_score_record(record: Mapping | None) -> tuple[tuple[SectionResult, ...], float | None]:
    """(sections, total) from ``exam.grading.scoring.score_record``'s dict (``attempt.score``); None → ((), None)."""
    if not record:
        return (), None
    sections = tuple(SectionResult(s["title"], float(s["score"]), float(s["max_score"]), bool(s["passed"]))
                     for s in record.get("sections", ()))
    return sections, float(record["total"]) if record.get("total") is not None else None


# --- input, column by column -----------------------------------------------------------------------

@dataclass(frozen=True)
class CandidateTable:
    """What the merit list needs about every candidate, column by column (row i is one candidate): the
    form the database side loads, so 100,000 candidates are ranked without an object each.
    ``CandidateTable.of`` makes one from ``CandidateResult`` rows."""

    registration_no: Sequence[str]
    full_name: Sequence[str]
    date_of_birth: Sequence[str | None]  # ISO dates
    post: Sequence[str]
    priority_categories: Sequence[str]  # the roster's text, several separated by ";"
    round1_total: np.ndarray  # [C] float64, NaN: no round-1 total
    round1_failed: np.ndarray  # [C] int64: index into failed_sections; -1: no round-1 section results
    failed_sections: Sequence[tuple[str, ...]]  # distinct sets of failed round-1 section titles (() = none)
    # External scores: name → (scores [C] float64, NaN where none; given [C] bool: the candidate has the
    # component, a given NaN meaning absent from that part).
    components: Mapping[str, tuple[np.ndarray, np.ndarray]]
    absent: np.ndarray  # [C] bool: did not sit at all

    def __len__(self) -> int:
        return len(self.registration_no)

    @classmethod
    def of(cls, results: Sequence[CandidateResult]) -> tuple[CandidateTable, list[RuleError]]:
        """The table of ``CandidateResult`` rows and the problems found in them, in input order (a
        registration number given twice, a score that is not a finite number, a reserved name); a bad
        value is left out of the table."""
        n = len(results)
        problems: list[RuleError] = []
        seen: set[str] = set()
        round1_total = np.full(n, np.nan)
        round1_failed = np.full(n, -1, dtype=np.int64)
        failed_index: dict[tuple[str, ...], int] = {}
        values: dict[str, np.ndarray] = {}
        given: dict[str, np.ndarray] = {}
        for i, result in enumerate(results):
            reg = result.registration_no
            if reg in seen:
                problems.append(RuleError(reg, "is given twice"))
            seen.add(reg)
            for name, value in (result.components or {}).items():
                if name in RESERVED_COMPONENTS:
                    problems.append(RuleError(reg, f"external score {name!r} uses a reserved name"))
                    continue
                if name not in values:
                    values[name], given[name] = np.full(n, np.nan), np.zeros(n, dtype=bool)
                given[name][i] = True
                if value is not None:
                    if _finite(value):
                        values[name][i] = value
                    else:
                        problems.append(RuleError(reg, f"{name} must be a finite number (got {value!r})"))
            if result.round1_total is not None:
                if _finite(result.round1_total):
                    round1_total[i] = result.round1_total
                else:
                    problems.append(RuleError(reg, f"{ROUND1_TOTAL} must be a finite number "
                                                   f"(got {result.round1_total!r})"))
            if result.round1_sections:
                failed = tuple(s[0] for s in result.round1_sections if not s[3])
                round1_failed[i] = failed_index.setdefault(failed, len(failed_index))
        categories = [c if isinstance(c, str) else "; ".join(c) for c in (r.priority_categories for r in results)]
        return cls(
            registration_no=[r.registration_no for r in results], full_name=[r.full_name for r in results],
            date_of_birth=[r.date_of_birth.isoformat() if r.date_of_birth else None for r in results],
            post=[r.post for r in results], priority_categories=categories, round1_total=round1_total,
            round1_failed=round1_failed, failed_sections=list(failed_index),
            components={name: (values[name], given[name]) for name in values},
            absent=np.array([bool(r.absent) for r in results], dtype=bool)), problems

    def problems(self) -> list[RuleError]:
        """What ``of`` would report, checked on the columns: registration numbers given twice, infinite
        scores, reserved component names."""
        problems: list[tuple[int, RuleError]] = []
        if len(set(self.registration_no)) != len(self):
            seen: set[str] = set()
            for i, reg in enumerate(self.registration_no):
                if reg in seen:
                    problems.append((i, RuleError(reg, "is given twice")))
                seen.add(reg)
        for name, (values, given) in self.components.items():
            if name in RESERVED_COMPONENTS:
                problems += [(i, RuleError(self.registration_no[i], f"external score {name!r} uses a reserved "
                                                                     "name")) for i in np.flatnonzero(given)]
            problems += [(i, RuleError(self.registration_no[i], f"{name} must be a finite number (got "
                                                                 f"{values[i]!r})"))
                         for i in np.flatnonzero(np.isinf(values)).tolist()]
        problems += [(i, RuleError(self.registration_no[i], f"{ROUND1_TOTAL} must be a finite number (got "
                                                             f"{self.round1_total[i]!r})"))
                     for i in np.flatnonzero(np.isinf(self.round1_total)).tolist()]
        return [problem for _, problem in sorted(problems, key=lambda p: p[0])]


# --- output ----------------------------------------------------------------------------------------

class Reason(NamedTuple):
    """Why a candidate is ineligible: a code, what it concerns (a section title) and a Vietnamese sentence."""

    code: str  # absent | missing_round1 | round1_section_failed | missing_<score> | <score>_below_min
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.subject}" if self.subject else self.code


class MeritNote(NamedTuple):
    """Something the board should look at that does not change a status by itself."""

    registration_no: str
    code: str  # unknown_priority_category | missing_tie_break
    message: str  # Vietnamese


class MeritRow(NamedTuple):
    """One candidate on a merit list (an immutable tuple: cheap to make by the hundred thousand)."""

    registration_no: str
    full_name: str
    date_of_birth: date | None
    rank: int | None  # None when ineligible
    score: float | None  # the counted score
    components: Mapping[str, float | None]  # every name of MeritList.components
    priority_categories: str  # as given, "; "-joined
    bonus: float
    bonus_category: str  # the category that gave the bonus ("" for none)
    total: float | None  # None when ineligible
    status: str  # one of STATUSES
    reasons: tuple[Reason, ...] = ()  # when ineligible
    decided_by_board: bool = False  # the status comes from the board's decision on a tie

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def reason_codes(self) -> str:
        return "; ".join(map(str, self.reasons))

    @property
    def reason_text(self) -> str:
        return "; ".join(r.message for r in self.reasons)


@dataclass(frozen=True)
class TieGroup:
    """Candidates equal on every key who straddle the quota's last place: the board decides."""

    rank: int
    places: int  # places left for them: quota − rank + 1
    total: float
    registration_nos: tuple[str, ...]  # sorted


@dataclass(frozen=True)
class BoardDecision:
    """The board's resolution of one tie group."""

    rank: int
    places: int
    selected: tuple[str, ...]
    not_selected: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class RowColumns:
    """The rows of a list column by column, in display order: what ``MeritList.rows`` are made of and what
    is stored, so a list of 100,000 candidates is built, hashed and stored without a Python object per row.
    One list per field of ``MeritRow``; dates as ISO text; ``components`` holds one list per component
    column of the list (``MeritList.components``)."""

    registration_no: list
    full_name: list
    date_of_birth: list  # ISO dates or None
    rank: list
    score: list
    components: tuple  # of lists, one per component column
    priority_categories: list
    bonus: list
    bonus_category: list
    total: list
    status: list
    reasons: list  # tuples of Reason
    decided_by_board: list

    @property
    def size(self) -> int:
        return len(self.registration_no)

    @classmethod
    def empty(cls, n_components: int) -> RowColumns:
        return cls([], [], [], [], [], tuple([] for _ in range(n_components)), [], [], [], [], [], [], [])

    @classmethod
    def of_rows(cls, rows: Sequence[MeritRow], components: Sequence[str]) -> RowColumns:
        if not rows:
            return cls.empty(len(components))
        fields = [list(column) for column in zip(*rows, strict=True)]
        return cls(fields[0], fields[1], [born.isoformat() if born else None for born in fields[2]], fields[3],
                   fields[4], tuple([row.components.get(c) for row in rows] for c in components), fields[6],
                   fields[7], fields[8], fields[9], fields[10], [tuple(r) for r in fields[11]], fields[12])


@dataclass(frozen=True)
class MeritList:
    """The ranked list of one post. ``rows`` are in display order (see the module docstring), made from
    ``columns`` when first read."""

    post: str
    quota: int
    rule: RankingRule
    components: tuple[str, ...]  # component columns in display order, e.g. ("round1_total", "round2")
    columns: RowColumns
    ties: tuple[TieGroup, ...] = ()  # unresolved
    decisions: tuple[BoardDecision, ...] = ()
    notes: tuple[MeritNote, ...] = ()

    @cached_property
    def rows(self) -> tuple[MeritRow, ...]:
        c, names = self.columns, self.components
        values = zip(*c.components, strict=True) if names else repeat((), c.size)
        with gc_paused():
            return tuple(
                MeritRow(reg, name, date.fromisoformat(born) if born else None, rank, score,
                         dict(zip(names, v, strict=True)), categories, bonus, category, total, status, reasons,
                         decided)
                for reg, name, born, rank, score, v, categories, bonus, category, total, status, reasons, decided
                in zip(c.registration_no, c.full_name, c.date_of_birth, c.rank, c.score, values,
                       c.priority_categories, c.bonus, c.bonus_category, c.total, c.status, c.reasons,
                       c.decided_by_board, strict=True))

    def counts(self) -> dict[str, int]:
        """Rows per status, every status present."""
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(Counter(self.columns.status))
        return counts

    def row(self, registration_no: str) -> MeritRow:
        try:
            return self.rows[self.columns.registration_no.index(registration_no)]
        except ValueError:
            raise KeyError(registration_no) from None

    @property
    def places_left(self) -> int:
        """Places the board still has to fill by deciding the ties."""
        return sum(t.places for t in self.ties)

# --- ranking ---------------------------------------------------------------------------------------

_STATUS_OF_CODE = ("selected", "tie", "not_selected", "ineligible")
_ABSENT = (Reason("absent", "", "Không dự thi"),)
_MISSING_ROUND1 = Reason("missing_round1", "", "Không có kết quả vòng 1")


def _finite(value: object) -> bool:
    return (type(value) is float or type(value) is int or (
        isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)))) \
        and math.isfinite(value)


def _rounded(values: np.ndarray) -> np.ndarray:
    """Scores rounded to SCORE_DECIMALS (NaN stays NaN), as float64, no negative zero."""
    return np.round(np.asarray(values, dtype=np.float64), SCORE_DECIMALS) + 0.0


def _plain(array: np.ndarray) -> list:
    """Floats (NaN → None) for rows and JSON."""
    return [None if v != v else v for v in array.tolist()]


def build_merit_lists(results: Iterable[CandidateResult], rule: RankingRule) -> dict[str, MeritList]:
    """Rank every candidate within their post: {post: MeritList}, posts in the quota table's order
    (a post with a quota and no candidate gets an empty list).

    Raises ``MeritRejected`` naming every problem: a post with candidates and no quota, a
    registration number given twice, a score that is not a finite number, an external score
    using a reserved name."""
    with gc_paused():
        table, problems = CandidateTable.of(results if isinstance(results, list) else list(results))
        return _rank(table, rule, problems)


def rank_candidates(table: CandidateTable, rule: RankingRule) -> dict[str, MeritList]:
    """``build_merit_lists`` on a ``CandidateTable``: the same lists, the same problems refused."""
    with gc_paused():
        return _rank(table, rule, table.problems())


def _index_of(values: Sequence, key) -> tuple[np.ndarray, list]:
    """(index of each value among the distinct ones, [key(distinct value)]): per-value work done once."""
    distinct = {value: k for k, value in enumerate(dict.fromkeys(values))}
    index = np.fromiter(map(distinct.__getitem__, values), dtype=np.int64, count=len(values))
    return index, [key(value) for value in distinct]


def _rank(table: CandidateTable, rule: RankingRule, problems: list[RuleError]) -> dict[str, MeritList]:
    """The lists, in steps over whole columns: each candidate's post and bonus (refusing the problems), the
    scores and eligibility, the order with its ranks, groups and statuses, then per post the rows."""
    posts = _posts_and_bonus(table, rule, problems)
    scores = _scores(table, rule, posts.bonus)
    ordering = _ordering(table, rule, posts, scores)
    return _lists(table, rule, posts, scores, ordering, reasons_of=_reasons_of(table, rule, scores),
                  notes_of=_notes_of(table, rule, posts, scores), columns_of=_shown_columns(table, rule, posts))


class _Posts(NamedTuple):
    """Each candidate's post and bonus."""

    names: list[str]  # the quota table's posts, in its order
    of: np.ndarray  # [C] int64: index into names (every candidate's post has a quota, or the build is refused)
    category_of: np.ndarray  # [C] int64: index into bonus_info
    bonus_info: list  # per distinct roster text: (points, the category that gave them, the text, unknown ones)
    bonus: np.ndarray  # [C] float64


def _posts_and_bonus(table: CandidateTable, rule: RankingRule, problems: list[RuleError]) -> _Posts:
    """The post and the bonus, worked out once per distinct roster value; ``MeritRejected`` with ``problems``
    and each post that candidates applied for without a quota."""
    n = len(table)
    posts = list(rule.quota)
    post_index = {post: i for i, post in enumerate(posts)}

    def post_number(name: str) -> int:
        quoted = rule.post_of(name) if name else None
        return len(posts) if quoted is None else post_index[quoted]

    post_of, numbers = _index_of(table.post, post_number)
    post_of = np.array(numbers, dtype=np.int64)[post_of] if n else np.zeros(0, dtype=np.int64)
    unquoted: dict[str, int] = {}
    if n and (post_of == len(posts)).any():
        for name in (table.post[i] for i in np.flatnonzero(post_of == len(posts)).tolist()):
            label = " ".join(name.split()) or "(no post)"
            unquoted[label] = unquoted.get(label, 0) + 1

    def bonus_of_text(text: str) -> tuple[float, str, str, tuple[str, ...]]:
        points, category, unknown = rule.bonus_for(text)
        return _round(points), category, " ".join(text.split()), unknown

    category_of, bonus_info = _index_of(table.priority_categories, bonus_of_text)
    bonus = np.array([b[0] for b in bonus_info] or [0.0], dtype=np.float64)[category_of]

    for post, count in unquoted.items():
        problems.append(RuleError(key_path("ranking.quota", post),
                                  f"{count} candidate(s) applied for this post but it has no quota"))
    if problems:
        raise MeritRejected(problems)
    return _Posts(posts, post_of, category_of, bonus_info, bonus)


class _Scores(NamedTuple):
    """Eligibility and totals, on arrays ([C] each, rounded to SCORE_DECIMALS)."""

    round1: np.ndarray  # round-1 totals, NaN: none
    external: dict[str, np.ndarray]  # component → scores, NaN: none (every component the rule names is there)
    score: np.ndarray  # the counted score, NaN: none
    has_score: np.ndarray  # bool
    above_min: np.ndarray  # bool: has the score, at least the minimum
    absent: np.ndarray  # bool: did not sit
    eligible: np.ndarray  # bool
    total: np.ndarray  # score + bonus; -inf when ineligible
    tie_arrays: list[np.ndarray]  # one per tie-break, -inf where missing


def _scores(table: CandidateTable, rule: RankingRule, bonus: np.ndarray) -> _Scores:
    n = len(table)
    none = np.full(n, np.nan)
    round1 = _rounded(table.round1_total)
    external = {name: _rounded(values) for name, (values, _) in table.components.items()}
    for name in {name for name in (rule.score, *rule.tie_break) if name not in (ROUND1_TOTAL, BONUS)} - external.keys():
        external[name] = none
    score = round1 if rule.score == ROUND1_TOTAL else external[rule.score]
    has_score = ~np.isnan(score)
    above_min = has_score if rule.min_score is None else has_score & (score + _EPS >= rule.min_score)
    absent = np.asarray(table.absent, dtype=bool)
    if rule.require_round1_sections_passed:
        passed_all = np.array([not f for f in table.failed_sections] + [False], dtype=bool)
        round1_ok = passed_all[table.round1_failed]  # -1 (no section results) reads the last: False
    else:
        round1_ok = np.ones(n, dtype=bool)
    eligible = ~absent & round1_ok & above_min
    total = np.where(eligible, np.round(score + bonus, SCORE_DECIMALS) + 0.0, -np.inf)
    tie_arrays = []
    for name in rule.tie_break:
        values = bonus if name == BONUS else round1 if name == ROUND1_TOTAL else external[name]
        tie_arrays.append(np.where(np.isnan(values), -np.inf, values))
    return _Scores(round1, external, score, has_score, above_min, absent, eligible, total, tie_arrays)


class _Ordering(NamedTuple):
    """The candidates in display order, and what the order gives (each [C], in that order)."""

    order: np.ndarray  # candidate indexes: by post, the eligible first, the key descending
    post_start: np.ndarray  # [P + 1]: where each post's rows start
    rank: np.ndarray  # competition rank within the post (meaningless for the ineligible)
    group_id: np.ndarray  # the group of candidates equal on the whole key
    status_code: np.ndarray  # index into _STATUS_OF_CODE


def _ordering(table: CandidateTable, rule: RankingRule, posts: _Posts, scores: _Scores) -> _Ordering:
    """Post, eligible first, then the key descending; the registration number only orders the display of rows
    equal on the whole key (rank and status come from the key alone)."""
    n = len(table)
    post_of, eligible = posts.of, scores.eligible
    registration = np.arange(n)
    regs = table.registration_no
    if not all(map(operator.le, regs, islice(regs, 1, None))):  # a roster read in order needs no sort
        registration[np.argsort(np.array(regs, dtype=str), kind="stable")] = np.arange(n)
    order = np.lexsort([registration, *(-a for a in reversed(scores.tie_arrays)), -scores.total, ~eligible, post_of])
    s_post, s_eligible = post_of[order], eligible[order]
    same = (s_post[1:] == s_post[:-1]) & s_eligible[1:] & s_eligible[:-1]
    for key in (scores.total, *scores.tie_arrays):
        s = key[order]
        same &= s[1:] == s[:-1]
    new_group = np.concatenate(([True], ~same)) if n else np.ones(0, dtype=bool)
    positions = np.arange(n)
    group_start = np.maximum.accumulate(np.where(new_group, positions, 0)) if n else positions
    group_id = np.cumsum(new_group) - 1
    group_size = np.bincount(group_id, minlength=1)[group_id]
    post_start = np.searchsorted(s_post, np.arange(len(posts.names) + 1))
    rank = group_start - post_start[s_post] + 1
    quota = np.array([rule.quota[p] for p in posts.names] + [0], dtype=np.int64)[s_post]
    status_code = np.where(~s_eligible, 3, np.where(rank + group_size - 1 <= quota, 0, np.where(rank <= quota, 1, 2)))
    return _Ordering(order, post_start, rank, group_id, status_code)


def _reasons_of(table: CandidateTable, rule: RankingRule, scores: _Scores) -> np.ndarray:
    """[C] each candidate's reasons (a tuple of ``Reason``, () when eligible), worked out once per distinct
    (round-1 result, score state, score) among the ineligible."""
    n = len(table)
    reasons_of = np.empty(n, dtype=object)
    reasons_of.fill(())
    absentees = np.flatnonzero(scores.absent)
    if len(absentees):
        made = np.empty(len(absentees), dtype=object)
        made.fill(_ABSENT)
        reasons_of[absentees] = made
    concerned = np.flatnonzero(~scores.eligible & ~scores.absent)
    if not len(concerned):
        return reasons_of
    score = scores.score
    score_given_none = table.components[rule.score][1] & np.isnan(score) \
        if rule.score != ROUND1_TOTAL and rule.score in table.components else np.zeros(n, dtype=bool)
    below = scores.has_score & ~scores.above_min
    state = np.where(~scores.has_score, np.where(score_given_none, 1, 2), np.where(below, 3, 0))[concerned]
    failed = table.round1_failed[concerned] if rule.require_round1_sections_passed else np.full(len(concerned), -2)
    # One integer key per (round-1 result, score state, score when below the minimum): a 1-D unique.
    values, value_index = np.unique(np.where(state == 3, score[concerned], 0.0), return_inverse=True)
    keys = ((failed + 2) * 4 + state) * len(values) + value_index.ravel()
    distinct, inverse = np.unique(keys, return_inverse=True)
    made = np.empty(len(distinct), dtype=object)
    score_label = rule.label(rule.score)
    for k, key in enumerate(distinct.tolist()):
        code, value_k = divmod(key, len(values))
        made[k] = _reasons(rule, score_label, code // 4 - 2, code % 4, float(values[value_k]), table.failed_sections)
    reasons_of[concerned] = made[inverse.ravel()]
    return reasons_of


def _notes_of(table: CandidateTable, rule: RankingRule, posts: _Posts, scores: _Scores) -> list[list[MeritNote]]:
    """Per post, the notes for the board: unknown priority categories, missing tie-break scores."""
    notes_of: list[list[MeritNote]] = [[] for _ in posts.names]
    post_of, category_of, bonus_info = posts.of, posts.category_of, posts.bonus_info
    unknown = np.array([bool(b[3]) for b in bonus_info] or [False], dtype=bool)[category_of]
    for i in np.flatnonzero(unknown).tolist():
        notes_of[post_of[i]].extend(MeritNote(
            table.registration_no[i], "unknown_priority_category",
            f"Đối tượng ưu tiên \"{name}\" không có trong bảng điểm ưu tiên: không được cộng điểm")
            for name in bonus_info[category_of[i]][3])
    for name, values in zip(rule.tie_break, scores.tie_arrays, strict=True):
        for i in np.flatnonzero(scores.eligible & np.isinf(values)).tolist():
            notes_of[post_of[i]].append(MeritNote(
                table.registration_no[i], "missing_tie_break",
                f"Không có {_lower_first(rule.label(name))} để xét khi bằng điểm: tính là thấp nhất"))
    return notes_of


def _shown_columns(table: CandidateTable, rule: RankingRule, posts: _Posts) -> list[tuple[str, ...]]:
    """Which component columns each post shows."""
    post_of, n_posts = posts.of, len(posts.names)
    seen_of: list[set[str]] = [set() for _ in posts.names]
    for name, present in [(name, given) for name, (_, given) in table.components.items()] \
            + [(ROUND1_TOTAL, ~np.isnan(table.round1_total))]:
        for p in np.flatnonzero(np.bincount(post_of[present], minlength=n_posts + 1)[:n_posts]).tolist():
            seen_of[p].add(name)
    return [_component_columns(rule, seen_of[p]) for p in range(n_posts)]


def _lists(table: CandidateTable, rule: RankingRule, posts: _Posts, scores: _Scores, ordering: _Ordering, *,
           reasons_of: np.ndarray, notes_of: list[list[MeritNote]],
           columns_of: list[tuple[str, ...]]) -> dict[str, MeritList]:
    """Rows, per post, column by column in display order (the sorted order is grouped by post)."""
    n = len(table)
    text_columns = [np.array(column, dtype=object) if n else np.zeros(0, dtype=object) for column in
                    (table.registration_no, table.full_name, table.date_of_birth)]
    category_of, bonus_info = posts.category_of, posts.bonus_info
    category_text = np.array([b[2] for b in bonus_info] or [""], dtype=object)[category_of]
    category_code = np.array([b[1] for b in bonus_info] or [""], dtype=object)[category_of]
    status_text = np.array(_STATUS_OF_CODE, dtype=object)
    total_all = np.where(scores.eligible, scores.total, np.nan)
    column_arrays = {ROUND1_TOTAL: scores.round1, **scores.external}
    lists = {}
    for p, post in enumerate(posts.names):
        where = slice(int(ordering.post_start[p]), int(ordering.post_start[p + 1]))
        index = ordering.order[where]
        codes = ordering.status_code[where]
        ranked = int(np.count_nonzero(codes != 3))  # the eligible come first
        columns = RowColumns(
            registration_no=text_columns[0][index].tolist(), full_name=text_columns[1][index].tolist(),
            date_of_birth=text_columns[2][index].tolist(),
            rank=ordering.rank[where][:ranked].tolist() + [None] * (len(index) - ranked),
            score=_plain(scores.score[index]),
            components=tuple(_plain(column_arrays[c][index]) for c in columns_of[p]),
            priority_categories=category_text[index].tolist(), bonus=posts.bonus[index].tolist(),
            bonus_category=category_code[index].tolist(), total=_plain(total_all[index]),
            status=status_text[codes].tolist(), reasons=reasons_of[index].tolist(),
            decided_by_board=[False] * len(index))
        lists[post] = MeritList(post=post, quota=rule.quota[post], rule=rule, components=columns_of[p],
                                columns=columns, ties=_ties(rule.quota[post], columns, codes,
                                                            ordering.group_id[where]),
                                notes=tuple(sorted(notes_of[p])))
    return lists


def _ties(quota: int, columns: RowColumns, codes: np.ndarray, group_id: np.ndarray) -> tuple[TieGroup, ...]:
    """A post's unresolved ties, by rank: each group of tied rows (status code 1) with its places left."""
    ties = []
    tied = np.flatnonzero(codes == 1)
    if len(tied):
        groups = group_id[tied]
        for g in np.unique(groups).tolist():
            members = tied[groups == g]
            first = int(members[0])
            ties.append(TieGroup(rank=columns.rank[first], places=quota - columns.rank[first] + 1,
                                 total=columns.total[first],
                                 registration_nos=tuple(sorted(columns.registration_no[k] for k in
                                                               members.tolist()))))
    return tuple(sorted(ties, key=lambda t: t.rank))


def _reasons(rule: RankingRule, score_label: str, failed: int, state: int, value: float,
             failed_sections: Sequence[tuple[str, ...]]) -> tuple[Reason, ...]:
    """Why a candidate who sat is ineligible: round 1 (``failed``: -2 not checked, -1 no result, else the
    index of the failed section titles), then the counted score (``state``: 0 fine, 1 given as absent,
    2 missing, 3 below the minimum at ``value``)."""
    reasons = []
    if failed == -1:
        reasons.append(_MISSING_ROUND1)
    elif failed >= 0:
        reasons += [Reason("round1_section_failed", title, f"Không đạt phần thi {title} ở vòng 1")
                    for title in failed_sections[failed]]
    if state == 1:
        reasons.append(Reason("absent", rule.score, f"Không dự thi ({_lower_first(score_label)})"))
    elif state == 2:
        reasons.append(Reason(f"missing_{rule.score}", "", f"Không có {_lower_first(score_label)}"))
    elif state == 3:
        reasons.append(Reason(f"{rule.score}_below_min", "", f"{score_label} ({format_points(value)}) thấp hơn "
                                                              f"mức tối thiểu {format_points(rule.min_score)}"))
    return tuple(reasons)


def _component_columns(rule: RankingRule, seen: set[str]) -> tuple[str, ...]:
    """round1_total (when the rule uses round 1 or a candidate of the post has it), the counted score,
    the tie-break scores, then any other external score the post's candidates have (by name)."""
    columns = [ROUND1_TOTAL] if rule.uses_round1 or ROUND1_TOTAL in seen else []
    for name in (rule.score, *rule.tie_break):
        if name not in columns and name != BONUS:
            columns.append(name)
    columns.extend(sorted(seen - set(columns) - {ROUND1_TOTAL}))
    return tuple(columns)


# --- the board's decisions -------------------------------------------------------------------------

def apply_decisions(merit_list: MeritList, decisions: Mapping[str, str], *, reason: str = "") -> MeritList:
    """The list with the board's decisions on its tie(s): {registration_no: "selected" | "not_selected"}.

    A tie group is resolved only when the decisions name every member and select exactly its
    places left; anything else raises ``MeritRejected`` naming each problem (an unknown or
    untied candidate, an undecided member, too many or too few selected, a bad decision).
    Returns a new list: the members get the decided status (``decided_by_board``), the group
    leaves ``ties`` and enters ``decisions`` with ``reason``. No decisions → the list as is."""
    if not decisions:
        return merit_list
    problems: list[RuleError] = []
    tie_of = {reg: tie for tie in merit_list.ties for reg in tie.registration_nos}
    c = merit_list.columns
    wanted = set(decisions)
    at = {reg: k for k, reg in enumerate(c.registration_no) if reg in wanted}
    touched: dict[int, TieGroup] = {}
    for reg, decision in decisions.items():
        if decision not in DECISIONS:
            problems.append(RuleError(reg, f"the decision must be one of {', '.join(DECISIONS)} (got {decision!r})"))
        if reg not in at:
            problems.append(RuleError(reg, f"is not on the list of {merit_list.post!r}"))
        elif reg not in tie_of:
            problems.append(RuleError(reg, f"is not in an unresolved tie (status {c.status[at[reg]]!r})"))
        else:
            touched[tie_of[reg].rank] = tie_of[reg]
    for tie in touched.values():
        key = f"tie at rank {tie.rank}"
        undecided = [reg for reg in tie.registration_nos if reg not in decisions]
        if undecided:
            problems.append(RuleError(key, f"every member needs a decision; undecided: {', '.join(undecided)}"))
        chosen = [reg for reg in tie.registration_nos if decisions.get(reg) == "selected"]
        if len(chosen) != tie.places:
            problems.append(RuleError(key, f"{len(chosen)} selected for {tie.places} place(s) left; select exactly "
                                           f"{tie.places} of {len(tie.registration_nos)}"))
    if problems:
        raise MeritRejected(problems)

    status, decided = list(c.status), list(c.decided_by_board)
    for tie in touched.values():
        for reg in tie.registration_nos:
            status[at[reg]], decided[at[reg]] = decisions[reg], True
    new_decisions = tuple(BoardDecision(
        rank=tie.rank, places=tie.places,
        selected=tuple(r for r in tie.registration_nos if decisions[r] == "selected"),
        not_selected=tuple(r for r in tie.registration_nos if decisions[r] == "not_selected"),
        reason=" ".join(reason.split())) for tie in sorted(touched.values(), key=lambda t: t.rank))
    return replace(merit_list, columns=replace(c, status=status, decided_by_board=decided),
                   ties=tuple(t for t in merit_list.ties if t.rank not in touched),
                   decisions=merit_list.decisions + new_decisions)


# --- comparing two lists (before and after a key correction) ---------------------------------------

class MeritChange(NamedTuple):
    post: str
    registration_no: str
    full_name: str
    what: str  # "score" | "total" | "rank" | "status" | "added" | "removed"
    before: object
    after: object


_COMPARED = ("score", "total", "rank", "status")


def compare_merit_lists(before: Mapping[str, MeritList], after: Mapping[str, MeritList]) -> list[MeritChange]:
    """Whose score, total, rank or status differs between two builds (e.g. before and after a regrade)."""
    changes: list[MeritChange] = []
    empty = RowColumns.empty(0)
    for post in list(before) + [p for p in after if p not in before]:
        a = before[post].columns if post in before else empty
        b = after[post].columns if post in after else empty
        old = dict(zip(a.registration_no, range(a.size), strict=True))
        new = dict(zip(b.registration_no, range(b.size), strict=True))
        fields = [(what, getattr(a, what), getattr(b, what)) for what in _COMPARED]
        for reg in sorted(old.keys() | new.keys()):
            i, j = old.get(reg), new.get(reg)
            if i is None or j is None:
                name = a.full_name[i] if j is None else b.full_name[j]
                changes.append(MeritChange(post, reg, name, "added" if i is None else "removed",
                                           None if i is None else a.status[i], None if j is None else b.status[j]))
                continue
            for what, x, y in fields:
                if x[i] != y[j]:
                    changes.append(MeritChange(post, reg, b.full_name[j], what, x[i], y[j]))
    return changes
