"""The candidate records: an exam's stored facts read back as plain dicts, for the re-tally
(``exam.audit.retally``), the audit bundle (``exam.audit.bundle``) and the candidate timeline
(``exam.audit.views``).

Nothing here computes a score: each function reads tables (sections, key corrections, question
versions, candidates with their paper, attempt, responses, save history, submission entries and
stored scores, the published merit list) into the dicts the checks take, so the checks stay plain
functions of plain values and the bundle writes the same dicts as JSON. The stored round-1 section
results are unpacked with ``struct``, independently of the grading code that packed them.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.audit.models import AuditEntry
from exam.core.timeutil import iso_utc
from exam.grading.models import CandidateScore, KeyCorrection
from exam.merit.models import ExternalScore, MeritList
from exam.room.models import Attempt, Response, ResponseLog
from exam.setup.models import Candidate, ExamSection, Paper, PaperItem, Sitting
from question_bank.models import QuestionVersion, Topic

BATCH = 500
SUBMIT_ACTION = "attempt.submit"


def section_rows(session: Session, exam_id: int) -> list[dict]:
    return [{"id": s.id, "position": s.position, "code": s.code, "title": s.title, "minutes": s.minutes,
             "question_count": s.question_count, "marks_per_question": s.marks_per_question,
             "negative_fraction": s.negative_fraction, "multiple_scoring": s.multiple_scoring,
             "pass_ratio": s.pass_ratio}
            for s in session.scalars(select(ExamSection).where(ExamSection.exam_id == exam_id)
                                     .order_by(ExamSection.position))]


def stored_sections(blob: bytes, sections: Sequence[Mapping]) -> list[dict]:
    """The section records of a stored ``candidate_score.section_results`` (read here with ``struct``,
    independently of the writer): per section in position order the score (float64 LE), then the
    questions, right answers and answered questions (int32 LE each), then passed (uint8)."""
    blob = bytes(blob)
    n = len(sections)
    if len(blob) != 21 * n:
        return [{"code": "?", "title": f"stored result of {len(blob)} bytes for {n} sections"}]
    scores = struct.unpack_from(f"<{n}d", blob)
    counts = struct.unpack_from(f"<{3 * n}i", blob, 8 * n)
    ordered = sorted(sections, key=lambda s: s["position"])
    return [{"position": s["position"], "code": s["code"], "title": s["title"], "questions": counts[k],
             "correct": counts[n + k], "answered": counts[2 * n + k], "score": scores[k],
             "max_score": round(float(s["marks_per_question"]) * counts[k], 4), "passed": bool(blob[20 * n + k])}
            for k, s in enumerate(ordered)]


def correction_rows(session: Session, exam_id: int) -> list[dict]:
    return [{"id": c.id, "question_version_id": c.question_version_id, "action": c.action, "correct": c.correct,
             "reason": c.reason, "status": c.status, "proposed_by": c.proposed_by,
             "proposed_at": _iso(c.proposed_at), "decided_by": c.decided_by, "decided_at": _iso(c.decided_at)}
            for c in session.scalars(select(KeyCorrection).where(KeyCorrection.exam_id == exam_id)
                                     .order_by(KeyCorrection.id))]


def version_rows(session: Session, version_ids: Iterable[int]) -> dict[int, dict]:
    ids = sorted(set(version_ids))
    found = {}
    for start in range(0, len(ids), 1000):
        for version, topic_path in session.execute(
                select(QuestionVersion, Topic.path).join(Topic, Topic.id == QuestionVersion.topic_id)
                .where(QuestionVersion.id.in_(ids[start:start + 1000]))):
            found[version.id] = {"id": version.id, "question_id": version.question_id, "number": version.number,
                                 "topic": topic_path, "difficulty": version.difficulty, "qtype": version.qtype,
                                 "text": version.text, "options": version.options, "image": version.image or ""}
    return found


def _iso(value) -> str | None:
    return iso_utc(value) if value is not None else None


def candidate_records(session: Session, exam_id: int, *, batch: int = BATCH) -> Iterator[list[dict]]:
    """The exam's candidates in registration order, in batches: each with their paper and items, their
    attempt, stored responses, save history, submission audit entries and stored round-1 score."""
    last = ""
    while True:
        rows = session.execute(
            select(Candidate, Sitting.code, Paper, Attempt)
            .outerjoin(Sitting, Sitting.id == Candidate.sitting_id)
            .outerjoin(Paper, Paper.candidate_id == Candidate.id)
            .outerjoin(Attempt, Attempt.candidate_id == Candidate.id)
            .where(Candidate.exam_id == exam_id, Candidate.registration_no > last)
            .order_by(Candidate.registration_no).limit(batch)).all()
        if not rows:
            return
        last = rows[-1][0].registration_no
        yield _records(session, rows)
        for candidate, _, paper, attempt in rows:  # keep the session's memory flat over 100,000 candidates
            for loaded in (candidate, paper, attempt):
                if loaded is not None and loaded in session:
                    session.expunge(loaded)


def candidate_record(session: Session, candidate: Candidate) -> dict:
    """One candidate's record (see ``candidate_records``)."""
    row = session.execute(
        select(Candidate, Sitting.code, Paper, Attempt)
        .outerjoin(Sitting, Sitting.id == Candidate.sitting_id)
        .outerjoin(Paper, Paper.candidate_id == Candidate.id)
        .outerjoin(Attempt, Attempt.candidate_id == Candidate.id)
        .where(Candidate.id == candidate.id)).one()
    return _records(session, [row])[0]


def _records(session: Session, rows) -> list[dict]:
    paper_ids = [paper.id for _, _, paper, _ in rows if paper is not None]
    attempts = {attempt.id: attempt for _, _, _, attempt in rows if attempt is not None}
    items: dict[int, list] = {}
    item = PaperItem.__table__.c
    for start in range(0, len(paper_ids), BATCH):
        for row in session.execute(
                select(item.paper_id, item.id, item.position, item.section_id, item.question_version_id,
                       item.public_id, item.option_order, item.option_ids)
                .where(item.paper_id.in_(paper_ids[start:start + BATCH])).order_by(item.paper_id, item.position)):
            items.setdefault(row[0], []).append({
                "id": row[1], "position": row[2], "section_id": row[3], "question_version_id": row[4],
                "public_id": row[5], "option_order": list(row[6]), "option_ids": list(row[7])})
    responses: dict[int, list] = {}
    history: dict[int, list] = {}
    submits: dict[str, list] = {}
    ids = list(attempts)
    if ids:
        response = Response.__table__.c
        for row in session.execute(
                select(response.attempt_id, response.item_id, response.choices, response.flagged, response.seq,
                       Response.saved_at).where(response.attempt_id.in_(ids))
                .order_by(response.attempt_id, response.item_id)):
            responses.setdefault(row[0], []).append({
                "item_id": row[1], "choices": list(row[2]), "flagged": bool(row[3]), "seq": row[4],
                "saved_at": _iso(row[5])})
        log = ResponseLog.__table__.c
        for row in session.execute(
                select(log.attempt_id, log.seq, log.item_id, log.choices, log.flagged, log.at, log.machine,
                       log.prev_hash, log.hash).where(log.attempt_id.in_(ids)).order_by(log.attempt_id, log.id)):
            history.setdefault(row[0], []).append({
                "seq": row[1], "item_id": row[2], "choices": row[3], "flagged": bool(row[4]), "at": row[5],
                "machine": row[6], "prev_hash": row[7], "hash": row[8]})
        for entry in session.scalars(select(AuditEntry).where(
                AuditEntry.action == SUBMIT_ACTION,
                AuditEntry.object_id.in_([a.public_id for a in attempts.values()]))
                .order_by(AuditEntry.seq)):
            submits.setdefault(entry.object_id, []).append(entry.as_dict())
    candidate_ids = [candidate.id for candidate, _, _, _ in rows]
    scores = {s.candidate_id: s for start in range(0, len(candidate_ids), BATCH) for s in session.scalars(
        select(CandidateScore).where(CandidateScore.candidate_id.in_(candidate_ids[start:start + BATCH])))}
    sections_of: dict[int, list[dict]] = {}
    external: dict[int, dict] = {}
    for s in session.scalars(select(ExternalScore).where(ExternalScore.candidate_id.in_(candidate_ids))
                             .order_by(ExternalScore.candidate_id, ExternalScore.component)):
        external.setdefault(s.candidate_id, {})[s.component] = s.score

    records = []
    for candidate, sitting_code, paper, attempt in rows:
        score = scores.get(candidate.id)
        records.append({
            "candidate": {
                "registration_no": candidate.registration_no, "full_name": candidate.full_name,
                "date_of_birth": candidate.date_of_birth.isoformat(), "post": candidate.post,
                "priority_category": candidate.priority_category or "", "sitting": sitting_code,
                "seat": candidate.seat, "absent_at": _iso(candidate.absent_at)},
            "paper": None if paper is None else {
                "id": paper.id, "form": paper.form, "slot": paper.slot, "content_hash": paper.content_hash,
                "items": items.get(paper.id, []), "key_masks": paper.key_masks, "version_ids": paper.version_ids},
            "attempt": None if attempt is None else {
                "public_id": attempt.public_id, "status": attempt.status, "started_at": _iso(attempt.started_at),
                "deadline": _iso(attempt.deadline), "submitted_at": _iso(attempt.submitted_at),
                "submitted_by": attempt.submitted_by, "extra_seconds": attempt.extra_seconds,
                "history_hash": attempt.history_hash, "history_count": attempt.history_count,
                "last_seq": attempt.last_seq, "machine": attempt.machine, "score": attempt.score,
                "choice_masks": attempt.choice_masks},
            "responses": responses.get(attempt.id, []) if attempt else [],
            "history": history.get(attempt.id, []) if attempt else [],
            "submit_entries": submits.get(attempt.public_id, []) if attempt else [],
            "candidate_score": None if score is None else {
                "grading_run_id": score.grading_run_id, "total": score.total, "passed": score.passed,
                "sections": stored_sections(score.section_results, sections_of.setdefault(
                    score.exam_id, section_rows(session, score.exam_id)))},
            "external_scores": external.get(candidate.id, {}),
        })
    return records


def published_merit_list(session: Session, exam_id: int) -> MeritList | None:
    return session.scalars(select(MeritList).where(MeritList.exam_id == exam_id, MeritList.status == "published")
                           .order_by(MeritList.published_at.desc(), MeritList.id.desc())).first()
