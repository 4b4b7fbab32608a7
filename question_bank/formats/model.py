"""Data shapes shared by every import format.

Kept in their own module so that the format modules can import them without
importing the package ``__init__`` (which imports the format modules for its
registry). Everything here is re-exported from ``question_bank.formats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exam.core.errors import Refused

DIFFICULTIES = ("easy", "medium", "hard")
QUESTION_TYPES = ("single", "multiple")
# Uploads larger than this are refused before any parsing; callers may pass a
# different limit to parse_file(max_bytes=...).
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class RowError:
    """One problem found in an import file, in words the exam board can act on."""

    location: str  # "row 7", "line 12", "question 3" or "file"
    field: str  # column / field name, "" when it concerns the whole file or row
    reason: str  # English sentence

    def __str__(self) -> str:
        if self.field:
            return f"{self.location}, {self.field}: {self.reason}"
        return f"{self.location}: {self.reason}"


@dataclass
class ParsedOption:
    text: str
    correct: bool


@dataclass
class ParsedQuestion:
    location: str
    topic: str | None
    difficulty: str
    type: str
    text: str
    options: list[ParsedOption]
    explanation: str = ""
    source: str = ""
    tags: list[str] = field(default_factory=list)
    image: str = ""


@dataclass
class ParseResult:
    questions: list[ParsedQuestion]
    errors: list[RowError]
    format: str  # "xlsx" | "csv" | "gift" | "aiken" | "json"

    @property
    def ok(self) -> bool:
        return not self.errors


class UnsupportedFormat(Refused):
    """Raised by helpers that are asked for a format this package does not know.

    parse_file itself never raises it: an unknown extension becomes a "file"
    error in the ParseResult, so the web page can show it like any other.
    """
