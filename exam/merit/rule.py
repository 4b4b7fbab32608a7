"""The ranking rule of a merit list: its presets with their legal basis, and the check of its TOML table.

A ``RankingRule`` says how candidates are screened, scored and ordered (the ranking itself is
``exam.merit.ranking``, whose docstring gives the algorithm); ``rule_from_dict`` checks a
``[ranking]`` table given as plain data and names every problem (``RuleError``) by its key
path. ``MeritRejected`` is the refusal every merit module raises with such problems.

This is the one merit module a lower area may import: the exam specification
(``exam.setup.spec``) checks the ``[ranking]`` table of an exam's TOML with ``rule_from_dict``
when the exam is set up, before any candidate is ranked. So it imports only ``exam.core`` and
the standard library: importing it never pulls in the ranking (numpy), the database side of
the lists, or anything above ``exam.setup``.

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
aliases (``RankingRule.bonus_for``). An unknown category earns nothing. Posts are matched
against the quota table the same way (``RankingRule.post_of``); the list takes the table's
spelling. Scores are compared at ``SCORE_DECIMALS`` (4) decimal places, as grading stores them.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from exam.core.errors import Refused

SCORE_DECIMALS = 4

ROUND1_TOTAL = "round1_total"
ROUND2 = "round2"
BONUS = "bonus"
RESERVED_COMPONENTS = (ROUND1_TOTAL, BONUS, "total", "score")  # not names of external components
COMPONENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COMPONENT_RULE = "1 to 40 characters: lower-case letters, digits or '_', starting with a letter"
NEVER_TIE_BREAKS = ("name", "full_name", "registration_no", "sbd", "id", "date_of_birth", "dob", "age",
                    "citizen_id", "order", "random")
CATEGORY_SEPARATOR = ";"

DEFAULT_LABELS = {ROUND1_TOTAL: "Điểm vòng 1", ROUND2: "Điểm vòng 2", BONUS: "Điểm ưu tiên", "total": "Tổng điểm"}

RULE_KEYS = ("preset", "score", "min_score", "require_round1_sections_passed", "bonus", "aliases", "quota",
             "tie_break", "labels")
MAX_POINTS = 1000.0
MAX_QUOTA = 1_000_000
MAX_TIE_BREAKS = 10
MAX_KEY_CHARS = 200
MAX_LABEL_CHARS = 300


# --- priority categories and presets ---------------------------------------------------------------

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


# --- TOML key paths (the errors' keys) -------------------------------------------------------------

def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


def key_path(key: str, name: str) -> str:
    """``name`` under the TOML key path ``key``, quoted when TOML needs it: ``ranking.quota."Chuyên viên"``."""
    name = _toml_key(name)
    return f"{key}.{name}" if key else name


def _kind(value: object) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


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

    @property
    def uses_round1(self) -> bool:
        """The rule reads round 1: it screens on the sections, or counts or breaks ties on the total."""
        return self.require_round1_sections_passed or ROUND1_TOTAL in (self.score, *self.tie_break)

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
            key = key_path(key, name)
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

