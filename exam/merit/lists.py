"""Merit lists in the database: the ranking rule of an exam, build, the board's tie decisions, publish, read.

The rules themselves are pure (``exam.merit.rule``, ``exam.merit.ranking``, the stored form
``exam.merit.content``); this module loads what they need and keeps what they produce. Like
every rule of the app it takes a session, plain values and ``now``, only flushes, and writes
its audit entry in the caller's transaction.

One concept, the stored list of an exam through its life, in the order below: the rule it is
built by, the candidates it reads, the draft, the decisions, publication, and reading the list
back (the board's pages, the exports, a candidate's standing) through the one per-process
cache of parsed lists, checked against their hash. What a key correction would change is
``exam.merit.correction_preview``.

The life of an exam's list
--------------------------
* The **ranking rule** is ``exam.ranking`` (the ``[ranking]`` table of the exam's TOML, in
  the shape ``exam.merit.rule.rule_from_dict`` reads); none given means ``preset =
  "civil_service"``, which still needs a quota per post. It can be changed (``set_ranking``)
  until a list is published.
* ``build_merit_list`` reads every candidate of the exam, column by column
  (``load_candidates`` → ``ranking.CandidateTable``): round 1 from ``candidate_score`` (the
  latest grading run, ``exam.grading.runs.latest_run``: section results and the total; or
  the ``ScoreTable`` of a grading just done, handed over in memory), the outside scores
  (``external_score``: round 2, an interview…), the post, the priority categories and
  whether the candidate sat; ranks them (``ranking.rank_candidates``) and stores the result
  as the exam's one **draft** (``merit_list.content``: the canonical JSON text of
  ``content.dump_merit_lists``, and ``hash``, its SHA-256). A candidate sat round 1 when
  graded; one with no round-1 result who did not submit (or whom the proctor marked absent)
  is absent. Reading a list back (``lists_of``) checks the stored text against the hash
  every time and parses it once per process.
* **Ties** at a quota's last place stay unresolved until the board decides
  (``decide_tie``: one ``tie_decision`` row per member, the same reason, audit-logged);
  the decisions are applied to the draft and re-applied by every later build for as long
  as the same candidates are tied for the same places.
* ``publish_merit_list`` freezes the draft: status "published", the content never changes
  again, its hash enters the audit chain (``merit.publish``). It is refused when the draft
  no longer matches what a build would give now (new scores, a regrade, a new rule: build
  again), and, unless the board says so, while a tie is unresolved. Afterwards the
  candidate side (``standing``) and the exports read the frozen list and a new build is
  refused.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from exam.audit import chain as audit
from exam.core.batch import gc_paused
from exam.core.errors import Refused
from exam.grading.runs import fetch_rows, latest_run, stored_scores
from exam.merit import ranking as merit
from exam.merit.content import load_merit_lists, matches_hash, merit_hash, merit_lists_text_and_hash
from exam.merit.exports import ExportInfo, export_merit_lists
from exam.merit.models import ExternalScore, MeritList, TieDecision
from exam.merit.rule import MeritRejected, RankingRule, RuleError, fold, rule_from_dict
from exam.room.models import Attempt
from exam.setup.models import Candidate, Exam
from exam.setup.spec import ranking_toml_lines

DEFAULT_RANKING = {"preset": "civil_service"}
MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 2000
MAX_RANKING_TOML = 64 * 1024


class MeritListError(Refused):
    """A refused merit-list operation; the message names what is wrong."""


# --- the ranking rule ------------------------------------------------------------------------------

def ranking_data(exam: Exam) -> dict:
    """The exam's ``[ranking]`` table as stored, or the civil-service preset when none was given."""
    return exam.ranking if exam.ranking else dict(DEFAULT_RANKING)


def ranking_rule(exam: Exam) -> tuple[RankingRule | None, list[RuleError]]:
    return rule_from_dict(ranking_data(exam))


def ranking_toml(exam: Exam) -> str:
    """The exam's ranking table as TOML, for the board's text box."""
    return "\n".join(ranking_toml_lines(ranking_data(exam))) + "\n"


def read_ranking_toml(text: str) -> tuple[dict | None, list[RuleError]]:
    """A ``[ranking]`` table typed as TOML (with or without its ``[ranking]`` header): (data, []) or
    (None, every problem, keyed ``ranking.quota."…"`` like the exam file's)."""
    if len(text.encode("utf-8")) > MAX_RANKING_TOML:
        return None, [RuleError("", f"is too long (at most {MAX_RANKING_TOML // 1024} KiB)")]
    try:
        data = tomllib.loads(text.lstrip("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        return None, [RuleError("", f"is not valid TOML: {exc}")]
    if set(data) == {"ranking"} and isinstance(data["ranking"], dict):
        data = data["ranking"]
    _, errors = rule_from_dict(data)
    return (None, errors) if errors else (data, [])


def set_ranking(session: Session, exam: Exam, data: dict, *, actor: str, now: datetime) -> RankingRule:
    """Replace the exam's ranking rule (audit ``ranking.update``); refused once a list is published.
    Raises ``MeritRejected`` with every problem of the table."""
    if published_list(session, exam) is not None:
        raise MeritListError(f"the merit list of {exam.code} is published: its ranking rule can no longer change")
    rule, errors = rule_from_dict(data)
    if errors:
        raise MeritRejected(errors)
    exam.ranking = data
    audit.append(session, actor=actor, action="ranking.update", object_type="exam", object_id=exam.code,
                 details={"ranking": data}, now=now)
    session.flush()
    return rule


def _rule(exam: Exam) -> RankingRule:
    rule, errors = ranking_rule(exam)
    if errors:
        raise MeritRejected(errors)
    return rule


# --- loading what the rule needs ---------------------------------------------------------------------

def load_candidates(session: Session, exam: Exam, rule: RankingRule, *, round1=None) -> merit.CandidateTable:
    """Every candidate of the exam as the rule reads them, column by column (by registration number).

    ``round1`` (an ``exam.grading.runs.ScoreTable``, e.g. ``GradeOutcome.table`` of a grading just done or
    previewed in memory) replaces the stored round-1 results (``candidate_score``)."""
    check_round1 = rule.uses_round1
    roster = fetch_rows(session, select(
        Candidate.id, Candidate.registration_no, Candidate.full_name, Candidate.date_of_birth, Candidate.post,
        Candidate.priority_category, Candidate.absent_at.is_not(None))
        .where(Candidate.exam_id == exam.id).order_by(Candidate.registration_no))
    n = len(roster)
    ids, regs, names, born, posts, categories, absent_at = (list(map(itemgetter(k), roster)) for k in range(7))
    del roster
    ids = np.array(ids, dtype=np.int64)
    if round1 is None:
        round1 = stored_scores(session, exam)
        if check_round1 and not len(round1) and n:
            raise MeritListError(f"exam {exam.code} has no round-1 results yet: grade it first "
                                 f"(flask --app wsgi exam grade {exam.code})")

    # Round 1: each candidate's row in the score table, the total and the set of failed sections.
    at = np.minimum(np.searchsorted(round1.candidate_ids, ids), max(len(round1) - 1, 0))
    has = (round1.candidate_ids[at] == ids) if len(round1) else np.zeros(n, dtype=bool)
    rows = at[has]
    round1_total = np.full(n, np.nan)
    round1_total[has] = round1.total[rows]
    round1_failed = np.full(n, -1, dtype=np.int64)
    failed_sections: list[tuple[str, ...]] = []
    n_sections = len(round1.sections)
    if n_sections and has.any():
        failed_bits = (~round1.passed[rows]).astype(np.int64) @ (np.int64(1) << np.arange(n_sections))
        distinct, inverse = np.unique(failed_bits, return_inverse=True)
        titles = [s.title for s in round1.sections]
        failed_sections = [tuple(t for k, t in enumerate(titles) if (bits >> k) & 1) for bits in distinct.tolist()]
        round1_failed[has] = inverse.ravel()

    # Who did not sit: no round-1 result, and marked absent or never submitted.
    absent = np.zeros(n, dtype=bool)
    if check_round1 and not has.all():
        submitted = np.fromiter((cid for (cid,) in fetch_rows(session, select(Attempt.candidate_id)
                                 .join(Candidate, Candidate.id == Attempt.candidate_id)
                                 .where(Candidate.exam_id == exam.id, Attempt.status == "submitted"))),
                                dtype=np.int64)
        absent = ~has & (np.array(absent_at, dtype=bool) | ~np.isin(ids, submitted))

    # Outside scores, per component: the score (NaN when none) and whether the candidate has it.
    by_id = np.argsort(ids, kind="stable")
    components: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for component, found in _grouped(fetch_rows(session, select(
            ExternalScore.component, ExternalScore.candidate_id, ExternalScore.score)
            .where(ExternalScore.exam_id == exam.id).order_by(ExternalScore.component))):
        cids = np.array([cid for cid, _ in found], dtype=np.int64)
        at = np.minimum(np.searchsorted(ids[by_id], cids), max(n - 1, 0))
        known = ids[by_id][at] == cids if n else np.zeros(len(cids), dtype=bool)
        where = by_id[at[known]]
        values, given = np.full(n, np.nan), np.zeros(n, dtype=bool)
        values[where] = np.array([np.nan if v is None else v for _, v in found], dtype=np.float64)[known]
        given[where] = True
        components[component] = (values, given)
    return merit.CandidateTable(
        registration_no=regs, full_name=names,
        date_of_birth=born if all(type(d) is str for d in born) else [_iso(d) for d in born], post=posts,
        priority_categories=categories if None not in categories else [c or "" for c in categories],
        round1_total=round1_total, round1_failed=round1_failed,
        failed_sections=failed_sections, components=components, absent=absent)


def _iso(value) -> str | None:
    """A date as the driver gives it (ISO text on SQLite, a date on PostgreSQL) as ISO text."""
    return value if value is None or isinstance(value, str) else value.isoformat()


def _grouped(rows) -> list[tuple[str, list[tuple[int, float | None]]]]:
    groups: dict[str, list] = {}
    for component, cid, score in rows:
        groups.setdefault(component, []).append((cid, score))
    return list(groups.items())


def compute_lists(session: Session, exam: Exam, *, round1=None) -> dict[str, merit.MeritList]:
    """The lists a build would give now (the board's recorded tie decisions re-applied), in memory;
    ``round1`` as for ``load_candidates``."""
    rule = _rule(exam)
    lists = merit.rank_candidates(load_candidates(session, exam, rule, round1=round1), rule)
    return reapply_decisions(session, exam, lists)


def reapply_decisions(session: Session, exam: Exam, lists: dict[str, merit.MeritList]) -> dict[str, merit.MeritList]:
    """Apply the board's decisions to the ties they were made for: a tie is resolved when each member's
    latest decision comes from one and the same decision and, together, they fill its places exactly."""
    latest: dict[tuple[str, str], TieDecision] = {}
    for decision, reg in session.execute(
            select(TieDecision, Candidate.registration_no).join(Candidate, Candidate.id == TieDecision.candidate_id)
            .where(TieDecision.exam_id == exam.id).order_by(TieDecision.decided_at, TieDecision.id)):
        latest[(decision.post, reg)] = decision
    if not latest:
        return lists
    result = dict(lists)
    for post, ml in lists.items():
        for tie in ml.ties:
            found = [latest.get((post, reg)) for reg in tie.registration_nos]
            if any(d is None for d in found) or len({(d.decided_at, d.decided_by) for d in found}) != 1:
                continue
            try:
                result[post] = merit.apply_decisions(result[post], {reg: d.decision for reg, d in
                                                                    zip(tie.registration_nos, found, strict=True)},
                                                     reason=found[0].reason)
            except MeritRejected:
                continue  # the tie is no longer the one decided: the board decides again
    return result


# --- the stored lists ---------------------------------------------------------------------------------

def published_list(session: Session, exam: Exam) -> MeritList | None:
    return session.scalars(select(MeritList).where(MeritList.exam_id == exam.id, MeritList.status == "published")
                           .order_by(MeritList.id.desc()).limit(1)).first()


def draft_list(session: Session, exam: Exam) -> MeritList | None:
    return session.scalars(select(MeritList).where(MeritList.exam_id == exam.id, MeritList.status == "draft")
                           .order_by(MeritList.id.desc()).limit(1)).first()


def current_list(session: Session, exam: Exam) -> MeritList | None:
    """The published list if there is one (it is what counts), else the draft."""
    return published_list(session, exam) or draft_list(session, exam)


_LISTS: dict[tuple[int, str], dict[str, merit.MeritList]] = {}
_LISTS_KEPT = 4


def _remember(record: MeritList, lists: Mapping[str, merit.MeritList]) -> dict[str, merit.MeritList]:
    """Keep the lists of a stored record for this process: its id and hash name one content."""
    rule, _ = rule_from_dict(record.rule) if record.rule else (None, [])
    order = {post: k for k, post in enumerate(rule.quota)} if rule else {}  # the quota table's order, as typed
    ordered = dict(sorted(lists.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))
    while len(_LISTS) >= _LISTS_KEPT:
        _LISTS.pop(next(iter(_LISTS)), None)
    _LISTS[(record.id, record.hash)] = ordered
    return ordered


def lists_of(record: MeritList) -> dict[str, merit.MeritList]:
    """The per-post lists stored in a record, checked against its hash (``MeritListError`` if altered) at
    every read; parsed once per process (the record's id and hash name its content)."""
    text = record.content
    if not matches_hash(text, record.hash):
        raise MeritListError(f"the stored merit list {record.id} does not match its hash: it was altered")
    known = _LISTS.get((record.id, record.hash))
    if known is not None:
        return dict(known)
    return dict(_remember(record, load_merit_lists(text)))


def _content(lists: Mapping[str, merit.MeritList]) -> tuple[str, str]:
    """(the canonical JSON text to store, its SHA-256)."""
    return merit_lists_text_and_hash(lists)


def _tally(lists: Mapping[str, merit.MeritList]) -> dict:
    return {post: {**ml.counts(), "quota": ml.quota, "ties": len(ml.ties)} for post, ml in lists.items()}


def build_merit_list(session: Session, exam: Exam, actor: str, now: datetime, *, scores=None) -> MeritList:
    """Build (or rebuild) the exam's draft list from the current scores and rule; audit ``merit.build``.

    ``scores``: the round-1 results when the caller has them in memory, e.g. ``GradeOutcome.table`` of
    the grading run just written in this transaction (they are what ``candidate_score`` now holds), so
    they are not read back. Refused once a list is published (``MeritListError``); a rule or data
    problem raises ``MeritRejected`` naming each (a post without a quota, …)."""
    return store_draft(session, exam, draft_content(session, exam, scores=scores), actor, now)


@dataclass(frozen=True)
class DraftContent:
    """A draft list ranked but not stored: the lists, their canonical JSON text and its hash."""

    lists: dict[str, merit.MeritList]
    content: str
    hash: str


def draft_content(session: Session, exam: Exam, *, scores=None) -> DraftContent:
    """The first half of ``build_merit_list``: reads, ranks and writes the text, stores nothing (so it can
    run while the grading's item analysis computes: ``results.grade_exam(meanwhile=...)``)."""
    if published_list(session, exam) is not None:
        raise MeritListError(f"the merit list of {exam.code} is already published and frozen: a new build is "
                             "refused")
    with gc_paused():
        lists = compute_lists(session, exam, round1=scores)
        content, digest = _content(lists)
    return DraftContent(lists, content, digest)


def store_draft(session: Session, exam: Exam, draft: DraftContent, actor: str, now: datetime) -> MeritList:
    """The second half of ``build_merit_list``: store the draft (the exam's draft replaced, linked to its
    latest grading run) and audit ``merit.build``."""
    lists, content, digest = draft.lists, draft.content, draft.hash
    run = latest_run(session, exam)
    record = draft_list(session, exam)
    if record is None:
        record = MeritList(exam_id=exam.id, status="draft")
        session.add(record)
    record.rule, record.content, record.hash = ranking_data(exam), content, digest
    record.grading_run_id = run.id if run else None
    record.created_at, record.created_by = now, actor
    session.flush()
    _remember(record, lists)
    audit.append(session, actor=actor, action="merit.build", object_type="exam", object_id=exam.code,
                 details={"merit_list": record.id, "hash": digest, "grading_run": record.grading_run_id,
                          "posts": _tally(lists)}, now=now)
    return record


def decide_tie(session: Session, exam: Exam, *, post: str, decisions: Mapping[str, str], reason: str, actor: str,
               now: datetime) -> MeritList:
    """The board's decision on a tie of the draft list: {registration_no: "selected" | "not_selected"} for every
    member, filling the places left exactly, with a written reason. Audit ``merit.decide``."""
    if published_list(session, exam) is not None:
        raise MeritListError(f"the merit list of {exam.code} is published and frozen")
    record = draft_list(session, exam)
    if record is None:
        raise MeritListError(f"exam {exam.code} has no draft merit list: build it first")
    reason = " ".join((reason or "").split())
    if len(reason) < MIN_REASON_CHARS:
        raise MeritListError(f"the board's decision needs a written reason (at least {MIN_REASON_CHARS} characters)")
    if len(reason) > MAX_REASON_CHARS:
        raise MeritListError(f"the reason is too long (at most {MAX_REASON_CHARS} characters)")
    lists = lists_of(record)
    if post not in lists:
        raise MeritListError(f"the list has no post {post!r}")
    before = lists[post]
    decided = merit.apply_decisions(before, decisions, reason=reason)  # MeritRejected names every problem
    ids = dict(session.execute(select(Candidate.registration_no, Candidate.id).where(
        Candidate.exam_id == exam.id, Candidate.registration_no.in_(list(decisions)))).all())
    session.add_all(TieDecision(exam_id=exam.id, post=post, candidate_id=ids[reg], decision=decision, reason=reason,
                                decided_by=actor, decided_at=now) for reg, decision in sorted(decisions.items()))
    lists[post] = decided
    content, digest = _content(lists)
    _update_draft(session, record, content=content, hash=digest)
    _remember(record, lists)
    new = decided.decisions[len(before.decisions):]
    audit.append(session, actor=actor, action="merit.decide", object_type="exam", object_id=exam.code,
                 details={"merit_list": record.id, "post": post, "hash": record.hash,
                          "ties": [{"rank": d.rank, "places": d.places, "selected": list(d.selected),
                                    "not_selected": list(d.not_selected)} for d in new], "reason": reason}, now=now)
    return record


def _update_draft(session: Session, record: MeritList, **values) -> None:
    """Change the draft only if it is still the draft this request read (same status and hash): two board
    members deciding or publishing at once never act on a list the other has just changed."""
    session.flush()
    changed = session.execute(
        update(MeritList).where(MeritList.id == record.id, MeritList.status == "draft", MeritList.hash == record.hash)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise MeritListError("the draft was changed or published meanwhile by someone else: reload the page")
    for name, value in values.items():
        set_committed_value(record, name, value)


@dataclass
class Staleness:
    """How the stored draft differs from what a build would give now (nothing: it is current)."""

    changes: list[merit.MeritChange] = field(default_factory=list)
    rule_changed: bool = False
    newer_grading: bool = False
    other: bool = False  # something else differs (a name, a decision, a note)
    problem: str = ""  # a build would be refused now

    @property
    def stale(self) -> bool:
        return bool(self.changes or self.rule_changed or self.newer_grading or self.other or self.problem)


def staleness(session: Session, exam: Exam, record: MeritList) -> Staleness:
    """Compare a draft with a build of the current data: what the board would publish must be current."""
    found = Staleness()
    run = latest_run(session, exam)
    found.newer_grading = (run.id if run else None) != record.grading_run_id
    found.rule_changed = record.rule != ranking_data(exam)
    try:
        fresh = compute_lists(session, exam)
    except (MeritRejected, MeritListError) as exc:
        found.problem = str(exc)
        return found
    if merit_hash(fresh) != record.hash:
        found.changes = merit.compare_merit_lists(lists_of(record), fresh)
        found.other = not found.changes
    return found


def publish_merit_list(session: Session, exam: Exam, *, actor: str, now: datetime,
                       allow_unresolved_ties: bool = False) -> MeritList:
    """Freeze the draft: published, its hash into the audit chain (``merit.publish``).

    Refused when there is no draft, when one is already published, when the draft is out of
    date (build again), and while a tie is unresolved unless ``allow_unresolved_ties``: the
    list then shows those candidates as tied, pending the board's decision."""
    if published_list(session, exam) is not None:
        raise MeritListError(f"the merit list of {exam.code} is already published")
    record = draft_list(session, exam)
    if record is None:
        raise MeritListError(f"exam {exam.code} has no draft merit list: build it first")
    lists = lists_of(record)
    stale = staleness(session, exam, record)
    if stale.stale:
        raise MeritListError(stale.problem or "the draft no longer matches the current scores, rule or candidates: "
                                              "build the list again, check it, then publish")
    unresolved = [(post, tie) for post, ml in lists.items() for tie in ml.ties]
    if unresolved and not allow_unresolved_ties:
        names = "; ".join(f"{post}: rank {tie.rank} ({', '.join(tie.registration_nos)}), {tie.places} place(s)"
                          for post, tie in unresolved)
        raise MeritListError(f"{len(unresolved)} tie(s) at a quota's last place await the board's decision: {names}")
    _update_draft(session, record, status="published", published_at=now, published_by=actor)
    audit.append(session, actor=actor, action="merit.publish", object_type="exam", object_id=exam.code,
                 details={"merit_list": record.id, "hash": record.hash, "grading_run": record.grading_run_id,
                          "rule": record.rule, "posts": _tally(lists),
                          "unresolved_ties": [{"post": post, "rank": tie.rank, "registration_nos":
                                               list(tie.registration_nos)} for post, tie in unresolved]}, now=now)
    return record


# --- reading the list ---------------------------------------------------------------------------------

def find_post(lists: Mapping[str, merit.MeritList], post: str) -> merit.MeritList | None:
    """The list of a post, matched like the quota table (case and spaces ignored)."""
    wanted = fold(post or "")
    return next((ml for name, ml in lists.items() if fold(name) == wanted), None)


@dataclass(frozen=True)
class Standing:
    """A candidate's line on the published list."""

    record: MeritList
    merit_list: merit.MeritList
    row: merit.MeritRow


_INDEXES: dict[tuple[int, str], dict[str, tuple[merit.MeritList, merit.MeritRow]]] = {}
_INDEXES_KEPT = 4


def _index(record: MeritList) -> dict[str, tuple[merit.MeritList, merit.MeritRow]]:
    """Registration number → (list, row) of a stored list, read and checked once per process: its id and hash
    name one content (any change, a decision included, changes the hash), and candidates ask at once after
    publication."""
    key = (record.id, record.hash)
    index = _INDEXES.get(key)
    if index is None:
        index = {row.registration_no: (ml, row) for ml in lists_of(record).values() for row in ml.rows}
        while len(_INDEXES) >= _INDEXES_KEPT:
            _INDEXES.pop(next(iter(_INDEXES)), None)
        _INDEXES[key] = index
    return index


def find_row(record: MeritList, registration_no: str) -> tuple[merit.MeritList, merit.MeritRow] | None:
    """The candidate's (list, row) in a stored list, or None."""
    return _index(record).get(registration_no)


def standing(session: Session, exam: Exam, registration_no: str) -> Standing | None:
    """The candidate's row on the exam's published list, or None before publication."""
    record = published_list(session, exam)
    if record is None:
        return None
    found = find_row(record, registration_no)
    return Standing(record, *found) if found else None


def export_info(exam: Exam, record: MeritList, *, board: str = "", place: str = "") -> ExportInfo:
    """What the exports print besides the rows: a draft is printed as such."""
    extra = {key: value for key, value in (("board", board), ("place", place)) if value}
    return ExportInfo(exam_code=exam.code, exam_title=exam.title, list_hash=record.hash,
                      published_at=record.published_at if record.status == "published" else None, **extra)


def export_list(session: Session, exam: Exam, filename: str, *, post: str | None = None) -> bytes:
    """The exam's list (the published one, else the draft) as ``filename``'s format; one post or all."""
    record = current_list(session, exam)
    if record is None:
        raise MeritListError(f"exam {exam.code} has no merit list yet: build it first")
    lists = lists_of(record)
    if post:
        found = find_post(lists, post)
        if found is None:
            raise MeritListError(f"the list has no post {post!r} (posts: {', '.join(lists) or 'none'})")
        chosen: list[merit.MeritList] = [found]
    else:
        chosen = list(lists.values())
    return export_merit_lists(filename, chosen, export_info(exam, record))
