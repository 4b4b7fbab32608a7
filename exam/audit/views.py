"""Auditor pages (roles auditor and board), read-only: the audit chain browser, a candidate's
timeline, the re-tally, the audit bundle download and the chain head's fingerprint.

Nothing here changes exam data. The only write is the audit entry recording a bundle
download (who took which exam's records), made after the bundle is complete.

The chain browser filters by time (Vietnam time in the form, UTC in the chain), actor,
action (prefix), candidate and exam. A candidate (registration number) matches entries
about them: their registration number or attempt as the object, them as the actor, or
their number as a value in the details. An exam matches entries whose object is the exam,
one of its candidates, attempts or sittings, or whose details name its code. Pages are
keyset-paged on ``seq``, newest first.
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import segno
from flask import Blueprint, abort, current_app, render_template, request, send_file, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from exam.accounts.auth import actor, role_required
from exam.audit import bundle as audit_bundle
from exam.audit import chain as audit
from exam.audit import records, retally
from exam.audit.models import AuditEntry, AuditHead
from exam.core.db import get_database, get_session, utcnow
from exam.core.timeutil import iso_utc
from exam.grading.models import GradingRun
from exam.merit.models import MeritList
from exam.merit.ranking import STATUS_LABELS
from exam.room.history import verify_history
from exam.room.models import Attempt
from exam.setup.exams import exam_or_404
from exam.setup.models import Candidate, Exam, Sitting
from exam.setup.sittings import local_time, parse_local_time
from proctor.models import Incident

bp = Blueprint("auditor", __name__, url_prefix="/audit")
PAGE_SIZE = 100
VERDICT_MAX_AGE_S = 60

ACTION_LABELS = {
    "candidate.login": _l("Đăng nhập"),
    "candidate.login_failed": _l("Đăng nhập bị từ chối"),
    "candidate.logout": _l("Đăng xuất"),
    "candidate.admit_move": _l("Cho phép chuyển máy"),
    "candidates.seat": _l("Xếp chỗ ngồi"),
    "candidate.check_in": _l("Vào phòng thi"),
    "candidate.absent": _l("Vắng thi"),
    "candidate.present": _l("Có mặt"),
    "attempt.start": _l("Bắt đầu làm bài"),
    "attempt.extend": _l("Gia hạn thời gian"),
    "attempt.compensate": _l("Bù thời gian sau sự cố"),
    "attempt.force_submit": _l("Giám thị thu bài"),
    "attempt.submit": _l("Nộp bài"),
    "sitting.open": _l("Mở ca thi"),
    "sitting.pause": _l("Tạm dừng cả phòng"),
    "sitting.resume": _l("Tiếp tục cả phòng"),
    "incident.note": _l("Ghi sự cố"),
    "exam.grade": _l("Chấm điểm"),
    "merit.publish": _l("Công bố kết quả"),
    "save": _l("Lưu câu trả lời"),
    "incident": _l("Sự cố / vi phạm"),
    "grading": _l("Chấm điểm"),
    "result": _l("Kết quả"),
}


OUTCOME_LABELS = {
    "right": _l("đúng"),
    "wrong": _l("sai"),
    "blank": _l("không trả lời"),
    "void_award": _l("câu bị hủy: mọi thí sinh được điểm"),
    "void_remove": _l("câu bị hủy: không tính vào bài"),
}


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return str(label) if label else action


@bp.context_processor
def helpers():
    return {"local_time": local_time, "action_label": action_label, "OUTCOME_LABELS": OUTCOME_LABELS,
            "MERIT_STATUS_LABELS": STATUS_LABELS}


# --- the chain: filters, pages, the verdict --------------------------------------------------------

@dataclass
class ChainFilter:
    start: str = ""  # as typed (Vietnam time)
    end: str = ""
    actor: str = ""
    action: str = ""
    candidate: str = ""
    exam: str = ""
    errors: list = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> ChainFilter:
        return cls(**{name: " ".join(args.get(name, "").split())[:200]
                      for name in ("start", "end", "actor", "action", "candidate", "exam")})

    def args(self) -> dict:
        return {name: getattr(self, name) for name in ("start", "end", "actor", "action", "candidate", "exam")
                if getattr(self, name)}

    def conditions(self, session: Session) -> list:
        entry = AuditEntry
        found = []
        for name, op in (("start", "ge"), ("end", "le")):
            text = getattr(self, name)
            if not text:
                continue
            try:
                moment = iso_utc(parse_local_time(text.replace("T", " ")))
            except ValueError:
                self.errors.append(_l("Thời điểm không hợp lệ: %(t)s (vd. 2026-12-01 08:00)", t=text))
                continue
            found.append(entry.at >= moment if op == "ge" else entry.at <= moment)
        if self.actor:
            found.append(entry.actor == self.actor)
        if self.action:
            found.append(entry.action.startswith(self.action, autoescape=True))
        if self.candidate:
            found.append(candidate_condition(self.candidate))
        if self.exam:
            exam = session.scalar(select(Exam).where(Exam.code == self.exam))
            if exam is None:
                self.errors.append(_l("Không có kỳ thi mã %(c)s", c=self.exam))
                found.append(entry.seq < 0)
            else:
                found.append(exam_condition(exam))
        return found


def candidate_condition(registration_no: str, exam_id: int | None = None):
    """Entries about a candidate: their number or attempt as the object, them as the actor, their number
    as a value in the details."""
    entry = AuditEntry
    attempts = select(Attempt.public_id).join(Candidate, Candidate.id == Attempt.candidate_id).where(
        Candidate.registration_no == registration_no)
    if exam_id is not None:
        attempts = attempts.where(Candidate.exam_id == exam_id)
    return or_(entry.object_id == registration_no, entry.object_id.in_(attempts),
               entry.actor == f"candidate:{registration_no}",
               entry.details.contains(json.dumps(registration_no, ensure_ascii=False), autoescape=True))


def exam_condition(exam: Exam):
    entry = AuditEntry
    return or_(and_(entry.object_type == "exam", entry.object_id == exam.code),
               entry.details.contains(json.dumps(exam.code, ensure_ascii=False), autoescape=True),
               entry.object_id.in_(select(Attempt.public_id).join(Candidate, Candidate.id == Attempt.candidate_id)
                                   .where(Candidate.exam_id == exam.id)),
               entry.object_id.in_(select(Candidate.registration_no).where(Candidate.exam_id == exam.id)),
               entry.object_id.in_(select(Sitting.code).where(Sitting.exam_id == exam.id)))


def chain_page(session: Session, conditions: list, *, before: int | None, after: int | None,
               size: int = PAGE_SIZE) -> tuple[list, int | None, int | None]:
    """(entries newest first, seq for the newer page or None, seq for the older page or None)."""
    entry = AuditEntry
    query = select(entry).where(*conditions)
    if after is not None:
        rows = list(session.scalars(query.where(entry.seq > after).order_by(entry.seq).limit(size + 1)))
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        more_older = bool(rows) and session.scalar(query.with_only_columns(entry.seq).where(
            entry.seq < rows[-1].seq).limit(1)) is not None
    else:
        if before is not None:
            query = query.where(entry.seq < before)
        rows = list(session.scalars(query.order_by(entry.seq.desc()).limit(size + 1)))
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = before is not None and bool(rows) and session.scalar(
            select(entry.seq).where(*conditions, entry.seq > rows[0].seq).limit(1)) is not None
    return rows, (rows[0].seq if rows and more_newer else None), (rows[-1].seq if rows and more_older else None)


_verdicts: dict = {}
_verdicts_lock = threading.Lock()


def chain_verdict(session: Session) -> tuple[audit.Verdict, datetime]:
    """The verification of the whole chain, kept for a minute while the head does not move (walking a
    long chain on every page view would be slow); the verify page always checks afresh."""
    head = session.get(AuditHead, 1)
    key = (get_database().url, head.count, head.hash)
    max_age = current_app.config.get("AUDIT_VERDICT_MAX_AGE_S", VERDICT_MAX_AGE_S)
    with _verdicts_lock:
        cached = _verdicts.get(key)
    if cached is not None and time.monotonic() - cached[2] < max_age:
        return cached[0], cached[1]
    verdict = audit.verify_database(session, current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    checked_at = utcnow()
    with _verdicts_lock:
        _verdicts.clear()
        _verdicts[key] = (verdict, checked_at, time.monotonic())
    return verdict, checked_at


# --- a candidate's timeline --------------------------------------------------------------------------

@dataclass
class TimelineEvent:
    at: str  # ISO UTC, as recorded
    kind: str  # an audit action, "save", "incident", "grading", "result"
    seq: str  # "#123" for a chain entry, "save 7" for a save
    summary: str
    machine: str = ""
    details: str = ""
    hash: str = ""

    @property
    def local(self) -> str:
        moment = datetime.strptime(self.at[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        return local_time(moment, "%d/%m/%Y %H:%M:%S")


def _choice_text(item: dict, choices: list) -> tuple[str, str]:
    """("B", "C"): the letters as displayed to the candidate, and the original options they were."""
    displayed = [item["option_ids"].index(c) for c in choices if c in item["option_ids"]]
    return retally.letters(displayed), retally.letters(item["option_order"][j] for j in displayed)


def candidate_timeline(session: Session, candidate: Candidate) -> dict:
    """Everything that happened to one candidate, in time order, with the checks that settle a complaint."""
    record = records.candidate_record(session, candidate)
    paper, attempt = record["paper"], record["attempt"]
    items = {item["id"]: item for item in paper["items"]} if paper else {}
    versions = records.version_rows(session, {i["question_version_id"] for i in items.values()})
    sections = records.section_rows(session, candidate.exam_id)
    corrections = retally.approved_corrections(records.correction_rows(session, candidate.exam_id))

    events, noted_incidents = chain_events(session, candidate)
    events += save_events(record["history"], items)
    events += incident_events(session, candidate, noted_incidents)
    events += grading_events(session, record["candidate_score"])
    merit_row, merit_events = merit_result(session, candidate)
    events += merit_events
    events.sort(key=lambda e: (e.at, e.kind != "save"))

    history = history_check(attempt, record) if attempt is not None else None
    answers = answer_rows(record, items, versions, corrections, {s["id"]: s["code"] for s in sections})
    differences, corrected = retally.check_candidate(record, sections, versions, corrections)
    return {"record": record, "events": events, "history": history, "answers": answers,
            "differences": differences, "retally": corrected, "merit_row": merit_row,
            "corrections": corrections}


def chain_events(session: Session, candidate: Candidate) -> tuple[list[TimelineEvent], set]:
    """The audit chain's entries about the candidate (and what the proctor did to the whole room: a pause
    stops this clock too), with the ids of the incidents they note."""
    about = candidate_condition(candidate.registration_no, candidate.exam_id)
    if candidate.sitting is not None:
        entry = AuditEntry
        about = or_(about, and_(entry.object_type == "sitting", entry.object_id == candidate.sitting.code))
    events, noted_incidents = [], set()
    for entry in session.scalars(select(AuditEntry).where(about).order_by(AuditEntry.seq)):
        details = json.loads(entry.details)
        if not isinstance(details, dict):
            details = {}
        if entry.action.startswith("incident") and details.get("incident") is not None:
            noted_incidents.add(details["incident"])
        events.append(TimelineEvent(entry.at, entry.action, f"#{entry.seq}", f"{entry.actor}",
                                    machine=str(details.get("machine", "")), details=entry.details, hash=entry.hash))
    return events, noted_incidents


def save_events(history: list[dict], items: dict[int, dict]) -> list[TimelineEvent]:
    """One event per save of the history: the question and the letters chosen, as shown and as authored."""
    events = []
    for number, row in enumerate(history, start=1):
        item = items.get(row["item_id"])
        choices = json.loads(row["choices"])
        if item is None:
            text = f"item {row['item_id']} (not on the paper): {choices}"
        else:
            shown, original = _choice_text(item, choices)
            text = str(_l("Câu %(n)s: chọn %(shown)s (phương án gốc %(orig)s)", n=item["position"],
                          shown=shown or "—", orig=original or "—"))
            if row["flagged"]:
                text += " · " + str(_l("đánh dấu xem lại"))
        events.append(TimelineEvent(row["at"], "save", f"seq {row['seq']}", text, machine=row["machine"],
                                    details=f"save {number}", hash=row["hash"]))
    return events


def incident_events(session: Session, candidate: Candidate, noted_incidents: set) -> list[TimelineEvent]:
    """The candidate's incidents that no audit entry already notes."""
    return [TimelineEvent(iso_utc(incident.at), "incident", "", f"{incident.kind}: {incident.description}",
                          details=f"by {incident.by}")
            for incident in session.scalars(select(Incident).where(
                Incident.candidate_id == candidate.id,
                Incident.id.not_in(noted_incidents) if noted_incidents else Incident.id.is_not(None))
                .order_by(Incident.at))]


def grading_events(session: Session, score: dict | None) -> list[TimelineEvent]:
    """The grading run that stored the candidate's round-1 score, if any."""
    run = session.get(GradingRun, score["grading_run_id"]) if score is not None else None
    if run is None:
        return []
    return [TimelineEvent(iso_utc(run.at), "grading", f"run {run.id}",
                          str(_l("Tổng điểm vòng 1: %(t)s", t=score["total"])), details=f"by {run.by}")]


def merit_result(session: Session, candidate: Candidate) -> tuple[dict | None, list[TimelineEvent]]:
    """The candidate's row of the published merit list (with its post), and its publication as an event."""
    merit = records.published_merit_list(session, candidate.exam_id)
    if merit is None:
        return None, []
    merit_row = None
    for merit_list in retally.merit_lists(retally.stored_content(merit.content)) or ():
        for row in merit_list["rows"]:
            if row["registration_no"] == candidate.registration_no:
                merit_row = {**row, "post": merit_list["post"]}
    if merit_row is None or merit.published_at is None:
        return merit_row, []
    return merit_row, [TimelineEvent(iso_utc(merit.published_at), "result", "",
                                     f"{merit_row['post']}: {merit_row['status']}, "
                                     f"rank {merit_row['rank']}, total {merit_row['total']}",
                                     details=f"merit list {merit.hash[:16]}…")]


def history_check(attempt: dict, record: dict) -> dict:
    """The save history against the attempt's head and the chain's submission entry."""
    verdict = verify_history(attempt["public_id"], record["history"])
    submit = record["submit_entries"][-1] if record["submit_entries"] else None
    submitted = json.loads(submit["details"]) if submit else {}
    return {
        "verdict": verdict,
        "matches_attempt": (verdict.count, verdict.head_hash) == (attempt["history_count"],
                                                                  attempt["history_hash"]),
        "submit_seq": submit["seq"] if submit else None,
        "submit_hash": submitted.get("history_hash"), "submit_count": submitted.get("history_count"),
        "matches_submit": submit is not None and (submitted.get("history_hash"), submitted.get(
            "history_count")) == (verdict.head_hash, verdict.count),
    }


def answer_rows(record: dict, items: dict[int, dict], versions: dict[int, dict], corrections: dict[int, dict],
                section_code: dict[int, str]) -> list[dict]:
    """The final answer per question, against the key (and whether the stored response agrees with it)."""
    last = retally.final_answers(record["history"])
    stored = {r["item_id"]: r for r in record["responses"]}
    answers = []
    for item in sorted(items.values(), key=lambda i: i["position"]):
        version = versions[item["question_version_id"]]
        correction = corrections.get(item["question_version_id"])
        save = last.get(item["id"])
        chosen = save["choices"] if save else []
        shown, original = _choice_text(item, chosen)
        right = retally.correct_originals(version["options"], correction)
        key_shown = [j for j, o in enumerate(item["option_order"]) if o in right]
        response = stored.get(item["id"])
        answers.append({
            "number": item["position"], "section": section_code.get(item["section_id"], ""),
            "question_version_id": item["question_version_id"], "text": version["text"],
            "shown": shown, "original": original, "key_shown": retally.letters(key_shown),
            "key_original": retally.letters(right), "outcome": _outcome(item, chosen, key_shown, correction),
            "correction": correction["action"] if correction else "",
            "seq": save["seq"] if save else None,
            "agrees": (response is None and save is None) or (
                response is not None and save is not None and list(response["choices"]) == chosen
                and response["seq"] == save["seq"]),
        })
    return answers


def _outcome(item: dict, chosen: list, key_shown: list[int], correction: dict | None) -> str:
    """void_award | void_remove (a key correction decides) | blank | right | wrong."""
    if correction and correction["action"] in ("void_award", "void_remove"):
        return correction["action"]
    if not chosen:
        return "blank"
    chosen_positions = {item["option_ids"].index(c) for c in chosen if c in item["option_ids"]}
    return "right" if key_shown and chosen_positions == set(key_shown) else "wrong"


# --- pages ---------------------------------------------------------------------------------------------

@bp.route("/")
@role_required("auditor", "board")
def log():
    db_session = get_session()
    chain_filter = ChainFilter.from_args(request.args)
    conditions = chain_filter.conditions(db_session)
    entries, newer, older = chain_page(db_session, conditions, before=request.args.get("before", type=int),
                                       after=request.args.get("after", type=int))
    total = db_session.scalar(select(func.count()).select_from(AuditEntry))
    verdict, checked_at = chain_verdict(db_session)
    return render_template("auditor/log.html", entries=entries, total=total, filter=chain_filter,
                           newer=newer, older=older, verdict=verdict, checked_at=checked_at,
                           exams=db_session.scalars(select(Exam.code).order_by(Exam.code)).all())


@bp.route("/verify")
@role_required("auditor", "board")
def verify():
    verdict = audit.verify_database(get_session(), current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    return render_template("auditor/verify.html", verdict=verdict,
                           public_key=current_app.extensions["audit_key"].public_pem)


@bp.route("/public-key.pem")
@role_required("auditor", "board")
def public_key():
    return current_app.extensions["audit_key"].public_pem, 200, {"Content-Type": "application/x-pem-file"}


@bp.route("/fingerprint")
@role_required("auditor", "board")
def fingerprint():
    db_session = get_session()
    verdict = audit.verify_database(db_session, current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    head = db_session.get(AuditHead, 1)
    qr_text = audit_bundle.head_qr_text(head.chain_id, verdict.count, verdict.head_hash)
    return render_template("auditor/fingerprint.html", verdict=verdict, chain_id=head.chain_id,
                           fingerprint=audit_bundle.fingerprint(verdict.count, verdict.head_hash), qr_text=qr_text,
                           qr_svg=segno.make(qr_text, error="m").svg_data_uri(scale=5), now=utcnow())



@bp.route("/exams")
@role_required("auditor", "board")
def exams():
    db_session = get_session()
    counts = dict(db_session.execute(select(Candidate.exam_id, func.count()).group_by(Candidate.exam_id)).all())
    merit = dict(db_session.execute(select(MeritList.exam_id, func.count())
                                    .where(MeritList.status == "published")
                                    .group_by(MeritList.exam_id)).all())
    return render_template("auditor/exams.html", exams=db_session.scalars(select(Exam).order_by(Exam.code)).all(),
                           counts=counts, merit=merit)


@bp.route("/exams/<code>/candidates")
@role_required("auditor", "board")
def candidates(code):
    db_session = get_session()
    exam = exam_or_404(db_session, code)
    number = " ".join(request.args.get("q", "").split())[:40]
    query = (select(Candidate, Attempt.status, Attempt.submitted_at).outerjoin(Attempt, Attempt.candidate_id ==
                                                                               Candidate.id)
             .where(Candidate.exam_id == exam.id))
    if number:
        query = query.where(or_(Candidate.registration_no.startswith(number, autoescape=True),
                                Candidate.full_name.contains(number, autoescape=True)))
    after = request.args.get("after", "")
    rows = db_session.execute(query.where(Candidate.registration_no > after)
                              .order_by(Candidate.registration_no).limit(PAGE_SIZE + 1)).all()
    more = rows[PAGE_SIZE - 1][0].registration_no if len(rows) > PAGE_SIZE else None
    return render_template("auditor/candidates.html", exam=exam, rows=rows[:PAGE_SIZE], q=number, more=more)


@bp.route("/exams/<code>/candidates/<registration_no>")
@role_required("auditor", "board")
def timeline(code, registration_no):
    db_session = get_session()
    exam = exam_or_404(db_session, code)
    candidate = db_session.scalar(select(Candidate).where(Candidate.exam_id == exam.id,
                                                          Candidate.registration_no == registration_no))
    if candidate is None:
        abort(404)
    return render_template("auditor/timeline.html", exam=exam, candidate=candidate,
                           sitting=candidate.sitting, **candidate_timeline(db_session, candidate))


@bp.route("/exams/<code>/retally")
@role_required("auditor", "board")
def retally_page(code):
    db_session = audit_bundle.snapshot_session(get_database())
    try:
        exam = exam_or_404(db_session, code)
        report = retally.retally_exam(db_session, exam)
        return render_template("auditor/retally.html", exam=exam, report=report)
    finally:
        db_session.close()


@bp.route("/exams/<code>/bundle.zip")
@role_required("auditor", "board")
def bundle(code):
    """The exam's audit bundle; its download is recorded in the audit chain."""
    now = utcnow()
    spool = tempfile.TemporaryFile()
    snapshot = audit_bundle.snapshot_session(get_database())
    try:
        exam = exam_or_404(snapshot, code)
        name = f"audit-{exam.code}-{now:%Y%m%d-%H%M%S}.zip"
        summary = audit_bundle.write_bundle(
            snapshot, exam, spool, public_pem=current_app.extensions["audit_key"].public_pem,
            checkpoint_file=current_app.config["AUDIT_CHECKPOINT_FILE"], now=now, name=name)
    except BaseException:
        spool.close()
        raise
    finally:
        snapshot.close()
    db_session = get_session()
    db_session.rollback()  # a fresh transaction for the entry: no stale read snapshot to upgrade
    audit_bundle.record_export(db_session, db_session.get(Exam, exam.id), summary, actor=actor(),
                               role=",".join(sorted(current_user.roles)), now=now)
    db_session.commit()
    spool.seek(0)
    return send_file(spool, mimetype="application/zip", as_attachment=True, download_name=name)


@bp.app_template_global()
def chain_url(**changes) -> str:
    """The chain browser's address with the current filters and ``changes``."""
    args = {k: v for k, v in request.args.items() if k not in ("before", "after")}
    args.update({k: v for k, v in changes.items() if v is not None})
    return url_for("auditor.log", **args)
