"""The lab client JSON API (/api/v1): bearer tokens, no cookies (docs/openapi.yaml, docs/exam-room-contract.md).

Views are thin: parse the JSON body, load the candidate's session and attempt from the
bearer token once (``candidate_token_required``), call one rule of the room (exam/room/sessions.py,
attempts.py; the writes through the write door, exam/room/writes.py), commit once, answer JSON.
A refusal (``RoomError``) is committed too (what the rule recorded before refusing: a failed-login
audit entry, a submission by the deadline) and answered as ``{"error": {"code", "message"}}``. Every
answer under /api/ is JSON, also 404/405/413/500, and carries ``Cache-Control: no-store``.

The token names the attempt: no URL carries an attempt id, and a question id that is
not on the candidate's own paper gets the same 404 as one that does not exist.

Answer saves and heartbeats, most of a lab's requests, usually never reach these views:
exam/room/lane.py answers them beneath Flask's dispatch. The lane and these views call the same
answer functions (``answer_save``, ``answer_heartbeat``: plain token, body, machine and ``now`` in;
status, JSON bytes and headers out), built on the one table of error bodies (``error_body``) and the
API's headers (``API_HEADERS``), and read the token with the same ``parse_bearer``; the lane hands
anything unusual to these views.
"""
from __future__ import annotations

import functools
import json
from datetime import date, datetime, timedelta
from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request, send_from_directory
from itsdangerous import BadSignature, URLSafeTimedSerializer

from exam.core.db import Driver, get_session, reads_only, utcnow
from exam.core.extensions import csrf
from exam.merit import lists as merit_lists
from exam.merit import score_reports
from exam.room import attempt_view, attempts, paper_cache, sessions, writes
from exam.room.errors import BatchFailed, RoomError
from exam.room.operations import iso
from exam.room.sweeper import install_sweeper
from exam.setup.models import Exam

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_BODY_BYTES = 64 * 1024
IMAGE_URL_MAX_AGE_S = 24 * 3600
# On every answer under /api/ (Flask's: ``api_headers``; the lane's: the answer functions below).
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
RETRY = (("Retry-After", "1"),)  # with 503 busy: the write was not committed, the page sends it again
API_HEADERS = (("Content-Type", "application/json"), *NO_STORE)
BUSY_HEADERS = (*API_HEADERS, *RETRY)

# code → (HTTP status, message shown to the candidate)
ERRORS = {
    "invalid_request": (400, "Yêu cầu không hợp lệ."),
    "invalid_token": (401, "Phiên làm bài không còn hiệu lực. Vui lòng đăng nhập lại."),
    "bad_credentials": (401, "Số báo danh hoặc ngày sinh không đúng."),
    "bad_access_code": (401, "Mã truy cập không đúng hoặc đã hết hạn. Hãy nhập mã giám thị đang hiển thị."),
    "sitting_not_started": (403, "Ca thi chưa bắt đầu."),
    "sitting_ended": (403, "Ca thi đã kết thúc."),
    "late_entry_closed": (403, "Đã hết thời gian vào phòng thi của ca này."),
    "sitting_not_open": (403, "Giám thị chưa bắt đầu ca thi. Vui lòng chờ hiệu lệnh của giám thị."),
    "room_paused": (403, "Phòng thi đang tạm dừng. Thời gian làm bài được giữ nguyên."),
    "marked_absent": (403, "Thí sinh đã được ghi vắng thi. Vui lòng báo giám thị."),
    "not_ready": (403, "Thí sinh chưa được xếp ca thi hoặc chưa có đề thi. Vui lòng báo giám thị."),
    "not_started": (403, "Bài thi chưa bắt đầu."),
    "submitted": (403, "Bài thi đã nộp."),
    "deadline_passed": (403, "Đã hết giờ làm bài."),
    "section_closed": (403, "Phần thi này đã kết thúc."),
    "last_section": (403, "Đây là phần thi cuối cùng."),
    "not_submitted": (403, "Bài thi chưa nộp."),
    "not_published": (403, "Hội đồng tuyển dụng chưa công bố kết quả."),
    "forbidden": (403, "Không được phép."),
    "not_found": (404, "Không tìm thấy."),
    "method_not_allowed": (405, "Phương thức không được hỗ trợ."),
    "active_elsewhere": (409, "Thí sinh đang đăng nhập trên máy khác. Vui lòng báo giám thị."),
    "stale_seq": (409, "Đã lưu một thay đổi mới hơn cho câu này."),
    "too_large": (413, "Dữ liệu gửi lên quá lớn."),
    "invalid_choice": (422, "Phương án không thuộc câu hỏi này."),
    "server_error": (500, "Lỗi máy chủ. Vui lòng thử lại."),
    "busy": (503, "Máy chủ chưa lưu được. Đang gửi lại…"),
}
STATUS_CODES = {400: "invalid_request", 401: "invalid_token", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large"}
ENDED_MESSAGES = {
    "moved": "Thí sinh đã được chuyển sang máy khác: phiên trên máy này đã kết thúc.",
    "replaced": "Thí sinh đã đăng nhập lại: phiên cũ đã kết thúc.",
    "logout": "Đã đăng xuất.",
    "absent": "Thí sinh đã được ghi vắng thi. Vui lòng báo giám thị.",
}


def error_body(code: str, message: str | None = None, **extra) -> tuple[int, dict]:
    """An error's HTTP status and JSON body (``{"error": {"code", "message", ...}}``)."""
    status, default = ERRORS[code]
    return status, {"error": {"code": code, "message": message or default, **extra}}


def error_response(code: str, message: str | None = None, **extra):
    status, body = error_body(code, message, **extra)
    response = jsonify(body)
    response.status_code = status
    return response


@bp.errorhandler(RoomError)
def room_error(exc: RoomError):
    get_session().commit()  # rules refuse before changing anything but what must be kept
    return error_response(exc.code, **exc.details)


@bp.errorhandler(BatchFailed)
def batch_failed(exc: BatchFailed):
    """The group commit holding this write did not commit: nothing was written; the page sends it again."""
    response = error_response("busy")
    response.headers.extend(RETRY)
    return response


@bp.before_request
def limit_body():
    request.max_content_length = MAX_BODY_BYTES


@bp.after_app_request
def api_headers(response):
    """Every answer under /api/: no-store, and JSON even for errors raised outside our views."""
    if not request.path.startswith(bp.url_prefix + "/") and request.path != bp.url_prefix:
        return response
    for name, value in NO_STORE:
        response.headers[name] = value
    if response.status_code >= 400 and response.mimetype != "application/json":
        code = STATUS_CODES.get(response.status_code, "server_error" if response.status_code >= 500
                                else "invalid_request")
        status, message = ERRORS[code]
        body = current_app.json.dumps({"error": {"code": code, "message": message}})
        response.direct_passthrough = False
        response.set_data(body)
        response.mimetype = "application/json"
    return response


# --- helpers -------------------------------------------------------------------------------------

def grace() -> timedelta:
    return timedelta(seconds=float(current_app.config["SAVE_GRACE_SECONDS"]))


def machine() -> str:
    """The lab machine: its address and a short user agent."""
    return machine_label(request.remote_addr, request.user_agent.string)


def machine_label(address: str | None, user_agent: str | None) -> str:
    agent = (user_agent or "").strip()[:80]
    return f"{address or '?'} {agent}".strip()[:200]


def json_body() -> dict:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        body = {}
    if not isinstance(body, dict):
        raise RoomError("invalid_request")
    return body


def bearer_token() -> str:
    return parse_bearer(request.headers.get("Authorization", ""))


def parse_bearer(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ("" for none)."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def candidate_facing(view):
    """Marks a view of the candidate side (tests/test_roles.py skips these: no staff role applies)."""
    view.candidate_facing = True
    return view


def candidate_token_required(view):
    """Load the live session of the bearer token, its candidate and attempt into ``g`` (once);
    a missing or dead token gets 401 ``invalid_token``. Write requests lock the attempt row."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        token = bearer_token()
        db_session = get_session()
        found = sessions.session_for_token(db_session, token, lock=request.method not in ("GET", "HEAD"))
        if found is None:
            ended = sessions.ended_session(db_session, token)
            return error_response("invalid_token", ENDED_MESSAGES.get(ended.end_reason) if ended else None)
        g.candidate_session, g.candidate, g.attempt = found
        return view(*args, **kwargs)

    return candidate_facing(wrapped)


def invalid_token_error(db_session, token: str) -> RoomError:
    ended = sessions.ended_session(db_session, token)
    return RoomError("invalid_token", message=ENDED_MESSAGES.get(ended.end_reason) if ended else None)


def candidate_writes(view):
    """A candidate's write view: its writes go through the write door (``writes.write``, ``room_write``: the
    group commit unless the route is "request"), so the request's own session only reads and never takes
    the write lock."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        token = reads_only.set(writes.batching_enabled())
        try:
            return view(*args, **kwargs)
        finally:
            reads_only.reset(token)

    return candidate_facing(wrapped)


def candidate_write(work):
    """Run ``work(db, candidate_session, candidate, attempt)`` as one write of the bearer token's candidate:
    the live session is looked up (and the attempt row locked) inside the write transaction, so a token
    ended a moment ago cannot write. Returns what ``work`` returns; RoomError and BatchFailed go up."""
    token = bearer_token()

    def job(db_session):
        found = sessions.session_for_token(db_session, token, lock=True)
        if found is None:
            raise invalid_token_error(db_session, token)
        return work(db_session, *found)

    return writes.write(job)


def image_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="exam-room-question-image")


def compact_json(value) -> bytes:
    """Compact UTF-8 JSON, keys in their natural order: a third of the bytes of ``jsonify``'s
    ASCII-escaped Vietnamese, and no key sorting."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def attempt_body(token: str, now: datetime) -> bytes:
    """GET /attempt (and the answer of start and section/next): the paper so far (no key), the saved
    answers, the clock; compact UTF-8 JSON (the whole paper: ~50 KB).

    The questions are the paper's JSON kept in memory (``paper_cache.paper_questions``: a paper and
    the versions it draws never change), spliced in as bytes; only the clock, the section states and
    the saved answers are encoded here, and each image's address is signed here. Two reads at most:
    the token's attempt and its saved answers. Raises ``invalid_token`` when the token is not live."""
    db_session = get_session()
    driver = Driver(db_session)
    attempt = attempt_view.attempt_view(driver, token)
    if attempt is None:
        raise invalid_token_error(db_session, token)
    plan = attempts.exam_sections(db_session, attempt.exam_id)
    exam = paper_cache.exam_header(db_session, attempt.exam_id)  # frozen once published: from memory
    moment = attempts.room_clock(attempt, plan, now, attempt.paused_at)  # frozen while the room is paused
    head = compact_json({
        "server_time": iso(now),
        "paused": attempt.paused_at is not None,
        "attempt": {"id": attempt.public_id, "status": attempt.status, "started_at": iso(attempt.started_at),
                    "deadline": iso(moment.deadline), "section_position": moment.position,
                    "section_deadline": iso(moment.section_deadline) if attempt.status == "in_progress" else None,
                    "last_seq": attempt.last_seq, "submitted_at": iso(attempt.submitted_at)},
        "exam": {"code": exam.code, "title": exam.title, "instructions": exam.instructions,
                 "show_score": exam.show_score},
        "sections": [{"position": s["section"].position, "code": s["section"].code, "title": s["section"].title,
                      "minutes": s["section"].minutes, "question_count": s["section"].question_count,
                      "state": s["state"], "deadline": iso(s["deadline"])}
                     for s in attempt_view.section_states(attempt, plan, moment)],
    })
    shown = attempt_view.shown_sections(attempt, moment)
    parts = paper_cache.paper_questions(db_session, attempt.paper_id, attempt.content_hash, shown,
                                        {s.id: s.position for s in plan}, driver) if shown else []
    if any(isinstance(part, str) for part in parts):  # an image's file name: its address, signed now
        signer = image_signer()
        parts = [compact_json(bp.url_prefix + "/images/" + signer.dumps(part)) if isinstance(part, str) else part
                 for part in parts]
    # No save acknowledged yet (last_seq 0, as at the synchronized start): no answers to read.
    answers = attempt_view.answers_of(driver, attempt.id) if attempt.status != "not_started" and attempt.last_seq \
        else {}
    return b"".join((head[:-1], b',"questions":[', *parts, b'],"answers":', compact_json(answers), b"}"))


def paper_json(body: bytes):
    return current_app.response_class(body, mimetype="application/json")


# --- endpoints -------------------------------------------------------------------------------------

@bp.post("/login")
@candidate_writes
def login():
    body = json_body()
    registration_no, date_of_birth, access_code = (body.get(k) for k in ("registration_no", "date_of_birth",
                                                                         "access_code"))
    if not all(isinstance(v, str) and v.strip() for v in (registration_no, date_of_birth, access_code)) \
            or len(registration_no) > 64 or len(access_code) > 32:
        raise RoomError("invalid_request")
    try:
        born = date.fromisoformat(date_of_birth.strip())
    except ValueError:
        raise RoomError("invalid_request") from None
    now, lab = utcnow(), machine()

    def work(db_session):
        result = sessions.login(db_session, registration_no=registration_no, date_of_birth=born,
                                access_code=access_code, machine=lab, now=now)
        candidate, sitting = result.candidate, result.sitting
        exam = paper_cache.exam_header(db_session, candidate.exam_id)
        return {
            "token": result.token,
            "candidate": {"registration_no": candidate.registration_no, "full_name": candidate.full_name,
                          "seat": candidate.seat},
            "exam": {"code": exam.code, "title": exam.title},
            "sitting": {"code": sitting.code, "room": sitting.room, "starts_at": iso(sitting.starts_at),
                        "ends_at": iso(sitting.ends_at)},
            "attempt": {"status": result.attempt.status},
            "server_time": iso(now),
        }

    body = writes.write(work)
    writes.warm(current_app._get_current_object())  # the lab's Start comes next: have its writer up
    return jsonify(body)


@bp.post("/logout")
@candidate_writes
def logout():
    now = utcnow()
    candidate_write(lambda db_session, candidate_session, candidate, _attempt:
                    sessions.logout(db_session, candidate_session, candidate, now=now))
    return jsonify({"ok": True})


@bp.get("/attempt")
@candidate_facing
def attempt():
    return paper_json(attempt_body(bearer_token(), utcnow()))


def room_write(name: str, token: str, now: datetime, **arguments) -> dict:
    """One of the exam room's operations (exam/room/operations.py) for the bearer token's candidate, where
    the write door sends it (exam/room/writes.py: the writer process on SQLite). The live session is read
    inside the write transaction, so a token ended a moment ago cannot write: 401 ``invalid_token``."""
    answer = writes.write_operation(name, token=token, now=now,
                                    grace_seconds=float(current_app.config["SAVE_GRACE_SECONDS"]), **arguments)
    if answer is None:
        raise invalid_token_error(get_session(), token)
    return answer


# --- the answers of the room's frequent writes: the Flask views' and the lane's (exam/room/lane.py) ----------

def room_answer(name: str, token: str, now: datetime, **arguments) -> tuple[int, bytes, tuple]:
    """``room_write`` as the client is answered: (HTTP status, compact JSON body, headers but the length).
    A refusal is committed first (what the rule recorded before refusing), as ``room_error`` does; a
    batch that did not commit answers 503 ``busy`` with ``Retry-After``. Called in an app context."""
    try:
        return 200, compact_json(room_write(name, token, now, **arguments)), API_HEADERS
    except RoomError as exc:
        get_session().commit()  # rules refuse before changing anything but what must be kept
        return error_answer(exc.code, **exc.details)
    except BatchFailed:
        status, body, _ = error_answer("busy")
        return status, body, BUSY_HEADERS


def error_answer(code: str, message: str | None = None, **extra) -> tuple[int, bytes, tuple]:
    """``error_body`` as ``room_answer`` answers it."""
    status, body = error_body(code, message, **extra)
    return status, compact_json(body), API_HEADERS


def answer_save(token: str, question_id: str, body: dict, machine: str, now: datetime) -> tuple[int, bytes, tuple]:
    """PUT /attempt/answers/<question_id>: ``body`` is the request's JSON object."""
    return room_answer("save_answer", token, now, question_id=question_id, choices=body.get("choices"),
                       seq=body.get("seq"), flagged=body.get("flagged"), machine=machine)


def answer_heartbeat(token: str, now: datetime) -> tuple[int, bytes, tuple]:
    """POST /attempt/heartbeat (its body, ``{"answered": n}``, is informative only)."""
    return room_answer("heartbeat", token, now)


def answered(status: int, body: bytes, headers: tuple):
    """A ``room_answer`` as Flask's response."""
    return current_app.response_class(body, status=status, headers=headers)


@bp.post("/attempt/start")
@candidate_writes
def start():
    now, token = utcnow(), bearer_token()
    room_write("start", token, now)
    if prefers_minimal():
        # The exam page, which loads the attempt itself next: at a synchronized start, building and
        # sending a 50 KB paper nobody reads was a third of the server's work.
        response = jsonify({"started": True, "server_time": iso(now)})
        response.headers["Preference-Applied"] = "return=minimal"
        return response
    return paper_json(attempt_body(token, now))  # read after the write's commit (401 if ended since)


def prefers_minimal() -> bool:
    """``Prefer: return=minimal`` (RFC 7240): the client does not want the representation back."""
    return any(part.strip().lower() == "return=minimal"
               for value in request.headers.getlist("Prefer") for part in value.split(","))


@bp.put("/attempt/answers/<question_id>")
@candidate_writes
def save_answer(question_id: str):
    body = json_body()
    return answered(*answer_save(bearer_token(), question_id, body, machine(), utcnow()))


@bp.post("/attempt/section/next")
@candidate_writes
def next_section():
    now, grace_period = utcnow(), grace()
    candidate_write(lambda db_session, _candidate_session, candidate, attempt: attempts.next_section(
        db_session, attempt, attempts.exam_sections(db_session, candidate.exam_id), now=now, grace=grace_period))
    return paper_json(attempt_body(bearer_token(), now))


@bp.post("/attempt/heartbeat")
@candidate_writes
def heartbeat():
    json_body()  # {"answered": n} is optional and informative only
    return answered(*answer_heartbeat(bearer_token(), utcnow()))


@bp.post("/attempt/submit")
@candidate_writes
def submit():
    if json_body().get("confirm") is not True:
        raise RoomError("invalid_request", message="Cần xác nhận nộp bài (confirm: true).")
    return answered(*room_answer("submit", bearer_token(), utcnow()))


@bp.get("/attempt/result")
@candidate_token_required
def result():
    attempt = g.attempt
    if attempt.status != "submitted":
        raise RoomError("not_submitted")
    exam = get_session().get(Exam, g.candidate.exam_id)
    score = attempt.score or {"sections": [], "passed": None}
    shown = [{"title": s["title"], "correct": s["correct"], "questions": s["questions"], "score": s["score"],
              "max_score": s["max_score"], "passed": s["passed"]} for s in score["sections"]]
    return jsonify({"show_score": exam.show_score, "sections": shown if exam.show_score else [],
                    "passed": score["passed"] if exam.show_score else None,
                    "submitted_at": iso(attempt.submitted_at), "merit": merit_standing(exam),
                    "server_time": iso(utcnow())})


def merit_standing(exam: Exam) -> dict:
    """The candidate's line on the published merit list (``{"published": false}`` before publication)."""
    found = merit_lists.standing(get_session(), exam, g.candidate.registration_no)
    if found is None:
        return {"published": False}
    row, record = found.row, found.record
    return {"published": True, "published_at": iso(record.published_at), "list_hash": record.hash,
            "post": found.merit_list.post, "quota": found.merit_list.quota, "rank": row.rank, "status": row.status,
            "status_label": row.status_label + (": " + row.reason_text if row.reasons else "")
            + (" (Hội đồng quyết định)" if row.decided_by_board else ""),
            "decided_by_board": row.decided_by_board, "total": row.total}


def _response_sheet():
    """The candidate's score report, from the published list only (403 ``not_published`` before)."""
    if g.attempt.status != "submitted":
        raise RoomError("not_submitted")
    db_session = get_session()
    exam = db_session.get(Exam, g.candidate.exam_id)
    record = merit_lists.published_list(db_session, exam)
    if record is None:
        raise RoomError("not_published")
    return score_reports.build_report(db_session, exam, g.candidate, record=record)


@bp.get("/attempt/response-sheet")
@candidate_token_required
def response_sheet():
    report = _response_sheet()
    return jsonify({**report.as_dict(), "published_at": iso(report.published_at), "server_time": iso(utcnow())})


@bp.get("/attempt/response-sheet.pdf")
@candidate_token_required
def response_sheet_pdf():
    report = _response_sheet()
    return current_app.response_class(score_reports.report_pdf(report), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="phieu-bai-lam-{report.exam_code}-{report.registration_no}.pdf"'})


@bp.get("/images/<signed>")
@candidate_facing
def question_image(signed: str):
    """A question's picture, by the signed address given with the question in GET /attempt
    (an <img> cannot send the bearer token)."""
    try:
        name = image_signer().loads(signed, max_age=IMAGE_URL_MAX_AGE_S)
    except BadSignature:
        return error_response("not_found")
    folder = Path(current_app.instance_path) / "bank-images"
    if not isinstance(name, str) or "/" in name or name.startswith(".") or not (folder / name).is_file():
        return error_response("not_found")
    response = send_from_directory(folder, name)
    response.headers["Cache-Control"] = "no-store"
    return response


bp.record_once(install_sweeper)  # the deadline sweeper (exam/room/sweeper.py) starts with the first request
