"""What a candidate's paper is made of and never changes, kept in memory per process.

A frozen question version (drawn by a published exam) never changes again, and neither does
a published exam's header, so building a candidate's paper is dictionary look-ups plus one
query for the paper's items (``visible_questions``) and one for the saved answers. At the
synchronized start a whole lab fetches its papers within a second; reading the question
texts and options from the database for every one of them is what made that slow.

Each database (engine) has its own cache, dropped with the engine; only frozen versions
and published exams are kept. Nothing here holds the answer key: the cached version keeps
its type, text, image and option texts, never which option is right.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

MAX_VERSIONS = 100_000  # a cache that grows past this starts again (a bank of that size is ~100 MB of text)
LOAD_CHUNK = 500


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


class _Store:
    def __init__(self):
        self.versions: dict[int, VersionView] = {}
        self.exams: dict[int, ExamHeader] = {}
        self.lock = threading.Lock()


_stores: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
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
    from question_bank.models import QuestionVersion

    store = _store(session)
    known = store.versions
    wanted = set(version_ids)
    found = {v: known[v] for v in wanted if v in known}
    missing = sorted(wanted - found.keys())
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
        if frozen:
            with store.lock:
                if len(known) + len(frozen) > MAX_VERSIONS:
                    known.clear()
                known.update((v, loaded[v]) for v in frozen)
    return found


def exam_header(session: Session, exam_id: int) -> ExamHeader:
    """Code, title, instructions and show_score of an exam; kept once it is published (frozen)."""
    from exam.models import Exam

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
