"""Results pages of an exam: grading runs, key corrections (two people), item analysis.

Thin views over ``exam.grading.runs``, ``corrections`` and ``item_stats``: read pages are open to the board
and the auditor; every change (grade, propose, approve, reject) is the board's, a POST with
CSRF, one rule, one commit, then a redirect. Charts are SVG rendered on the server
(``exam.grading.charts``) and embedded as data URIs (the CSP allows images from ``data:``).
"""
from __future__ import annotations

import base64
import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from exam.accounts.auth import actor, role_required
from exam.core.db import get_session, utcnow
from exam.core.errors import Refused
from exam.grading import charts, corrections, item_stats, runs
from exam.grading.arrays import ResultsError
from exam.grading.models import CandidateScore, GradingRun, KeyCorrection
from exam.grading.reliability import score_distribution
from exam.setup.exams import exam_or_404
from exam.setup.models import Exam
from exam.setup.sittings import local_time
from question_bank.models import QuestionVersion

bp = Blueprint("results", __name__, url_prefix="/board/results")

ACTION_LABELS = {"rekey": _l("Sửa đáp án"), "void_award": _l("Hủy câu, cộng điểm cho mọi thí sinh"),
                 "void_remove": _l("Hủy câu, loại khỏi bài thi")}
CORRECTION_STATUS_LABELS = {"proposed": _l("Chờ duyệt"), "approved": _l("Đã duyệt"), "rejected": _l("Đã từ chối")}
FLAG_LABELS = {"negative_discrimination": _l("Độ phân biệt âm"), "low_discrimination": _l("Độ phân biệt thấp"),
               "too_easy": _l("Quá dễ"), "too_hard": _l("Quá khó"), "possible_wrong_key": _l("Nghi sai đáp án")}
SERIOUS_FLAGS = ("negative_discrimination", "possible_wrong_key")
RESULTS_MESSAGES = {
    "reason_required": _l("Hãy ghi lý do."),
    "reason_too_long": _l("Lý do quá dài."),
    "same_person": _l("Người đề xuất không thể tự duyệt: cần một thành viên Hội đồng khác duyệt."),
    "decided": _l("Đề xuất này đã được quyết định."),
    "pending": _l("Câu hỏi này đang có một đề xuất điều chỉnh chờ duyệt."),
    "unknown_question": _l("Câu hỏi này không có trong kỳ thi."),
    "unknown_version": _l("Câu hỏi này không có trong kỳ thi."),
    "ambiguous_question": _l("Kỳ thi dùng nhiều phiên bản của câu hỏi này."),
    "correct_required": _l("Hãy nhập đáp án đúng mới."),
    "correct_invalid": _l("Đáp án đúng không hợp lệ (ví dụ: B hoặc A,C; câu một đáp án chỉ có một phương án đúng)."),
    "no_change": _l("Đáp án mới trùng với đáp án hiện hành."),
    "not_published": _l("Kỳ thi chưa được công bố."),
}
CHART_LABEL_KEYS = ("score", "candidates", "mean", "difficulty", "discrimination", "difficulty_discrimination",
                    "not_flagged", "flagged", "serious")


def results_message(exc: Refused) -> str:
    message = RESULTS_MESSAGES.get(exc.code)
    return str(message) if message is not None else str(exc)


@bp.context_processor
def labels():
    return {"ACTION_LABELS": ACTION_LABELS, "CORRECTION_STATUS_LABELS": CORRECTION_STATUS_LABELS,
            "FLAG_LABELS": FLAG_LABELS, "SERIOUS_FLAGS": SERIOUS_FLAGS, "local_time": local_time,
            "letters": corrections.letters}


# --- forms ---------------------------------------------------------------------------------------

class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class ProposeForm(FlaskForm):
    question = StringField(_l("Số câu hỏi trong ngân hàng"), validators=[
        DataRequired(message=_l("Nhập số câu hỏi.")), Regexp(r"^\s*\d{1,12}\s*$", message=_l("Nhập số câu hỏi."))])
    action = SelectField(_l("Điều chỉnh"), choices=[SelectChoice(k, v) for k, v in ACTION_LABELS.items()],
                         default="rekey")
    correct = StringField(_l("Đáp án đúng mới (khi sửa đáp án; ví dụ: B hoặc A,C)"),
                          validators=[Optional(), Length(max=20)])
    reason = TextAreaField(_l("Lý do (bắt buộc)"), validators=[
        DataRequired(message=_l("Hãy ghi lý do.")), Length(max=corrections.MAX_REASON)])


class ApproveForm(FlaskForm):
    note = StringField(_l("Ghi chú khi duyệt"), validators=[Optional(), Length(max=corrections.MAX_REASON)])


class RejectForm(FlaskForm):
    reason = StringField(_l("Lý do từ chối (bắt buộc)"), validators=[
        DataRequired(message=_l("Hãy ghi lý do.")), Length(max=corrections.MAX_REASON)])


# --- loading -------------------------------------------------------------------------------------


def _correction_or_404(exam: Exam, correction_id: int) -> KeyCorrection:
    correction = get_session().get(KeyCorrection, correction_id)
    if correction is None or correction.exam_id != exam.id:
        abort(404)
    return correction


def _chart_labels() -> dict[str, str]:
    return {
        "score": _("Điểm"), "candidates": _("Số thí sinh"), "mean": _("Điểm trung bình"),
        "difficulty": _("Độ khó p (tỉ lệ trả lời đúng)"),
        "discrimination": _("Độ phân biệt r_pb (tương quan với điểm còn lại)"),
        "difficulty_discrimination": _("Độ khó và độ phân biệt của câu hỏi"), "not_flagged": _("Đạt"),
        "flagged": _("Cần xem lại"), "serious": _("Phân biệt âm / nghi sai đáp án"),
    }


def _decimal() -> str:
    return "," if str(get_locale() or "vi").startswith("vi") else "."


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _distribution(run: GradingRun | None, exam: Exam):
    """The score distribution of the latest run: from its summary, else from the stored totals."""
    if run is not None and run.summary.get("test"):
        return run.summary["test"]["distribution"]
    totals = get_session().scalars(select(CandidateScore.total).where(CandidateScore.exam_id == exam.id)).all()
    return score_distribution(totals).to_dict() if totals else None


def _histogram(distribution) -> str | None:
    if not distribution or not distribution.get("counts"):
        return None
    return _data_uri(charts.score_histogram_svg(distribution, _("Phân bố điểm của thí sinh"),
                                                labels=_chart_labels(), decimal=_decimal()))


# --- the results page ----------------------------------------------------------------------------

def _correction_views(db_session, exam: Exam) -> list[dict]:
    views = []
    found = corrections.corrections_of(db_session, exam)
    versions = {v.id: v for v in db_session.scalars(select(QuestionVersion).where(
        QuestionVersion.id.in_({c.question_version_id for c in found})))} if found else {}
    me = current_user.username
    for c in found:
        version = versions[c.question_version_id]
        views.append({"correction": c, "question_id": version.question_id, "version": version.number,
                      "old_key": version.correct_letters, "new_key": corrections.letters(c.correct or ()),
                      "can_approve": c.status == "proposed" and c.proposed_by != me and current_user.has_role("board"),
                      "can_reject": c.status == "proposed" and current_user.has_role("board")})
    return views


def _results_page(exam: Exam, propose_form: ProposeForm | None = None, status: int = 200):
    db_session = get_session()
    recent = db_session.scalars(select(GradingRun).where(GradingRun.exam_id == exam.id)
                                .order_by(GradingRun.at.desc(), GradingRun.id.desc()).limit(10)).all()
    run = recent[0] if recent else None
    correction_views = _correction_views(db_session, exam)
    approved_since = [v for v in correction_views if v["correction"].status == "approved"
                      and (run is None or v["correction"].decided_at > run.at)]
    if propose_form is None:
        propose_form = ProposeForm(formdata=None, question=request.args.get("question", "")[:12])
    return render_template(
        "results/exam.html", exam=exam, run=run, runs=recent, histogram=_histogram(_distribution(run, exam)),
        corrections=correction_views, approved_since=approved_since, propose_form=propose_form,
        action_form=ActionForm(formdata=None), approve_form=ApproveForm(formdata=None),
        reject_form=RejectForm(formdata=None), can_change=current_user.has_role("board")), status


@bp.route("/<code>", endpoint="exam")
@role_required("board", "auditor")
def exam_results(code: str):
    return _results_page(exam_or_404(get_session(), code))


@bp.route("/<code>/grade", methods=["POST"])
@role_required("board")
def grade(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    if not ActionForm().validate_on_submit():
        abort(400)
    started = time.perf_counter()
    try:
        outcome = runs.grade_exam(db_session, exam, actor=actor(), now=utcnow())
    except Refused as exc:
        db_session.rollback()
        flash(_("Không chấm được: %(reason)s", reason=results_message(exc)), "danger")
        return redirect(url_for("results.exam", code=exam.code))
    db_session.commit()
    flash(_("Đã chấm %(n)s bài thi (%(seconds)s giây); %(passed)s thí sinh đạt mọi phần thi.",
            n=outcome.candidates, passed=outcome.run.summary["passed_all"],
            seconds=f"{time.perf_counter() - started:.1f}"), "success")
    return redirect(url_for("results.exam", code=exam.code))


@bp.route("/<code>/corrections", methods=["POST"])
@role_required("board")
def propose(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    form = ProposeForm()
    if not form.validate_on_submit():
        return _results_page(exam, propose_form=form, status=422)
    try:
        version_id = corrections.version_for_question(db_session, exam, int(form.question.data.strip()))
        correct = corrections.parse_options(form.correct.data or "") if form.action.data == "rekey" else None
        correction = corrections.propose_correction(db_session, exam, version_id, form.action.data, correct,
                                                    form.reason.data, actor(), utcnow())
    except ResultsError as exc:
        db_session.rollback()
        field = {"correct_required": form.correct, "correct_invalid": form.correct, "no_change": form.correct,
                 "reason_required": form.reason, "reason_too_long": form.reason}.get(exc.code, form.question)
        field.errors = list(field.errors) + [results_message(exc)]
        return _results_page(exam, propose_form=form, status=422)
    db_session.commit()
    flash(_("Đã gửi đề xuất điều chỉnh số %(id)s; cần một thành viên Hội đồng khác duyệt.", id=correction.id),
          "success")
    return redirect(url_for("results.exam", code=exam.code))


@bp.route("/<code>/corrections/<int:correction_id>/approve", methods=["POST"])
@role_required("board")
def approve(code: str, correction_id: int):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    correction = _correction_or_404(exam, correction_id)
    form = ApproveForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        corrections.approve_correction(db_session, correction, actor=actor(), now=utcnow(), note=form.note.data or "")
    except ResultsError as exc:
        db_session.rollback()
        flash(results_message(exc), "danger")
        return redirect(url_for("results.exam", code=exam.code))
    db_session.commit()
    flash(_("Đã duyệt điều chỉnh số %(id)s. Điểm chưa thay đổi: hãy chấm lại và xem trước thay đổi trước khi công "
            "bố.", id=correction.id), "success")
    return redirect(url_for("results.exam", code=exam.code))


@bp.route("/<code>/corrections/<int:correction_id>/reject", methods=["POST"])
@role_required("board")
def reject(code: str, correction_id: int):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    correction = _correction_or_404(exam, correction_id)
    form = RejectForm()
    if not form.validate_on_submit():
        flash(_("Hãy ghi lý do từ chối."), "danger")
        return redirect(url_for("results.exam", code=exam.code))
    try:
        corrections.reject_correction(db_session, correction, actor=actor(), reason=form.reason.data, now=utcnow())
    except ResultsError as exc:
        db_session.rollback()
        flash(results_message(exc), "danger")
        return redirect(url_for("results.exam", code=exam.code))
    db_session.commit()
    flash(_("Đã từ chối đề xuất điều chỉnh số %(id)s.", id=correction.id), "info")
    return redirect(url_for("results.exam", code=exam.code))


@bp.route("/<code>/corrections/<int:correction_id>/preview")
@role_required("board", "auditor")
def preview(code: str, correction_id: int):
    exam = exam_or_404(get_session(), code)
    correction = _correction_or_404(exam, correction_id)
    try:
        changes = runs.preview_corrections(get_session(), exam, [correction])
    except ResultsError as exc:
        flash(results_message(exc), "danger")
        return redirect(url_for("results.exam", code=exam.code))
    views = _correction_views(get_session(), exam)
    view = next(v for v in views if v["correction"].id == correction.id)
    return render_template("results/preview.html", exam=exam, view=view, changes=changes)


# --- item analysis -------------------------------------------------------------------------------

ITEM_COLUMNS = ("question", "section", "n", "p", "rpb", "d", "omitted", "flags")


@bp.route("/<code>/items")
@role_required("board", "auditor")
def items(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    sort = request.args.get("sort", "question")
    sort = sort if sort in ITEM_COLUMNS else "question"
    descending = request.args.get("dir") == "desc"
    rows = item_stats.stored_items(db_session, exam, sort=sort, descending=descending)
    run = runs.latest_run(db_session, exam)
    test = run.summary.get("test") if run is not None else None
    scatter = None
    if rows:
        points = [{**r.stats, "item_id": r.question_id} for r in rows]
        scatter = _data_uri(charts.difficulty_discrimination_svg(points, labels=_chart_labels(), decimal=_decimal()))
    max_options = max([len(r.stats.get("options", ())) for r in rows] + [0])
    return render_template("results/items.html", exam=exam, rows=rows, run=run, test=test, sort=sort,
                           descending=descending, histogram=_histogram(test["distribution"] if test else None),
                           scatter=scatter, max_options=max_options, option_letters=corrections.OPTION_LETTERS,
                           can_change=current_user.has_role("board"))


@bp.route("/<code>/items.xlsx")
@role_required("board", "auditor")
def items_xlsx(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    run = runs.latest_run(db_session, exam)
    content = item_stats.items_workbook(exam, item_stats.stored_items(db_session, exam),
                                        run.summary.get("test") if run is not None else None)
    return content, 200, {
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Content-Disposition": f'attachment; filename="{exam.code}-phan-tich-cau-hoi.xlsx"'}
