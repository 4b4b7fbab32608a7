"""What a candidate's paper is made of and never changes, kept in memory per process.

A frozen question version (drawn by a published exam) never changes again, and neither does
a published exam's header. At the synchronized start a whole lab fetches its papers within a
second; reading the question texts and options from the database for every one of them is what
made that slow.

A paper never changes once drawn either, so its questions are kept as the UTF-8 JSON that
GET /attempt sends (``paper_questions``), per section, built from the versions' own JSON pieces
on first use (a query for the section's items): a request splices those bytes between the parts
that change (the clock, the section states, the saved answers) instead of building and encoding
some hundred dictionaries. Kept per paper id and content hash (a paper drawn again under a reused
id is another entry), within ``MAX_PAPER_BYTES`` per process, least recently used first out.

Each database (engine) has its own cache, dropped with the engine; only frozen versions
and published exams are kept. Nothing here holds the answer key: the cached version keeps
its type, text, image and option texts, never which option is right.
"""
from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring  # a str as json.dumps(..., ensure_ascii=False) writes it

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.core.db import Driver, DriverStatement
from exam.setup.models import Exam
from question_bank.models import QuestionVersion

MAX_VERSIONS = 100_000  # a cache that grows past this starts again (a bank of that size is ~100 MB of text)
LOAD_CHUNK = 500
MAX_PAPER_BYTES = 64 * 1024 * 1024  # papers' JSON kept per process and database (~1,000 whole papers of 120)


@dataclass(frozen=True, slots=True)
class VersionView:
    """A frozen question version as a candidate may see it: no key."""

    qtype: str  # single | multiple
    text: str
    image: str  # the bank's file name, "" for none
    option_texts: tuple[str, ...]  # in the author's order


@dataclass(frozen=True, slots=True)
class ExamHeader:
    code: str
    title: str
    instructions: str
    show_score: bool


@dataclass(frozen=True, slots=True)
class _VersionJSON:
    """A version's fixed parts in a question's JSON (see ``paper_questions``)."""

    middle: bytes  # ,"type":"single","text":"…","options":[
    options: tuple[bytes, ...]  # ,"text":"…"}  per option, in the author's order
    image: str


class _Store:
    def __init__(self):
        self.versions: dict[int, VersionView] = {}
        self.version_json: dict[int, _VersionJSON] = {}
        self.exams: dict[int, ExamHeader] = {}
        # (paper id, content hash) → {section position: parts}; least recently used first
        self.papers: OrderedDict[tuple[int, str], dict[int, tuple[bytes | str, ...]]] = OrderedDict()
        self.paper_bytes = 0
        self.lock = threading.Lock()


_stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def _store(session: Session) -> _Store:
    engine = session.get_bind()
    store = _stores.get(engine)
    if store is None:
        with _stores_lock:
            store = _stores.get(engine)
            if store is None:
                store = _stores[engine] = _Store()
    return store


def versions(session: Session, version_ids: Iterable[int]) -> dict[int, VersionView]:
    """The candidate's view of each version, from memory; those not held yet are read in one query
    (kept only when frozen)."""
    return _versions(session, version_ids)[0]


def _versions(session: Session, version_ids: Iterable[int]) -> tuple[dict[int, VersionView], bool]:
    """``versions``, and whether every one of them is frozen."""
    store = _store(session)
    known = store.versions
    wanted = set(version_ids)
    found = {v: known[v] for v in wanted if v in known}
    missing = sorted(wanted - found.keys())
    all_frozen = True
    for start in range(0, len(missing), LOAD_CHUNK):
        chunk = missing[start:start + LOAD_CHUNK]
        loaded = {}
        frozen = set()
        for row in session.execute(select(QuestionVersion.id, QuestionVersion.qtype, QuestionVersion.text,
                                          QuestionVersion.image, QuestionVersion.options, QuestionVersion.frozen)
                                   .where(QuestionVersion.id.in_(chunk))):
            loaded[row.id] = VersionView("multiple" if row.qtype == "multiple" else "single", row.text,
                                         row.image or "", tuple(option["text"] for option in row.options))
            if row.frozen:
                frozen.add(row.id)
        found.update(loaded)
        all_frozen = all_frozen and len(frozen) == len(loaded)
        if frozen:
            with store.lock:
                if len(known) + len(frozen) > MAX_VERSIONS:
                    known.clear()
                    store.version_json.clear()
                known.update((v, loaded[v]) for v in frozen)
    return found, all_frozen


def _json(text: str) -> bytes:
    return encode_basestring(text).encode()


def _version_json(store: _Store, views: Mapping[int, VersionView], keep: bool) -> dict[int, _VersionJSON]:
    held = store.version_json
    pieces = {}
    for version_id, view in views.items():
        piece = held.get(version_id)
        if piece is None:
            piece = _VersionJSON(b',"type":' + _json(view.qtype) + b',"text":' + _json(view.text) + b',"options":[',
                                 tuple(b',"text":' + _json(text) + b"}" for text in view.option_texts), view.image)
            if keep:
                held[version_id] = piece
        pieces[version_id] = piece
    return pieces


_SECTION_ITEMS = DriverStatement("""
    SELECT position, question_version_id, public_id, option_order, option_ids
    FROM paper_item WHERE paper_id = :paper_id AND section_id = :section_id ORDER BY position""")


def paper_questions(session: Session, paper_id: int, content_hash: str, shown: Sequence[int],
                    position_of: Mapping[int, int], driver: Driver | None = None) -> list[bytes | str]:
    """The questions of a paper's sections at the positions ``shown`` (in order), as the members of
    GET /attempt's ``questions`` array: UTF-8 JSON, no brackets. A ``str`` among the parts is the file name
    of a question's image: its signed address (signed per request) goes there as a JSON string.

    Each question is ``{"id", "section", "number", "type", "text", "options": [{"id", "text"}], "image_url"}``,
    options in the paper's order, nothing that tells which option is right. ``position_of`` maps the
    exam's section ids to positions. From memory once built (only a paper whose versions are all frozen
    is kept); a section not built yet costs a query of its items."""
    store = _store(session)
    key = (paper_id, content_hash)
    with store.lock:
        built = store.papers.get(key)
        if built is not None:
            store.papers.move_to_end(key)
    missing = {p for p in shown if built is None or p not in built}
    if missing:
        made, frozen = _build_sections(session, driver or Driver(session), store, paper_id, missing, position_of)
        if frozen:
            with store.lock:
                built = store.papers.setdefault(key, {})
                store.papers.move_to_end(key)
                for position, parts in made.items():
                    if position not in built:
                        built[position] = parts
                        store.paper_bytes += sum(len(part) for part in parts)
                while store.paper_bytes > MAX_PAPER_BYTES and len(store.papers) > 1:
                    _, dropped = store.papers.popitem(last=False)
                    store.paper_bytes -= sum(len(part) for parts in dropped.values() for part in parts)
        built = {**(built or {}), **made}
    joined: list[bytes | str] = []
    for position in shown:
        parts = built.get(position, ())
        if parts:
            if joined:
                joined.append(b",")
            joined.extend(parts)
    return joined


def _build_sections(session: Session, driver: Driver, store: _Store, paper_id: int, positions: set[int],
                    position_of: Mapping[int, int]) -> tuple[dict[int, tuple[bytes | str, ...]], bool]:
    """The paper's sections at ``positions`` encoded (a query each), and whether every version in them
    is frozen. At the synchronized start every Start builds its paper's first section: this is its cost."""
    section_of = {position: section_id for section_id, position in position_of.items()}
    rows_of = {position: driver.all(_SECTION_ITEMS, {"paper_id": paper_id, "section_id": section_of[position]})
               for position in positions}
    views, frozen = _versions(session, {row[1] for rows in rows_of.values() for row in rows})
    pieces = _version_json(store, views, keep=frozen)
    made = {}
    for position, rows in rows_of.items():
        orders, option_ids = [row[3] for row in rows], [row[4] for row in rows]
        if orders and isinstance(orders[0], str):  # JSON as text (SQLite): parsed in one go
            orders, option_ids = (json.loads("[" + ",".join(column) + "]") for column in (orders, option_ids))
        section = b',"section":' + str(position).encode() + b',"number":'
        parts: list[bytes | str] = []
        run: list[bytes] = []
        for (number, version_id, public_id, _order, _ids), order, ids in zip(rows, orders, option_ids, strict=True):
            piece = pieces[version_id]
            texts = piece.options
            if run:
                run.append(b",")
            run.append(b'{"id":' + _json(public_id) + section + str(number).encode() + piece.middle
                       + b",".join([b'{"id":' + _json(option_id) + texts[original]
                                    for option_id, original in zip(ids, order, strict=True)])
                       + b'],"image_url":')
            if piece.image:
                parts += [b"".join(run), piece.image]
                run = [b"}"]
            else:
                run.append(b"null}")
        if run:
            parts.append(b"".join(run))
        made[position] = tuple(parts)
    return made, frozen


def exam_header(session: Session, exam_id: int) -> ExamHeader:
    """Code, title, instructions and show_score of an exam; kept once it is published (frozen)."""
    store = _store(session)
    header = store.exams.get(exam_id)
    if header is not None:
        return header
    row = session.execute(select(Exam.code, Exam.title, Exam.instructions, Exam.show_score, Exam.status)
                          .where(Exam.id == exam_id)).one()
    header = ExamHeader(row.code, row.title, row.instructions or "", bool(row.show_score))
    if row.status == "published":
        with store.lock:
            store.exams[exam_id] = header
    return header


def clear(session: Session | None = None) -> None:
    """Forget what is held (for one database, or all): for tests and tools that rewrite a bank in place."""
    with _stores_lock:
        if session is None:
            _stores.clear()
        else:
            _stores.pop(session.get_bind(), None)
