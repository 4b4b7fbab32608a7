"""Question-bank import files: parse an upload into questions and errors, and export.

Pure functions, no database and no Flask: the CLI (``bank import FILE``)
and the web import page both call ``parse_file`` and hand the result to the
importer, which writes it all-or-nothing. Every problem in a file is a
``RowError``, collected for the whole file, so the board fixes its file in
one pass instead of one error per upload.

    result = parse_file("ngan-hang.xlsx", data, default_topic="Kiến thức chung")
    if not result.ok:
        for e in result.errors: print(e)      # "row 7, difficulty: must be one of ..."
"""

from __future__ import annotations

from collections.abc import Callable

from . import aiken, csv_format, gift, json_format, xlsx
from .csv_format import export_csv, template_csv
from .json_format import export_json
from .model import (
    DIFFICULTIES,
    MAX_FILE_BYTES,
    QUESTION_TYPES,
    ParsedOption,
    ParsedQuestion,
    ParseResult,
    RowError,
    UnsupportedFormat,
)
from .tabular import COLUMNS
from .validation import fingerprint, normalise_text, normalise_topic
from .xlsx import export_xlsx, template_xlsx

Parser = Callable[[bytes, "str | None"], ParseResult]

# File extension -> parser. One entry per format; a new format is one module
# with parse(content, default_topic) and one line here.
FORMATS: dict[str, Parser] = {
    ".xlsx": xlsx.parse,
    ".csv": csv_format.parse,
    ".gift": gift.parse,
    ".txt": aiken.parse,  # Aiken: Moodle's plain-text multiple choice
    ".json": json_format.parse,
}
FORMAT_NAMES = {".xlsx": "xlsx", ".csv": "csv", ".gift": "gift", ".txt": "aiken", ".json": "json"}
SUPPORTED_EXTENSIONS = tuple(FORMATS)

EXPORTERS: dict[str, Callable[[list[ParsedQuestion]], bytes]] = {
    "xlsx": export_xlsx,
    "csv": export_csv,
    "json": export_json,
}


def _extension(filename: str) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def parse_file(
    filename: str,
    content: bytes,
    default_topic: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ParseResult:
    """Parse an uploaded question file, chosen by its extension.

    Never raises for bad content: every problem is a RowError in the result
    (location "file" for whole-file problems). ``default_topic`` is used for
    questions the file gives no topic for; without it such questions are
    errors. ``result.questions`` holds only the questions that passed; the
    importer must refuse the file unless ``result.ok``.
    """
    ext = _extension(filename)
    parser = FORMATS.get(ext)
    if parser is None:
        listed = ", ".join(f"{e} (Aiken)" if e == ".txt" else e for e in SUPPORTED_EXTENSIONS)
        shown = repr(ext) if ext else "none"
        return ParseResult([], [RowError(
            "file", "", f"unsupported file type (extension {shown}); use one of {listed}"
        )], "")
    fmt = FORMAT_NAMES[ext]
    content = bytes(content)
    if len(content) > max_bytes:
        return ParseResult([], [RowError(
            "file", "", f"is too large ({_size(len(content))}; the limit is {_size(max_bytes)}); "
                        "split it into smaller files"
        )], fmt)
    if not content.strip():
        return ParseResult([], [RowError("file", "", "is empty")], fmt)
    topic = None
    if default_topic is not None:
        topic, reason = normalise_topic(default_topic)
        if reason:
            return ParseResult([], [RowError("file", "topic", f"the default topic {reason}")], fmt)
    return parser(content, topic)


def export_file(fmt: str, questions: list[ParsedQuestion]) -> bytes:
    """export_xlsx / export_csv / export_json by name ("xlsx", "csv", "json")."""
    try:
        exporter = EXPORTERS[fmt]
    except KeyError:
        raise UnsupportedFormat(f"cannot export {fmt!r}; use one of {', '.join(EXPORTERS)}") from None
    return exporter(questions)


__all__ = [
    "COLUMNS",
    "DIFFICULTIES",
    "EXPORTERS",
    "FORMATS",
    "MAX_FILE_BYTES",
    "QUESTION_TYPES",
    "SUPPORTED_EXTENSIONS",
    "ParsedOption",
    "ParsedQuestion",
    "ParseResult",
    "RowError",
    "UnsupportedFormat",
    "export_csv",
    "export_file",
    "export_json",
    "export_xlsx",
    "fingerprint",
    "normalise_text",
    "normalise_topic",
    "parse_file",
    "template_csv",
    "template_xlsx",
]
