"""Board pages for exams, sittings and rosters (role "board").

Thin views: each parses its form, loads the exam or sitting once, calls one rule
(``exams``, ``exam_spec``, ``sittings``, ``roster``, ``papers``), commits once, then
redirects or renders. An exam is created from a TOML file (uploaded or pasted) or
from the form below; both build the same dict, read by ``exam_spec.read_spec_dict``,
and are written by ``exams.create_exam``. A roster upload is checked first (dry run)
and kept under ``instance/import-staging/`` with its SHA-256 until the board
confirms it, so the confirmed file is the checked one.
"""
from __future__ import annotations

import re
import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from exam.accounts.auth import actor, role_required
from exam.core.db import get_session, utcnow
from exam.core.uploads import UploadStaging, upload_filename
from exam.setup import candidate_lists, exams, roster, sittings
from exam.setup.exams import exam_or_404
from exam.setup.models import Candidate, Exam, Paper, Sitting
from exam.setup.papers import PaperError, generate_papers
from exam.setup.spec import SpecError, SpecRejected, read_spec_dict, read_spec_toml, spec_to_toml
from question_bank import browsing

bp = Blueprint("board", __name__, url_prefix="/board")

SECTION_ROWS = 4
CELL_ROWS = 15
MAX_SPEC_BYTES = 1024 * 1024
STAGING = UploadStaging("roster")

DIFFICULTY_LABELS = {"easy": _l("Dễ"), "medium": _l("Trung bình"), "hard": _l("Khó"), "any": _l("Mọi độ khó")}
STATUS_LABELS = {"draft": _l("Bản nháp"), "published": _l("Đã công bố")}
MULTIPLE_LABELS = {"all_or_nothing": _l("Đúng đủ mới có điểm"), "partial": _l("Tính điểm từng phần")}
DOWNLOAD_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "csv": "text/csv; charset=utf-8", "toml": "application/toml; charset=utf-8"}


@bp.context_processor
def labels():
    return {"DIFFICULTY_LABELS": DIFFICULTY_LABELS, "STATUS_LABELS": STATUS_LABELS,
            "MULTIPLE_LABELS": MULTIPLE_LABELS, "local_time": sittings.local_time}


# --- forms ---------------------------------------------------------------------------------------

class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class FixedRows(FieldList):
    """A fixed number of rows as the page shows them. WTForms 3.3 renumbers submitted rows and then
    pads the list by reading the same form data again, which repeats a row when some rows are missing
    from a submission; keeping the submitted numbers avoids that."""

    def _compact_indices(self):
        pass


class CellForm(Form):
    """One blueprint row; blank rows are skipped. Plain text fields: the spec checks the values."""

    topic = StringField(_l("Chủ đề"), validators=[Length(max=1000)])
    difficulty = SelectField(_l("Độ khó"), choices=[SelectChoice(k, v) for k, v in DIFFICULTY_LABELS.items()],
                             default="any")
    count = StringField(_l("Số câu"), validators=[Length(max=10)])


class SectionForm(Form):
    code = StringField(_l("Mã phần thi"), validators=[Length(max=40)])
    title = StringField(_l("Tên phần thi"), validators=[Length(max=200)])
    minutes = StringField(_l("Thời gian (phút)"), validators=[Length(max=10)])
    questions = StringField(_l("Số câu (để trống: cộng từ ma trận)"), validators=[Length(max=10)])
    marks_per_question = StringField(_l("Điểm mỗi câu"), default="1", validators=[Length(max=20)])
    negative_fraction = StringField(_l("Trừ điểm câu sai (phần của điểm câu)"), default="0",
                                    validators=[Length(max=20)])
    multiple = SelectField(_l("Câu nhiều đáp án"), choices=[SelectChoice(k, v) for k, v in MULTIPLE_LABELS.items()],
                           default="all_or_nothing")
    pass_ratio = StringField(_l("Tỉ lệ câu đúng để đạt"), default="0.5", validators=[Length(max=20)])
    cells = FixedRows(FormField(CellForm), min_entries=CELL_ROWS, max_entries=CELL_ROWS)


class ExamForm(FlaskForm):
    code = StringField(_l("Mã kỳ thi"), validators=[Length(max=40)])
    title = StringField(_l("Tên kỳ thi"), validators=[Length(max=300)])
    show_score = BooleanField(_l("Thí sinh xem điểm khi nộp bài"), default=True)
    forms = StringField(_l("Số mã đề cố định (0: mỗi thí sinh một đề)"), default="0", validators=[Length(max=10)])
    instructions = TextAreaField(_l("Hướng dẫn cho thí sinh"), validators=[Length(max=20_000)])
    sections = FixedRows(FormField(SectionForm), min_entries=SECTION_ROWS, max_entries=SECTION_ROWS)
    submit = SubmitField(_l("Tạo kỳ thi từ biểu mẫu"))


class ExamTomlForm(FlaskForm):
    file = FileField(_l("Tệp đặc tả (.toml)"))
    text = TextAreaField(_l("hoặc dán nội dung TOML"), validators=[Length(max=MAX_SPEC_BYTES)])
    submit = SubmitField(_l("Tạo kỳ thi từ TOML"))


class PublishForm(FlaskForm):
    confirm = BooleanField(_l("Tôi hiểu: sau khi công bố, kỳ thi và các phiên bản câu hỏi nó dùng bị khóa, "
                              "không sửa được nữa."), validators=[DataRequired(message=_l("Hãy đánh dấu xác nhận."))])
    submit = SubmitField(_l("Công bố kỳ thi"))


class SittingForm(FlaskForm):
    code = StringField(_l("Mã ca thi"), validators=[DataRequired(message=_l("Nhập mã ca thi.")), Length(max=40)])
    room = StringField(_l("Phòng thi"), validators=[DataRequired(message=_l("Nhập phòng thi.")), Length(max=100)])
    starts_at = StringField(_l("Bắt đầu (giờ Việt Nam)"),
                            validators=[DataRequired(message=_l("Nhập thời điểm bắt đầu.")), Length(max=40)],
                            render_kw={"type": "datetime-local"})
    minutes = IntegerField(_l("Thời lượng ca thi (phút)"), validators=[Optional(), NumberRange(min=1, max=24 * 60)])
    ends_at = StringField(_l("hoặc kết thúc lúc (giờ Việt Nam)"), validators=[Optional(), Length(max=40)],
                          render_kw={"type": "datetime-local"})
    seats = IntegerField(_l("Số chỗ ngồi (số máy)"), validators=[InputRequired(message=_l("Nhập số chỗ ngồi.")),
                                                                NumberRange(min=1, max=sittings.MAX_SEATS)])
    late_entry = IntegerField(_l("Cho vào muộn tối đa (phút)"), default=15,
                              validators=[InputRequired(), NumberRange(min=0, max=sittings.MAX_LATE_ENTRY_MINUTES)])
    submit = SubmitField(_l("Tạo ca thi"))


class RosterForm(FlaskForm):
    file = FileField(_l("Danh sách thí sinh (.xlsx hoặc .csv)"),
                     validators=[FileRequired(message=_l("Chọn tệp cần nhập."))])
    submit = SubmitField(_l("Kiểm tra tệp (chưa ghi)"))


class ConfirmRosterForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{32}$")])
    sha256 = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    submit = SubmitField(_l("Xác nhận nhập"))


# --- loading -------------------------------------------------------------------------------------


def _sitting_or_404(code: str) -> Sitting:
    sitting = sittings.sitting_by_code(get_session(), code)
    if sitting is None:
        abort(404)
    return sitting


def _download(content: bytes, filename: str, kind: str):
    return current_app.response_class(content, mimetype=DOWNLOAD_TYPES[kind], headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


# --- exams ---------------------------------------------------------------------------------------

@bp.route("/exams/", endpoint="exams")
@role_required("board")
def exams_list():
    db_session = get_session()
    rows = exams.list_exams(db_session)
    candidates = dict(db_session.execute(select(Candidate.exam_id, func.count()).group_by(Candidate.exam_id)).all())
    return render_template("board/exams.html", exams=rows, candidates=candidates)


def _number(text: str | None):
    """A typed number as the spec expects it: int, float (a decimal comma is accepted), None when
    blank, or the text itself so that the spec reports it."""
    value = (text or "").strip()
    if not value:
        return None
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return value


def _row_number(entry) -> int:
    """The row number the page shows for a FixedRows entry (its name ends in its index)."""
    return int(entry.name.rsplit("-", 1)[1]) + 1


def spec_data_from_form(form: ExamForm) -> tuple[dict, dict[str, object], dict[str, str]]:
    """(spec data in the TOML shape, spec key → form field, spec key → where it is on the page).

    Blank section blocks and blank blueprint rows are skipped; a section's question count
    left blank is the sum of its rows.
    """
    fields: dict[str, object] = {name: getattr(form, name) for name in ("code", "title", "show_score", "forms",
                                                                         "instructions")}
    places: dict[str, str] = {}
    data = {"code": (form.code.data or "").strip(), "title": form.title.data or "",
            "show_score": bool(form.show_score.data), "forms": _number(form.forms.data),
            "instructions": form.instructions.data or "", "sections": []}
    for s_entry in form.sections.entries:
        s_row = _row_number(s_entry)
        section_form = s_entry.form
        cells = []
        for c_entry in section_form.cells.entries:
            c_row = _row_number(c_entry)
            cell_form = c_entry.form
            if not (cell_form.topic.data or "").strip() and not (cell_form.count.data or "").strip():
                continue
            key = f"sections[{len(data['sections'])}].blueprint[{len(cells)}]"
            fields[key] = cell_form.topic
            places[key] = _("Phần %(s)s, ma trận dòng %(c)s", s=s_row, c=c_row)
            for name in ("topic", "difficulty", "count"):
                fields[f"{key}.{name}"] = getattr(cell_form, name)
                places[f"{key}.{name}"] = places[key]
            cells.append({"topic": cell_form.topic.data or "", "difficulty": cell_form.difficulty.data,
                          "count": _number(cell_form.count.data)})
        typed = [(getattr(section_form, name).data or "").strip() for name in ("code", "title", "minutes", "questions")]
        if not any(typed) and not cells:
            continue
        key = f"sections[{len(data['sections'])}]"
        places[key] = _("Phần %(s)s", s=s_row)
        questions = _number(section_form.questions.data)
        if questions is None and cells and all(isinstance(c["count"], int) for c in cells):
            questions = sum(c["count"] for c in cells)
        for name in ("code", "title", "minutes", "questions", "blueprint"):
            fields[f"{key}.{name}"] = getattr(section_form, "cells" if name == "blueprint" else name)
            places[f"{key}.{name}"] = places[key]
        for name in ("marks_per_question", "negative_fraction", "multiple", "pass_ratio"):
            fields[f"{key}.scoring.{name}"] = getattr(section_form, name)
            places[f"{key}.scoring.{name}"] = places[key]
        data["sections"].append({
            "code": (section_form.code.data or "").strip(), "title": section_form.title.data or "",
            "minutes": _number(section_form.minutes.data), "questions": questions,
            "scoring": {"marks_per_question": _number(section_form.marks_per_question.data),
                        "negative_fraction": _number(section_form.negative_fraction.data),
                        "multiple": section_form.multiple.data,
                        "pass_ratio": _number(section_form.pass_ratio.data)},
            "blueprint": cells})
    return data, fields, places


def _new_exam_page(form=None, toml_form=None, problems=(), status: int = 200):
    db_session = get_session()
    return render_template("board/exam_new.html", form=form or ExamForm(formdata=None),
                           toml_form=toml_form or ExamTomlForm(formdata=None), problems=list(problems),
                           stats=browsing.stats(db_session),
                           topics=[row.path for row in browsing.topic_tree(db_session)],
                           section_rows=SECTION_ROWS), status


def _created(exam: Exam):
    flash(_("Đã tạo kỳ thi %(code)s (bản nháp). Kiểm tra ma trận rồi công bố.", code=exam.code), "success")
    return redirect(url_for("board.exam", code=exam.code))


def _create(reading, on_errors):
    """Check a read spec against the database and write the exam, or hand every problem to on_errors."""
    db_session = get_session()
    errors = exams.check_reading(db_session, reading)
    if not errors:
        try:
            exam = exams.create_exam(db_session, reading.spec, actor(), utcnow())
        except SpecRejected as exc:
            db_session.rollback()
            errors = exc.errors
        else:
            db_session.commit()
            return _created(exam)
    return on_errors(errors)


@bp.route("/exams/new")
@role_required("board")
def exam_new():
    return _new_exam_page()


@bp.route("/exams/new/toml", methods=["POST"])
@role_required("board")
def exam_new_toml():
    toml_form = ExamTomlForm()
    if not toml_form.validate_on_submit():
        return _new_exam_page(toml_form=toml_form, problems=[("", _("Nội dung TOML quá dài."))], status=422)
    upload = toml_form.file.data
    content = upload.read(MAX_SPEC_BYTES + 1) if upload and getattr(upload, "filename", "") else \
        (toml_form.text.data or "").encode("utf-8")
    if not content.strip():
        return _new_exam_page(toml_form=toml_form, problems=[("", _("Chọn tệp .toml hoặc dán nội dung TOML."))],
                              status=422)
    if len(content) > MAX_SPEC_BYTES:
        return _new_exam_page(toml_form=toml_form, problems=[("", _("Tệp quá lớn (tối đa 1 MB)."))], status=422)
    if not toml_form.text.data:
        toml_form.text.data = content.decode("utf-8", "replace")  # shown again for fixing when refused
    return _create(read_spec_toml(content), lambda errors: _new_exam_page(
        toml_form=toml_form, problems=[(e.key, e.message) for e in errors], status=422))


@bp.route("/exams/new/form", methods=["POST"])
@role_required("board")
def exam_new_form():
    form = ExamForm()
    if not form.validate_on_submit():
        return _new_exam_page(form=form, problems=[("", _("Có ô nhập quá dài."))], status=422)
    data, fields, places = spec_data_from_form(form)

    def refused(errors: list[SpecError]):
        problems = []
        for error in errors:
            field = fields.get(error.key)
            if field is not None:
                field.errors = list(field.errors) + [error.message]
            problems.append((places.get(error.key, error.key), error.message))
        return _new_exam_page(form=form, problems=problems, status=422)

    return _create(read_spec_dict(data), refused)


@bp.route("/exams/<code>", endpoint="exam")
@role_required("board")
def exam_detail(code: str):
    db_session = get_session()
    item = exam_or_404(get_session(), code)
    counts = candidate_lists.counts_by_sitting(db_session, item)
    papers = db_session.scalar(select(func.count()).select_from(Paper).where(Paper.exam_id == item.id))
    return render_template("board/exam.html", exam=item, cells=exams.blueprint_view(db_session, item),
                           sittings=sittings.sittings_of(db_session, item), counts=counts,
                           candidates=sum(counts.values()), papers=papers, action_form=ActionForm(formdata=None))


@bp.route("/exams/<code>/spec.toml")
@role_required("board")
def exam_spec(code: str):
    item = exam_or_404(get_session(), code)
    spec = exams.spec_of(item)
    if spec is None:
        abort(404)
    return _download(spec_to_toml(spec).encode("utf-8"), f"{item.code}.toml", "toml")


@bp.route("/exams/<code>/publish", methods=["GET", "POST"])
@role_required("board")
def publish(code: str):
    db_session = get_session()
    item = exam_or_404(get_session(), code)
    if item.status == "published":
        flash(_("Kỳ thi %(code)s đã được công bố.", code=item.code), "info")
        return redirect(url_for("board.exam", code=item.code))
    form = PublishForm()
    if form.validate_on_submit():
        try:
            frozen = exams.publish_exam(db_session, item, actor=actor(), now=utcnow())
        except exams.ExamError as exc:
            db_session.rollback()
            flash(_("Không công bố được: %(reason)s", reason=str(exc)), "danger")
            return redirect(url_for("board.publish", code=code))
        db_session.commit()
        flash(_("Đã công bố kỳ thi %(code)s; %(n)s phiên bản câu hỏi đã được khóa.", code=item.code, n=frozen),
              "success")
        return redirect(url_for("board.exam", code=item.code))
    return render_template("board/publish.html", exam=item, form=form, cells=exams.blueprint_view(db_session, item),
                           shortfalls=exams.pool_shortfalls(db_session, item)), 422 if form.errors else 200


@bp.route("/exams/<code>/papers", methods=["POST"])
@role_required("board")
def papers(code: str):
    db_session = get_session()
    item = exam_or_404(get_session(), code)
    if ActionForm().validate_on_submit():
        started = time.perf_counter()
        try:
            run = generate_papers(db_session, item, actor=actor(), now=utcnow())
        except PaperError as exc:
            db_session.rollback()
            flash(_("Không tạo được đề thi: %(reason)s", reason=str(exc)), "danger")
            return redirect(url_for("board.exam", code=item.code))
        db_session.commit()
        flash(_("Đã tạo %(created)s đề, kiểm tra lại %(checked)s đề đã có (%(seconds)s giây).", created=run.created,
                checked=run.checked, seconds=f"{time.perf_counter() - started:.1f}"), "success")
    return redirect(url_for("board.exam", code=item.code))


# --- sittings ------------------------------------------------------------------------------------

SITTING_FIELDS = {"code": "code", "room": "room", "starts_at": "starts_at", "ends_at": "ends_at",
                  "minutes": "minutes", "seats": "seats", "late_entry_minutes": "late_entry"}


@bp.route("/exams/<code>/sittings/new", methods=["GET", "POST"])
@role_required("board")
def sitting_new(code: str):
    item = exam_or_404(get_session(), code)
    form = SittingForm()
    if form.validate_on_submit():
        db_session = get_session()
        starts_at = _local_field(form.starts_at)
        ends_at = _local_field(form.ends_at) if (form.ends_at.data or "").strip() else None
        if form.minutes.data is not None and ends_at is not None:
            form.ends_at.errors.append(_("Nhập thời lượng hoặc thời điểm kết thúc, không nhập cả hai."))
        if not form.errors:
            try:
                sitting = sittings.create_sitting(
                    db_session, item, code=form.code.data, room=form.room.data, starts_at=starts_at,
                    ends_at=ends_at, minutes=form.minutes.data, seats=form.seats.data,
                    late_entry_minutes=form.late_entry.data, actor=actor(), now=utcnow())
            except sittings.SittingError as exc:
                db_session.rollback()
                for name, message in exc.problems:
                    field = getattr(form, SITTING_FIELDS.get(name, "code"))
                    field.errors = list(field.errors) + [message]
            else:
                db_session.commit()
                flash(_("Đã tạo ca thi %(code)s.", code=sitting.code), "success")
                return redirect(url_for("board.sitting", code=sitting.code))
    return render_template("board/sitting_new.html", exam=item, form=form), 422 if form.errors else 200


def _local_field(field):
    try:
        return sittings.parse_local_time(field.data or "")
    except ValueError:
        field.errors = list(field.errors) + [_("Nhập ngày giờ dạng 2026-12-01 08:00.")]
        return None


@bp.route("/sittings/<code>", endpoint="sitting")
@role_required("board")
def sitting_detail(code: str):
    item = _sitting_or_404(code)
    now = utcnow()
    if now < item.starts_at:
        state = "upcoming"
    elif now < item.ends_at:
        state = "open"
    else:
        state = "closed"
    seated = candidate_lists.seat_list(get_session(), item)
    seconds = sittings.seconds_until_rotation(now)
    return render_template("board/sitting.html", sitting=item, exam=item.exam, state=state,
                           access_code=sittings.current_access_code(item, now), seconds=seconds,
                           candidates=len(seated), unseated=sum(1 for c in seated if c.seat is None),
                           waiting=candidate_lists.counts_by_sitting(get_session(), item.exam).get(None, 0),
                           action_form=ActionForm(formdata=None))


@bp.route("/sittings/<code>/seats", methods=["POST"])
@role_required("board")
def seats(code: str):
    item = _sitting_or_404(code)
    if ActionForm().validate_on_submit():
        db_session = get_session()
        try:
            run = sittings.assign_seats(db_session, item.exam, item, actor=actor(), now=utcnow())
        except sittings.SittingError as exc:
            db_session.rollback()
            flash(_("Không xếp được chỗ ngồi: %(reason)s", reason=str(exc)), "danger")
        else:
            db_session.commit()
            flash(_("Đã xếp chỗ cho %(n)s thí sinh.", n=run.seated), "success")
    return redirect(url_for("board.sitting", code=item.code))


@bp.route("/sittings/<code>/seat-list")
@role_required("board")
def seat_list(code: str):
    item = _sitting_or_404(code)
    return render_template("board/seat_list.html", sitting=item, exam=item.exam,
                           rows=candidate_lists.seat_list(get_session(), item))


@bp.route("/sittings/<code>/door-list")
@role_required("board")
def door_list(code: str):
    item = _sitting_or_404(code)
    return render_template("board/door_list.html", sitting=item, exam=item.exam,
                           rows=candidate_lists.door_list(get_session(), item))


# --- candidates ----------------------------------------------------------------------------------

@bp.route("/exams/<code>/candidates")
@role_required("board")
def candidates(code: str):
    item = exam_or_404(get_session(), code)
    return render_template("board/candidates.html", exam=item, rows=candidate_lists.candidates_of(get_session(), item))


def _roster_page(exam: Exam, form: RosterForm, report=None, confirm_form=None, status: int = 200):
    return render_template("board/roster_import.html", exam=exam, form=form, report=report,
                           confirm_form=confirm_form, columns=roster.COLUMNS, captions=roster.CAPTIONS_VI), status


@bp.route("/exams/<code>/candidates/import", methods=["GET", "POST"])
@role_required("board")
def roster_import(code: str):
    item = exam_or_404(get_session(), code)
    form = RosterForm()
    if not form.validate_on_submit():
        return _roster_page(item, form, status=422 if form.is_submitted() else 200)
    upload = form.file.data
    filename = upload_filename(upload)
    content = upload.read()
    report = roster.import_roster(get_session(), item, filename, content, actor=actor(), now=utcnow(), dry_run=True)
    if not report.ok:
        return _roster_page(item, form, report, status=422)
    token = STAGING.stage(content, {"kind": "roster", "exam": item.code, "filename": filename,
                                    "sha256": report.file_sha256, "actor": actor()})
    return _roster_page(item, form, report, ConfirmRosterForm(formdata=None, token=token, sha256=report.file_sha256))


@bp.route("/exams/<code>/candidates/import/confirm", methods=["POST"])
@role_required("board")
def roster_confirm(code: str):
    item = exam_or_404(get_session(), code)
    form = ConfirmRosterForm()
    back = url_for("board.roster_import", code=item.code)
    staged = STAGING.checked_upload(form, exam_code=item.code, actor=actor())
    if staged is None:
        return redirect(back)
    content, meta = staged
    db_session = get_session()
    report = roster.import_roster(db_session, item, meta["filename"], content, actor=actor(), now=utcnow())
    if not report.ok:
        db_session.rollback()
        STAGING.unstage(form.token.data)
        return _roster_page(item, RosterForm(formdata=None), report, status=422)
    db_session.commit()
    STAGING.unstage(form.token.data)
    flash(_("Đã nhập %(n)s thí sinh từ %(file)s.", n=report.added, file=meta["filename"]), "success")
    return redirect(url_for("board.candidates", code=item.code))


@bp.route("/roster-template.xlsx")
@role_required("board")
def roster_template_xlsx():
    return _download(roster.template_xlsx(), "mau-danh-sach-thi-sinh.xlsx", "xlsx")


@bp.route("/roster-template.csv")
@role_required("board")
def roster_template_csv():
    return _download(roster.template_csv(), "mau-danh-sach-thi-sinh.csv", "csv")
