"""Papers: each candidate's questions, drawn from the exam's frozen pool by the blueprint.

The draw is deterministic and balanced:

* Candidates get a *slot* the first time papers are generated (in registration-number
  order; later additions take the next slots). A paper is a pure function of the
  exam's secret seed, the frozen pool and the candidate's slot, so generating again
  gives the same paper, and ``generate_papers`` checks every stored paper against it.
* Within each blueprint cell, slot after slot takes the questions used least so far
  in the exam, ties broken by keyed-hash keys of the seed (one digest stream per slot
  and cell). Across the room, use counts within a cell never differ by more than one.
* Question order within a section, option order within a question, the question's
  public id and the option ids all come from one keyed digest per (slot, question
  version), split into its parts; option ids are opaque, so an id says nothing about
  which option is right.
* With fixed forms (``exam.forms = K``), K parallel papers are drawn the same way;
  every form follows the same blueprint, so each has the same number of questions
  of each difficulty in each topic. Form ``(seat - 1) mod K`` goes to each seat,
  so neighbouring seat numbers never hold the same form.

Each stored paper also carries what batch grading and item analysis read instead of its
items: ``key_masks`` (one byte per position: the correct options as displayed, bit j = the
j-th displayed option), ``version_ids`` (int32 little-endian per position) and
``option_orders`` (uint16 little-endian per position: ``option_order_index`` of the
position's option order, its index among the orders of its n options in lexicographic
order, ``itertools.permutations(range(n))``).

The keyed digests (BLAKE2b, keyed with the seed, personalised per use):

* item digest of (slot, version), 64 bytes: [0:8] order key within the section,
  [8:16] public id (hex), [16:24] the option permutation (a 64-bit number read as a
  Fisher–Yates shuffle), [24:24+6n] the id of each option in the author's order (hex);
* draw digests of (slot, cell, block): sixteen 32-bit tie-break keys per block, one
  per pool version in version-id order.
"""
from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import permutations
from operator import or_
from typing import NamedTuple

from sqlalchemy import JSON, Text, bindparam, cast, insert, select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.core.errors import Refused
from exam.setup.models import BlueprintCell, Candidate, Exam, ExamPool, ExamSection, Paper, PaperItem
from question_bank.models import QuestionVersion

ITEM_PERSON = b"exam.paper.item"
DRAW_PERSON = b"exam.paper.draw"
ID_BYTES = 6  # 12 hex characters per option id
KEYS_PER_BLOCK = 16  # 32-bit draw keys per 64-byte digest
MAX_OPTIONS = 8  # key and choice masks are one byte per question
INSERT_CHUNK = 500  # papers per insert round (bounds memory for 100,000 candidates)


class PaperError(Refused):
    """Papers cannot be generated as asked; the message says why."""


class DraftItem(NamedTuple):
    position: int
    section_id: int
    question_version_id: int
    public_id: str
    option_order: tuple[int, ...]
    option_ids: tuple[str, ...]
    key_mask: int  # correct options as displayed


@dataclass(frozen=True)
class PoolCell:
    cell_id: int
    section_id: int
    count: int
    version_ids: tuple[int, ...]  # sorted
    option_counts: tuple[int, ...]  # options of each version, same order
    correct: tuple[tuple[bool, ...], ...] = ()  # per version, which options are right (author's order)


@dataclass(frozen=True)
class Draft:
    """One drawn paper and its stored forms: what ``generate_papers`` writes and checks."""

    items: list[DraftItem]
    content_hash: str
    key_masks: bytes
    version_ids: bytes
    order_json: list[str]  # option_order of each item as compact JSON (stored as is)
    ids_json: list[str]  # option_ids of each item as compact JSON
    option_orders: bytes  # option_order_index of each item, uint16 LE


def load_pool(session: Session, exam: Exam) -> tuple[list[ExamSection], list[PoolCell]]:
    """The published exam's sections and, per blueprint cell, the frozen versions it may draw."""
    sections = list(exam.sections)
    rows = session.execute(
        select(BlueprintCell.id, BlueprintCell.section_id, BlueprintCell.count, ExamPool.question_version_id,
               QuestionVersion.options)
        .join(ExamPool, ExamPool.cell_id == BlueprintCell.id)
        .join(QuestionVersion, QuestionVersion.id == ExamPool.question_version_id)
        .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
        .where(ExamSection.exam_id == exam.id)
        .order_by(BlueprintCell.id, ExamPool.question_version_id)).all()
    by_cell: dict[int, list] = {}
    for cell_id, section_id, count, version_id, options in rows:
        by_cell.setdefault(cell_id, [section_id, count, [], [], []])
        by_cell[cell_id][2].append(version_id)
        by_cell[cell_id][3].append(len(options))
        by_cell[cell_id][4].append(tuple(bool(option.get("correct")) for option in options))
    cells = [PoolCell(cell_id, section_id, count, tuple(versions), tuple(option_counts), tuple(correct))
             for cell_id, (section_id, count, versions, option_counts, correct) in sorted(by_cell.items())]
    for cell in cells:
        if max(cell.option_counts, default=0) > MAX_OPTIONS:
            raise PaperError(f"blueprint cell {cell.cell_id} draws a question with more than {MAX_OPTIONS} options "
                             f"(a paper's key holds one byte per question)")
        if len(cell.version_ids) < cell.count:
            raise PaperError(f"blueprint cell {cell.cell_id} needs {cell.count} questions but its pool holds "
                             f"{len(cell.version_ids)}")
    return sections, cells


@cache
def _lexicographic(n: int) -> dict[tuple[int, ...], int]:
    return {order: k for k, order in enumerate(permutations(range(n)))}


def option_order_index(order) -> int:
    """The index of an option order (the author's index of each displayed option) among every order of
    its n options in lexicographic order (``itertools.permutations(range(n))``): 0 is the author's own
    order. Below 8! = 40,320, so two bytes hold it."""
    return _lexicographic(len(order))[tuple(order)]


def shuffled(n: int, number: int) -> tuple[int, ...]:
    """A permutation of range(n) read from ``number`` as a Fisher–Yates shuffle. Only ``number mod n!``
    matters (its mixed-radix digits), so a 64-bit number gives every order of n ≤ 20 options with a bias
    below n!/2**64."""
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        number, j = divmod(number, i + 1)
        order[i], order[j] = order[j], order[i]
    return tuple(order)


def permutation_table(n: int) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """(n!, every ``shuffled(n, k)`` for k < n!): the option order of a number is ``table[number % n!]``."""
    size = math.factorial(n)
    return size, tuple(shuffled(n, k) for k in range(size))


class PaperDrafter:
    """Draws papers slot by slot; keeps the per-cell use counts that balance the draw."""

    def __init__(self, seed: str, sections: list[ExamSection], cells: list[PoolCell]):
        key = bytes.fromhex(seed)[:64]
        self._item_hash = hashlib.blake2b(key=key, person=ITEM_PERSON)  # copied per digest: the key is absorbed once
        self._draw_hash = hashlib.blake2b(key=key, person=DRAW_PERSON)
        self.section_order = {section.id: section.position for section in sections}
        self.cells = cells
        self.levels = {cell.cell_id: [0] * len(cell.version_ids) for cell in cells}
        self.option_counts = {v: n for cell in cells for v, n in zip(cell.version_ids, cell.option_counts, strict=True)}
        self.permutations = {n: permutation_table(n) for n in set(self.option_counts.values())}
        # Per version, the author's indices of its right options.
        self.correct = {v: tuple(i for i, right in enumerate(c) if right) for cell in cells
                        for v, c in zip(cell.version_ids, cell.correct or ((),) * len(cell.version_ids), strict=True)}

    def _digest(self, base, message: bytes) -> bytes:
        h = base.copy()
        h.update(message)
        return h.digest()

    def draw_keys(self, slot: int, cell: PoolCell) -> tuple[int, ...]:
        """The 32-bit tie-break keys of the cell's pool versions at this slot."""
        n = len(cell.version_ids)
        stream = b"".join(self._digest(self._draw_hash, b"%d|%d|%d" % (slot, cell.cell_id, block))
                          for block in range((n + KEYS_PER_BLOCK - 1) // KEYS_PER_BLOCK))
        return struct.unpack_from(f">{n}I", stream)

    def draw(self, slot: int) -> list[DraftItem]:
        chosen: dict[int, list[int]] = {}
        for cell in self.cells:
            level = self.levels[cell.cell_id]  # uses << 32, so adding the 32-bit key ranks (uses, key)
            ranking = list(map(or_, level, self.draw_keys(slot, cell)))
            # Least used first, ties by the keyed key, then by version id (a key collision stays deterministic).
            picked = sorted(range(len(ranking)), key=ranking.__getitem__)[:cell.count]
            for i in picked:
                level[i] += 1 << 32
            chosen.setdefault(cell.section_id, []).extend(cell.version_ids[i] for i in picked)
        items = []
        position = 0
        item_hash, digest, option_counts, correct_of = self._item_hash, self._digest, self.option_counts, self.correct
        permutations, width = self.permutations, 2 * ID_BYTES
        for section_id in sorted(chosen, key=self.section_order.__getitem__):
            drawn = []
            for version_id in chosen[section_id]:
                d = digest(item_hash, b"%d|%d" % (slot, version_id))
                drawn.append((d[:8], version_id, d))
            drawn.sort()
            for _, version_id, d in drawn:
                position += 1
                n_options = option_counts[version_id]
                material = d[24:]
                if n_options * ID_BYTES > len(material):  # more options than one digest holds ids for
                    material += digest(item_hash, b"%d|%d|ids" % (slot, version_id))
                size, orders = permutations[n_options]
                order = orders[int.from_bytes(d[16:24], "big") % size]
                hexed = material.hex()
                option_ids = tuple([hexed[i * width:(i + 1) * width] for i in order])
                mask = 0
                for original in correct_of[version_id]:
                    mask |= 1 << order.index(original)
                items.append(DraftItem(position, section_id, version_id, d[8:16].hex(), order, option_ids, mask))
        return items


def draft_of(items: list[DraftItem]) -> Draft:
    """The stored forms of a drawn paper. The content hash is SHA-256 of the compact JSON of
    [[position, section id, version id, public id, option order, option ids], ...]."""
    order_json = ["[" + ",".join(map(str, i.option_order)) + "]" for i in items]
    ids_json = ['["' + '","'.join(i.option_ids) + '"]' if i.option_ids else "[]" for i in items]
    lines = [f'[{i.position},{i.section_id},{i.question_version_id},"{i.public_id}",{o},{d}]'
             for i, o, d in zip(items, order_json, ids_json, strict=True)]
    digest = hashlib.sha256(("[" + ",".join(lines) + "]").encode()).hexdigest()
    key_masks = bytes(i.key_mask for i in items)
    version_ids = struct.pack(f"<{len(items)}i", *(i.question_version_id for i in items))
    option_orders = struct.pack(f"<{len(items)}H", *(option_order_index(i.option_order) for i in items))
    return Draft(items, digest, key_masks, version_ids, order_json, ids_json, option_orders)


def content_hash(items: list[DraftItem]) -> str:
    return draft_of(items).content_hash


def form_for_seat(seat: int, forms: int) -> int:
    """Form number (1..K) of a seat: consecutive seats always differ when K >= 2."""
    return (seat - 1) % forms + 1


@dataclass
class PaperRun:
    created: int
    checked: int
    forms: int


ITEM_FIELDS = ("b_paper", "b_position", "b_section", "b_version", "b_public_id", "order_json", "ids_json")


def _item_insert(dialect_name: str):
    """INSERT of one paper item; the JSON columns get their text as drawn (no re-encoding)."""
    order, ids = bindparam("order_json", type_=Text()), bindparam("ids_json", type_=Text())
    if dialect_name != "sqlite":  # SQLite keeps JSON as text; others cast the text
        order, ids = cast(order, JSON), cast(ids, JSON)
    return insert(PaperItem.__table__).values(
        paper_id=bindparam("b_paper"), position=bindparam("b_position"), section_id=bindparam("b_section"),
        question_version_id=bindparam("b_version"), public_id=bindparam("b_public_id"), option_order=order,
        option_ids=ids)


def _insert_items(session: Session, rows: list[tuple]) -> None:
    """Executemany of the compiled item INSERT straight on the driver (COPY on PostgreSQL): the values are
    plain ints and strings already, so SQLAlchemy's per-row parameter processing (most of the time at
    240,000 rows) has nothing to do."""
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        _copy_items(connection, rows)
        return
    compiled = _item_insert(connection.dialect.name).compile(dialect=connection.dialect)
    if compiled.positional:
        where = [ITEM_FIELDS.index(name) for name in compiled.positiontup]
        params = rows if where == list(range(len(ITEM_FIELDS))) else [tuple(r[i] for i in where) for r in rows]
    else:
        params = [dict(zip(ITEM_FIELDS, r, strict=True)) for r in rows]
    connection.exec_driver_sql(compiled.string, params)


def _copy_items(connection, rows: list[tuple]) -> None:
    """PostgreSQL: COPY the items in, in the session's transaction (several times faster than INSERTs)."""
    columns = ("paper_id", "position", "section_id", "question_version_id", "public_id", "option_order",
               "option_ids")
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {PaperItem.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _store(session: Session, exam: Exam, new: list[tuple[Candidate, int, Draft]], now: datetime) -> None:
    """Insert papers (RETURNING their ids) and their items, INSERT_CHUNK papers at a time."""
    papers = Paper.__table__
    paper_insert = insert(papers).returning(papers.c.id, papers.c.candidate_id, sort_by_parameter_order=True)
    for start in range(0, len(new), INSERT_CHUNK):
        chunk = new[start:start + INSERT_CHUNK]
        ids = session.execute(paper_insert, [
            {"exam_id": exam.id, "candidate_id": candidate.id, "form": slot if exam.forms else None, "slot": slot,
             "content_hash": draft.content_hash, "created_at": now, "key_masks": draft.key_masks,
             "version_ids": draft.version_ids, "option_orders": draft.option_orders}
            for candidate, slot, draft in chunk]).all()
        rows = []
        for (paper_id, candidate_id), (candidate, _slot, draft) in zip(ids, chunk, strict=True):
            if candidate_id != candidate.id:
                raise RuntimeError("INSERT … RETURNING gave the papers' ids out of order")
            rows.extend((paper_id, i.position, i.section_id, i.question_version_id, i.public_id, order, option_ids)
                        for i, order, option_ids in zip(draft.items, draft.order_json, draft.ids_json, strict=True))
        _insert_items(session, rows)


def generate_papers(session: Session, exam: Exam, *, actor: str, now: datetime) -> PaperRun:
    """Draw and store the paper of every candidate who has none; check the stored ones.

    Raises PaperError when the exam is not published, a seat is missing in forms
    mode, or a stored paper no longer matches its regeneration (a sign of tampering).
    """
    if exam.status != "published":
        raise PaperError(f"exam {exam.code} is not published: publish it first (this freezes its questions)")
    sections, cells = load_pool(session, exam)
    drafter = PaperDrafter(exam.seed, sections, cells)
    candidates = session.execute(select(Candidate.id, Candidate.registration_no, Candidate.seat)
                                 .where(Candidate.exam_id == exam.id).order_by(Candidate.registration_no)).all()
    stored = {row.candidate_id: row for row in session.execute(
        select(Paper.candidate_id, Paper.slot, Paper.content_hash).where(Paper.exam_id == exam.id))}

    if exam.forms:
        unseated = [c.registration_no for c in candidates if c.seat is None]
        if unseated:
            raise PaperError(f"fixed forms are given by seat, but {len(unseated)} candidates have no seat "
                             f"(first: {unseated[0]}); assign seats first")
        forms = {form: draft_of(drafter.draw(form)) for form in range(1, exam.forms + 1)}
        slots = {c.id: form_for_seat(c.seat, exam.forms) for c in candidates}
        drafts = {cid: forms[form] for cid, form in slots.items()}
    else:
        # Stored papers keep their slot; newcomers take the next ones, in registration order.
        slots = {cid: paper.slot for cid, paper in stored.items()}
        next_slot = max(slots.values(), default=0) + 1
        for candidate in candidates:
            if candidate.id not in slots:
                slots[candidate.id] = next_slot
                next_slot += 1
        drafts = {}
        by_slot = {slot: cid for cid, slot in slots.items()}
        for slot in range(1, next_slot):
            items = drafter.draw(slot)  # every slot is drawn, so use counts match the first run
            if slot in by_slot:
                drafts[by_slot[slot]] = draft_of(items)

    checked = 0
    new = []
    for candidate in candidates:
        draft = drafts[candidate.id]
        paper = stored.get(candidate.id)
        if paper is not None:
            if paper.content_hash != draft.content_hash:
                raise PaperError(f"the stored paper of candidate {candidate.registration_no} differs from its "
                                 f"regeneration: it was altered, or the exam's pool changed after publication")
            checked += 1
            continue
        new.append((candidate, slots[candidate.id], draft))
    if new:
        _store(session, exam, new, now)
        audit.append(session, actor=actor, action="exam.papers", object_type="exam", object_id=exam.code,
                     details={"created": len(new), "checked": checked, "forms": exam.forms}, now=now)
    session.flush()
    return PaperRun(len(new), checked, exam.forms)
