"""JSON import and export in the "demo-bank/1" shape (also a bare list of questions).

    {"format": "demo-bank/1", "topics": ["A > B", ...],
     "questions": [{"topic": "A > B", "difficulty": "easy", "type": "single", "text": "...",
                    "options": [{"text": "...", "correct": true}, ...],
                    "explanation": "...", "source": "...", "tags": ["..."], "image": "x.png"}]}
"""

from __future__ import annotations

import json

from .model import ParsedQuestion, ParseResult, RowError
from .validation import Collector, Draft, DraftOption, decode_utf8, option_field

FORMAT = "json"
FORMAT_TAG = "demo-bank/1"
QUESTION_KEYS = ("topic", "difficulty", "type", "text", "options", "explanation", "source", "tags", "image")
STRING_KEYS = ("topic", "difficulty", "type", "text", "explanation", "source", "image")
SAVE_HINT = "save the file as UTF-8"


def _as_text(value) -> str | None:
    """Strings as they are; plain numbers as their text (an option "2013"); None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _draft(index: int, item) -> Draft:
    draft = Draft(location=f"question {index}")
    if not isinstance(item, dict):
        draft.error("", f"must be an object {{...}}, not {_kind(item)}")
        draft.key_reported = True
        return draft
    _read_fields(draft, item)
    options = item.get("options")
    if options is None:
        draft.error("options", "is required: a list of {\"text\": ..., \"correct\": true/false}")
        draft.key_reported = True
        return draft
    if not isinstance(options, list):
        draft.error("options", f"must be a list, not {_kind(options)}")
        draft.key_reported = True
        return draft
    for i, opt in enumerate(options):
        draft.options.append(_option(draft, option_field(i), opt))
    return draft


def _read_fields(draft: Draft, item: dict) -> None:
    """The question's fields other than its options: unknown keys refused, strings (or numbers) and tags."""
    for key in item:
        if key not in QUESTION_KEYS:
            # A typo such as "answer" or "dificulty" must not be dropped silently.
            draft.error(str(key), f"unknown field; the fields are {', '.join(QUESTION_KEYS)}")
    for key in STRING_KEYS:
        value = item.get(key)
        if value is None:
            continue
        text = _as_text(value)
        if text is None:
            draft.error(key, f"must be a string, not {_kind(value)}")
        else:
            setattr(draft, key, text)

    tags = item.get("tags")
    if tags is not None:
        if isinstance(tags, str):
            draft.tags = tags
        elif isinstance(tags, list) and all(isinstance(t, str) for t in tags):
            draft.tags = tags
        else:
            draft.error("tags", "must be a list of strings")


def _option(draft: Draft, name: str, opt) -> DraftOption:
    """One {"text": ..., "correct": true/false} of the options list; its problems reported on the draft."""
    if not isinstance(opt, dict):
        draft.error(name, f"must be an object {{\"text\": ..., \"correct\": ...}}, not {_kind(opt)}")
        draft.key_reported = True
        return DraftOption(None, False, reported=True)
    unknown = [k for k in opt if k not in ("text", "correct")]
    if unknown:
        draft.error(name, f"unknown field {unknown[0]!r}; an option has only text and correct")
    text = _as_text(opt.get("text"))
    reported = False
    if opt.get("text") is not None and text is None:
        draft.error(name, f"text must be a string, not {_kind(opt.get('text'))}")
        reported = True
    correct = opt.get("correct", False)
    if not isinstance(correct, bool):
        # "yes", 1, "true": refuse rather than guess which options are keys.
        draft.error("correct", f"{name}: correct must be true or false (got {json.dumps(correct)[:20]})")
        draft.key_reported = True
        correct = False
    return DraftOption(text, correct, reported=reported)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def parse(content: bytes, default_topic: str | None) -> ParseResult:
    collector = Collector(FORMAT, default_topic)
    text, error = decode_utf8(content, SAVE_HINT)
    if error:
        collector.errors.append(error)
        return ParseResult([], collector.errors, FORMAT)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        collector.file_error(f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
        return ParseResult([], collector.errors, FORMAT)
    except RecursionError:
        # Thousands of nested brackets: no question file looks like that.
        collector.file_error("is not valid JSON: it is nested too deeply")
        return ParseResult([], collector.errors, FORMAT)

    if isinstance(data, dict):
        fmt = data.get("format")
        if fmt is not None and fmt != FORMAT_TAG:
            collector.file_error(f"has format {fmt!r}; only {FORMAT_TAG!r} is understood")
            return ParseResult([], collector.errors, FORMAT)
        topics = data.get("topics")
        if topics is not None and not (isinstance(topics, list) and all(isinstance(t, str) for t in topics)):
            collector.errors.append(_field_error("topics", "must be a list of topic paths (strings)"))
        questions = data.get("questions")
        if not isinstance(questions, list):
            collector.errors.append(_field_error("questions", "is required: a list of questions"))
            return collector.result()
    elif isinstance(data, list):
        questions = data
    else:
        collector.file_error(f"must hold an object with \"questions\" or a list of questions, not {_kind(data)}")
        return ParseResult([], collector.errors, FORMAT)

    for index, item in enumerate(questions, start=1):
        if not collector.add(_draft(index, item)):
            break
    return collector.result()


def _field_error(field_name: str, reason: str) -> RowError:
    return RowError("file", field_name, reason)


def question_to_dict(q: ParsedQuestion) -> dict:
    item: dict = {}
    if q.topic is not None:
        item["topic"] = q.topic
    item.update(
        difficulty=q.difficulty,
        type=q.type,
        text=q.text,
        options=[{"text": o.text, "correct": o.correct} for o in q.options],
        explanation=q.explanation,
        source=q.source,
    )
    if q.tags:
        item["tags"] = list(q.tags)
    if q.image:
        item["image"] = q.image
    return item


def export_json(questions: list[ParsedQuestion]) -> bytes:
    """The demo-bank/1 document: topics in order of first use, then the questions."""
    topics = dict.fromkeys(q.topic for q in questions if q.topic is not None)
    doc = {"format": FORMAT_TAG, "topics": list(topics), "questions": [question_to_dict(q) for q in questions]}
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
