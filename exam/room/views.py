"""The candidate's pages: sign-in, instructions, the exam, review, result (driven by the JSON API).

Each page is an HTML shell: the candidate signs in through ``POST /api/v1/login`` and the
bearer token lives in the tab's ``sessionStorage``, so the server has nothing about the
candidate to render here. The shell carries the interface texts (``#i18n``) and the
addresses the scripts need (``#exam-room-config``) as JSON data blocks; everything about
the attempt comes from the API (docs/exam-room-contract.md). Lab machines are shared:
every page is sent with ``Cache-Control: no-store``.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _

bp = Blueprint("exam_room", __name__, url_prefix="/thi")


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def candidate_facing(view):
    """Mark a candidate page: no staff role, so the staff role walk (tests/test_roles.py) skips it."""
    view.candidate_facing = True
    return view


def shell(template: str, page: str) -> str:
    return render_template(template, page=page, config=page_config(), messages=script_messages())


def page_config() -> dict:
    """What the scripts need to know about the server: addresses and the exam centre's time zone."""
    return {
        "api": request.script_root + "/api/v1",
        "pages": {name: url_for(f"exam_room.{name}") for name in ("sign_in", "instructions", "exam", "review",
                                                                   "result")},
        "timezone": current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Ho_Chi_Minh"),
        "heartbeat_seconds": float(current_app.config.get("HEARTBEAT_SECONDS", 20)),
    }


def script_messages() -> dict[str, str]:
    """Texts the scripts show, translated here so the catalogue holds them like any other.
    ``{name}`` placeholders are filled in by the script."""
    return {
        # save status
        "saved": _("Đã lưu"),
        "saving": _("Đang lưu…"),
        "offline": _("Mất kết nối — câu trả lời được giữ lại và sẽ gửi khi có mạng"),
        "pending_count": _("{n} câu chờ gửi"),
        "answer_saved": _("Đã lưu câu trả lời"),
        "answer_saving": _("Đang lưu câu trả lời…"),
        "answer_waiting": _("Chưa gửi được — câu trả lời được giữ lại và sẽ gửi khi có mạng"),
        "answer_none": _("Chưa trả lời"),
        # question
        "question_of": _("Câu {n}/{total}"),
        "choose_all": _("Chọn tất cả phương án đúng"),
        "choose_one": _("Chọn một phương án"),
        "flag": _("Đánh dấu xem lại"),
        "flagged": _("Đã đánh dấu xem lại"),
        "keys_help": _("Phím tắt: A–F hoặc 1–6 chọn phương án · ← → chuyển câu · F đánh dấu xem lại"),
        "keys_help_shift": _("Phím tắt: A–F hoặc 1–6 chọn phương án · ← → chuyển câu · Shift+F đánh dấu xem lại"),
        "read_only": _("Phần thi này đã kết thúc: chỉ xem, không sửa được."),
        "image_alt": _("Hình minh họa của câu hỏi"),
        # navigator and review
        "nav_item": _("Câu {n}: {state}"),
        "state_answered": _("đã trả lời"),
        "state_unanswered": _("chưa trả lời"),
        "state_flagged": _("đánh dấu xem lại"),
        "state_current": _("đang xem"),
        "section_label": _("Phần {n}: {title}"),
        "section_open": _("Đang làm · {answered}/{count} câu đã trả lời"),
        "section_closed": _("Đã kết thúc · {answered}/{count} câu đã trả lời"),
        "section_upcoming": _("Chưa mở · {count} câu · {minutes} phút"),
        "review_answered": _("Đã trả lời: {letters}"),
        "review_unanswered": _("Chưa trả lời"),
        "review_flagged": _("Xem lại"),
        "review_pending": _("Chờ gửi"),
        "question_short": _("Câu {n}"),
        "review_go": _("Mở câu {n}"),
        "review_summary": _("Đã trả lời {answered}/{total} câu · {flagged} câu đánh dấu xem lại"),
        # time
        "minutes": _("{n} phút"),
        "time_left_total": _("Toàn bài còn {time}"),
        "five_minutes": _("Còn 5 phút cho phần thi này."),
        "one_minute": _("Còn 1 phút cho phần thi này."),
        "section_over": _("Hết giờ phần thi. Đang chuyển sang phần tiếp theo…"),
        "exam_over": _("Hết giờ làm bài. Bài thi được nộp với các câu trả lời đã lưu…"),
        "section_moved_on": _("Phần thi trước đã kết thúc. Bắt đầu phần {n}: {title}."),
        "paused_left": _("Thời gian còn lại của phần thi: {time} (đã dừng)"),
        "resumed": _("Phòng thi tiếp tục. Đồng hồ chạy tiếp từ thời gian còn lại."),
        # section close and submit
        "end_section_title": _("Kết thúc phần thi này?"),
        "end_section_body": _("Sau khi kết thúc phần {n}: {title}, bạn không thể quay lại sửa câu trả lời "
                              "của phần này. Phần tiếp theo bắt đầu ngay."),
        "end_section_ok": _("Kết thúc phần thi"),
        "unanswered_warning": _("Còn {n} câu chưa trả lời."),
        "upcoming_warning": _("Các phần thi chưa làm ({titles}) sẽ không được tính điểm nếu nộp bài bây giờ."),
        "submit_title": _("Nộp bài"),
        "confirm_submit": _("Bạn chắc chắn muốn nộp bài? Sau khi nộp không thể sửa."),
        "wait_for_saves": _("Còn câu trả lời chưa gửi được lên máy chủ. Hãy chờ kết nối lại rồi thử lại."),
        "submit_ok": _("Nộp bài"),
        "submitting": _("Đang nộp bài…"),
        # sign-in and session
        "bad_date": _("Nhập ngày sinh theo dạng ngày/tháng/năm, ví dụ 05/09/1995."),
        "missing_fields": _("Hãy nhập đủ số báo danh, ngày sinh và mã truy cập."),
        "signing_in": _("Đang đăng nhập…"),
        "session_ended": _("Phiên làm bài trên máy này đã kết thúc (đăng xuất, hoặc đã chuyển sang máy khác). "
                           "Hãy đăng nhập lại hoặc báo giám thị."),
        "network": _("Không kết nối được với máy chủ. Hãy thử lại hoặc báo giám thị."),
        "generic": _("Đã có lỗi xảy ra. Hãy thử lại hoặc báo giám thị."),
        # errors named by the API's codes
        "error.bad_credentials": _("Số báo danh hoặc ngày sinh không đúng."),
        "error.bad_access_code": _("Mã truy cập không đúng hoặc đã hết hạn. Hãy nhập mã giám thị đang hiển thị."),
        "error.sitting_not_started": _("Ca thi chưa bắt đầu. Hãy chờ giám thị thông báo."),
        "error.late_entry_closed": _("Đã hết thời gian được vào phòng thi muộn. Hãy báo giám thị."),
        "error.sitting_not_open": _("Giám thị chưa bắt đầu ca thi. Hãy chờ hiệu lệnh rồi bấm “Bắt đầu làm bài”."),
        "error.room_paused": _("Phòng thi đang tạm dừng. Thời gian làm bài của bạn được giữ nguyên."),
        "error.marked_absent": _("Bạn đã được ghi vắng thi. Hãy báo giám thị."),
        "error.active_elsewhere": _("Bạn đang đăng nhập ở một máy khác. Hãy báo giám thị để được chuyển máy."),
        "error.invalid_request": _("Thông tin chưa hợp lệ. Hãy kiểm tra lại."),
        "error.deadline_passed": _("Đã hết giờ làm bài: thay đổi này không được lưu."),
        "error.section_closed": _("Phần thi đã kết thúc: thay đổi này không được lưu."),
        "error.submitted": _("Bài thi đã được nộp."),
        "error.not_submitted": _("Bài thi chưa được nộp."),
        # result
        "submitted_at": _("Bài thi đã được nộp lúc {time}. Bài làm không thể sửa nữa."),
        "printed_at": _("In lúc {time}"),
        "passed": _("Đạt"),
        "failed": _("Không đạt"),
        "score_of": _("{score}/{max}"),
        "correct_of": _("{correct}/{questions}"),
        "sheet_failed": _("Chưa tải được phiếu bài làm. Hãy thử lại."),
    }


@bp.route("/")
@candidate_facing
def sign_in():
    return shell("exam_room/sign_in.html", "sign-in")


@bp.route("/huong-dan")
@candidate_facing
def instructions():
    return shell("exam_room/instructions.html", "instructions")


@bp.route("/bai-thi")
@candidate_facing
def exam():
    return shell("exam_room/exam.html", "exam")


@bp.route("/xem-lai")
@candidate_facing
def review():
    return shell("exam_room/review.html", "review")


@bp.route("/ket-qua")
@candidate_facing
def result():
    return shell("exam_room/result.html", "result")
