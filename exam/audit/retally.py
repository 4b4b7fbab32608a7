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
the semantics of ``exam.grading.runs`` (the batch grading run), written again here.

Which key each stored score must match: the submission's audit entry and ``attempt.score``
were computed at submission with the key as published; ``candidate_score`` and the merit
list with the corrections. ``attempt.score`` may also hold the corrected score when a regrade
rewrote it: both are accepted there, and nothing else.

The records it checks (plain dicts of what is stored) are read by ``exam.audit.records``.
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from exam.audit.records import candidate_records, correction_rows, published_merit_list, section_rows, version_rows
from exam.room.history import HistoryVerdict, verify_history  # the room's save chain, checked by its own verifier

LETTERS = "ABCDEFGH"
PASS_EPS = 1e-9
SCORE_TOLERANCE = 0.5e-4 + 1e-9  # a stored score is the true one rounded to 4 decimals
SECTION_FIELDS = ("questions", "correct", "answered", "score", "max_score", "passed")


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
    indexes into the list's ``reasons``); ``merit-lists/1`` (lists published before) one list per row.
    A row with more or fewer values than its fields is not one (the merit code refuses to read it too)."""
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
                rows = [dict(zip(names, row, strict=True)) for row in data["rows"]]
            for row in rows:
                row["components"] = dict(zip(data["components"], row.get("components") or (), strict=True))
        except (KeyError, TypeError, IndexError, ValueError):  # ValueError: a row of the wrong length (strict zip)
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


# --- one candidate ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Difference:
    registration_no: str
    what: str  # history | answers | paper | grading_inputs | submission | attempt_score | candidate_score | merit_list
    problem: str

    def __str__(self) -> str:
        return f"{self.registration_no or '-'} [{self.what}] {self.problem}"


def paper_content_hash(items: Sequence[Mapping]) -> str:
    """The paper's content hash as ``exam.setup.papers`` stores it (position, section, version, ids, order)."""
    payload = [[i["position"], i["section_id"], i["question_version_id"], i["public_id"], list(i["option_order"]),
                list(i["option_ids"])] for i in items]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def check_candidate(record: Mapping, sections: Sequence[Mapping], versions: Mapping[int, Mapping],
                    corrections: Mapping[int, Mapping]) -> tuple[list[Difference], dict | None]:
    """Every difference found for one candidate, and their corrected re-tally (None: nothing to tally).

    In this order: the paper (content hash, grading inputs); then, for a submitted attempt, its save
    history, the submission entry, the stored answers, and the scores stored against the re-tally."""
    reg = record["candidate"]["registration_no"]
    paper, attempt = record["paper"], record["attempt"]
    last = final_answers(record["history"])
    found: list[tuple[str, str]] = []  # (what, problem)
    if paper is not None:
        found += paper_problems(paper, attempt, versions, corrections, last)
    if attempt is None or attempt["status"] != "submitted":
        if record["candidate_score"] and attempt is None:
            found.append(("candidate_score", "a round-1 score is stored but the candidate never sat"))
        return _differences(reg, found), None
    if paper is None:
        found.append(("paper", "submitted attempt without a paper"))
        return _differences(reg, found), None

    verdict = verify_history(attempt["public_id"], record["history"])
    found += history_problems(attempt, verdict)
    entry, problems = submission_problems(record["submit_entries"], verdict)
    found += problems
    number_of = {item["id"]: item["position"] for item in paper["items"]}
    found += [("answers", text) for text in answer_differences(record["responses"], last, number_of)]
    answers = {item_id: save["choices"] for item_id, save in last.items()}
    as_published = tally(sections, paper["items"], answers, versions)
    corrected = tally(sections, paper["items"], answers, versions, corrections) if corrections else as_published
    found += stored_score_problems(record, entry, as_published, corrected, corrections)
    return _differences(reg, found), corrected


def _differences(reg: str, found: Iterable[tuple[str, str]]) -> list[Difference]:
    return [Difference(reg, what, text) for what, text in found]


def paper_problems(paper: Mapping, attempt: Mapping | None, versions: Mapping[int, Mapping],
                   corrections: Mapping[int, Mapping], last: Mapping[int, Mapping]) -> list[tuple[str, str]]:
    """The paper against its content hash, and the byte columns batch grading reads (one byte / int32
    per position) when they are filled; the key masks may hold the key as published or as corrected."""
    found = []
    if paper_content_hash(paper["items"]) != paper["content_hash"]:
        found.append(("paper", "the paper's items do not match its content hash (question, option order or ids "
                               "changed)"))
    items = paper["items"]
    if paper.get("version_ids") is not None:
        raw = paper["version_ids"]
        stored = [int.from_bytes(raw[i:i + 4], "little", signed=True) for i in range(0, len(raw), 4)]
        if stored != [item["question_version_id"] for item in items]:
            found.append(("grading_inputs", "paper.version_ids does not match the paper's items"))
    if paper.get("key_masks") is not None:
        def masks(in_force):
            return bytes(sum(1 << j for j, original in enumerate(item["option_order"]) if original in correct_originals(
                versions[item["question_version_id"]]["options"], in_force.get(item["question_version_id"])))
                for item in items)

        stored = bytes(paper["key_masks"])
        if stored != masks({}) and (not corrections or stored != masks(corrections)):
            found.append(("grading_inputs", "paper.key_masks does not match the frozen key"))
    if attempt is not None and attempt.get("choice_masks") is not None:
        expected = bytes(sum(1 << j for j, option_id in enumerate(item["option_ids"])
                             if option_id in set(last.get(item["id"], {}).get("choices", ())))
                         for item in items)
        if bytes(attempt["choice_masks"]) != expected:
            found.append(("grading_inputs", "attempt.choice_masks does not match the saved answers"))
    return found


def history_problems(attempt: Mapping, verdict: HistoryVerdict) -> list[tuple[str, str]]:
    """The save history's chain, and its head against the one the attempt records."""
    if not verdict.ok:
        return [("history", f"the save history is broken: {verdict.problem}")]
    if (verdict.count, verdict.head_hash) != (attempt["history_count"], attempt["history_hash"]):
        return [("history", f"the attempt records {attempt['history_count']} saves ending in "
                            f"{attempt['history_hash'][:12]}…, the history holds {verdict.count} ending in "
                            f"{verdict.head_hash[:12]}…")]
    return []


def submission_problems(submits: Sequence[Mapping],
                        verdict: HistoryVerdict) -> tuple[dict | None, list[tuple[str, str]]]:
    """(the last submission entry's details or None, problems): exactly one entry, holding the history's head."""
    found = []
    if len(submits) != 1:
        found.append(("submission", f"{len(submits)} submission entries in the audit chain (expected one)"))
    if not submits:
        return None, found
    entry = json.loads(submits[-1]["details"])
    if (entry.get("history_hash"), entry.get("history_count")) != (verdict.head_hash, verdict.count):
        recorded = str(entry.get("history_hash"))[:12]
        found.append(("submission", f"the audit chain's submission entry (#{submits[-1]['seq']}) holds "
                                    f"{entry.get('history_count')} saves ending in {recorded}…, the history "
                                    f"{verdict.count} ending in {verdict.head_hash[:12]}…"))
    return entry, found


def stored_score_problems(record: Mapping, entry: Mapping | None, as_published: dict, corrected: dict,
                          corrections: Mapping[int, Mapping]) -> list[tuple[str, str]]:
    """Each stored score against the key it was computed with: the submission entry's and ``attempt.score``
    with the key as published (``attempt.score`` may hold the corrected one after a regrade), the round-1
    ``candidate_score`` with the corrections."""
    found = []
    if entry is not None and "score" in entry:
        found += [("submission", f"score in the submission entry: {text}")
                  for text in score_differences(as_published, entry["score"])]
    stored = record["attempt"]["score"]
    mismatch = score_differences(as_published, stored)
    if mismatch and corrections and not score_differences(corrected, stored):
        mismatch = []  # a regrade with the corrections rewrote it
    found += [("attempt_score", text) for text in mismatch]
    if record["candidate_score"] is not None:
        found += [("candidate_score", text) for text in score_differences(corrected, record["candidate_score"])]
    return found


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
