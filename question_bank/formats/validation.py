"""Rules every imported question must meet, whatever file it came from.

Each format module turns its file into ``Draft`` objects (raw strings, as
found) and hands them to a ``Collector``, which runs ``validate_draft`` on
each and applies the whole-file rules (duplicates, question count). Keeping
one path means a question typed in Excel, in Moodle GIFT or in JSON is
normalised and checked in exactly the same way, so the same bank imported
from two formats gives equal questions.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from .model import DIFFICULTIES, QUESTION_TYPES, ParsedOption, ParsedQuestion, ParseResult, RowError

# --- limits (documented in docs/import-formats.md) -------------------------
MAX_TEXT_CHARS = 4000
MAX_OPTION_CHARS = 1000
MAX_EXPLANATION_CHARS = 4000
MAX_SOURCE_CHARS = 1000
MAX_TOPIC_SEGMENT_CHARS = 200
MAX_TAG_CHARS = 50
MAX_TAGS = 20
MAX_IMAGE_CHARS = 255
MIN_OPTIONS = 2
MAX_OPTIONS = 6
MAX_QUESTIONS = 100_000  # per file; more is almost surely a mistake or an attack

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOPIC_SEPARATOR = " > "


def option_field(index: int) -> str:
    """Field name of the index-th option (0-based): option_a, option_b, ...

    Every format reports option problems with these names, so the web page
    shows the same words whether the file was a spreadsheet or GIFT.
    """
    if index < len(OPTION_LETTERS):
        return "option_" + OPTION_LETTERS[index].lower()
    return f"option_{index + 1}"


# --- text normalisation -----------------------------------------------------

_LINE_BREAKS = re.compile(r"\r\n|[\r\u2028\u2029\x0b\x0c\x85]")
_SPACE_RUN = re.compile(r" {2,}")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")


def _build_char_table() -> dict[int, str | None]:
    """str.translate table: drop invisible characters, turn every kind of space into " ".

    Dropped: Cc control characters (except newline), Cf format characters
    (zero-width space and joiners, BOM, soft hyphen, bidi overrides: invisible,
    and they make two equal-looking options differ) and Cs lone surrogates
    (JSON "\\ud800" escapes produce them; no database stores them). Spaces:
    tab and the Zs separators (no-break space from Word, thin space...), which
    a reader cannot tell from a space, so neither may the duplicate check.
    Planes 0, 1 and 14 hold every such character; scanning them takes ~20 ms.
    """
    table: dict[int, str | None] = {}
    for cp in (*range(0x20000), *range(0xE0000, 0xE1000)):
        category = unicodedata.category(chr(cp))
        if category in ("Cc", "Cf", "Cs"):
            table[cp] = None
        elif category == "Zs":
            table[cp] = " "
    table[ord("\n")] = "\n"
    table[ord("\t")] = " "
    return table


_CHAR_TABLE = _build_char_table()


def normalise_text(s: str) -> str:
    """The canonical form of any text field.

    NFC (Vietnamese typed with combining marks equals the precomposed form),
    no zero-width or control characters except newline, every run of spaces
    or tabs (including no-break spaces) collapsed to one space, no spaces at
    the start or end of a line, and the whole value stripped.
    """
    if not s:
        return ""
    s = _LINE_BREAKS.sub("\n", s)
    s = s.translate(_CHAR_TABLE)
    # After the removals: a zero-width char between a letter and its accent
    # would otherwise keep them from composing.
    s = unicodedata.normalize("NFC", s)
    s = _SPACE_RUN.sub(" ", s)
    s = _SPACE_AROUND_NEWLINE.sub("\n", s)
    return s.strip()


def _fold(s: str) -> str:
    """Key for comparing words the board may type in any case."""
    return normalise_text(s).casefold()


# --- HTML -------------------------------------------------------------------

# Names of HTML elements (current, obsolete, and the SVG / MathML roots). A
# "<name ...>" with one of these names is markup a browser would act on.
HTML_ELEMENTS = frozenset("""
a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big blink
blockquote body br button canvas caption center cite code col colgroup data datalist dd del details
dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3
h4 h5 h6 head header hgroup hr html i iframe image img input ins isindex kbd keygen label legend li
link listing main map mark marquee math menu menuitem meta meter nav nobr noembed noframes noscript
object ol optgroup option output p param picture plaintext portal pre progress q rb rp rt rtc ruby s
samp script search section select slot small source span strike strong style sub summary sup svg
table tbody td template textarea tfoot th thead time title tr track tt u ul var video wbr xmp
""".split())

# "<" + letter starts a tag in a browser. Refused: a known element name, a
# custom element (name with "-"), or any tag carrying an attribute with "="
# (<x onclick=...> runs script whatever x is); also comments, CDATA,
# doctype and processing instructions. Allowed: "a < b", "x<5", "< >", and
# placeholders such as "<Enter>" or "<tên tệp>" that are not HTML.
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)([^<>]*)>")
_ATTRIBUTE = re.compile(r"[\s/][^\s/=<>\"']+\s*=")
_MARKUP = re.compile(r"<!--|<!\[CDATA\[|<![A-Za-z]|<\?[A-Za-z]")


def find_html(s: str) -> str | None:
    """The first HTML tag in s (shortened for messages), or None."""
    if "<" not in s:
        return None
    found = None
    for m in _TAG.finditer(s):
        name = m.group(2).casefold()
        if name in HTML_ELEMENTS or "-" in name or _ATTRIBUTE.search(m.group(3)):
            found = m
            break
    other = _MARKUP.search(s)
    if other and (found is None or other.start() < found.start()):
        found = other
    if found is None:
        return None
    tag = found.group(0)
    return tag if len(tag) <= 40 else tag[:37] + "..."


def _html_reason(tag: str) -> str:
    return (
        f"contains HTML ({tag!r}); HTML is not allowed, type plain text "
        "(a '<' in text such as 'a < b', 'x<5' or '<Enter>' is fine)"
    )


# --- controlled vocabularies ------------------------------------------------

DIFFICULTY_ALIASES = {
    "easy": "easy", "dễ": "easy", "de": "easy",
    "medium": "medium", "trung bình": "medium", "trung binh": "medium",
    "hard": "hard", "khó": "hard", "kho": "hard",
}  # fmt: skip

TYPE_ALIASES = {
    "single": "single", "một đáp án": "single", "một": "single",
    "multiple": "multiple", "nhiều đáp án": "multiple", "nhiều": "multiple",
}  # fmt: skip


def parse_difficulty(raw: str | None) -> tuple[str | None, str | None]:
    """(difficulty, None) or (None, reason)."""
    value = _fold(raw or "")
    if not value:
        return None, "is required (easy, medium or hard; dễ, trung bình or khó)"
    if value in DIFFICULTY_ALIASES:
        return DIFFICULTY_ALIASES[value], None
    return None, (
        f"must be one of {', '.join(DIFFICULTIES)} (got {normalise_text(raw or '')!r}); "
        "dễ, trung bình, khó are also accepted"
    )


def parse_type(raw: str | None) -> tuple[str | None, str | None]:
    """(type, None), (None, None) when blank (to be inferred), or (None, reason)."""
    value = _fold(raw or "")
    if not value:
        return None, None
    if value in TYPE_ALIASES:
        return TYPE_ALIASES[value], None
    return None, (
        f"must be one of {', '.join(QUESTION_TYPES)} or left blank "
        f"(got {normalise_text(raw or '')!r})"
    )


def normalise_topic(raw: str | None) -> tuple[str | None, str | None]:
    """Topic path "A > B" from raw text: (topic, None), (None, None) if blank, or (None, reason)."""
    value = normalise_text(raw or "")
    if not value:
        return None, None
    if "\n" in value:
        return None, "must be on one line"
    segments = [s.strip() for s in value.split(">")]
    if any(not s for s in segments):
        return None, f"has an empty part between '>' separators (got {value!r})"
    for s in segments:
        if len(s) > MAX_TOPIC_SEGMENT_CHARS:
            return None, f"each part may have at most {MAX_TOPIC_SEGMENT_CHARS} characters"
        tag = find_html(s)
        if tag:
            return None, _html_reason(tag)
    return TOPIC_SEPARATOR.join(segments), None


_LETTER_SEPARATORS = re.compile(r"[\s,;/]+")


def parse_correct_letters(raw: str | None, max_letters: int) -> tuple[list[int], str | None]:
    """Option indexes named by a key such as "C", "A,C", "A;C", "ac": (indexes, reason)."""
    value = normalise_text(raw or "").upper()
    if not value:
        return [], "is required: the letter(s) of the correct option(s), e.g. C or A,C"
    compact = _LETTER_SEPARATORS.sub("", value)
    allowed = OPTION_LETTERS[:max_letters]
    bad = sorted({ch for ch in compact if ch not in allowed})
    if bad or not compact:
        return [], (
            f"must be option letters {allowed[0]}-{allowed[-1]} such as C or A,C "
            f"(got {normalise_text(raw or '')!r})"
        )
    indexes: list[int] = []
    for ch in compact:
        i = allowed.index(ch)
        if i not in indexes:  # "A,A" is harmless, not worth an error
            indexes.append(i)
    return sorted(indexes), None


_IMAGE_NAME = re.compile(
    r"[\w][\w .()+-]*(?:/[\w][\w .()+-]*)*\.(?:png|jpe?g|gif|webp)", re.IGNORECASE
)


def _image_problem(value: str) -> str | None:
    # Only a plain relative file name: the importer resolves it against the
    # uploaded images, so URLs (tracking / offline exam rooms), absolute
    # paths, ".." and SVG (which can carry script) are refused here.
    if len(value) > MAX_IMAGE_CHARS:
        return f"is too long ({len(value)} characters; at most {MAX_IMAGE_CHARS})"
    if ".." in value.split("/") or not _IMAGE_NAME.fullmatch(value):
        return (
            f"must be an image file name such as 'cau-12.png' (png, jpg, jpeg, gif or webp; "
            f"no URL, no absolute path, no '..') (got {value!r})"
        )
    return None


# --- the draft every format produces ----------------------------------------


@dataclass
class DraftOption:
    text: str | None
    correct: bool
    reported: bool = False  # a problem with this option was already reported


@dataclass
class Draft:
    """One question as found in a file, before any checking."""

    location: str
    text: str | None = None
    options: list[DraftOption] = field(default_factory=list)
    topic: str | None = None
    difficulty: str | None = None
    type: str | None = None
    explanation: str | None = None
    source: str | None = None
    tags: list[str] | str | None = None
    image: str | None = None
    # Problems the format reader already found (formula cell, bad letter...).
    errors: list[RowError] = field(default_factory=list)
    # True when the reader already reported a problem with the key, so the
    # "exactly one correct" checks would only repeat it in other words.
    key_reported: bool = False

    def error(self, field_name: str, reason: str) -> None:
        self.errors.append(RowError(self.location, field_name, reason))


def _check_plain(
    draft: Draft, field_name: str, raw: str | None, limit: int, errors: list[RowError]
) -> str:
    value = normalise_text(raw or "")
    if len(value) > limit:
        errors.append(
            RowError(draft.location, field_name, f"is too long ({len(value)} characters; at most {limit})")
        )
    tag = find_html(value)
    if tag:
        errors.append(RowError(draft.location, field_name, _html_reason(tag)))
    return value


def _check_tags(draft: Draft, errors: list[RowError]) -> list[str]:
    raw = draft.tags
    if raw is None:
        return []
    # Spreadsheets give "a, b"; JSON gives a list. A comma inside a list item
    # is refused because the spreadsheet export could not write it back.
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    tags: list[str] = []
    for item in items:
        tag = normalise_text(item)
        if not tag:
            continue
        if "," in tag or "\n" in tag:
            errors.append(RowError(draft.location, "tags",
                                   f"a tag may not contain a comma or a line break (got {tag!r})"))
            continue
        if len(tag) > MAX_TAG_CHARS:
            errors.append(RowError(draft.location, "tags",
                                   f"tag {tag[:20]!r}... is too long (at most {MAX_TAG_CHARS} characters)"))
            continue
        found = find_html(tag)
        if found:
            errors.append(RowError(draft.location, "tags", _html_reason(found)))
            continue
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors.append(RowError(draft.location, "tags", f"at most {MAX_TAGS} tags per question (got {len(tags)})"))
    return tags


def validate_draft(draft: Draft, default_topic: str | None) -> tuple[ParsedQuestion | None, list[RowError]]:
    """Normalise and check one question; the question is None when any error was found.

    default_topic must already be normalised (parse_file does that). The errors come in the order of
    the fields: text, topic, difficulty, type, options, the key, explanation, source, tags, image.
    """
    errors = list(draft.errors)
    loc = draft.location

    text = _check_plain(draft, "text", draft.text, MAX_TEXT_CHARS, errors)
    if not text:
        errors.append(RowError(loc, "text", "is required"))
    topic = _check_topic(draft, default_topic, errors)

    difficulty, reason = parse_difficulty(draft.difficulty)
    if reason:
        errors.append(RowError(loc, "difficulty", reason))

    qtype, reason = parse_type(draft.type)
    if reason:
        errors.append(RowError(loc, "type", reason))
    options = _check_options(draft, errors)
    qtype = _check_key(draft, qtype, errors)

    explanation = _check_plain(draft, "explanation", draft.explanation, MAX_EXPLANATION_CHARS, errors)
    source = _check_plain(draft, "source", draft.source, MAX_SOURCE_CHARS, errors)
    tags = _check_tags(draft, errors)

    image = normalise_text(draft.image or "")
    if image:
        reason = _image_problem(image)
        if reason:
            errors.append(RowError(loc, "image", reason))

    if errors:
        return None, errors
    return ParsedQuestion(
        location=loc, topic=topic, difficulty=difficulty, type=qtype, text=text,
        options=options, explanation=explanation, source=source, tags=tags, image=image,
    ), []


def _check_topic(draft: Draft, default_topic: str | None, errors: list[RowError]) -> str | None:
    """The question's topic path, normalised, or the import's default topic when the file gives none."""
    topic, reason = normalise_topic(draft.topic)
    if reason:
        errors.append(RowError(draft.location, "topic", reason))
    elif topic is None:
        topic = default_topic
        if topic is None:
            errors.append(RowError(
                draft.location, "topic",
                "is required: the file gives no topic for this question and no default topic was chosen"
            ))
    return topic


def _check_options(draft: Draft, errors: list[RowError]) -> list[ParsedOption]:
    """The non-blank options, normalised: each short enough, without HTML, all different; and their count."""
    loc = draft.location
    options: list[ParsedOption] = []
    seen: dict[str, str] = {}
    for i, opt in enumerate(draft.options):
        name = option_field(i)
        value = normalise_text(opt.text or "")
        if not value:
            if not opt.reported:
                errors.append(RowError(loc, name, "is blank"))
            continue
        if len(value) > MAX_OPTION_CHARS:
            errors.append(RowError(loc, name, f"is too long ({len(value)} characters; at most {MAX_OPTION_CHARS})"))
        tag = find_html(value)
        if tag:
            errors.append(RowError(loc, name, _html_reason(tag)))
        if value in seen:
            errors.append(RowError(loc, name, f"is the same as {seen[value]} ({value[:60]!r}); options must differ"))
        else:
            seen[value] = name
        options.append(ParsedOption(value, bool(opt.correct)))

    count = len(draft.options)
    if not MIN_OPTIONS <= count <= MAX_OPTIONS:
        errors.append(RowError(loc, "options",
                               f"a question needs {MIN_OPTIONS} to {MAX_OPTIONS} options (got {count})"))
    return options


def _check_key(draft: Draft, qtype: str | None, errors: list[RowError]) -> str:
    """The question type (single or multiple: from the options marked correct when not given), and the key
    against it: at least one correct option, one only for single, at least one wrong one for multiple.
    Not checked again when the reader already reported a problem with the key."""
    loc = draft.location
    count = len(draft.options)
    correct_letters = [OPTION_LETTERS[i] for i, o in enumerate(draft.options) if o.correct]
    n_correct = len(correct_letters)
    type_given = qtype is not None
    if qtype is None:
        qtype = "multiple" if n_correct > 1 else "single"
    if not draft.key_reported:
        if n_correct == 0:
            errors.append(RowError(loc, "correct", "no option is marked correct"))
        elif qtype == "single" and n_correct > 1:
            hint = "; set type to multiple if several options are correct" if type_given else ""
            errors.append(RowError(
                loc, "correct",
                f"a single-answer question needs exactly one correct option (got {n_correct}: "
                f"{', '.join(correct_letters)}){hint}",
            ))
        elif qtype == "multiple" and n_correct == count and count > 0:
            errors.append(RowError(loc, "correct", "a multiple-answer question needs at least one wrong option"))
    return qtype


# --- whole file -------------------------------------------------------------


def fingerprint(question: ParsedQuestion) -> str:
    """Identity of a question for duplicate checks: same stem, same set of options.

    Case and option order are ignored, the key and topic are not part of it,
    so a question pasted twice with a different key is caught as a duplicate.
    The importer can compare this against the questions already in the bank.
    """
    parts = [_fold(question.text)] + sorted(_fold(o.text) for o in question.options)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def too_many_questions_error() -> RowError:
    return RowError(
        "file", "", f"has more than {MAX_QUESTIONS:,} questions; split it into smaller files"
    )


class Collector:
    """Accumulates questions and errors for one file and builds the ParseResult."""

    def __init__(self, fmt: str, default_topic: str | None):
        self.fmt = fmt
        self.default_topic = default_topic
        self.questions: list[ParsedQuestion] = []
        self.errors: list[RowError] = []
        self._first_seen: dict[str, str] = {}
        self.drafts_seen = 0

    def file_error(self, reason: str) -> None:
        self.errors.append(RowError("file", "", reason))

    def add(self, draft: Draft) -> bool:
        """Validate and keep a draft. False once the file has too many questions."""
        self.drafts_seen += 1
        if self.drafts_seen > MAX_QUESTIONS:
            self.errors.append(too_many_questions_error())
            return False
        question, errors = validate_draft(draft, self.default_topic)
        self.errors.extend(errors)
        if question is not None:
            key = fingerprint(question)
            first = self._first_seen.get(key)
            if first is not None:
                self.errors.append(RowError(
                    question.location, "text",
                    f"duplicate of the question at {first} (same text and options)",
                ))
            else:
                self._first_seen[key] = question.location
                self.questions.append(question)
        return True

    def result(self) -> ParseResult:
        if not self.questions and not self.errors:
            self.file_error("contains no questions")
        return ParseResult(self.questions, self.errors, self.fmt)


# --- bytes to text ----------------------------------------------------------

UTF8_BOM = b"\xef\xbb\xbf"


def decode_utf8(content: bytes, save_hint: str) -> tuple[str | None, RowError | None]:
    """Text of an uploaded file, or a "file" error naming the first bad byte."""
    body = content[len(UTF8_BOM):] if content.startswith(UTF8_BOM) else content
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        skipped = len(content) - len(body)
        offset = exc.start + skipped
        line = body.count(b"\n", 0, exc.start) + 1
        looks = ""
        if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
            looks = " (it looks like UTF-16 / 'Unicode Text')"
        return None, RowError(
            "file", "",
            f"is not valid UTF-8{looks}: the first bad byte (0x{content[offset]:02X}) is at byte offset "
            f"{offset}, line {line}; {save_hint}",
        )
