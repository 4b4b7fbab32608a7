"""The proctor console (/proctor): the room view per sitting, its live JSON, the access code for the
projector, the actions with their reasons, the door (admit cards, check-in) and the sitting's report.

Thin views: load the sitting (and the candidate) once, call one rule of ``proctor.room`` (or read the
room through ``proctor.room_state``), commit once, then redirect (post/redirect/get) or render. A
refused action (``ProctorError``) renders the page again with the reason and status 422, having
changed nothing. Every view needs the ``proctor`` or ``board`` role; the auditor reads the sitting's
record through the audit pages instead.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import segno
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from exam.accounts.auth import actor, role_required
from exam.core.db import get_session, utcnow
from exam.setup import sittings
from exam.setup.models import Candidate, Sitting
from proctor import room
from proctor.room import ProctorError
from proctor.room_state import RoomView, room_report, room_view, seats_of, sitting_phase, sittings_for_console

bp = Blueprint("proctor", __name__, url_prefix="/proctor")

ROLES = ("proctor", "board")
POLL_SECONDS = 3
INCIDENT_LIST = 50
CHECK_IN_REASON_KEY = "proctor_check_in_reason"

STATE_LABELS = {
    "not_arrived": _l("Chưa đến"),
    "checked_in": _l("Đã vào phòng"),
    "logged_in": _l("Đã đăng nhập"),
    "reading": _l("Đang đọc hướng dẫn"),
    "answering": _l("Đang làm bài"),
    "disconnected": _l("Mất kết nối"),
    "submitted": _l("Đã nộp bài"),
    "absent": _l("Vắng thi"),
}
PHASE_LABELS = {"upcoming": _l("Chưa đến giờ"), "waiting": _l("Chờ bắt đầu"), "running": _l("Đang thi"),
                "paused": _l("Đang tạm dừng"), "over": _l("Đã kết thúc")}
KIND_LABELS = {"violation": _l("Vi phạm quy chế"), "technical": _l("Sự cố kỹ thuật"), "power": _l("Mất điện"),
               "note": _l("Ghi chú")}
SUBMITTED_BY_LABELS = {"candidate": _l("Thí sinh nộp"), "deadline": _l("Hết giờ"), "proctor": _l("Giám thị thu bài")}
ACTION_LABELS = {
    "sitting.open": _l("Bắt đầu ca thi"), "sitting.pause": _l("Tạm dừng phòng thi"),
    "sitting.resume": _l("Tiếp tục phòng thi"), "attempt.extend": _l("Gia hạn thời gian"),
    "attempt.compensate": _l("Bù giờ mất kết nối"), "attempt.force_submit": _l("Thu bài"),
    "candidate.absent": _l("Ghi vắng thi"), "candidate.present": _l("Huỷ ghi vắng"),
    "candidate.admit_move": _l("Cho chuyển máy"),
}


def error_text(exc: ProctorError) -> str:
    """The refusal in the proctor's words."""
    messages = {
        "reason_required": _("Hãy ghi lý do: lý do được lưu vào nhật ký và biên bản ca thi."),
        "reason_too_long": _("Lý do quá dài (tối đa %(n)s ký tự).", n=room.MAX_REASON),
        "already_open": _("Ca thi đã được bắt đầu."),
        "too_early": _("Chưa đến giờ bắt đầu ca thi."),
        "sitting_ended": _("Ca thi đã kết thúc."),
        "not_open": _("Ca thi chưa được bắt đầu."),
        "already_paused": _("Phòng thi đang tạm dừng."),
        "not_paused": _("Phòng thi không ở trạng thái tạm dừng."),
        "not_in_sitting": _("Không có thí sinh số báo danh %(number)s trong ca thi này.",
                            number=exc.details.get("number", "")),
        "no_paper": _("Thí sinh chưa có đề thi."),
        "marked_absent": _("Thí sinh đã được ghi vắng thi."),
        "submitted": _("Thí sinh đã nộp bài."),
        "deadline_passed": _("Thí sinh đã hết giờ làm bài: bài đang được thu."),
        "bad_seconds": _("Thời gian gia hạn phải từ 1 phút đến %(n)s phút.", n=room.MAX_EXTENSION_SECONDS // 60),
        "nothing_to_compensate": _("Không có khoảng mất kết nối nào cần bù giờ."),
        "not_in_progress": _("Thí sinh không ở trạng thái đang làm bài."),
        "already_absent": _("Thí sinh đã được ghi vắng."),
        "not_absent": _("Thí sinh không bị ghi vắng."),
        "started": _("Thí sinh đã bắt đầu làm bài: không thể ghi vắng."),
        "bad_kind": _("Loại sự cố không hợp lệ."),
    }
    return messages.get(exc.code, exc.code)


@bp.context_processor
def labels():
    return {"STATE_LABELS": STATE_LABELS, "PHASE_LABELS": PHASE_LABELS, "KIND_LABELS": KIND_LABELS,
            "SUBMITTED_BY_LABELS": SUBMITTED_BY_LABELS, "ACTION_LABELS": ACTION_LABELS,
            "local_time": sittings.local_time, "duration": duration}


def duration(seconds: float | None) -> str:
    """12:05 or 1:02:05, as the candidate's timer shows it."""
    if seconds is None:
        return "—"
    total = max(0, int(seconds + 0.999))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


# --- forms ---------------------------------------------------------------------------------------

class ActionForm(FlaskForm):
    """Every action: the reason (the rule refuses an empty one) and what some actions add."""

    reason = TextAreaField(_l("Lý do"), validators=[Length(max=2000)])
    minutes = IntegerField(_l("Số phút"), validators=[Optional(), NumberRange(min=1,
                                                                            max=room.MAX_EXTENSION_SECONDS // 60)])
    seconds = IntegerField(validators=[Optional(), NumberRange(min=0, max=room.MAX_EXTENSION_SECONDS)])
    kind = SelectField(_l("Loại"), choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()], default="note")
    registration_no = StringField(_l("Số báo danh (để trống: cả phòng)"), validators=[Length(max=64)])


class CheckInForm(FlaskForm):
    registration_no = StringField(_l("Số báo danh"), validators=[Length(max=64)],
                                  render_kw={"autofocus": True, "autocomplete": "off", "inputmode": "text",
                                             "spellcheck": "false"})
    reason = StringField(_l("Lý do (ghi một lần, giữ cho các lần quét sau)"), validators=[Length(max=500)])


# --- loading -------------------------------------------------------------------------------------

def _sitting_or_404(code: str) -> Sitting:
    sitting = sittings.sitting_by_code(get_session(), code)
    if sitting is None:
        abort(404)
    return sitting


def _candidate_or_404(sitting: Sitting, number: str) -> Candidate:
    candidate = room.candidate_in_sitting(get_session(), sitting, number)
    if candidate is None:
        abort(404)
    return candidate


def _grace() -> timedelta:
    return timedelta(seconds=float(current_app.config["SAVE_GRACE_SECONDS"]))


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- JSON ----------------------------------------------------------------------------------------

def room_json(view: RoomView) -> dict:
    """What the console's script draws: every seat, the counts, the code, the latest incidents."""
    sitting, now = view.sitting, view.now
    seats = []
    for seat in view.seats:
        seats.append({
            "seat": seat.seat, "number": seat.registration_no, "name": seat.full_name, "state": seat.state,
            "status": seat.status,
            "answered": seat.answered, "section": seat.section_position if seat.status == "in_progress" else None,
            "section_left": seat.section_left, "total_left": seat.total_left,
            "heartbeat_ago": int((now - seat.last_heartbeat_at).total_seconds()) if seat.last_heartbeat_at else None,
            "machine": seat.machine, "ip": seat.ip, "extra_seconds": seat.extra_seconds,
            "checked_in": sittings.local_time(seat.checked_in_at, "%H:%M") if seat.checked_in_at else None,
            "submitted_at": sittings.local_time(seat.submitted_at, "%H:%M:%S") if seat.submitted_at else None,
            "submitted_by": str(SUBMITTED_BY_LABELS.get(seat.submitted_by, "")) if seat.submitted_by else None,
        })
    return {
        "server_time": iso(now),
        "sitting": {
            "code": sitting.code, "room": sitting.room, "phase": view.phase,
            "phase_label": str(PHASE_LABELS[view.phase]), "paused": sitting.paused_at is not None,
            "paused_since": sittings.local_time(sitting.paused_at, "%H:%M:%S") if sitting.paused_at else None,
            "opened_at": sittings.local_time(sitting.opened_at, "%H:%M") if sitting.opened_at else None,
            "ends_at": sittings.local_time(sitting.ends_at, "%H:%M"),
            "late_entry_until": sittings.local_time(view.late_entry_until, "%H:%M") if view.late_entry_until
            else None,
            "access_code": view.access_code, "code_seconds_left": view.code_seconds_left,
            "questions": view.questions,
        },
        "counts": view.counts,
        "seats": seats,
        "incidents": [{"at": sittings.local_time(incident.at, "%H:%M"), "kind": str(KIND_LABELS[incident.kind]),
                       "seat": seat, "number": number, "description": incident.description, "by": incident.by}
                      for incident, number, seat in view.incidents],
    }


def console_messages() -> dict[str, str]:
    """Texts the console's script shows."""
    return {
        **{f"state.{key}": str(value) for key, value in STATE_LABELS.items()},
        "answered": _("{n}/{total} câu"),
        "left": _("còn {time}"),
        "no_heartbeat": _("chưa có tín hiệu"),
        "extra": _("+{n} phút"),
        "section": _("Phần {n}"),
        "submitted": _("nộp {time}"),
        "checked_in": _("vào phòng {time}"),
        "code_rotates": _("Mã đổi sau {n} giây"),
        "stale": _("Mất kết nối với máy chủ — số liệu có thể chưa cập nhật."),
        "signed_out": _("Phiên đăng nhập đã hết. Hãy tải lại trang và đăng nhập."),
        "room_incident": _("Cả phòng"),
        "seat_label": _("Máy {n}"),
        "no_seat": _("Chưa xếp máy"),
        "no_incidents": _("Chưa có sự cố nào."),
        "proposal": _("Mất kết nối từ {since} đến {until} ({outage}); trong đó phòng tạm dừng {paused}; "
                      "đã bù {granted}. Đề xuất bù: {proposed}."),
        "proposal_ongoing": _("Máy vẫn đang mất kết nối: thời gian đề xuất tính đến lúc này."),
        "proposal_none": _("Không có khoảng mất kết nối nào cần bù giờ."),
        "loading": _("Đang tải…"),
        "fact.number": _("Số báo danh"),
        "fact.answered": _("Đã trả lời"),
        "fact.left": _("Thời gian còn lại"),
        "fact.extra": _("Đã gia hạn"),
        "fact.heartbeat": _("Tín hiệu gần nhất"),
        "fact.machine": _("Máy / địa chỉ IP"),
        "fact.checked_in": _("Vào phòng lúc"),
        "fact.submitted": _("Nộp bài"),
        "left_detail": _("{section} phần thi này · {total} toàn bài"),
        "minutes_n": _("{n} phút"),
        "seconds_ago": _("{n} giây trước"),
        "target_seat": _("Máy {seat} · {name} · SBD {number}"),
        "target_room": _("Cả phòng thi"),
        # the actions: title, what it does, the button
        "open.title": _("Bắt đầu ca thi"),
        "open.hint": _("Thí sinh đã đăng nhập có thể bấm “Bắt đầu làm bài” ngay. Giờ hết hạn vào phòng được tính "
                       "từ lúc này."),
        "open.submit": _("Bắt đầu ca thi"),
        "open.placeholder": _("Ví dụ: Đã kiểm tra máy và phổ biến quy chế, bắt đầu đúng giờ"),
        "pause.title": _("Tạm dừng phòng thi"),
        "pause.hint": _("Đồng hồ của mọi thí sinh dừng lại và bài làm không lưu được cho đến khi tiếp tục. Khi tiếp "
                        "tục, mọi thí sinh còn đúng thời gian như lúc tạm dừng."),
        "pause.submit": _("Tạm dừng phòng thi"),
        "pause.placeholder": _("Ví dụ: Mất điện toàn phòng"),
        "resume.title": _("Tiếp tục phòng thi"),
        "resume.hint": _("Đồng hồ chạy tiếp từ thời gian còn lại; giờ kết thúc của mọi bài thi và của ca thi lùi lại "
                         "đúng bằng thời gian tạm dừng."),
        "resume.submit": _("Tiếp tục phòng thi"),
        "resume.placeholder": _("Ví dụ: Đã có điện lại, các máy hoạt động bình thường"),
        "incident.title": _("Ghi sự cố"),
        "incident.hint": _("Sự cố được ghi vào biên bản ca thi và nhật ký hệ thống."),
        "incident.submit": _("Ghi sự cố"),
        "incident.placeholder": _("Mô tả sự việc"),
        "extend.title": _("Gia hạn thời gian"),
        "extend.hint": _("Số phút được cộng vào phần thi đang làm và vào giờ kết thúc bài thi của thí sinh này "
                         "(có thể quá giờ kết thúc ca thi)."),
        "extend.submit": _("Gia hạn"),
        "extend.placeholder": _("Ví dụ: Máy treo 5 phút, đã khởi động lại"),
        "compensate.title": _("Bù giờ mất kết nối"),
        "compensate.hint": _("Bù lại thời gian máy của thí sinh mất kết nối, tính từ tín hiệu cuối cùng trước khi "
                             "mất kết nối đến khi máy kết nối lại (không tính thời gian phòng tạm dừng)."),
        "compensate.submit": _("Bù giờ"),
        "compensate.placeholder": _("Ví dụ: Máy mất mạng, đã chuyển dây mạng"),
        "move.title": _("Cho chuyển máy"),
        "move.hint": _("Phiên trên máy cũ kết thúc ngay; thí sinh đăng nhập lại trên máy mới và làm tiếp bài đang "
                       "làm với các câu trả lời đã lưu."),
        "move.submit": _("Cho chuyển máy"),
        "move.placeholder": _("Ví dụ: Máy 12 hỏng bàn phím, chuyển sang máy dự phòng 41"),
        "force-submit.title": _("Thu bài"),
        "force-submit.hint": _("Bài thi được nộp ngay với các câu trả lời đã lưu. Không thể hoàn tác."),
        "force-submit.submit": _("Thu bài"),
        "force-submit.placeholder": _("Ví dụ: Thí sinh vi phạm quy chế, đã lập biên bản"),
        "absent.title": _("Ghi vắng thi"),
        "absent.hint": _("Thí sinh bị ghi vắng không thể đăng nhập; đề thi của thí sinh không được sử dụng."),
        "absent.submit": _("Ghi vắng thi"),
        "absent.placeholder": _("Ví dụ: Không có mặt khi hết giờ vào phòng"),
        "present.title": _("Huỷ ghi vắng"),
        "present.hint": _("Thí sinh có thể đăng nhập lại (nếu còn trong giờ vào phòng)."),
        "present.submit": _("Huỷ ghi vắng"),
        "present.placeholder": _("Ví dụ: Ghi nhầm máy"),
    }


# --- pages ---------------------------------------------------------------------------------------

@bp.route("/")
@role_required(*ROLES)
def index():
    now = utcnow()
    db_session = get_session()
    rows = [(item, sitting_phase(item, now)) for item in sittings_for_console(db_session, now)]
    return render_template("proctor/index.html", rows=rows)


def _console(sitting: Sitting, *, error: str | None = None, form: ActionForm | None = None):
    view = room_view(get_session(), sitting, utcnow(), incidents=INCIDENT_LIST)
    return render_template("proctor/console.html", sitting=sitting, exam=sitting.exam, view=view,
                           data=room_json(view), messages=console_messages(), error=error,
                           form=form or ActionForm(formdata=None), poll_seconds=POLL_SECONDS)


@bp.route("/sittings/<code>")
@role_required(*ROLES)
def console(code: str):
    return _console(_sitting_or_404(code))


@bp.route("/sittings/<code>/room.json")
@role_required(*ROLES)
def room_state(code: str):
    sitting = _sitting_or_404(code)
    return jsonify(room_json(room_view(get_session(), sitting, utcnow(), incidents=INCIDENT_LIST)))


@bp.route("/sittings/<code>/access-code")
@role_required(*ROLES)
def access_code(code: str):
    """The code alone, large, for the projector."""
    sitting = _sitting_or_404(code)
    now = utcnow()
    return render_template("proctor/access_code.html", sitting=sitting, exam=sitting.exam,
                           code=sittings.current_access_code(sitting, now),
                           seconds=sittings.seconds_until_rotation(now), paused=sitting.paused_at is not None,
                           messages=console_messages())


@bp.route("/sittings/<code>/access-code.json")
@role_required(*ROLES)
def access_code_state(code: str):
    sitting = _sitting_or_404(code)
    now = utcnow()
    return jsonify({"server_time": iso(now), "access_code": sittings.current_access_code(sitting, now),
                    "code_seconds_left": sittings.seconds_until_rotation(now),
                    "paused": sitting.paused_at is not None})


# --- actions -------------------------------------------------------------------------------------

def _act(sitting: Sitting, rule, done):
    """Check the form (CSRF), run ``rule(form)``, commit, flash ``done(outcome)``, back to the console.
    A refusal changes nothing and shows the console again with the reason (422)."""
    form = ActionForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _console(sitting, error=_("Dữ liệu không hợp lệ: %(problems)s",
                                         problems="; ".join(f"{getattr(form, name).label.text}: {', '.join(errors)}"
                                                            for name, errors in form.errors.items())),
                        form=form), 422
    db_session = get_session()
    try:
        outcome = rule(form)
    except ProctorError as exc:
        db_session.rollback()
        return _console(sitting, error=error_text(exc), form=form), 422
    db_session.commit()
    flash(done(outcome), "success")
    return redirect(url_for("proctor.console", code=sitting.code))


@bp.route("/sittings/<code>/open", methods=["POST"])
@role_required(*ROLES)
def open_sitting(code: str):
    sitting = _sitting_or_404(code)
    return _act(sitting, lambda form: room.open_sitting(get_session(), sitting, actor=actor(),
                                                         reason=form.reason.data, now=utcnow()),
                lambda _s: _("Đã bắt đầu ca thi: thí sinh có thể bấm Bắt đầu làm bài."))


@bp.route("/sittings/<code>/pause", methods=["POST"])
@role_required(*ROLES)
def pause(code: str):
    sitting = _sitting_or_404(code)
    return _act(sitting, lambda form: room.pause_room(get_session(), sitting, actor=actor(),
                                                       reason=form.reason.data, now=utcnow()),
                lambda _s: _("Đã tạm dừng phòng thi: đồng hồ của mọi thí sinh đã dừng."))


@bp.route("/sittings/<code>/resume", methods=["POST"])
@role_required(*ROLES)
def resume(code: str):
    sitting = _sitting_or_404(code)
    return _act(sitting, lambda form: room.resume_room(get_session(), sitting, actor=actor(),
                                                        reason=form.reason.data, now=utcnow(), grace=_grace()),
                lambda done: _("Phòng thi tiếp tục sau %(time)s tạm dừng; %(n)s bài thi được giữ nguyên thời gian "
                               "còn lại.", time=duration(done.seconds), n=done.moved))


@bp.route("/sittings/<code>/incidents", methods=["POST"])
@role_required(*ROLES)
def incident(code: str):
    sitting = _sitting_or_404(code)

    def rule(form):
        number = (form.registration_no.data or "").strip()
        candidate = room.candidate_in_sitting(get_session(), sitting, number) if number else None
        if number and candidate is None:
            raise ProctorError("not_in_sitting", number=number)
        return room.note_incident(get_session(), sitting, kind=form.kind.data, description=form.reason.data,
                                  actor=actor(), now=utcnow(), candidate=candidate)

    return _act(sitting, rule, lambda _i: _("Đã ghi sự cố vào biên bản ca thi."))


def _seat_action(code: str, number: str, rule, done):
    sitting = _sitting_or_404(code)
    candidate = _candidate_or_404(sitting, number)
    return _act(sitting, lambda form: rule(candidate, form), lambda outcome: done(candidate, outcome))


@bp.route("/sittings/<code>/seats/<number>/extend", methods=["POST"])
@role_required(*ROLES)
def extend(code: str, number: str):
    def rule(candidate, form):
        minutes = form.minutes.data or 0
        room.extend_time(get_session(), candidate, seconds=minutes * 60, actor=actor(), reason=form.reason.data,
                         now=utcnow(), grace=_grace())
        return minutes

    return _seat_action(code, number, rule, lambda c, minutes: _(
        "Đã gia hạn %(n)s phút cho thí sinh %(name)s (SBD %(number)s).", n=minutes, name=c.full_name,
        number=c.registration_no))


@bp.route("/sittings/<code>/seats/<number>/compensate", methods=["POST"])
@role_required(*ROLES)
def compensate(code: str, number: str):
    def rule(candidate, form):
        return room.grant_compensation(get_session(), candidate, actor=actor(), reason=form.reason.data,
                                       now=utcnow(), seconds=form.seconds.data, grace=_grace())

    return _seat_action(code, number, rule, lambda c, outcome: _(
        "Đã bù %(time)s cho thí sinh %(name)s (SBD %(number)s).", time=duration(outcome[1]), name=c.full_name,
        number=c.registration_no))


@bp.route("/sittings/<code>/seats/<number>/compensation.json")
@role_required(*ROLES)
def compensation(code: str, number: str):
    sitting = _sitting_or_404(code)
    candidate = _candidate_or_404(sitting, number)
    proposal = room.propose_compensation(get_session(), candidate, utcnow())
    if proposal is None:
        return jsonify({"proposal": None})
    return jsonify({"proposal": {
        "since": sittings.local_time(proposal.since, "%H:%M:%S"),
        "until": sittings.local_time(proposal.until, "%H:%M:%S"), "ongoing": proposal.ongoing,
        "outage_seconds": proposal.outage_seconds, "paused_seconds": proposal.paused_seconds,
        "granted_seconds": proposal.granted_seconds, "seconds": proposal.seconds,
        "outage": duration(proposal.outage_seconds), "paused": duration(proposal.paused_seconds),
        "granted": duration(proposal.granted_seconds), "proposed": duration(proposal.seconds)}})


@bp.route("/sittings/<code>/seats/<number>/force-submit", methods=["POST"])
@role_required(*ROLES)
def force_submit(code: str, number: str):
    return _seat_action(code, number, lambda c, form: room.force_submit(
        get_session(), c, actor=actor(), reason=form.reason.data, now=utcnow(), grace=_grace()),
        lambda c, _a: _("Đã thu bài của thí sinh %(name)s (SBD %(number)s).", name=c.full_name,
                        number=c.registration_no))


@bp.route("/sittings/<code>/seats/<number>/absent", methods=["POST"])
@role_required(*ROLES)
def absent(code: str, number: str):
    return _seat_action(code, number, lambda c, form: room.mark_absent(
        get_session(), c, actor=actor(), reason=form.reason.data, now=utcnow()),
        lambda c, _a: _("Đã ghi vắng thi: %(name)s (SBD %(number)s).", name=c.full_name, number=c.registration_no))


@bp.route("/sittings/<code>/seats/<number>/present", methods=["POST"])
@role_required(*ROLES)
def present(code: str, number: str):
    return _seat_action(code, number, lambda c, form: room.clear_absent(
        get_session(), c, actor=actor(), reason=form.reason.data, now=utcnow()),
        lambda c, _a: _("Đã huỷ ghi vắng: %(name)s (SBD %(number)s).", name=c.full_name, number=c.registration_no))


@bp.route("/sittings/<code>/seats/<number>/move", methods=["POST"])
@role_required(*ROLES)
def move(code: str, number: str):
    return _seat_action(code, number, lambda c, form: room.admit_move(
        get_session(), c, actor=actor(), reason=form.reason.data, now=utcnow()),
        lambda c, _n: _("Đã cho thí sinh %(name)s (SBD %(number)s) chuyển máy: phiên trên máy cũ đã kết thúc, "
                        "thí sinh đăng nhập lại trên máy mới.", name=c.full_name, number=c.registration_no))


# --- the door ------------------------------------------------------------------------------------

@bp.route("/sittings/<code>/admit-cards")
@role_required(*ROLES)
def admit_cards(code: str):
    """A4 sheets of admit cards: number, name, photo box, seat, and the number as a QR code."""
    sitting = _sitting_or_404(code)
    cards = []
    for seat in seats_of(get_session(), sitting, utcnow()):
        qr = segno.make(seat.registration_no, micro=False, error="m").svg_data_uri(scale=4, border=2)
        cards.append((seat, qr))
    return render_template("proctor/admit_cards.html", sitting=sitting, exam=sitting.exam, cards=cards)


def _check_in_page(sitting: Sitting, form: CheckInForm, *, result=None, error: str | None = None):
    seats = seats_of(get_session(), sitting, utcnow())
    arrived = sorted((s for s in seats if s.checked_in_at), key=lambda s: s.checked_in_at, reverse=True)
    return render_template("proctor/check_in.html", sitting=sitting, exam=sitting.exam, form=form, result=result,
                           error=error, arrived=arrived, total=len(seats),
                           waiting=sum(1 for s in seats if not s.present and s.absent_at is None))


@bp.route("/sittings/<code>/check-in", methods=["GET", "POST"])
@role_required(*ROLES)
def check_in(code: str):
    """The door: the proctor scans the admit card's QR code (a USB scanner types the number and Enter)
    or types the number. The reason is typed once and kept for the next scans."""
    sitting = _sitting_or_404(code)
    form = CheckInForm()
    if request.method == "GET":
        form.reason.data = session.get(CHECK_IN_REASON_KEY, "")
        last = session.pop("proctor_check_in_last", None)
        result = None
        if last:
            candidate = room.candidate_in_sitting(get_session(), sitting, last["number"])
            result = (candidate, last["already"], last["late"]) if candidate else None
        return _check_in_page(sitting, form, result=result)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _check_in_page(sitting, form, error=_("Số báo danh hoặc lý do quá dài.")), 422
    db_session = get_session()
    try:
        done = room.check_in(db_session, sitting, form.registration_no.data, actor=actor(), reason=form.reason.data,
                             now=utcnow())
    except ProctorError as exc:
        db_session.rollback()
        return _check_in_page(sitting, form, error=error_text(exc)), 422
    db_session.commit()
    session[CHECK_IN_REASON_KEY] = form.reason.data
    session["proctor_check_in_last"] = {"number": done.candidate.registration_no, "already": done.already,
                                        "late": done.late}
    return redirect(url_for("proctor.check_in", code=sitting.code))


# --- the report ----------------------------------------------------------------------------------

@bp.route("/sittings/<code>/report")
@role_required(*ROLES)
def report(code: str):
    sitting = _sitting_or_404(code)
    return render_template("proctor/report.html", sitting=sitting, exam=sitting.exam,
                           report=room_report(get_session(), sitting, utcnow()))
