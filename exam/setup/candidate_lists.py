"""The board's lists of candidates: every candidate of an exam, a sitting's seat list (by seat) and its
door list (as called at the door, the Vietnamese way: by given name, the last word of the name, then
the whole name, in Vietnamese alphabetical order), the candidates per sitting and the CSV IT staff
script with. The roster itself (the import and its rules) is ``exam.setup.roster``.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam.setup.models import Candidate, Exam, Sitting

# Vietnamese alphabetical order: letters with their vowel marks are letters of their own
# (a < ă < â, d < đ, o < ô < ơ, u < ư); tones only break ties, in the order
# none, huyền, hỏi, ngã, sắc, nặng.
ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}
_WITH_MODIFIER = {("a", "\u0306"): "ă", ("a", "\u0302"): "â", ("e", "\u0302"): "ê", ("o", "\u0302"): "ô",
                  ("o", "\u031b"): "ơ", ("u", "\u031b"): "ư"}
_RANK = {letter: index for index, letter in enumerate(ALPHABET)}


def vietnamese_key(text: str) -> tuple:
    """Sort key: letters in the Vietnamese alphabet first, then tones, then the text itself."""
    letters, tones = [], []
    for ch in unicodedata.normalize("NFC", text or "").casefold():
        parts = unicodedata.normalize("NFD", ch)
        base, marks = parts[0], parts[1:]
        tone = 0
        for mark in marks:
            if (base, mark) in _WITH_MODIFIER:
                base = _WITH_MODIFIER[(base, mark)]
            elif mark in _TONES:
                tone = _TONES[mark]
        letters.append(_RANK[base] if base in _RANK else len(ALPHABET) + ord(base))
        tones.append(tone)
    return tuple(letters), tuple(tones), text


def given_name(full_name: str) -> str:
    """The name a Vietnamese list is sorted by: the last word ('Nguyễn Thị Lan' → 'Lan')."""
    words = (full_name or "").split()
    return words[-1] if words else ""


def door_order_key(full_name: str) -> tuple:
    return vietnamese_key(given_name(full_name)), vietnamese_key(full_name)


@dataclass
class ListedCandidate:
    seat: int | None
    registration_no: str
    full_name: str
    date_of_birth: date
    post: str
    priority_category: str
    sitting: str


def _listed(session: Session, query) -> list[ListedCandidate]:
    rows = session.execute(query.outerjoin(Sitting, Sitting.id == Candidate.sitting_id)).all()
    return [ListedCandidate(c.seat, c.registration_no, c.full_name, c.date_of_birth, c.post, c.priority_category,
                            code or "") for c, code in rows]


def candidates_of(session: Session, exam: Exam) -> list[ListedCandidate]:
    """Every candidate of the exam, by registration number."""
    return _listed(session, select(Candidate, Sitting.code).where(Candidate.exam_id == exam.id)
                   .order_by(Candidate.registration_no))


def seat_list(session: Session, sitting: Sitting) -> list[ListedCandidate]:
    """The sitting's candidates by seat (those still without a seat last, by registration number)."""
    listed = _listed(session, select(Candidate, Sitting.code).where(Candidate.sitting_id == sitting.id))
    return sorted(listed, key=lambda c: (c.seat is None, c.seat or 0, c.registration_no))


def door_list(session: Session, sitting: Sitting) -> list[ListedCandidate]:
    """The sitting's candidates as called at the door: by given name, then full name (Vietnamese order)."""
    listed = _listed(session, select(Candidate, Sitting.code).where(Candidate.sitting_id == sitting.id))
    return sorted(listed, key=lambda c: (door_order_key(c.full_name), c.registration_no))


def counts_by_sitting(session: Session, exam: Exam) -> dict[int | None, int]:
    """Sitting id (None: not in a sitting yet) → number of candidates."""
    return dict(session.execute(select(Candidate.sitting_id, func.count()).where(Candidate.exam_id == exam.id)
                                .group_by(Candidate.sitting_id)).all())


def candidates_csv(candidates: Iterable[ListedCandidate]) -> str:
    """registration_no,date_of_birth,full_name,seat (date as YYYY-MM-DD): what IT staff script with."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("registration_no", "date_of_birth", "full_name", "seat"))
    for c in candidates:
        writer.writerow((c.registration_no, c.date_of_birth.isoformat(), c.full_name, "" if c.seat is None else c.seat))
    return out.getvalue()
