"""Merit lists: eligibility, priority bonus, quotas and tie-breaks → ranked rows per post, ties flagged.

Pure rules: plain values in (``CandidateResult`` rows, or the same column by column in a
``CandidateTable``, and a ``RankingRule``), plain values out (a ``MeritList`` per post). No
database, no Flask, no clock. The caller loads the results, calls ``build_merit_lists``
(``rank_candidates`` for a table), records board decisions with ``apply_decisions``, and
publishes ``dump_merit_lists`` (canonical JSON) with its ``merit_hash``.

Ranking is vectorized (numpy: one lexsort over post, eligibility and the key; ranks and
groups from its runs) and a list keeps its rows column by column (``RowColumns``), so
100,000 candidates are ranked, written as canonical JSON and hashed without a Python
object per candidate; ``MeritList.rows`` makes the ``MeritRow`` tuples when first read.
``dump_merit_lists`` writes exactly the bytes of ``json.dumps(merit_lists_as_data(...),
ensure_ascii=False, sort_keys=True, separators=(",", ":"))``, column by column.

The ranking rule
----------------
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

Scores are compared at ``SCORE_DECIMALS`` (4) decimal places, as grading stores them.

The civil-service preset
------------------------
``preset = "civil_service"`` (Nghị định 138/2020/NĐ-CP, Điều 5 and Điều 9): eligible when
every round-1 section is passed; score = round-2 score, at least 50; bonus 7.5 / 5 / 2.5 by
priority category (``CIVIL_SERVICE_CATEGORIES``), only the highest; on equal totals the
higher round-2 score wins (``tie_break = ["round2"]``); still tied at the last place: the
board decides. Keys written next to the preset override it: scalars and lists replace the
preset's value, the tables ``bonus``, ``aliases`` and ``labels`` are merged key by key.

The rule's TOML shape (the ``[ranking]`` table of an exam)::

    [ranking]
    preset = "civil_service"          # optional; then every key below is optional too
    score = "round2"                  # "round2", "round1_total" or an external component
    min_score = 50                    # on the counted score, before the bonus
    require_round1_sections_passed = true
    tie_break = ["round2"]            # among "round2", "round1_total", "bonus", components
    [ranking.bonus]                   # priority category → points; only the highest counts
    dan_toc_thieu_so = 5
    [ranking.aliases]                 # roster wording → category
    "Con liệt sĩ" = "dan_toc_thieu_so"
    [ranking.labels]                  # display names of components and categories
    interview = "Điểm phỏng vấn"
    [ranking.quota]                   # post → places; every post with candidates needs one
    "Chuyên viên pháp chế" = 2

A candidate's categories are the roster's text, several separated by ";"; each is matched,
ignoring case and extra spaces (not accents), against the bonus table's keys and the
aliases. An unknown category earns nothing and is noted on the list for the board.
Posts are matched against the quota table the same way; the list takes the table's spelling.
"""
from __future__ import annotations

import hashlib
import json
import math
import operator
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from itertools import islice, repeat
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from exam.core.batch import gc_paused
from exam.core.errors import Refused

SCORE_DECIMALS = 4
_EPS = 1e-9
FORMAT = "merit-lists/2"  # the canonical JSON's format tag (enters the hash): rows column by column
ROWS_FORMAT = "merit-lists/1"  # the earlier form, one list per row: still read (lists published with it)
FORMATS = (ROWS_FORMAT, FORMAT)

ROUND1_TOTAL = "round1_total"
ROUND2 = "round2"
BONUS = "bonus"
RESERVED_COMPONENTS = (ROUND1_TOTAL, BONUS, "total", "score")  # not names of external components
COMPONENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COMPONENT_RULE = "1 to 40 characters: lower-case letters, digits or '_', starting with a letter"
NEVER_TIE_BREAKS = ("name", "full_name", "registration_no", "sbd", "id", "date_of_birth", "dob", "age",
                    "citizen_id", "order", "random")
CATEGORY_SEPARATOR = ";"

STATUSES = ("selected", "tie", "not_selected", "ineligible")
STATUS_LABELS = {
    "selected": "Trúng tuyển",
    "tie": "Bằng điểm (chờ Hội đồng quyết định)",
    "not_selected": "Không trúng tuyển",
    "ineligible": "Không đủ điều kiện",
}
DECISIONS = ("selected", "not_selected")

DEFAULT_LABELS = {ROUND1_TOTAL: "Điểm vòng 1", ROUND2: "Điểm vòng 2", BONUS: "Điểm ưu tiên", "total": "Tổng điểm"}

RULE_KEYS = ("preset", "score", "min_score", "require_round1_sections_passed", "bonus", "aliases", "quota",
             "tie_break", "labels")
MAX_POINTS = 1000.0
MAX_QUOTA = 1_000_000
MAX_TIE_BREAKS = 10
MAX_KEY_CHARS = 200
MAX_LABEL_CHARS = 300


class PriorityCategory(NamedTuple):
    code: str
    points: float
    label: str  # Vietnamese, for lists and pages
    aliases: tuple[str, ...]  # roster wordings that mean this category


# Nghị định 138/2020/NĐ-CP, Điều 5: điểm ưu tiên trong thi tuyển công chức.
CIVIL_SERVICE_CATEGORIES = (
    PriorityCategory(
        "anh_hung_thuong_binh", 7.5,
        "Anh hùng Lực lượng vũ trang, Anh hùng Lao động, thương binh, người hưởng chính sách như thương binh",
        ("Anh hùng Lực lượng vũ trang", "Anh hùng LLVT", "Anh hùng Lao động", "Thương binh", "Thương binh loại B",
         "Người hưởng chính sách như thương binh")),
    PriorityCategory(
        "dan_toc_thieu_so", 5.0,
        "Người dân tộc thiểu số, sĩ quan quân đội, sĩ quan công an, quân nhân chuyên nghiệp phục viên, "
        "người làm công tác cơ yếu chuyển ngành, con liệt sĩ, con thương binh, con bệnh binh, "
        "con Anh hùng Lực lượng vũ trang, con Anh hùng Lao động",
        ("Người dân tộc thiểu số", "Dân tộc thiểu số", "Sĩ quan quân đội", "Sĩ quan công an",
         "Quân nhân chuyên nghiệp phục viên", "Người làm công tác cơ yếu chuyển ngành",
         "Học viên tốt nghiệp đào tạo sĩ quan dự bị", "Con liệt sĩ", "Con thương binh", "Con bệnh binh",
         "Con của người hưởng chính sách như thương binh", "Con của thương binh loại B",
         "Con đẻ của người hoạt động kháng chiến bị nhiễm chất độc hóa học",
         "Con Anh hùng Lực lượng vũ trang", "Con Anh hùng Lao động")),
    PriorityCategory(
        "nghia_vu_quan_su", 2.5,
        "Người hoàn thành nghĩa vụ quân sự, nghĩa vụ tham gia Công an nhân dân, đội viên thanh niên xung phong",
        ("Người hoàn thành nghĩa vụ quân sự", "Hoàn thành nghĩa vụ quân sự",
         "Người hoàn thành nghĩa vụ tham gia Công an nhân dân", "Hoàn thành nghĩa vụ công an",
         "Đội viên thanh niên xung phong")),
)

# Presets in the TOML shape; explicit keys override them (see the module docstring).
PRESETS: dict[str, dict] = {
    "civil_service": {
        "score": ROUND2,
        "min_score": 50.0,
        "require_round1_sections_passed": True,
        "bonus": {c.code: c.points for c in CIVIL_SERVICE_CATEGORIES},
        "aliases": {alias: c.code for c in CIVIL_SERVICE_CATEGORIES for alias in c.aliases},
        "tie_break": [ROUND2],
        "labels": {c.code: c.label for c in CIVIL_SERVICE_CATEGORIES},
    },
}


def fold(text: str) -> str:
    """Matching form of a category or post: NFC, no case, single spaces (accents kept)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


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


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


def _join(key: str, name: str) -> str:
    name = _toml_key(name)
    return f"{key}.{name}" if key else name


def _kind(value: object) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- errors ----------------------------------------------------------------------------------------

class RuleError(NamedTuple):
    """One problem: the key it concerns (a TOML key path, a registration number, a post) and what is wrong."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class MeritRejected(Refused):
    """Refused input (results, decisions, a stored list) with every problem found (``problems``)."""

    def __init__(self, problems: Sequence[RuleError]):
        self.problems = list(problems)
        super().__init__("; ".join(map(str, self.problems)))


# --- the rule --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankingRule:
    """How a merit list is made; built by ``rule_from_dict`` (see the module docstring). Do not mutate
    its tables."""

    score: str = ROUND2  # the counted score: "round2", "round1_total" or an external component
    min_score: float | None = None  # on the counted score, before the bonus
    require_round1_sections_passed: bool = False
    bonus: Mapping[str, float] = field(default_factory=dict)  # priority category → points
    aliases: Mapping[str, str] = field(default_factory=dict)  # roster wording → category (a bonus key)
    quota: Mapping[str, int] = field(default_factory=dict)  # post → places
    tie_break: tuple[str, ...] = ()  # after the total, in order, each descending
    labels: Mapping[str, str] = field(default_factory=dict)  # component or category → display name
    preset: str | None = field(default=None, compare=False)  # what it was built from; informative only

    def label(self, code: str) -> str:
        """Display name of a component (``round2``) or a category: the rule's labels, then the defaults."""
        return self.labels.get(code) or DEFAULT_LABELS.get(code) or code

    @cached_property
    def _categories(self) -> dict[str, str]:
        index = {fold(alias): category for alias, category in self.aliases.items()}
        index.update({fold(category): category for category in self.bonus})
        return index

    @cached_property
    def _posts(self) -> dict[str, str]:
        return {fold(post): post for post in self.quota}

    def post_of(self, post: str) -> str | None:
        """The quota table's spelling of a post, or None when the post has no quota."""
        return self._posts.get(fold(post))

    def bonus_for(self, categories: str | Sequence[str]) -> tuple[float, str, tuple[str, ...]]:
        """(points, the category that gave them or "", the unknown categories) for a roster value
        such as "Con thương binh; Hoàn thành nghĩa vụ quân sự". Only the highest bonus counts; among
        equal points the category written first in the bonus table is named."""
        names = categories.split(CATEGORY_SEPARATOR) if isinstance(categories, str) else categories
        best, best_category, unknown = 0.0, "", []
        order = {category: i for i, category in enumerate(self.bonus)}
        for name in names:
            name = " ".join(name.split())
            if not name:
                continue
            category = self._categories.get(fold(name))
            if category is None:
                unknown.append(name)
                continue
            points = float(self.bonus[category])
            if (not best_category or points > best
                    or (points == best and order[category] < order[best_category])):
                best, best_category = points, category
        return best, best_category, tuple(unknown)

    def as_dict(self) -> dict:
        """The rule in the TOML shape, every value written out (no preset):
        ``rule_from_dict(rule.as_dict()) == (rule, [])``."""
        data: dict = {"score": self.score}
        if self.min_score is not None:
            data["min_score"] = self.min_score
        data["require_round1_sections_passed"] = self.require_round1_sections_passed
        data["tie_break"] = list(self.tie_break)
        data["bonus"] = dict(self.bonus)
        data["aliases"] = dict(self.aliases)
        data["labels"] = dict(self.labels)
        data["quota"] = dict(self.quota)
        return data


def rule_from_dict(data: object, *, prefix: str = "ranking") -> tuple[RankingRule | None, list[RuleError]]:
    """Check a ``[ranking]`` table given as plain data: ``(rule, [])`` or ``(None, every problem)``.

    Each problem names its key path under ``prefix`` (``ranking.quota."Chuyên viên"``) so the
    board fixes the file in one pass; messages are in English like the exam specification's."""
    checker = _RuleChecker(prefix)
    rule = checker.rule(data)
    return (None, checker.errors) if checker.errors else (rule, [])


class _RuleChecker:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.errors: list[RuleError] = []

    def error(self, key: str, message: str) -> None:
        self.errors.append(RuleError(key, message))

    def path(self, *names: str) -> str:
        key = self.prefix
        for name in names:
            key = _join(key, name)
        return key

    def rule(self, data: object) -> RankingRule | None:
        if not isinstance(data, dict):
            self.error(self.prefix, f"must be a table (got {_kind(data)})")
            return None
        for name in data:
            if name not in RULE_KEYS:
                self.error(self.path(str(name)), f"unknown key; the keys here are {', '.join(RULE_KEYS)}")
        preset_name = data.get("preset")
        base: dict = {}
        if preset_name is not None:
            if not isinstance(preset_name, str) or preset_name not in PRESETS:
                self.error(self.path("preset"), f"must be one of {', '.join(PRESETS)} (got {preset_name!r})")
            else:
                base = PRESETS[preset_name]

        score = self.score(data, base)
        min_score = self.min_score(data, base)
        require = data.get("require_round1_sections_passed", base.get("require_round1_sections_passed", False))
        if not isinstance(require, bool):
            self.error(self.path("require_round1_sections_passed"), f"must be true or false (got {_kind(require)} "
                                                                    f"{require!r})")
            require = False
        bonus = self.bonus(data, base)
        aliases = self.aliases(data, base, bonus)
        labels = self.labels(data, base)
        quota = self.quota(data)
        tie_break = self.tie_break(data, base)
        return RankingRule(score=score, min_score=min_score, require_round1_sections_passed=require, bonus=bonus,
                           aliases=aliases, quota=quota, tie_break=tie_break, labels=labels,
                           preset=preset_name if isinstance(preset_name, str) else None)

    def score(self, data: dict, base: dict) -> str:
        name = "score"
        value = data.get(name, base.get(name))
        if value is None:
            self.error(self.path(name), 'is required: "round2", "round1_total" or the name of an external score '
                                        '(or give preset = "civil_service")')
            return ROUND2
        if not isinstance(value, str):
            self.error(self.path(name), f"must be text (got {_kind(value)})")
            return ROUND2
        if value == ROUND1_TOTAL:
            return value
        if value in RESERVED_COMPONENTS or not COMPONENT_PATTERN.match(value):
            self.error(self.path(name), f'must be "round2", "round1_total" or an external score named with '
                                        f"{COMPONENT_RULE} (got {value!r})")
            return ROUND2
        return value

    def number(self, value: object, key: str, low: float, high: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.error(key, f"must be a number (got {_kind(value)} {value!r})")
            return None
        if not low <= value <= high:
            self.error(key, f"must be between {low:g} and {high:g} (got {value:g})")
            return None
        return float(value)

    def min_score(self, data: dict, base: dict) -> float | None:
        value = data.get("min_score", base.get("min_score"))
        if value is None:
            return None
        return self.number(value, self.path("min_score"), 0.0, MAX_POINTS)

    def table(self, data: dict, name: str) -> dict:
        value = data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(self.path(name), f"must be a table (got {_kind(value)})")
            return {}
        good = {}
        for key, item in value.items():
            text = " ".join(str(key).split())
            if not text:
                self.error(self.path(name, str(key)), "a key must not be blank")
            elif len(text) > MAX_KEY_CHARS:
                self.error(self.path(name, text[:40] + "…"), f"is too long ({len(text)} characters; "
                                                              f"at most {MAX_KEY_CHARS})")
            else:
                good[text] = item
        return good

    def unique_folded(self, name: str, keys: Iterable[str], what: str) -> None:
        first: dict[str, str] = {}
        for key in keys:
            folded = fold(key)
            if folded in first:
                self.error(self.path(name, key), f"is the same {what} as {first[folded]!r} (case and spaces "
                                                 "are ignored)")
            else:
                first[folded] = key

    def bonus(self, data: dict, base: dict) -> dict[str, float]:
        merged = {**base.get("bonus", {}), **self.table(data, "bonus")}
        bonus = {}
        for category, points in merged.items():
            value = self.number(points, self.path("bonus", category), 0.0, MAX_POINTS)
            if value is not None:
                bonus[category] = value
        self.unique_folded("bonus", merged, "category")
        return bonus

    def aliases(self, data: dict, base: dict, bonus: dict) -> dict[str, str]:
        merged = {**base.get("aliases", {}), **self.table(data, "aliases")}
        categories = {fold(c): c for c in bonus}
        aliases = {}
        for alias, category in merged.items():
            key = self.path("aliases", alias)
            if not isinstance(category, str):
                self.error(key, f"must name a category of [ranking.bonus] (got {_kind(category)})")
                continue
            target = categories.get(fold(category))
            if target is None:
                self.error(key, f"names {category!r}, which is not a category of the bonus table "
                                f"({', '.join(bonus) or 'empty'})")
                continue
            same = categories.get(fold(alias))
            if same is not None and same != target:
                self.error(key, f"is itself the category {same!r}; an alias cannot point elsewhere")
                continue
            aliases[alias] = target
        self.unique_folded("aliases", merged, "wording")
        return aliases

    def labels(self, data: dict, base: dict) -> dict[str, str]:
        merged = {**base.get("labels", {}), **self.table(data, "labels")}
        labels = {}
        for code, label in merged.items():
            key = self.path("labels", code)
            if not isinstance(label, str) or not label.strip():
                self.error(key, f"must be non-blank text (got {_kind(label)})")
            elif len(label) > MAX_LABEL_CHARS or "\n" in label:
                self.error(key, f"must be one line of at most {MAX_LABEL_CHARS} characters")
            else:
                labels[code] = " ".join(label.split())
        return labels

    def quota(self, data: dict) -> dict[str, int]:
        quota = {}
        table = self.table(data, "quota")
        for post, places in table.items():
            key = self.path("quota", post)
            if isinstance(places, bool) or not isinstance(places, int):
                self.error(key, f"must be a whole number of places (got {_kind(places)} {places!r})")
            elif not 1 <= places <= MAX_QUOTA:
                self.error(key, f"must be between 1 and {MAX_QUOTA} (got {places})")
            else:
                quota[post] = places
        self.unique_folded("quota", table, "post")
        return quota

    def tie_break(self, data: dict, base: dict) -> tuple[str, ...]:
        value = data.get("tie_break", base.get("tie_break", []))
        key = self.path("tie_break")
        if not isinstance(value, list):
            self.error(key, f"must be a list such as [\"round2\"] (got {_kind(value)})")
            return ()
        if len(value) > MAX_TIE_BREAKS:
            self.error(key, f"has {len(value)} entries; at most {MAX_TIE_BREAKS}")
            return ()
        names: list[str] = []
        for index, name in enumerate(value):
            item_key = f"{key}[{index}]"
            if not isinstance(name, str):
                self.error(item_key, f"must be text (got {_kind(name)})")
            elif fold(name).replace(" ", "_") in NEVER_TIE_BREAKS:
                self.error(item_key, f"{name!r} cannot break a tie: equal candidates are never ordered by name, "
                                     "number, birth date or order; the board decides")
            elif name == "total":
                self.error(item_key, "the total is already the first key; list what decides among equal totals")
            elif name in names:
                self.error(item_key, f"{name!r} is listed twice")
            elif name in (ROUND1_TOTAL, BONUS) or (name not in RESERVED_COMPONENTS and COMPONENT_PATTERN.match(name)):
                names.append(name)
            else:
                self.error(item_key, f'must be "round2", "round1_total", "bonus" or an external score named with '
                                     f"{COMPONENT_RULE} (got {name!r})")
        return tuple(names)


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
    """(sections, total) from ``exam.grading.score_record``'s dict (``attempt.score``); None → ((), None)."""
    if not record:
        return (), None
    sections = tuple(SectionResult(s["title"], float(s["score"]), float(s["max_score"]), bool(s["passed"]))
                     for s in record.get("sections", ()))
    return sections, float(record["total"]) if record.get("total") is not None else None


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
    def empty(cls, n_components: int) -> "RowColumns":
        return cls([], [], [], [], [], tuple([] for _ in range(n_components)), [], [], [], [], [], [], [])

    @classmethod
    def of_rows(cls, rows: Sequence[MeritRow], components: Sequence[str]) -> "RowColumns":
        if not rows:
            return cls.empty(len(components))
        fields = [list(column) for column in zip(*rows)]
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
        values = zip(*c.components) if names else repeat(())
        with gc_paused():
            return tuple(
                MeritRow(reg, name, date.fromisoformat(born) if born else None, rank, score, dict(zip(names, v)),
                         categories, bonus, category, total, status, reasons, decided)
                for reg, name, born, rank, score, v, categories, bonus, category, total, status, reasons, decided
                in zip(c.registration_no, c.full_name, c.date_of_birth, c.rank, c.score, values,
                       c.priority_categories, c.bonus, c.bonus_category, c.total, c.status, c.reasons,
                       c.decided_by_board))

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

    def as_dict(self) -> dict:
        """Plain data (JSON-ready, the stored and hashed form, format ``merit-lists/2``):
        ``MeritList.from_dict(ml.as_dict()) == ml``. ``columns`` holds one list per field of ``ROW_FIELDS``
        (named in ``row_fields``), every list in display order; ``columns.components`` one list per
        component (``components``); ``columns.reasons`` each row's reasons as indexes into ``reasons``,
        the distinct [code, subject, message] of the list in order of first use."""
        c = self.columns
        table: dict = {}
        indexes: dict = {}
        for reasons in dict.fromkeys(c.reasons):
            indexes[reasons] = [table.setdefault(tuple(r), len(table)) for r in reasons]
        columns = {"registration_no": c.registration_no, "full_name": c.full_name,
                   "date_of_birth": c.date_of_birth, "rank": c.rank, "score": c.score,
                   "components": [list(values) for values in c.components],
                   "priority_categories": c.priority_categories, "bonus": c.bonus,
                   "bonus_category": c.bonus_category, "total": c.total, "status": c.status,
                   "reasons": list(map(indexes.__getitem__, c.reasons)), "decided_by_board": c.decided_by_board}
        return {
            "post": self.post, "quota": self.quota, "rule": self.rule.as_dict(),
            "components": list(self.components), "row_fields": list(ROW_FIELDS), "columns": columns,
            "reasons": [list(r) for r in table],
            "ties": [{"rank": t.rank, "places": t.places, "total": t.total,
                      "registration_nos": list(t.registration_nos)} for t in self.ties],
            "decisions": [{"rank": d.rank, "places": d.places, "selected": list(d.selected),
                           "not_selected": list(d.not_selected), "reason": d.reason} for d in self.decisions],
            "notes": [list(note) for note in self.notes],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "MeritList":
        """The list back from ``as_dict``'s data (e.g. the published JSON; format ``merit-lists/1``, one
        list per row, is read too); ``MeritRejected`` if it is not one."""
        try:
            rule, errors = rule_from_dict(data["rule"], prefix="rule")
            if errors:
                raise MeritRejected(errors)
            if list(data["row_fields"]) != list(ROW_FIELDS):
                raise MeritRejected([RuleError("row_fields", f"must be {', '.join(ROW_FIELDS)}")])
            components = tuple(data["components"])
            columns = _columns_of(data, components)
            for born in columns.date_of_birth:
                if born is not None:
                    date.fromisoformat(born)
            return cls(
                post=data["post"], quota=data["quota"], rule=rule, components=components, columns=columns,
                ties=tuple(TieGroup(t["rank"], t["places"], t["total"], tuple(t["registration_nos"]))
                           for t in data["ties"]),
                decisions=tuple(BoardDecision(d["rank"], d["places"], tuple(d["selected"]),
                                              tuple(d["not_selected"]), d["reason"]) for d in data["decisions"]),
                notes=tuple(MeritNote(*n) for n in data["notes"]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, MeritRejected):
                raise
            raise MeritRejected([RuleError("", f"is not a stored merit list ({exc!r})")]) from exc


def _columns_of(data: Mapping, components: tuple[str, ...]) -> "RowColumns":
    """The RowColumns of a stored list: its ``columns`` (format 2) or its ``rows`` (format 1)."""
    if "columns" not in data:
        rows = data["rows"]
        if not isinstance(rows, list) or any(type(row) is not list or len(row) != len(ROW_FIELDS)
                                             or type(row[5]) is not list or len(row[5]) != len(components)
                                             for row in rows):
            raise ValueError(f"every row must be a list of {len(ROW_FIELDS)} fields with one value per component")
        if not rows:
            return RowColumns.empty(len(components))
        fields = [list(column) for column in zip(*rows)]
        reasons = [tuple(Reason(*x) for x in r) if r else () for r in fields[11]]
        return RowColumns(fields[0], fields[1], fields[2], fields[3], fields[4],
                          tuple(map(list, zip(*fields[5]))) if components else (), fields[6], fields[7],
                          fields[8], fields[9], fields[10], reasons, fields[12])
    given = data["columns"]
    if not isinstance(given, dict) or set(given) != set(ROW_FIELDS):
        raise ValueError(f"columns must be {', '.join(ROW_FIELDS)}")
    values = [given[name] for name in ROW_FIELDS]
    size = len(values[0])
    if any(type(v) is not list or len(v) != size for k, v in enumerate(values) if k != 5) \
            or type(values[5]) is not list or len(values[5]) != len(components) \
            or any(type(v) is not list or len(v) != size for v in values[5]):
        raise ValueError("every column must be a list with one value per row (components: one list each)")
    table = [Reason(*r) for r in data["reasons"]]
    made: dict = {}
    reasons = []
    for found in values[11]:
        key = tuple(found)
        if key not in made:
            made[key] = tuple(table[k] for k in key)
        reasons.append(made[key])
    return RowColumns(values[0], values[1], values[2], values[3], values[4], tuple(values[5]), values[6],
                      values[7], values[8], values[9], values[10], reasons, values[12])


ROW_FIELDS = MeritRow._fields


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
    def of(cls, results: Sequence[CandidateResult]) -> tuple["CandidateTable", list[RuleError]]:
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
    n = len(table)
    posts = list(rule.quota)
    post_index = {post: i for i, post in enumerate(posts)}
    score_name = rule.score
    check_round1 = rule.require_round1_sections_passed

    # The post and the bonus: worked out once per distinct roster value.
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
        problems.append(RuleError(_join("ranking.quota", post),
                                  f"{count} candidate(s) applied for this post but it has no quota"))
    if problems:
        raise MeritRejected(problems)

    # Eligibility and totals, on arrays.
    nothing = (np.full(n, np.nan), np.zeros(n, dtype=bool))
    round1 = _rounded(table.round1_total)
    external = {name: _rounded(values) for name, (values, _) in table.components.items()}
    for name in {name for name in (score_name, *rule.tie_break) if name not in (ROUND1_TOTAL, BONUS)} - external.keys():
        external[name] = nothing[0]
    score = round1 if score_name == ROUND1_TOTAL else external[score_name]
    has_score = ~np.isnan(score)
    above_min = has_score if rule.min_score is None else has_score & (score + _EPS >= rule.min_score)
    absent = np.asarray(table.absent, dtype=bool)
    if check_round1:
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

    # The ordering: post, eligible first, then the key descending; the registration number only
    # orders the display of rows equal on the whole key (rank and status come from the key alone).
    registration = np.arange(n)
    regs = table.registration_no
    if not all(map(operator.le, regs, islice(regs, 1, None))):  # a roster read in order needs no sort
        registration[np.argsort(np.array(regs, dtype=str), kind="stable")] = np.arange(n)
    order = np.lexsort([registration, *(-a for a in reversed(tie_arrays)), -total, ~eligible, post_of])
    s_post, s_eligible = post_of[order], eligible[order]
    same = (s_post[1:] == s_post[:-1]) & s_eligible[1:] & s_eligible[:-1]
    for key in (total, *tie_arrays):
        s = key[order]
        same &= s[1:] == s[:-1]
    new_group = np.concatenate(([True], ~same)) if n else np.ones(0, dtype=bool)
    positions = np.arange(n)
    group_start = np.maximum.accumulate(np.where(new_group, positions, 0)) if n else positions
    group_id = np.cumsum(new_group) - 1
    group_size = np.bincount(group_id, minlength=1)[group_id]
    post_start = np.searchsorted(s_post, np.arange(len(posts) + 1))
    rank = group_start - post_start[s_post] + 1
    quota = np.array([rule.quota[p] for p in posts] + [0], dtype=np.int64)[s_post]
    status_code = np.where(~s_eligible, 3, np.where(rank + group_size - 1 <= quota, 0, np.where(rank <= quota, 1, 2)))

    # Reasons: worked out once per distinct (round-1 result, score state, score) among the ineligible.
    reasons_of = np.empty(n, dtype=object)
    reasons_of.fill(())
    absentees = np.flatnonzero(absent)
    if len(absentees):
        made = np.empty(len(absentees), dtype=object)
        made.fill(_ABSENT)
        reasons_of[absentees] = made
    concerned = np.flatnonzero(~eligible & ~absent)
    if len(concerned):
        score_given_none = table.components.get(score_name, nothing)[1] & np.isnan(score) \
            if score_name != ROUND1_TOTAL else np.zeros(n, dtype=bool)
        below = has_score & ~above_min
        state = np.where(~has_score, np.where(score_given_none, 1, 2), np.where(below, 3, 0))[concerned]
        failed = table.round1_failed[concerned] if check_round1 else np.full(len(concerned), -2)
        # One integer key per (round-1 result, score state, score when below the minimum): a 1-D unique.
        values, value_index = np.unique(np.where(state == 3, score[concerned], 0.0), return_inverse=True)
        keys = ((failed + 2) * 4 + state) * len(values) + value_index.ravel()
        distinct, inverse = np.unique(keys, return_inverse=True)
        made = np.empty(len(distinct), dtype=object)
        score_label = rule.label(score_name)
        for k, key in enumerate(distinct.tolist()):
            code, value_k = divmod(key, len(values))
            made[k] = _reasons(rule, score_label, code // 4 - 2, code % 4, float(values[value_k]),
                               table.failed_sections)
        reasons_of[concerned] = made[inverse.ravel()]

    notes_of: list[list[MeritNote]] = [[] for _ in posts]
    unknown = np.array([bool(b[3]) for b in bonus_info] or [False], dtype=bool)[category_of]
    for i in np.flatnonzero(unknown).tolist():
        notes_of[post_of[i]].extend(MeritNote(
            table.registration_no[i], "unknown_priority_category",
            f"Đối tượng ưu tiên \"{name}\" không có trong bảng điểm ưu tiên: không được cộng điểm")
            for name in bonus_info[category_of[i]][3])
    for name, values in zip(rule.tie_break, tie_arrays):
        for i in np.flatnonzero(eligible & np.isinf(values)).tolist():
            notes_of[post_of[i]].append(MeritNote(
                table.registration_no[i], "missing_tie_break",
                f"Không có {_lower_first(rule.label(name))} để xét khi bằng điểm: tính là thấp nhất"))

    # Which component columns each post shows.
    seen_of: list[set[str]] = [set() for _ in posts]
    for name, present in [(name, given) for name, (_, given) in table.components.items()] \
            + [(ROUND1_TOTAL, ~np.isnan(table.round1_total))]:
        for p in np.flatnonzero(np.bincount(post_of[present], minlength=len(posts) + 1)[:len(posts)]).tolist():
            seen_of[p].add(name)
    columns_of = [_component_columns(rule, seen_of[p]) for p in range(len(posts))]
    column_arrays = {ROUND1_TOTAL: round1, **external}

    # Rows, per post, column by column in display order (the sorted order is grouped by post).
    text_columns = [np.array(column, dtype=object) if n else np.zeros(0, dtype=object) for column in
                    (table.registration_no, table.full_name, table.date_of_birth)]
    category_text = np.array([b[2] for b in bonus_info] or [""], dtype=object)[category_of]
    category_code = np.array([b[1] for b in bonus_info] or [""], dtype=object)[category_of]
    status_text = np.array(_STATUS_OF_CODE, dtype=object)
    total_all = np.where(eligible, total, np.nan)
    lists = {}
    for p, post in enumerate(posts):
        where = slice(int(post_start[p]), int(post_start[p + 1]))
        index = order[where]
        codes = status_code[where]
        ranked = int(np.count_nonzero(codes != 3))  # the eligible come first
        columns = RowColumns(
            registration_no=text_columns[0][index].tolist(), full_name=text_columns[1][index].tolist(),
            date_of_birth=text_columns[2][index].tolist(),
            rank=rank[where][:ranked].tolist() + [None] * (len(index) - ranked), score=_plain(score[index]),
            components=tuple(_plain(column_arrays[c][index]) for c in columns_of[p]),
            priority_categories=category_text[index].tolist(), bonus=bonus[index].tolist(),
            bonus_category=category_code[index].tolist(), total=_plain(total_all[index]),
            status=status_text[codes].tolist(), reasons=reasons_of[index].tolist(),
            decided_by_board=[False] * len(index))
        ties = []
        tied = np.flatnonzero(codes == 1)
        if len(tied):
            groups = group_id[where][tied]
            for g in np.unique(groups).tolist():
                members = tied[groups == g]
                first = int(members[0])
                ties.append(TieGroup(rank=columns.rank[first], places=rule.quota[post] - columns.rank[first] + 1,
                                     total=columns.total[first],
                                     registration_nos=tuple(sorted(columns.registration_no[k] for k in
                                                                   members.tolist()))))
        lists[post] = MeritList(post=post, quota=rule.quota[post], rule=rule, components=columns_of[p],
                                columns=columns, ties=tuple(sorted(ties, key=lambda t: t.rank)),
                                notes=tuple(sorted(notes_of[p])))
    return lists


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
    uses_round1 = rule.require_round1_sections_passed or ROUND1_TOTAL in (rule.score, *rule.tie_break)
    columns = [ROUND1_TOTAL] if uses_round1 or ROUND1_TOTAL in seen else []
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
        old = dict(zip(a.registration_no, range(a.size)))
        new = dict(zip(b.registration_no, range(b.size)))
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


# --- publication: canonical form and hash ----------------------------------------------------------

def _ordered(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> list[MeritList]:
    lists = list(merit_lists.values()) if isinstance(merit_lists, Mapping) else list(merit_lists)
    return sorted(lists, key=lambda ml: ml.post)


def merit_lists_as_data(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> dict:
    """The lists as plain JSON-ready data ``{"format": "merit-lists/2", "lists": [...]}``, posts sorted (each
    list ``MeritList.as_dict``: its rows column by column). ``merit_lists_from_data`` reads it back;
    ``dump_merit_lists`` is its canonical JSON."""
    with gc_paused():
        return {"format": FORMAT, "lists": [ml.as_dict() for ml in _ordered(merit_lists)]}


def merit_lists_from_data(payload: object) -> dict[str, MeritList]:
    """{post: MeritList} from ``merit_lists_as_data``'s data (e.g. parsed from the stored JSON; format
    ``merit-lists/1`` is read too), in the stored order; ``MeritRejected`` if it is not such data."""
    if not isinstance(payload, dict) or payload.get("format") not in FORMATS \
            or not isinstance(payload.get("lists"), list):
        raise MeritRejected([RuleError("format", f"is not merit-list data of format {' or '.join(FORMATS)}")])
    with gc_paused():
        return {item["post"]: MeritList.from_dict(item) for item in payload["lists"]}


def _canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def dump_merit_lists(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> bytes:
    """The canonical JSON of the lists: ``merit_lists_as_data`` as UTF-8 JSON with sorted keys, no spaces,
    no NaN (``json.dumps(..., ensure_ascii=False, sort_keys=True, separators=(",", ":"))``). It is what
    is stored and what ``merit_hash`` hashes; with the rows column by column the C encoder writes it
    without a Python object per value."""
    return merit_lists_text(merit_lists).encode("utf-8")


def merit_lists_text(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> str:
    """``dump_merit_lists`` as text (what a text column stores)."""
    data = merit_lists_as_data(merit_lists)
    with gc_paused():
        return _canonical(data)


def merit_lists_text_and_hash(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> tuple[str, str]:
    """(``merit_lists_text``, ``merit_hash``)."""
    text = merit_lists_text(merit_lists)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_merit_lists(data: bytes | str) -> dict[str, MeritList]:
    """Read ``dump_merit_lists``'s output back: {post: MeritList}; the hash of the result is unchanged."""
    try:
        with gc_paused():
            payload = json.loads(data)
    except ValueError as exc:
        raise MeritRejected([RuleError("", f"is not JSON ({exc})")]) from exc
    return merit_lists_from_data(payload)


def merit_hash(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> str:
    """SHA-256 (hex) of ``dump_merit_lists``: any score, rank, status, decision or rule change changes it."""
    return merit_lists_text_and_hash(merit_lists)[1]
