"""Papers: each candidate's questions, drawn from the exam's frozen pool by the blueprint.

The draw is deterministic and balanced:

* Candidates get a *slot* the first time papers are generated (in registration-number
  order; later additions take the next slots). A paper is a pure function of the
  exam's secret seed, the frozen pool and the candidate's slot, so generating again
  gives the same paper, and ``generate_papers`` checks every stored paper against it.
* Within each blueprint cell, slot after slot takes the questions used least so far
  in the exam, ties broken by a keyed hash of the seed. Across the room, use counts
  within a cell never differ by more than one.
* Question order within a section and option order within a question are shuffled
  by keyed hashes; option ids are opaque keyed hashes too, so an id says nothing
  about which option is right.
* With fixed forms (``exam.forms = K``), K parallel papers are drawn the same way;
  every form follows the same blueprint, so each has the same number of questions
  of each difficulty in each topic. Form ``(seat - 1) mod K`` goes to each seat,
  so neighbouring seat numbers never hold the same form.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from exam import audit
from exam.models import BlueprintCell, Candidate, Exam, ExamPool, ExamSection, Paper, PaperItem


class PaperError(ValueError):
    """Papers cannot be generated as asked; the message says why."""


@dataclass(frozen=True)
class DraftItem:
    position: int
    section_id: int
    question_version_id: int
    public_id: str
    option_order: tuple[int, ...]
    option_ids: tuple[str, ...]


@dataclass(frozen=True)
class PoolCell:
    cell_id: int
    section_id: int
    count: int
    version_ids: tuple[int, ...]  # sorted
    option_counts: tuple[int, ...]  # options of each version, same order


def _key(seed: str, *parts) -> bytes:
    message = "|".join(str(part) for part in parts).encode()
    return hashlib.blake2b(message, key=bytes.fromhex(seed)[:64], digest_size=16).digest()


def load_pool(session: Session, exam: Exam) -> tuple[list[ExamSection], list[PoolCell]]:
    """The published exam's sections and, per blueprint cell, the frozen versions it may draw."""
    from question_bank.models import QuestionVersion

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
        by_cell.setdefault(cell_id, [section_id, count, [], []])
        by_cell[cell_id][2].append(version_id)
        by_cell[cell_id][3].append(len(options))
    cells = [PoolCell(cell_id, section_id, count, tuple(versions), tuple(option_counts))
             for cell_id, (section_id, count, versions, option_counts) in sorted(by_cell.items())]
    for cell in cells:
        if len(cell.version_ids) < cell.count:
            raise PaperError(f"blueprint cell {cell.cell_id} needs {cell.count} questions but its pool holds "
                             f"{len(cell.version_ids)}")
    return sections, cells


class PaperDrafter:
    """Draws papers slot by slot; keeps the per-cell use counts that balance the draw."""

    def __init__(self, seed: str, sections: list[ExamSection], cells: list[PoolCell]):
        self.seed = seed
        self.section_order = {section.id: section.position for section in sections}
        self.cells = cells
        self.uses = {cell.cell_id: dict.fromkeys(cell.version_ids, 0) for cell in cells}
        self.option_counts = {v: n for cell in cells for v, n in zip(cell.version_ids, cell.option_counts)}

    def draw(self, slot: int) -> list[DraftItem]:
        seed = self.seed
        chosen: dict[int, list[int]] = {}
        for cell in self.cells:
            uses = self.uses[cell.cell_id]
            ranked = sorted(cell.version_ids, key=lambda v: (uses[v], _key(seed, "draw", cell.cell_id, slot, v)))
            picked = ranked[:cell.count]
            for version_id in picked:
                uses[version_id] += 1
            chosen.setdefault(cell.section_id, []).extend(picked)
        items = []
        position = 0
        for section_id in sorted(chosen, key=self.section_order.__getitem__):
            ordered = sorted(chosen[section_id], key=lambda v: _key(seed, "order", slot, v))
            for version_id in ordered:
                position += 1
                n_options = self.option_counts[version_id]
                order = tuple(sorted(range(n_options), key=lambda i: _key(seed, "option", slot, version_id, i)))
                option_ids = tuple(_key(seed, "option-id", slot, version_id, i).hex()[:12] for i in order)
                items.append(DraftItem(position, section_id, version_id,
                                       _key(seed, "item", slot, version_id).hex()[:16], order, option_ids))
        return items


def content_hash(items: list[DraftItem]) -> str:
    payload = [[i.position, i.section_id, i.question_version_id, i.public_id, list(i.option_order),
                list(i.option_ids)] for i in items]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def form_for_seat(seat: int, forms: int) -> int:
    """Form number (1..K) of a seat: consecutive seats always differ when K >= 2."""
    return (seat - 1) % forms + 1


@dataclass
class PaperRun:
    created: int
    checked: int
    forms: int


def generate_papers(session: Session, exam: Exam, *, actor: str, now: datetime) -> PaperRun:
    """Draw and store the paper of every candidate who has none; check the stored ones.

    Raises PaperError when the exam is not published, a seat is missing in forms
    mode, or a stored paper no longer matches its regeneration (a sign of tampering).
    """
    if exam.status != "published":
        raise PaperError(f"exam {exam.code} is not published: publish it first (this freezes its questions)")
    sections, cells = load_pool(session, exam)
    drafter = PaperDrafter(exam.seed, sections, cells)
    candidates = session.scalars(select(Candidate).where(Candidate.exam_id == exam.id)
                                 .order_by(Candidate.registration_no)).all()
    papers = {p.candidate_id: p for p in session.scalars(select(Paper).where(Paper.exam_id == exam.id))}

    if exam.forms:
        unseated = [c.registration_no for c in candidates if c.seat is None]
        if unseated:
            raise PaperError(f"fixed forms are given by seat, but {len(unseated)} candidates have no seat "
                             f"(first: {unseated[0]}); assign seats first")
        forms = {form: drafter.draw(form) for form in range(1, exam.forms + 1)}
        slots = {c.id: form_for_seat(c.seat, exam.forms) for c in candidates}
        draft_of = {cid: forms[form] for cid, form in slots.items()}
    else:
        # Stored papers keep their slot; newcomers take the next ones, in registration order.
        slots = {cid: paper.slot for cid, paper in papers.items()}
        next_slot = max(slots.values(), default=0) + 1
        for candidate in candidates:
            if candidate.id not in slots:
                slots[candidate.id] = next_slot
                next_slot += 1
        draft_of = {}
        by_slot = {slot: cid for cid, slot in slots.items()}
        for slot in range(1, next_slot):
            items = drafter.draw(slot)  # every slot is drawn, so use counts match the first run
            if slot in by_slot:
                draft_of[by_slot[slot]] = items

    created = checked = 0
    item_rows = []
    for candidate in candidates:
        items = draft_of[candidate.id]
        digest = content_hash(items)
        stored = papers.get(candidate.id)
        if stored is not None:
            if stored.content_hash != digest:
                raise PaperError(f"the stored paper of candidate {candidate.registration_no} differs from its "
                                 f"regeneration: it was altered, or the exam's pool changed after publication")
            checked += 1
            continue
        slot = slots[candidate.id]
        paper = Paper(exam_id=exam.id, candidate_id=candidate.id, form=slot if exam.forms else None, slot=slot,
                      content_hash=digest, created_at=now)
        session.add(paper)
        session.flush()
        item_rows.extend({"paper_id": paper.id, "position": i.position, "section_id": i.section_id,
                          "question_version_id": i.question_version_id, "public_id": i.public_id,
                          "option_order": list(i.option_order), "option_ids": list(i.option_ids)} for i in items)
        created += 1
    if item_rows:
        session.execute(insert(PaperItem), item_rows)
    if created:
        audit.append(session, actor=actor, action="exam.papers", object_type="exam", object_id=exam.code,
                     details={"created": created, "checked": checked, "forms": exam.forms}, now=now)
    session.flush()
    return PaperRun(created, checked, exam.forms)
