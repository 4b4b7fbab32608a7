"""Re-tally: every score of an exam recomputed from the raw stored answers, by plain Python.

A second path next to the vectorized grader (``exam.grading``), written to be read rather
than to be fast: plain loops over each candidate's paper, nothing from ``exam.grading``,
no numpy. It reads

* the answers twice: the ``response`` table (latest choice per question) and the last save
  per question in ``response_log`` (the hash-chained history), and checks they agree; the
  tally uses the history, whose hashes the audit chain holds;
* the frozen key: each question version's options and correct flags, and the paper item's
  ``option_order`` (which original option the candidate saw as A, B, C…), plus the board's
  approved key corrections (``key_correction``, status "approved", the latest decision per
  question version);

and reports every difference from what is stored: ``attempt.score``, the score summary in
the submission's audit entry, ``candidate_score`` and the totals of the published merit list.

The scoring rule, per question of a section (marks m, negative fraction f):

* the key is the set of displayed positions whose original option is correct;
* right: the chosen set equals the key (an empty key is never right) → m points;
* wrong: something chosen and not right → −f·m, plus, for a multiple-answer question in a
  section with partial credit, m · max(right chosen − wrong chosen, 0) / |key|;
* no answer: 0.
* Section: score = Σ points (not floored), correct = right answers, passed when
  correct ≥ pass_ratio × questions; attempt: total = Σ section scores, passed when every
  section passed. Scores compare at 4 decimals, as stored.

Key corrections (issue 4): ``rekey`` replaces the correct options (original indices);
``void_award`` gives everyone the question's marks, counted as right, no penalty;
``void_remove`` takes the question out: no points, not counted (not even as answered), and the
section's question count (for the pass rule and the maximum) is one less on that paper. These are
the semantics of ``exam.results`` (the batch grading run), written again here.

Which key each stored score must match: the submission's audit entry and ``attempt.score``
were computed at submission with the key as published; ``candidate_score`` and the merit
list with the corrections. ``attempt.score`` may also hold the corrected score when a regrade
rewrote it: both are accepted there, and nothing else.
"""
from __future__ import annotations

import json
import struct
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.audit.models import AuditEntry
from exam.core.timeutil import iso_utc
from exam.grading.models import CandidateScore, KeyCorrection
from exam.merit.models import ExternalScore, MeritList
from exam.room.models import Attempt, Response, ResponseLog
from exam.setup.models import Candidate, ExamSection, Paper, PaperItem, Sitting
from question_bank.models import QuestionVersion, Topic

LETTERS = "ABCDEFGH"
PASS_EPS = 1e-9
SCORE_TOLERANCE = 0.5e-4 + 1e-9  # a stored score is the true one rounded to 4 decimals
SECTION_FIELDS = ("questions", "correct", "answered", "score", "max_score", "passed")
BATCH = 500
SUBMIT_ACTION = "attempt.submit"


# --- the key -------------------------------------------------------------------------------------

def approved_corrections(rows: Iterable[Mapping]) -> dict[int, dict]:
    """{question version id: the correction in force}: approved ones, the latest decision winning."""
    approved = [r for r in rows if r["status"] == "approved"]
    approved.sort(key=lambda r: (str(r.get("decided_at") or ""), r["id"]))
    return {r["question_version_id"]: r for r in approved}


def correct_originals(options: Sequence[Mapping], correction: Mapping | None) -> set[int]:
    """The correct options of a version, as indices in the author's order (after a rekey)."""
    if correction is not None and correction["action"] == "rekey":
        return set(correction["correct"] or ())
    return {i for i, option in enumerate(options) if option["correct"]}


def letters(positions: Iterable[int]) -> str:
    return ",".join(LETTERS[j] for j in sorted(positions))


# --- the rule ------------------------------------------------------------------------------------

def tally(sections: Sequence[Mapping], items: Sequence[Mapping], answers: Mapping[int, Sequence[str]],
          versions: Mapping[int, Mapping], corrections: Mapping[int, Mapping] | None = None) -> dict:
    """One paper's score record (the shape of ``attempt.score``) from its items and final answers.

    ``sections``: dicts with id, position, code, title, question_count, marks_per_question,
    negative_fraction, multiple_scoring, pass_ratio; ``items``: paper items with id, section_id,
    question_version_id, option_order, option_ids; ``answers``: {item id: chosen option ids};
    ``versions``: {version id: {qtype, options}}; ``corrections``: {version id: correction}."""
    corrections = corrections or {}
    records = []
    total = 0.0
    for section in sorted(sections, key=lambda s: s["position"]):
        marks = float(section["marks_per_question"])
        penalty = float(section["negative_fraction"]) * marks
        partial = section["multiple_scoring"] == "partial"
        questions = int(section["question_count"])
        points = 0.0
        correct = answered = 0
        for item in items:
            if item["section_id"] != section["id"]:
                continue
            version = versions[item["question_version_id"]]
            correction = corrections.get(item["question_version_id"])
            action = correction["action"] if correction else ""
            if action == "void_remove":  # out of the test: not counted, not even as answered
                questions -= 1
                continue
            chosen_ids = set(answers.get(item["id"], ()))
            chosen = {j for j, option_id in enumerate(item["option_ids"]) if option_id in chosen_ids}
            if chosen:
                answered += 1
            if action == "void_award":
                correct += 1
                points += marks
                continue
            right_originals = correct_originals(version["options"], correction)
            key = {j for j, original in enumerate(item["option_order"]) if original in right_originals}
            if key and chosen == key:
                correct += 1
                points += marks
            elif chosen:
                if partial and version["qtype"] == "multiple":
                    gained = len(chosen & key) - len(chosen - key)
                    points += marks * max(gained, 0) / max(len(key), 1)
                points -= penalty
        total += points
        records.append({
            "position": section["position"], "code": section["code"], "title": section["title"],
            "questions": questions, "correct": correct, "answered": answered, "score": round(points, 4),
            "max_score": round(marks * questions, 4),
            "passed": correct + PASS_EPS >= float(section["pass_ratio"]) * questions,
        })
    return {"sections": records, "total": round(total, 4),
            "max_total": round(sum(r["max_score"] for r in records), 4),
            "passed": all(r["passed"] for r in records)}


def final_answers(history: Iterable[Mapping]) -> dict[int, dict]:
    """{item id: the last save of that question} from a save history in order."""
    last: dict[int, dict] = {}
    for row in history:
        choices = row["choices"]
        last[row["item_id"]] = {"choices": json.loads(choices) if isinstance(choices, str) else list(choices),
                                "seq": row["seq"], "flagged": bool(row["flagged"])}
    return last


def answer_differences(responses: Iterable[Mapping], last_saves: Mapping[int, Mapping],
                       number_of: Mapping[int, int]) -> list[str]:
    """Where the ``response`` table and the history's last saves disagree (question numbers named)."""
    problems = []
    stored = {r["item_id"]: r for r in responses}
    for item_id in sorted(stored.keys() | last_saves.keys(), key=lambda i: number_of.get(i, 0)):
        label = f"question {number_of.get(item_id, '?')} (item {item_id})"
        a, b = stored.get(item_id), last_saves.get(item_id)
        if a is None:
            problems.append(f"{label}: the history's last save (seq {b['seq']}) has no stored response")
        elif b is None:
            problems.append(f"{label}: stored response {a['choices']} (seq {a['seq']}) was never saved in the history")
        elif list(a["choices"]) != list(b["choices"]) or a["seq"] != b["seq"]:
            problems.append(f"{label}: stored response {list(a['choices'])} (seq {a['seq']}) differs from the "
                            f"history's last save {list(b['choices'])} (seq {b['seq']})")
    return problems


def _close(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    return abs(float(a) - float(b)) <= SCORE_TOLERANCE


def score_differences(expected: Mapping, stored: Mapping | None, *,
                      section_fields: Sequence[str] = SECTION_FIELDS) -> list[str]:
    """Fields of a stored score record that differ from the re-tally (only the fields it has)."""
    if not stored:
        return ["no stored score"]
    problems = []
    for name in ("total", "passed"):
        if name in stored and not _close(stored[name], expected[name]):
            problems.append(f"{name} {stored[name]} ≠ re-tallied {expected[name]}")
    mine = {s["code"]: s for s in expected["sections"]}
    theirs = stored.get("sections") or []
    if len(theirs) != len(mine):
        problems.append(f"{len(theirs)} sections stored, {len(mine)} re-tallied")
    for section in theirs:
        code = section.get("code")
        if code not in mine:
            problems.append(f"section {code!r} is not a section of the exam")
            continue
        for name in section_fields:
            if name in section and not _close(section[name], mine[code][name]):
                problems.append(f"section {code}: {name} {section[name]} ≠ re-tallied {mine[code][name]}")
    return problems


# --- the merit list ----------------------------------------------------------------------------

def fold(text: str) -> str:
    """Matching form of a category or post: NFC, no case, single spaces (accents kept)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def bonus_points(rule: Mapping, categories: str) -> float:
    """Only the highest priority bonus counts: the most points among the candidate's categories."""
    bonus = {fold(name): float(points) for name, points in (rule.get("bonus") or {}).items()}
    for alias, category in (rule.get("aliases") or {}).items():
        bonus.setdefault(fold(alias), bonus.get(fold(category), 0.0))
    found = [bonus[fold(name)] for name in (categories or "").split(";") if fold(name) in bonus]
    return max(found, default=0.0)


def stored_content(text: str) -> object:
    """A merit list's stored content (its canonical JSON text) read back; None when it is not JSON."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def merit_lists(content: object) -> list[dict] | None:
    """The per-post lists of a stored merit list, each row as a dict named by the list's ``row_fields``
    (``components`` a dict by name, ``reasons`` a list of [code, subject, message]); None when the
    content is not one. Two formats: ``merit-lists/2`` keeps each field as a column (``columns``: one
    list per field in row order, ``columns.components`` one list per component, ``columns.reasons``
    indexes into the list's ``reasons``); ``merit-lists/1`` (lists published before) one list per row."""
    if not isinstance(content, dict) or not isinstance(content.get("lists"), list):
        return None
    lists = []
    for data in content["lists"]:
        try:
            names = list(data["row_fields"])
            if "columns" in data:
                columns = data["columns"]
                table = data["reasons"]
                rows = []
                for k in range(len(columns["registration_no"])):
                    row = {name: columns[name][k] for name in names if name != "components"}
                    row["components"] = [values[k] for values in columns["components"]]
                    row["reasons"] = [table[r] for r in columns["reasons"][k]]
                    rows.append(row)
            else:
                rows = [dict(zip(names, row)) for row in data["rows"]]
            for row in rows:
                row["components"] = dict(zip(data["components"], row.get("components") or ()))
        except (KeyError, TypeError, IndexError):
            return None
        lists.append({**data, "rows": rows})
    return lists


def merit_total_differences(lists: Sequence[Mapping], round1: Mapping[str, dict], external: Mapping[str, dict],
                            categories: Mapping[str, str]) -> list[tuple[str, str]]:
    """(registration number, problem) where the published list's round-1 result or total differs
    from the re-tally and the stored outside scores."""
    problems = []
    for merit in lists:
        rule = merit.get("rule") or {}
        score_name = rule.get("score", "round2")
        for row in merit["rows"]:
            reg = row["registration_no"]
            mine = round1.get(reg)
            where = f"merit list ({merit['post']})"
            if "round1_total" in row["components"]:
                listed = row["components"]["round1_total"]
                expected = mine["total"] if mine else None
                if not _close(listed, expected):
                    problems.append((reg, f"{where}: round-1 total {listed} ≠ re-tallied {expected}"))
            failed = {r[1] for r in row.get("reasons") or () if r[0] == "round1_section_failed"}
            absent = any(r[0] == "absent" for r in row.get("reasons") or ())
            if rule.get("require_round1_sections_passed") and mine and not absent:
                expected_failed = set(mine["failed"])
                if failed != expected_failed:
                    problems.append((reg, f"{where}: failed round-1 sections {sorted(failed)} ≠ re-tallied "
                                          f"{sorted(expected_failed)}"))
            if row["status"] == "ineligible":
                continue
            if score_name == "round1_total":
                counted = mine["total"] if mine else None
            else:
                counted = external.get(reg, {}).get(score_name)
            if counted is None:
                problems.append((reg, f"{where}: ranked with {row['total']} but has no {score_name} score"))
                continue
            expected_total = round(counted + bonus_points(rule, categories.get(reg, "")), 4)
            if not _close(row["total"], expected_total):
                problems.append((reg, f"{where}: total {row['total']} ≠ {score_name} {counted} + bonus = "
                                      f"{expected_total}"))
    return problems


# --- loading (plain dicts, shared with the audit bundle) ----------------------------------------

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


# --- one candidate ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Difference:
    registration_no: str
    what: str  # history | answers | paper | grading_inputs | submission | attempt_score | candidate_score | merit_list
    problem: str

    def __str__(self) -> str:
        return f"{self.registration_no or '-'} [{self.what}] {self.problem}"


def paper_content_hash(items: Sequence[Mapping]) -> str:
    """The paper's content hash as ``exam.papers`` stores it (position, section, version, ids, order)."""
    import hashlib

    payload = [[i["position"], i["section_id"], i["question_version_id"], i["public_id"], list(i["option_order"]),
                list(i["option_ids"])] for i in items]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def check_candidate(record: Mapping, sections: Sequence[Mapping], versions: Mapping[int, Mapping],
                    corrections: Mapping[int, Mapping]) -> tuple[list[Difference], dict | None]:
    """Every difference found for one candidate, and their corrected re-tally (None: nothing to tally)."""
    from exam.room.attempts import verify_history

    reg = record["candidate"]["registration_no"]
    found: list[Difference] = []

    def problem(what: str, text: str) -> None:
        found.append(Difference(reg, what, text))

    paper, attempt = record["paper"], record["attempt"]
    last = final_answers(record["history"])
    if paper is not None:
        if paper_content_hash(paper["items"]) != paper["content_hash"]:
            problem("paper", "the paper's items do not match its content hash (question, option order or ids "
                             "changed)")
        _check_grading_inputs(paper, attempt, versions, corrections, problem, last)
    if attempt is None or attempt["status"] != "submitted":
        if record["candidate_score"] and attempt is None:
            problem("candidate_score", "a round-1 score is stored but the candidate never sat")
        return found, None
    if paper is None:
        problem("paper", "submitted attempt without a paper")
        return found, None

    number_of = {item["id"]: item["position"] for item in paper["items"]}
    verdict = verify_history(attempt["public_id"], record["history"])
    if not verdict.ok:
        problem("history", f"the save history is broken: {verdict.problem}")
    elif (verdict.count, verdict.head_hash) != (attempt["history_count"], attempt["history_hash"]):
        problem("history", f"the attempt records {attempt['history_count']} saves ending in "
                           f"{attempt['history_hash'][:12]}…, the history holds {verdict.count} ending in "
                           f"{verdict.head_hash[:12]}…")
    submits = record["submit_entries"]
    entry = None
    if len(submits) != 1:
        problem("submission", f"{len(submits)} submission entries in the audit chain (expected one)")
    if submits:
        entry = json.loads(submits[-1]["details"])
        if (entry.get("history_hash"), entry.get("history_count")) != (verdict.head_hash, verdict.count):
            recorded = str(entry.get("history_hash"))[:12]
            problem("submission", f"the audit chain's submission entry (#{submits[-1]['seq']}) holds "
                                  f"{entry.get('history_count')} saves ending in {recorded}…, the history "
                                  f"{verdict.count} ending in {verdict.head_hash[:12]}…")

    for text in answer_differences(record["responses"], last, number_of):
        problem("answers", text)
    answers = {item_id: save["choices"] for item_id, save in last.items()}
    as_published = tally(sections, paper["items"], answers, versions)
    corrected = tally(sections, paper["items"], answers, versions, corrections) if corrections else as_published

    if entry is not None and "score" in entry:
        for text in score_differences(as_published, entry["score"]):
            problem("submission", f"score in the submission entry: {text}")
    stored = attempt["score"]
    mismatch = score_differences(as_published, stored)
    if mismatch and corrections and not score_differences(corrected, stored):
        mismatch = []  # a regrade with the corrections rewrote it
    for text in mismatch:
        problem("attempt_score", text)
    if record["candidate_score"] is not None:
        for text in score_differences(corrected, record["candidate_score"]):
            problem("candidate_score", text)
    return found, corrected


def _check_grading_inputs(paper, attempt, versions, corrections, problem, last) -> None:
    """The byte columns batch grading reads (one byte / int32 per position), when they are filled.
    The key masks may hold the key as published or as corrected."""
    items = paper["items"]
    if paper.get("version_ids") is not None:
        raw = paper["version_ids"]
        stored = [int.from_bytes(raw[i:i + 4], "little", signed=True) for i in range(0, len(raw), 4)]
        if stored != [item["question_version_id"] for item in items]:
            problem("grading_inputs", "paper.version_ids does not match the paper's items")
    if paper.get("key_masks") is not None:
        def masks(in_force):
            return bytes(sum(1 << j for j, original in enumerate(item["option_order"]) if original in correct_originals(
                versions[item["question_version_id"]]["options"], in_force.get(item["question_version_id"])))
                for item in items)

        stored = bytes(paper["key_masks"])
        if stored != masks({}) and (not corrections or stored != masks(corrections)):
            problem("grading_inputs", "paper.key_masks does not match the frozen key")
    if attempt is not None and attempt.get("choice_masks") is not None:
        expected = bytes(sum(1 << j for j, option_id in enumerate(item["option_ids"])
                             if option_id in set(last.get(item["id"], {}).get("choices", ())))
                         for item in items)
        if bytes(attempt["choice_masks"]) != expected:
            problem("grading_inputs", "attempt.choice_masks does not match the saved answers")


# --- the whole exam -------------------------------------------------------------------------------

@dataclass
class RetallyReport:
    exam: str
    candidates: int = 0
    tallied: int = 0  # submitted attempts re-tallied
    corrections: int = 0  # approved key corrections applied
    merit_list: str = ""  # hash of the published list checked, "" when none is published
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def retally_exam(session: Session, exam) -> RetallyReport:
    """Re-tally every submitted attempt of the exam and compare with everything stored."""
    report = RetallyReport(exam.code)
    sections = section_rows(session, exam.id)
    corrections = approved_corrections(correction_rows(session, exam.id))
    report.corrections = len(corrections)
    versions: dict[int, dict] = {}
    round1: dict[str, dict] = {}
    external: dict[str, dict] = {}
    categories: dict[str, str] = {}
    for batch in candidate_records(session, exam.id):
        needed = {i["question_version_id"] for r in batch if r["paper"] for i in r["paper"]["items"]}
        versions.update(version_rows(session, needed - versions.keys()))
        for record in batch:
            reg = record["candidate"]["registration_no"]
            report.candidates += 1
            categories[reg] = record["candidate"]["priority_category"]
            external[reg] = record["external_scores"]
            found, corrected = check_candidate(record, sections, versions, corrections)
            report.differences.extend(found)
            if corrected is not None:
                report.tallied += 1
                round1[reg] = {"total": corrected["total"],
                               "failed": [s["title"] for s in corrected["sections"] if not s["passed"]]}
    merit = published_merit_list(session, exam.id)
    if merit is not None:
        report.merit_list = merit.hash
        lists = merit_lists(stored_content(merit.content))
        if lists is None:
            report.differences.append(Difference("", "merit_list", "the published list's content is not in a "
                                                                   "known format"))
        else:
            for reg, text in merit_total_differences(lists, round1, external, categories):
                report.differences.append(Difference(reg, "merit_list", text))
    return report
