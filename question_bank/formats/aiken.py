"""Aiken import (.txt), the plain-text multiple-choice format Moodle also reads.

    Hiến pháp năm 2013 có hiệu lực từ ngày nào?
    A. 01/01/2014
    B) 28/11/2013
    ANSWER: A

Aiken carries no topic and no difficulty: the topic is the default topic
chosen at import, the difficulty is "medium". Two extensions over Moodle,
both harmless for plain Aiken files: the question text may span several
lines (a reading passage), and ANSWER may name several letters ("A, C"),
which makes a multiple-answer question. "ĐÁP ÁN:" is accepted for "ANSWER:".
"""

from __future__ import annotations

import re

from .model import ParseResult, RowError
from .validation import (
    OPTION_LETTERS,
    Collector,
    Draft,
    DraftOption,
    decode_utf8,
    normalise_text,
    option_field,
    parse_correct_letters,
)

FORMAT = "aiken"
DEFAULT_DIFFICULTY = "medium"
SAVE_HINT = "save the file as UTF-8 (in Notepad: Save As > Encoding: UTF-8)"

_OPTION = re.compile(r"([A-Z])[.)](?:\s+(.*))?")
_ANSWER = re.compile(r"(?:ANSWER|ĐÁP ÁN)\s*:\s*(.*)", re.IGNORECASE)
LINE_SPLIT = re.compile(r"\r\n|\r|\n")


class _Question:
    def __init__(self, line: int, first_text: str):
        self.draft = Draft(location=f"line {line}", difficulty=DEFAULT_DIFFICULTY)
        self.text_lines = [first_text]
        self.in_options = False
        self.broken = False  # an unexpected line was reported; later lines are not re-reported

    def line_error(self, line: int, field_name: str, reason: str) -> None:
        self.draft.errors.append(RowError(f"line {line}", field_name, reason))


def parse(content: bytes, default_topic: str | None) -> ParseResult:
    collector = Collector(FORMAT, default_topic)
    text, error = decode_utf8(content, SAVE_HINT)
    if error:
        collector.errors.append(error)
        return ParseResult([], collector.errors, FORMAT)

    current: _Question | None = None
    for number, raw in enumerate(LINE_SPLIT.split(text), start=1):
        line = normalise_text(raw)
        option = _OPTION.fullmatch(line)
        answer = _ANSWER.fullmatch(line)

        if current is None:
            current = _begin(collector, number, line, option, answer)
            continue

        if not current.in_options:
            if option and option.group(1) == "A":
                current.in_options = True
            elif answer:
                current.line_error(number, "options", "ANSWER line comes before any option (A. ...)")
                _finish(collector, current, None, None)
                current = None
                continue
            else:
                # Blank lines inside the question text keep a passage's paragraphs.
                current.text_lines.append(line)
                continue

        if answer:
            keep_going = _finish(collector, current, answer.group(1), number)
        elif not line:  # a blank line before the ANSWER line
            keep_going = _finish(collector, current, None, None)
        else:
            _option_line(current, number, option)
            continue
        current = None
        if not keep_going:
            break

    if current is not None:
        _finish(collector, current, None, None)
    return collector.result()


def _begin(collector: Collector, number: int, line: str, option, answer) -> _Question | None:
    """The question a line starts (None for a blank line, or an option or ANSWER line out of place)."""
    if not line:
        return None
    if option or answer:
        collector.errors.append(RowError(
            f"line {number}", "text",
            "an option or ANSWER line comes before any question text; questions are "
            "separated by a blank line",
        ))
        return None
    return _Question(number, line)


def _option_line(q: _Question, number: int, option) -> None:
    """A line among the options: the next option in letter order, or (reported once) anything else."""
    if option:
        expected = OPTION_LETTERS[len(q.draft.options)] if len(q.draft.options) < 26 else "?"
        if option.group(1) != expected and not q.broken:
            q.line_error(
                number, option_field(len(q.draft.options)),
                f"expected option {expected}, found {option.group(1)}; options are lettered A, B, C... in order",
            )
            q.broken = True
        q.draft.options.append(DraftOption(option.group(2) or "", False))
    elif not q.broken:
        q.line_error(
            number, "",
            f"expected the next option ('{OPTION_LETTERS[min(len(q.draft.options), 25)]}. ...') "
            "or 'ANSWER: <letter>'; an option must fit on one line",
        )
        q.broken = True


def _finish(collector: Collector, q: _Question, answer: str | None, answer_line: int | None) -> bool:
    """Hand the question to the collector, its key taken from the ANSWER line; False: stop reading."""
    q.draft.text = "\n".join(q.text_lines)
    if answer is None:
        if not q.in_options:
            q.draft.error("options", "question text has no options after it (A. ..., B. ...) and no ANSWER line")
        else:
            q.draft.error("correct", "the options are not followed by an 'ANSWER: <letter>' line")
        q.draft.key_reported = True
    else:
        _mark_answer(q, answer, answer_line)
    return collector.add(q.draft)


def _mark_answer(q: _Question, answer: str, answer_line: int) -> None:
    """The options the ANSWER line names marked correct; a letter beyond the options is reported."""
    letters, reason = parse_correct_letters(answer, len(OPTION_LETTERS))
    if reason:
        q.line_error(answer_line, "correct", reason.replace("is required", "ANSWER is empty"))
        q.draft.key_reported = True
    for i in letters:
        if i >= len(q.draft.options):
            q.line_error(
                answer_line, "correct",
                f"ANSWER names {OPTION_LETTERS[i]} but the question has only "
                f"{len(q.draft.options)} options",
            )
            q.draft.key_reported = True
        else:
            q.draft.options[i].correct = True
