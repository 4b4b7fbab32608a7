"""GIFT import (.gift), the Moodle text format, limited to multiple choice.

    // difficulty: hard
    $CATEGORY: $course$/top/Kiến thức chung/Hiến pháp 2013

    ::Q1:: Hiến pháp năm 2013 có hiệu lực từ ngày nào? {
      =01/01/2014 #feedback for this option (ignored)
      ~28/11/2013
      ####Nghị quyết 64/2013/QH13.
    }

    Which are prime? { ~%50%2 ~%50%3 ~%-100%4 }

One "=" answer makes a single-answer question; weighted "~%n%" answers make
a multiple-answer question whose keys are the options with a positive
weight. True/false, short answer, matching, numerical, essay and cloze are
refused, since the exam has only multiple choice. Moodle keeps no difficulty;
a comment "// difficulty: hard" (or "// độ khó: khó") before a question sets
it, otherwise it is "medium".
"""

from __future__ import annotations

import re

from .model import ParseResult, RowError
from .validation import Collector, Draft, DraftOption, decode_utf8, normalise_text, option_field, parse_difficulty

FORMAT = "gift"
DEFAULT_DIFFICULTY = "medium"
SAVE_HINT = "save the file as UTF-8"

LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_DIFFICULTY_COMMENT = re.compile(r"//\s*(?:difficulty|độ khó)\s*:\s*(.*)", re.IGNORECASE)
_CATEGORY = re.compile(r"\$CATEGORY\s*:(.*)", re.IGNORECASE)
_WEIGHT = re.compile(r"\s*%(-?\d+(?:[.,]\d+)?)%")
_FORMAT_MARK = re.compile(r"\s*\[(?:html|moodle|plain|markdown)\]", re.IGNORECASE)

# Escaped characters are swapped for private-use placeholders before the
# structure is read, so "\=" inside a text is never taken for an answer mark.
_ESCAPES = {"~": "\ue000", "=": "\ue001", "#": "\ue002", "{": "\ue003",
            "}": "\ue004", ":": "\ue005", "\\": "\ue006"}  # fmt: skip
_UNESCAPE = {v: k for k, v in _ESCAPES.items()}
_ESCAPE_RE = re.compile(r"\\([~=#{}:\\n])")
_PRIVATE = re.compile("[\ue000-\ue006]")


def _hide_escapes(s: str) -> str:
    s = _PRIVATE.sub("", s)  # invisible characters nobody types; they would clash with the placeholders
    return _ESCAPE_RE.sub(lambda m: "\n" if m.group(1) == "n" else _ESCAPES[m.group(1)], s)


def _restore(s: str) -> str:
    return "".join(_UNESCAPE.get(ch, ch) for ch in s)


def category_topic(raw: str) -> str | None:
    """Topic path from a $CATEGORY value: "$course$/top/A/B" -> "A > B"."""
    value = raw.strip()
    # "//" is Moodle's way to write a "/" inside one category name.
    parts = [p.replace("\ue007", "/").strip() for p in value.replace("//", "\ue007").split("/")]
    if parts and parts[0].startswith("$") and parts[0].endswith("$"):
        parts = parts[1:]  # $course$, $system$, $module$...
    if parts and parts[0].casefold() in ("top", "default"):
        parts = parts[1:]  # Moodle's invisible root category
    parts = [p for p in parts if p]
    return " > ".join(parts) if parts else None


class _Block:
    def __init__(self, line: int):
        self.line = line
        self.lines: list[str] = []


def _unsupported(kind: str) -> str:
    return f"GIFT question type {kind} is not supported; only multiple choice"


def _classify(answers: str) -> str | None:
    """Name of an unsupported question type for the text inside {...}, or None."""
    body = answers.strip()
    if not body:
        return "essay"
    if body.startswith("#"):
        return "numerical"
    if re.fullmatch(r"(?:T|F|TRUE|FALSE)\s*(?:#.*)?", body, re.IGNORECASE | re.DOTALL):
        return "true/false"
    if "~" not in body:
        # Only "=" answers: Moodle reads pairs "=a -> b" as matching, the rest as short answer.
        return "matching" if "->" in body else "short answer"
    return None


def _parse_block(block: _Block, topic: str | None, difficulty: str | None) -> Draft:
    draft = Draft(location=f"line {block.line}", topic=topic, difficulty=difficulty or DEFAULT_DIFFICULTY)
    src = _hide_escapes("\n".join(block.lines))

    body = src.lstrip()
    if body.startswith("::"):
        end = body.find("::", 2)
        if end < 0:
            draft.error("text", "the title '::...' is not closed with '::'")
            draft.key_reported = True
            return draft
        body = body[end + 2:]  # the title only names the question inside Moodle
    body = _FORMAT_MARK.sub("", body, count=1) if _FORMAT_MARK.match(body) else body

    start = body.find("{")
    if start < 0:
        draft.error("options", "no answer block {...} found; a multiple-choice question needs "
                               "{=right ~wrong ...} (put a blank line between questions)")
        draft.text = _restore(body)
        draft.key_reported = True
        return draft
    end = body.find("}", start)
    if end < 0:
        draft.error("options", "the answer block '{' is not closed with '}'")
        draft.text = _restore(body[:start])
        draft.key_reported = True
        return draft
    answers = body[start + 1:end]
    before, after = body[:start].strip(), body[end + 1:].strip()
    if "{" in answers or "{" in after or "}" in after:
        draft.error("options", "more than one answer block {...}; embedded answers (cloze) are not supported "
                               r"(write a literal brace as \{ or \})")
        draft.key_reported = True
    # "Moodle costs {~lots =nothing} to download": the answers fill a blank.
    draft.text = _restore(f"{before} _____ {after}" if after else before)

    feedback_at = answers.find("####")
    if feedback_at >= 0:
        draft.explanation = _restore(answers[feedback_at + 4:])
        answers = answers[:feedback_at]

    kind = _classify(answers)
    if kind:
        draft.error("type", _unsupported(kind))
        draft.key_reported = True
        return draft

    tokens = re.split(r"([=~])", answers)
    if tokens[0].strip():
        draft.error("options", f"text before the first answer mark: {_restore(tokens[0].strip())[:40]!r}; "
                               "each answer starts with = (right) or ~ (wrong)")
    weighted = False
    for i in range(1, len(tokens), 2):
        mark, rest = tokens[i], tokens[i + 1]
        index = len(draft.options)
        weight = 100.0 if mark == "=" else 0.0
        m = _WEIGHT.match(rest)
        if m:
            weight = float(m.group(1).replace(",", "."))
            rest = rest[m.end():]
            if mark == "~":
                weighted = weighted or weight > 0
        elif rest.lstrip().startswith("%"):
            draft.error(option_field(index), "weight must look like %50% or %-100%")
            draft.key_reported = True
        text = rest.split("#", 1)[0]  # "#..." is per-option feedback, not shown in the exam
        draft.options.append(DraftOption(_restore(text), weight > 0))
    # Positive weights on "~" answers are Moodle's "several answers" form.
    draft.type = "multiple" if weighted else "single"
    return draft


def parse(content: bytes, default_topic: str | None) -> ParseResult:
    collector = Collector(FORMAT, default_topic)
    text, error = decode_utf8(content, SAVE_HINT)
    if error:
        collector.errors.append(error)
        return ParseResult([], collector.errors, FORMAT)

    topic: str | None = None
    difficulty: str | None = None  # from a comment, for the next question only
    block: _Block | None = None
    stopped = False

    def flush() -> bool:
        nonlocal block, difficulty
        if block is None:
            return True
        draft = _parse_block(block, topic, difficulty)
        block, difficulty = None, None
        return collector.add(draft)

    for number, raw in enumerate(LINE_SPLIT.split(text), start=1):
        stripped = raw.strip()
        if not stripped:
            if not flush():
                stopped = True
                break
            continue
        if stripped.startswith("//"):
            m = _DIFFICULTY_COMMENT.fullmatch(normalise_text(stripped))
            if m and block is None:
                value, reason = parse_difficulty(m.group(1))
                if reason:
                    collector.errors.append(RowError(f"line {number}", "difficulty", reason))
                difficulty = value
            continue  # comments never belong to the question text
        category = _CATEGORY.fullmatch(stripped)
        if category:
            if not flush():
                stopped = True
                break
            topic = category_topic(normalise_text(category.group(1)))
            continue
        if block is None:
            block = _Block(number)
        block.lines.append(raw)
    if not stopped:
        flush()
    return collector.result()
