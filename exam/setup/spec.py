"""The exam specification: one structure built from a TOML file or from the board's form.

``spec_from_toml(text)`` and ``spec_from_dict(data)`` return ``(spec, errors)``: the
spec is None unless there is no error at all, and ``errors`` lists *every* problem,
each with the key path it concerns (``sections[1].blueprint[2].topic``,
``sections[0].minutes``), so a board fixes its file in one pass. The board's form
builds the same dict shape as the TOML file and goes through the same checks.

These checks are pure (no database): shapes, types, ranges, codes, the blueprint's
sum, overlapping cells. Whether the topics exist and the bank can fill every cell is
checked against the database by ``exams.check_against_bank`` (``exams.create_exam``
runs both). The shape is documented in docs/exam-spec.md; examples/round1.toml is
the round-1 example.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field

from exam.core.errors import Refused
from exam.merit.ranking import rule_from_dict  # upward on purpose: see _Checker.ranking
from question_bank.formats.validation import find_html, normalise_text, normalise_topic

TOPIC_SEPARATOR = " > "
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
CODE_RULE = "1 to 40 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
DIFFICULTIES = ("easy", "medium", "hard", "any")
DIFFICULTY_ALIASES = {"easy": "easy", "dễ": "easy", "medium": "medium", "trung bình": "medium", "hard": "hard",
                      "khó": "hard", "any": "any", "tất cả": "any"}
MULTIPLE_SCORING = ("all_or_nothing", "partial")

MAX_TITLE_CHARS = 300
MAX_SECTION_TITLE_CHARS = 200
MAX_INSTRUCTIONS_CHARS = 20_000
MAX_SECTIONS = 10
MAX_CELLS = 200  # per section
MAX_SECTION_QUESTIONS = 500
MAX_FORMS = 50
MIN_MINUTES, MAX_MINUTES = 1, 600
MAX_MARKS = 100.0

TOP_KEYS = ("code", "title", "show_score", "forms", "instructions", "scoring", "sections", "ranking")
SECTION_KEYS = ("code", "title", "minutes", "questions", "scoring", "blueprint")
SCORING_KEYS = ("marks_per_question", "negative_fraction", "multiple", "pass_ratio")
CELL_KEYS = ("topic", "difficulty", "count")


@dataclass(frozen=True)
class SpecError:
    """One problem in a specification: the key path it concerns and what is wrong, in English."""

    key: str  # "sections[1].blueprint[2].topic"; "" for the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class SpecRejected(Refused):
    """A specification refused with every problem found (``errors``)."""

    def __init__(self, errors: list[SpecError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = list(errors)


@dataclass(frozen=True)
class Scoring:
    marks_per_question: float = 1.0
    negative_fraction: float = 0.0  # of the marks, taken for a wrong answer
    multiple: str = "all_or_nothing"  # multiple-answer questions: "all_or_nothing" or "partial"
    pass_ratio: float = 0.5  # share of correct answers needed to pass the section

    def as_dict(self) -> dict:
        return {"marks_per_question": self.marks_per_question, "negative_fraction": self.negative_fraction,
                "multiple": self.multiple, "pass_ratio": self.pass_ratio}


@dataclass(frozen=True)
class CellSpec:
    """Draw ``count`` questions from ``topic`` (with its subtopics) at ``difficulty`` (or any)."""

    topic: str
    difficulty: str
    count: int

    def as_dict(self) -> dict:
        return {"topic": self.topic, "difficulty": self.difficulty, "count": self.count}


@dataclass(frozen=True)
class SectionSpec:
    code: str
    title: str
    minutes: int
    questions: int
    scoring: Scoring  # in effect: the exam's defaults with this section's overrides
    blueprint: tuple[CellSpec, ...]

    def as_dict(self, defaults: Scoring | None = None) -> dict:
        data = {"code": self.code, "title": self.title, "minutes": self.minutes, "questions": self.questions}
        if defaults is None or self.scoring != defaults:
            data["scoring"] = self.scoring.as_dict()
        data["blueprint"] = [cell.as_dict() for cell in self.blueprint]
        return data


@dataclass(frozen=True)
class ExamSpec:
    code: str
    title: str
    show_score: bool
    forms: int  # 0: a paper per candidate; K: K fixed parallel forms
    instructions: str
    scoring: Scoring  # the defaults every section starts from
    sections: tuple[SectionSpec, ...] = field(default_factory=tuple)
    ranking: dict | None = None  # the [ranking] table as given (checked by exam.merit.ranking.rule_from_dict)

    @property
    def total_minutes(self) -> int:
        return sum(section.minutes for section in self.sections)

    @property
    def total_questions(self) -> int:
        return sum(section.questions for section in self.sections)

    def as_dict(self) -> dict:
        """The spec in the TOML file's shape: ``spec_from_dict(spec.as_dict()) == spec``."""
        data = {"code": self.code, "title": self.title, "show_score": self.show_score, "forms": self.forms,
                "instructions": self.instructions, "scoring": self.scoring.as_dict(),
                "sections": [section.as_dict(self.scoring) for section in self.sections]}
        if self.ranking is not None:
            data["ranking"] = self.ranking
        return data


# --- reading -------------------------------------------------------------------------------------

@dataclass
class SpecReading:
    """What a specification read into: the spec (None on any error), every error, and the parts that
    read well (the code, the cells with their keys) so the database checks can run on them too."""

    spec: ExamSpec | None
    errors: list[SpecError]
    code: str = ""
    cells: list[tuple[str, CellSpec]] = field(default_factory=list)


def read_spec_toml(text: str | bytes) -> SpecReading:
    """Parse and check a TOML specification (bytes are read as UTF-8, a BOM allowed)."""
    if isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return SpecReading(None, [SpecError("", f"is not UTF-8 text (first bad byte at offset {exc.start}); "
                                                    "save the file as UTF-8")])
    text = text.lstrip("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return SpecReading(None, [SpecError("", f"is not valid TOML: {exc}")])
    return read_spec_dict(data)


def read_spec_dict(data: object) -> SpecReading:
    """Check a specification given as plain data (the TOML file's shape)."""
    checker = _Checker()
    spec = checker.exam(data)
    if checker.errors:
        spec = None
    return SpecReading(spec, checker.errors, checker.good_code, checker.good_cells)


def spec_from_toml(text: str | bytes) -> tuple[ExamSpec | None, list[SpecError]]:
    """Parse and check a TOML specification: (spec, []) or (None, every problem)."""
    reading = read_spec_toml(text)
    return reading.spec, reading.errors


def spec_from_dict(data: object) -> tuple[ExamSpec | None, list[SpecError]]:
    """Check a specification given as plain data (the TOML file's shape): (spec, []) or (None, errors)."""
    reading = read_spec_dict(data)
    return reading.spec, reading.errors


class _Checker:
    def __init__(self):
        self.errors: list[SpecError] = []
        self.good_code = ""
        self.good_cells: list[tuple[str, CellSpec]] = []

    def error(self, key: str, message: str) -> None:
        self.errors.append(SpecError(key, message))

    # -- typed values --

    def table(self, data: object, key: str, allowed: tuple[str, ...]) -> dict | None:
        if not isinstance(data, dict):
            self.error(key, f"must be a table (got {_kind(data)})")
            return None
        for name in data:
            if name not in allowed:
                self.error(_join(key, str(name)), f"unknown key; the keys here are {', '.join(allowed)}")
        return data

    def text(self, data: dict, key: str, name: str, *, limit: int, required: bool = True,
             multiline: bool = False) -> str:
        path = _join(key, name)
        value = data.get(name)
        if value is None:
            if required:
                self.error(path, "is required")
            return ""
        if not isinstance(value, str):
            self.error(path, f"must be text (got {_kind(value)})")
            return ""
        value = normalise_text(value)
        if required and not value:
            self.error(path, "must not be blank")
        if len(value) > limit:
            self.error(path, f"is too long ({len(value)} characters; at most {limit})")
        if not multiline and "\n" in value:
            self.error(path, "must be on one line")
        tag = find_html(value)
        if tag:
            self.error(path, f"contains HTML ({tag!r}); type plain text")
        return value

    def code(self, data: dict, key: str, name: str = "code") -> str:
        value = self.text(data, key, name, limit=40)
        if value and not CODE_PATTERN.match(value):
            self.error(_join(key, name), f"must be {CODE_RULE} (got {value!r})")
        return value

    def integer(self, data: dict, key: str, name: str, low: int, high: int, *, required: bool = True,
                default: int = 0) -> int:
        path = _join(key, name)
        value = data.get(name)
        if value is None:
            if required:
                self.error(path, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be a whole number (got {_kind(value)} {value!r})")
            return default
        if not low <= value <= high:
            self.error(path, f"must be between {low} and {high} (got {value})")
        return value

    def number(self, data: dict, key: str, name: str, low: float, high: float, default: float, *,
               low_open: bool = False) -> float:
        path = _join(key, name)
        value = data.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.error(path, f"must be a number (got {_kind(value)} {value!r})")
            return default
        value = float(value)
        if value < low or value > high or (low_open and value == low):
            bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
            self.error(path, f"must be {bound} and at most {high:g} (got {value:g})")
        return value

    def boolean(self, data: dict, key: str, name: str, default: bool) -> bool:
        value = data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(_join(key, name), f"must be true or false (got {_kind(value)} {value!r})")
            return default
        return value

    # -- parts --

    def scoring(self, data: object, key: str, defaults: Scoring) -> Scoring:
        if data is None:
            return defaults
        table = self.table(data, key, SCORING_KEYS)
        if table is None:
            return defaults
        multiple = table.get("multiple", defaults.multiple)
        if multiple not in MULTIPLE_SCORING:
            self.error(_join(key, "multiple"), f"must be one of {', '.join(MULTIPLE_SCORING)} (got {multiple!r})")
            multiple = defaults.multiple
        return Scoring(
            marks_per_question=self.number(table, key, "marks_per_question", 0.0, MAX_MARKS,
                                           defaults.marks_per_question, low_open=True),
            negative_fraction=self.number(table, key, "negative_fraction", 0.0, 1.0, defaults.negative_fraction),
            multiple=multiple,
            pass_ratio=self.number(table, key, "pass_ratio", 0.0, 1.0, defaults.pass_ratio))

    def cell(self, data: object, key: str) -> CellSpec | None:
        before = len(self.errors)
        table = self.table(data, key, CELL_KEYS)
        if table is None:
            return None
        topic = ""
        raw_topic = table.get("topic")
        if raw_topic is None:
            self.error(_join(key, "topic"), "is required")
        elif not isinstance(raw_topic, str):
            self.error(_join(key, "topic"), f"must be text (got {_kind(raw_topic)})")
        else:
            topic, reason = normalise_topic(raw_topic)
            if reason:
                self.error(_join(key, "topic"), reason)
            elif not topic:
                self.error(_join(key, "topic"), "must not be blank")
            topic = topic or ""
        difficulty = "any"
        raw_difficulty = table.get("difficulty")
        if raw_difficulty is None:
            self.error(_join(key, "difficulty"), f"is required ({', '.join(DIFFICULTIES)})")
        else:
            difficulty = DIFFICULTY_ALIASES.get(normalise_text(str(raw_difficulty)).casefold())
            if difficulty is None or not isinstance(raw_difficulty, str):
                self.error(_join(key, "difficulty"),
                           f"must be one of {', '.join(DIFFICULTIES)} (got {raw_difficulty!r})")
                difficulty = "any"
        count = self.integer(table, key, "count", 1, MAX_SECTION_QUESTIONS)
        cell = CellSpec(topic, difficulty, count)
        if len(self.errors) == before:
            self.good_cells.append((key, cell))
        return cell

    def section(self, data: object, key: str, defaults: Scoring) -> SectionSpec | None:
        table = self.table(data, key, SECTION_KEYS)
        if table is None:
            return None
        code = self.code(table, key)
        title = self.text(table, key, "title", limit=MAX_SECTION_TITLE_CHARS)
        minutes = self.integer(table, key, "minutes", MIN_MINUTES, MAX_MINUTES)
        questions = self.integer(table, key, "questions", 1, MAX_SECTION_QUESTIONS)
        scoring = self.scoring(table.get("scoring"), _join(key, "scoring"), defaults)
        cells: list[CellSpec] = []
        blueprint = table.get("blueprint")
        blueprint_key = _join(key, "blueprint")
        if blueprint is None:
            self.error(blueprint_key, "is required: a list of {topic, difficulty, count} cells")
        elif not isinstance(blueprint, list):
            self.error(blueprint_key, f"must be a list of {{topic, difficulty, count}} cells (got {_kind(blueprint)})")
        elif not blueprint:
            self.error(blueprint_key, "must have at least one cell")
        elif len(blueprint) > MAX_CELLS:
            self.error(blueprint_key, f"has {len(blueprint)} cells; at most {MAX_CELLS}")
        else:
            for index, item in enumerate(blueprint):
                cell = self.cell(item, f"{blueprint_key}[{index}]")
                cells.append(cell)
            counted = [c.count for c in cells if c is not None]
            if "questions" in table and len(counted) == len(cells) and questions and sum(counted) != questions:
                self.error(_join(key, "questions"),
                           f"is {questions} but the blueprint cells add up to {sum(counted)}")
        if any(c is None for c in cells):
            return None
        return SectionSpec(code, title, minutes, questions, scoring, tuple(cells))

    def exam(self, data: object) -> ExamSpec | None:
        table = self.table(data, "", TOP_KEYS)
        if table is None:
            return None
        before = len(self.errors)
        code = self.code(table, "")
        if len(self.errors) == before:
            self.good_code = code
        title = self.text(table, "", "title", limit=MAX_TITLE_CHARS)
        show_score = self.boolean(table, "", "show_score", True)
        forms = self.integer(table, "", "forms", 0, MAX_FORMS, required=False, default=0)
        instructions = self.text(table, "", "instructions", limit=MAX_INSTRUCTIONS_CHARS, required=False,
                                 multiline=True)
        defaults = self.scoring(table.get("scoring"), "scoring", Scoring())
        sections: list[SectionSpec | None] = []
        raw_sections = table.get("sections")
        if raw_sections is None:
            self.error("sections", "is required: at least one [[sections]] table")
        elif not isinstance(raw_sections, list):
            self.error("sections", f"must be a list of [[sections]] tables (got {_kind(raw_sections)})")
        elif not raw_sections:
            self.error("sections", "must have at least one section")
        elif len(raw_sections) > MAX_SECTIONS:
            self.error("sections", f"has {len(raw_sections)} sections; at most {MAX_SECTIONS}")
        else:
            for index, item in enumerate(raw_sections):
                sections.append(self.section(item, f"sections[{index}]", defaults))
        self.unique_section_codes(sections)
        self.no_overlapping_cells(sections)
        ranking = self.ranking(table.get("ranking"))
        if any(s is None for s in sections):
            return None
        return ExamSpec(code, title, show_score, forms, instructions, defaults, tuple(sections), ranking)

    def ranking(self, data: object) -> dict | None:
        """The optional [ranking] table (the merit-list rule): checked by ``exam.merit.ranking.rule_from_dict``,
        its problems keyed like the rest (``ranking.quota."Chuyên viên"``); kept as given. The one import
        upward from setup: the table is the merit rule, so merit's own pure code checks it (it imports
        only exam.core and numpy: no cycle) rather than a copy of the rule here."""
        if data is None:
            return None
        _, errors = rule_from_dict(data, prefix="ranking")
        for error in errors:
            self.error(error.key, error.message)
        return data if not errors else None

    # -- whole-exam rules --

    def unique_section_codes(self, sections: list[SectionSpec | None]) -> None:
        first: dict[str, int] = {}
        for index, section in enumerate(sections):
            if section is None or not section.code:
                continue
            if section.code in first:
                self.error(f"sections[{index}].code",
                           f"{section.code!r} is already the code of sections[{first[section.code]}]")
            else:
                first[section.code] = index

    def no_overlapping_cells(self, sections: list[SectionSpec | None]) -> None:
        """Cells drawing from the same questions could put one question twice on a paper: refused."""
        seen: list[tuple[str, CellSpec]] = []
        for s_index, section in enumerate(sections):
            if section is None:
                continue
            for c_index, cell in enumerate(section.blueprint):
                key = f"sections[{s_index}].blueprint[{c_index}]"
                for other_key, other in seen:
                    if cells_overlap(cell, other):
                        self.error(key, f"draws from the same questions as {other_key} ({other.topic} × "
                                        f"{other.difficulty}): a question could appear twice on a paper; "
                                        "merge the cells or make them disjoint")
                        break
                seen.append((key, cell))


def cells_overlap(a: CellSpec, b: CellSpec) -> bool:
    """True when some question could belong to both cells (topic within the other, difficulties meet)."""
    if not a.topic or not b.topic:
        return False
    nested = (a.topic == b.topic or a.topic.startswith(b.topic + TOPIC_SEPARATOR)
              or b.topic.startswith(a.topic + TOPIC_SEPARATOR))
    return nested and (a.difficulty == b.difficulty or "any" in (a.difficulty, b.difficulty))


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _kind(value: object) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


# --- writing -------------------------------------------------------------------------------------

def spec_to_toml(spec: ExamSpec) -> str:
    """The spec as a TOML file that reads back as the same spec (for download and copying an exam)."""
    data = spec.as_dict()
    lines = [f"code = {_toml_value(data['code'])}", f"title = {_toml_value(data['title'])}",
             f"show_score = {_toml_value(data['show_score'])}",
             f"forms = {data['forms']}  # 0 = a paper per candidate; K = K fixed forms",
             f"instructions = {_toml_value(data['instructions'])}", "", "[scoring]"]
    lines += [f"{name} = {_toml_value(value)}" for name, value in data["scoring"].items()]
    for section in data["sections"]:
        lines += ["", "[[sections]]"]
        lines += [f"{name} = {_toml_value(section[name])}" for name in ("code", "title", "minutes", "questions")]
        lines.append("blueprint = [")
        for cell in section["blueprint"]:
            lines.append("  { " + ", ".join(f"{name} = {_toml_value(value)}" for name, value in cell.items()) + " },")
        lines.append("]")
        if "scoring" in section:
            lines += ["", "[sections.scoring]"]
            lines += [f"{name} = {_toml_value(value)}" for name, value in section["scoring"].items()]
    if data.get("ranking") is not None:
        lines += [""] + ranking_toml_lines(data["ranking"])
    return "\n".join(lines) + "\n"


def ranking_toml_lines(ranking: dict, table: str = "ranking") -> list[str]:
    """The [ranking] table as TOML lines: its plain keys first, then one sub-table per table key."""
    lines = [f"[{table}]"]
    nested = []
    for name, value in ranking.items():
        if isinstance(value, dict):
            nested.append((name, value))
        else:
            lines.append(f"{_toml_key(name)} = {_toml_any(value)}")
    for name, value in nested:
        lines += ["", f"[{table}.{_toml_key(name)}]"]
        lines += [f"{_toml_key(str(key))} = {_toml_any(item)}" for key, item in value.items()]
    return lines


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)


def _toml_any(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_any(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_any(v)}" for k, v in value.items()) + " }"
    return _toml_value(value)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    out = []
    for ch in str(value):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
