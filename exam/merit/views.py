"""Board pages of the merit list (blueprint "merit", /board/merit): the list per post, the ranking rule,
outside scores, tie decisions, the key-correction preview, publication, exports and score reports.

Thin views over ``exam.merit.lists``, ``correction_preview``, ``outside_scores`` and ``score_reports``: parse the
form, load the exam once, call one rule, commit once, redirect or render. Changing anything
needs the role "board"; the auditor may read the list, the reports and the exports.
An outside-scores upload is checked first (dry run) and kept under
``instance/import-staging/`` with its SHA-256 until the board confirms it, so the confirmed
file is the checked one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from wtforms import BooleanField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from exam.accounts.auth import actor, role_required
from exam.core.db import get_session, utcnow
from exam.core.uploads import UploadStaging, upload_filename
from exam.grading.runs import latest_run
from exam.merit import correction_preview, outside_scores, score_reports
from exam.merit import lists as merit_lists
from exam.merit import ranking as merit
from exam.merit.exports import MEDIA_TYPES
from exam.merit.models import ExternalScore
from exam.merit.rule import PRESETS, MeritRejected
from exam.setup.exams import exam_or_404
from exam.setup.models import Candidate, Exam
from exam.setup.sittings import local_time

bp = Blueprint("merit", __name__, url_prefix="/board/merit")

STAGING = UploadStaging("scores")
EXPORT_FORMATS = ("csv", "xlsx", "pdf")
STATUS_BADGES = {"selected": "text-bg-success", "tie": "text-bg-warning", "not_selected": "text-bg-secondary",
                 "ineligible": "text-bg-light border"}
LIST_STATUS_LABELS = {"draft": _l("Bản dự thảo"), "published": _l("Đã công bố")}
ACTION_LABELS = {"rekey": _l("Sửa đáp án đúng thành"), "void_award": _l("Hủy câu: mọi thí sinh được điểm"),
                 "void_remove": _l("Hủy câu: không tính vào bài thi")}
CORRECTION_STATUS_LABELS = {"proposed": _l("Chờ thành viên thứ hai duyệt"), "approved": _l("Đã duyệt"),
                            "rejected": _l("Đã từ chối")}
CHANGE_LABELS = {"score": _l("Điểm xét"), "total": _l("Tổng điểm"), "rank": _l("Hạng"), "status": _l("Kết quả"),
                 "added": _l("Thêm vào danh sách"), "removed": _l("Ra khỏi danh sách")}


@bp.context_processor
def labels():
    return {"STATUS_LABELS": merit.STATUS_LABELS, "STATUS_BADGES": STATUS_BADGES, "local_time": local_time,
            "LIST_STATUS_LABELS": LIST_STATUS_LABELS, "CHANGE_LABELS": CHANGE_LABELS, "ACTION_LABELS": ACTION_LABELS,
            "CORRECTION_STATUS_LABELS": CORRECTION_STATUS_LABELS,
            "letters": lambda indices: ", ".join("ABCDEFGH"[j] for j in indices),
            "points": lambda value, decimals=2: "—" if value is None else merit.format_points(value, decimals)}


# --- forms ---------------------------------------------------------------------------------------

class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class RankingForm(FlaskForm):
    text = TextAreaField(_l("Quy tắc xếp hạng (bảng [ranking] dạng TOML)"),
                         validators=[Length(max=merit_lists.MAX_RANKING_TOML)], render_kw={"rows": 18})
    submit = SubmitField(_l("Lưu quy tắc"))


class ScoresForm(FlaskForm):
    file = FileField(_l("Tệp điểm (.xlsx hoặc .csv)"), validators=[FileRequired(message=_l("Chọn tệp cần nhập."))])
    component = StringField(_l("Thành phần điểm khi tệp không có cột component"),
                            default=outside_scores.DEFAULT_COMPONENT, validators=[Length(max=40)])
    submit = SubmitField(_l("Kiểm tra tệp (chưa ghi)"))


class ConfirmScoresForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{32}$")])
    sha256 = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    submit = SubmitField(_l("Xác nhận nhập điểm"))


class PublishForm(FlaskForm):
    confirm = BooleanField(_l("Tôi hiểu: sau khi công bố, danh sách được khóa, không xây dựng lại được; thí sinh xem "
                              "được kết quả và phiếu bài làm của mình."),
                           validators=[DataRequired(message=_l("Hãy đánh dấu xác nhận."))])
    with_ties = BooleanField(_l("Công bố với các trường hợp bằng điểm còn chờ Hội đồng quyết định"))
    submit = SubmitField(_l("Công bố danh sách"))


# --- loading -------------------------------------------------------------------------------------


def _candidate_or_404(exam: Exam, registration_no: str) -> Candidate:
    candidate = get_session().scalar(select(Candidate).where(Candidate.exam_id == exam.id,
                                                             Candidate.registration_no == registration_no))
    if candidate is None:
        abort(404)
    return candidate


def _problems(exc: Exception) -> list[tuple[str, str]]:
    if isinstance(exc, MeritRejected):
        return [(p.key, p.message) for p in exc.problems]
    return [("", str(exc))]


def _flash_refusal(message: str, exc: Exception) -> None:
    flash(message + " " + "; ".join(f"{key}: {text}" if key else text for key, text in _problems(exc)), "danger")


def _download(content: bytes, filename: str, mimetype: str):
    return current_app.response_class(content, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


# --- the list ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowsPage:
    """The rows of a post's list shown on one page: a post of 100,000 candidates is 100,000 rows, a page
    the browser cannot render at once. Ties stand above the table whichever page is shown."""

    rows: list
    number: int  # from 1
    count: int  # pages
    first: int  # the first row's place in the list, from 1
    total: int

    SIZE = 200

    @classmethod
    def of(cls, rows: list, number: int | None) -> RowsPage:
        count = max(1, -(-len(rows) // cls.SIZE))
        number = min(max(1, number or 1), count)
        start = (number - 1) * cls.SIZE
        return cls(rows[start:start + cls.SIZE], number, count, start + 1, len(rows))

@bp.route("/<code>/", endpoint="overview")
@role_required("board", "auditor")
def overview(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    record = merit_lists.current_list(db_session, exam)
    lists, problem = {}, ""
    if record is not None:
        try:
            lists = merit_lists.lists_of(record)
        except merit_lists.MeritListError as exc:
            problem = str(exc)
    chosen = merit_lists.find_post(lists, request.args.get("post", "")) or next(iter(lists.values()), None)
    shown = RowsPage.of(chosen.rows if chosen else [], request.args.get("page", 1, type=int))
    run = latest_run(db_session, exam)
    last_import = db_session.scalar(select(func.max(ExternalScore.imported_at)).where(ExternalScore.exam_id == exam.id))
    hints = []
    if record is not None and record.status == "draft":
        if (run.id if run else None) != record.grading_run_id:
            hints.append(_("Đã có lần chấm thi mới hơn bản dự thảo: hãy xây dựng lại danh sách."))
        if last_import is not None and last_import > record.created_at:
            hints.append(_("Đã nhập điểm mới sau khi xây dựng bản dự thảo: hãy xây dựng lại danh sách."))
        if record.rule != merit_lists.ranking_data(exam):
            hints.append(_("Quy tắc xếp hạng đã thay đổi sau khi xây dựng bản dự thảo: hãy xây dựng lại danh sách."))
    rule, rule_errors = merit_lists.ranking_rule(exam)
    candidates = db_session.scalar(select(func.count()).select_from(Candidate).where(Candidate.exam_id == exam.id))
    outside = db_session.execute(select(ExternalScore.component, func.count(), func.count(ExternalScore.score))
                                 .where(ExternalScore.exam_id == exam.id).group_by(ExternalScore.component)).all()
    return render_template("merit/overview.html", exam=exam, record=record, lists=lists, chosen=chosen, shown=shown,
                           problem=problem, hints=hints, run=run, rule=rule, rule_errors=rule_errors,
                           candidates=candidates, outside=outside, action_form=ActionForm(formdata=None),
                           can_change=current_user_is_board())


def current_user_is_board() -> bool:
    return current_user.has_role("board")


@bp.route("/<code>/build", methods=["POST"])
@role_required("board")
def build(code: str):
    exam = exam_or_404(get_session(), code)
    if ActionForm().validate_on_submit():
        db_session = get_session()
        started = time.perf_counter()
        try:
            record = merit_lists.build_merit_list(db_session, exam, actor(), utcnow())
        except (MeritRejected, merit_lists.MeritListError) as exc:
            db_session.rollback()
            _flash_refusal(_("Không xây dựng được danh sách:"), exc)
        else:
            ties = sum(len(ml.ties) for ml in merit_lists.lists_of(record).values())
            db_session.commit()
            flash(_("Đã xây dựng bản dự thảo (%(seconds)s giây); %(ties)s trường hợp bằng điểm chờ Hội đồng "
                    "quyết định.", seconds=f"{time.perf_counter() - started:.1f}", ties=ties), "success")
    return redirect(url_for("merit.overview", code=exam.code))


@bp.route("/<code>/export/<fmt>")
@role_required("board", "auditor")
def export(code: str, fmt: str):
    exam = exam_or_404(get_session(), code)
    if fmt not in EXPORT_FORMATS:
        abort(404)
    post = request.args.get("post", "").strip() or None
    filename = f"danh-sach-ket-qua-{exam.code}.{fmt}"
    try:
        content = merit_lists.export_list(get_session(), exam, filename, post=post)
    except merit_lists.MeritListError:
        abort(404)
    return _download(content, filename, MEDIA_TYPES["." + fmt])


# --- ties ----------------------------------------------------------------------------------------

@bp.route("/<code>/ties", methods=["GET", "POST"])
@role_required("board")
def ties(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    record = merit_lists.draft_list(db_session, exam)
    if record is None or merit_lists.published_list(db_session, exam) is not None:
        flash(_("Chỉ quyết định được trên bản dự thảo chưa công bố."), "warning")
        return redirect(url_for("merit.overview", code=exam.code))
    form = ActionForm()
    problems: list[tuple[str, str]] = []
    chosen_post = ""
    if form.validate_on_submit():
        chosen_post = request.form.get("post", "")
        decisions = {name[len("decision-"):]: value for name, value in request.form.items()
                     if name.startswith("decision-") and value}
        try:
            merit_lists.decide_tie(db_session, exam, post=chosen_post, decisions=decisions,
                                   reason=request.form.get("reason", ""), actor=actor(), now=utcnow())
        except (MeritRejected, merit_lists.MeritListError) as exc:
            db_session.rollback()
            problems = _problems(exc)
        else:
            db_session.commit()
            flash(_("Đã ghi quyết định của Hội đồng cho vị trí %(post)s.", post=chosen_post), "success")
            return redirect(url_for("merit.overview", code=exam.code, post=chosen_post))
    lists = merit_lists.lists_of(record)
    return render_template("merit/ties.html", exam=exam, lists=lists, form=form, problems=problems,
                           chosen_post=chosen_post, submitted=request.form), 422 if problems else 200


# --- key corrections -----------------------------------------------------------------------------

@bp.route("/<code>/corrections")
@role_required("board")
def corrections(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    include_proposed = request.args.get("proposed") == "1"
    preview = correction_preview.preview_key_corrections(db_session, exam, actor=actor(), now=utcnow(),
                                                         include_proposed=include_proposed)
    db_session.rollback()  # a preview writes nothing
    return render_template("merit/corrections.html", exam=exam, preview=preview, include_proposed=include_proposed,
                           results_pages="results" in current_app.blueprints)


# --- publication ---------------------------------------------------------------------------------

@bp.route("/<code>/publish", methods=["GET", "POST"])
@role_required("board")
def publish(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    if merit_lists.published_list(db_session, exam) is not None:
        flash(_("Danh sách của %(code)s đã được công bố.", code=exam.code), "info")
        return redirect(url_for("merit.overview", code=exam.code))
    record = merit_lists.draft_list(db_session, exam)
    if record is None:
        flash(_("Chưa có bản dự thảo: hãy xây dựng danh sách trước."), "warning")
        return redirect(url_for("merit.overview", code=exam.code))
    form = PublishForm()
    if form.validate_on_submit():
        try:
            merit_lists.publish_merit_list(db_session, exam, actor=actor(), now=utcnow(),
                                           allow_unresolved_ties=bool(form.with_ties.data))
        except merit_lists.MeritListError as exc:
            db_session.rollback()
            _flash_refusal(_("Không công bố được:"), exc)
            return redirect(url_for("merit.publish", code=exam.code))
        db_session.commit()
        flash(_("Đã công bố danh sách kết quả của %(code)s. Mã kiểm tra: %(hash)s", code=exam.code,
                hash=record.hash), "success")
        return redirect(url_for("merit.overview", code=exam.code))
    lists = merit_lists.lists_of(record)
    stale = merit_lists.staleness(db_session, exam, record)
    unresolved = [(post, tie) for post, ml in lists.items() for tie in ml.ties]
    return render_template("merit/publish.html", exam=exam, record=record, lists=lists, form=form, stale=stale,
                           unresolved=unresolved), 422 if form.errors else 200


# --- the ranking rule ----------------------------------------------------------------------------

@bp.route("/<code>/ranking", methods=["GET", "POST"])
@role_required("board")
def ranking(code: str):
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    locked = merit_lists.published_list(db_session, exam) is not None
    form = RankingForm()
    problems: list[tuple[str, str]] = []
    if form.validate_on_submit() and not locked:
        data, errors = merit_lists.read_ranking_toml(form.text.data or "")
        if errors:
            problems = [(e.key, e.message) for e in errors]
        else:
            try:
                merit_lists.set_ranking(db_session, exam, data, actor=actor(), now=utcnow())
            except (MeritRejected, merit_lists.MeritListError) as exc:
                db_session.rollback()
                problems = _problems(exc)
            else:
                db_session.commit()
                flash(_("Đã lưu quy tắc xếp hạng; hãy xây dựng lại danh sách."), "success")
                return redirect(url_for("merit.overview", code=exam.code))
    elif form.is_submitted() and locked:
        problems = [("", _("Danh sách đã công bố: quy tắc xếp hạng không thay đổi được nữa."))]
    if not form.is_submitted():
        form.text.data = merit_lists.ranking_toml(exam)
    rule, rule_errors = merit_lists.ranking_rule(exam)
    posts = db_session.execute(select(Candidate.post, func.count()).where(Candidate.exam_id == exam.id)
                               .group_by(Candidate.post).order_by(Candidate.post)).all()
    return render_template("merit/ranking.html", exam=exam, form=form, problems=problems, locked=locked, rule=rule,
                           rule_errors=rule_errors, posts=posts,
                           presets=PRESETS), 422 if problems else 200


# --- outside scores ------------------------------------------------------------------------------

def _scores_page(exam: Exam, form: ScoresForm, report=None, confirm_form=None, status: int = 200):
    db_session = get_session()
    outside = db_session.execute(select(ExternalScore.component, func.count(), func.count(ExternalScore.score),
                                        func.max(ExternalScore.imported_at))
                                 .where(ExternalScore.exam_id == exam.id).group_by(ExternalScore.component)).all()
    return render_template("merit/scores_import.html", exam=exam, form=form, report=report,
                           confirm_form=confirm_form, outside=outside, captions=outside_scores.CAPTIONS_VI,
                           max_score=outside_scores.DEFAULT_MAX_SCORE), status


@bp.route("/<code>/scores", methods=["GET", "POST"])
@role_required("board")
def scores_import(code: str):
    exam = exam_or_404(get_session(), code)
    form = ScoresForm()
    if not form.validate_on_submit():
        return _scores_page(exam, form, status=422 if form.is_submitted() else 200)
    upload = form.file.data
    filename = upload_filename(upload)
    content = upload.read()
    component = (form.component.data or "").strip() or outside_scores.DEFAULT_COMPONENT
    report = outside_scores.import_scores(get_session(), exam, filename, content, actor=actor(), now=utcnow(),
                                          component=component, dry_run=True)
    if not report.ok:
        return _scores_page(exam, form, report, status=422)
    token = STAGING.stage(content, {"kind": "scores", "exam": exam.code, "filename": filename,
                                    "sha256": report.file_sha256, "component": component, "actor": actor()})
    return _scores_page(exam, form, report, ConfirmScoresForm(formdata=None, token=token, sha256=report.file_sha256))


@bp.route("/<code>/scores/confirm", methods=["POST"])
@role_required("board")
def scores_confirm(code: str):
    exam = exam_or_404(get_session(), code)
    form = ConfirmScoresForm()
    back = url_for("merit.scores_import", code=exam.code)
    staged = STAGING.checked_upload(form, exam_code=exam.code, actor=actor())
    if staged is None:
        return redirect(back)
    content, meta = staged
    db_session = get_session()
    report = outside_scores.import_scores(db_session, exam, meta["filename"], content, actor=actor(), now=utcnow(),
                                          component=meta.get("component") or outside_scores.DEFAULT_COMPONENT)
    if not report.ok:
        db_session.rollback()
        STAGING.unstage(form.token.data)
        return _scores_page(exam, ScoresForm(formdata=None), report, status=422)
    db_session.commit()
    STAGING.unstage(form.token.data)
    flash(_("Đã nhập %(n)s điểm (%(absent)s vắng) từ %(file)s.", n=report.imported, absent=report.absent,
            file=meta["filename"]), "success")
    return redirect(url_for("merit.overview", code=exam.code))


@bp.route("/scores-template.csv")
@role_required("board")
def scores_template():
    return _download(outside_scores.template_csv(), "mau-nhap-diem.csv", MEDIA_TYPES[".csv"])


# --- score reports -------------------------------------------------------------------------------

def _report(code: str, registration_no: str) -> score_reports.ScoreReport:
    db_session = get_session()
    exam = exam_or_404(get_session(), code)
    candidate = _candidate_or_404(exam, registration_no)
    return score_reports.build_report(db_session, exam, candidate, record=merit_lists.current_list(db_session, exam))


@bp.route("/<code>/report/<registration_no>")
@role_required("board", "auditor")
def report(code: str, registration_no: str):
    return render_template("merit/score_report.html", report=_report(code, registration_no), exam_code=code)


@bp.route("/<code>/report/<registration_no>/pdf")
@role_required("board", "auditor")
def report_pdf(code: str, registration_no: str):
    item = _report(code, registration_no)
    return _download(score_reports.report_pdf(item), f"phieu-bai-lam-{item.exam_code}-{item.registration_no}.pdf",
                     "application/pdf")
