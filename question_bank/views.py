"""The bank pages, for the exam board only: browse, question form with preview, history, import, topics, export.

Each view parses its form, loads and checks the object once, calls one rule of
``question_bank.bank`` or ``importer``, commits once, then redirects or renders.
Files live in the instance folder: uploaded images under ``bank-images/`` named by
their SHA-256 (so a stored name always means the same picture), and import files
under ``import-staging/`` between the dry run and the board's confirmation, so the
confirmed file is the checked one, never a second upload.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from exam.accounts.auth import actor, role_required
from exam.core.db import get_session, utcnow
from exam.core.uploads import UploadStaging, upload_filename
from exam.grading.item_stats import question_performance
from question_bank import bank, browsing, importer
from question_bank.formats import export_file, template_csv, template_xlsx
from question_bank.forms import (
    DIFFICULTY_LABELS,
    MAX_IMAGE_BYTES,
    OPTION_LETTERS,
    STATUS_LABELS,
    TYPE_LABELS,
    ConfirmImportForm,
    ImportForm,
    QuestionForm,
    StatusForm,
    TopicCreateForm,
    TopicRenameForm,
    choices,
    image_kind,
)
from question_bank.models import Question, Topic

bp = Blueprint("bank", __name__, url_prefix="/bank")

# Refusals of the bank rules, in the board's language (the rules speak English for the CLI and logs).
BANK_MESSAGES = {
    "topic_invalid": _l("Đường dẫn chủ đề không hợp lệ."),
    "topic_required": _l("Nhập chủ đề."),
    "topic_too_long": _l("Đường dẫn chủ đề quá dài (tối đa 1000 ký tự)."),
    "topic_same": _l("Đường dẫn mới trùng với đường dẫn cũ."),
    "topic_under_itself": _l("Không thể chuyển chủ đề vào bên trong chính nó."),
    "topic_exists": _l("Đã có chủ đề với đường dẫn này."),
    "note_too_long": _l("Ghi chú quá dài (tối đa 500 ký tự)."),
    "status_unchanged": _l("Câu hỏi đã ở trạng thái này."),
    "no_change": _l("Không có thay đổi nào so với phiên bản hiện tại."),
    "stale": _l("Trong lúc bạn sửa, người khác đã lưu một phiên bản mới của câu hỏi này. Xem lịch sử; "
                "nếu vẫn muốn lưu nội dung của bạn, bấm Lưu lần nữa."),
}


def bank_message(exc: bank.BankError) -> str:
    message = BANK_MESSAGES.get(exc.code)
    if message is None:
        return str(exc)
    if exc.code == "topic_invalid":
        return f"{message} ({exc})"
    return str(message)


UPLOADED_IMAGE = re.compile(r"^[0-9a-f]{64}\.(png|jpg)$")
STAGING = UploadStaging("bank")
DOWNLOAD_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@bp.context_processor
def labels():
    return {"DIFFICULTY_LABELS": DIFFICULTY_LABELS, "TYPE_LABELS": TYPE_LABELS, "STATUS_LABELS": STATUS_LABELS,
            "OPTION_LETTERS": OPTION_LETTERS}


def _question_or_404(question_id: int) -> Question:
    question = get_session().get(Question, question_id)
    if question is None:
        abort(404)
    return question


def _topics() -> list[Topic]:
    return list(get_session().scalars(select(Topic).order_by(Topic.path)))


# --- browse --------------------------------------------------------------------------------------

@bp.route("/")
@role_required("board")
def questions():
    args = request.args
    filters = browsing.BrowseFilters(
        topic_id=args.get("topic", type=int),
        difficulty=args.get("difficulty", "") if args.get("difficulty") in DIFFICULTY_LABELS else "",
        qtype=args.get("type", "") if args.get("type") in TYPE_LABELS else "",
        tag=args.get("tag", "").strip()[:64],
        status=args.get("status", "") if args.get("status") in STATUS_LABELS else "",
        text=args.get("q", "").strip()[:200],
    )
    after = args.get("after", type=int)
    db_session = get_session()
    page = browsing.browse(db_session, filters, after=after, page_size=int(current_app.config["BANK_PAGE_SIZE"]))
    query_args = {"topic": filters.topic_id or "", "difficulty": filters.difficulty, "type": filters.qtype,
                  "tag": filters.tag, "status": filters.status, "q": filters.text}
    query_args = {key: value for key, value in query_args.items() if value}
    return render_template("question_bank/browse.html", page=page, filters=filters, after=after,
                           query_args=query_args, topics=browsing.topic_tree(db_session),
                           tags=browsing.all_tags(db_session))


# --- one question --------------------------------------------------------------------------------

@bp.route("/questions/<int:question_id>")
@role_required("board")
def question(question_id: int):
    db_session = get_session()
    item = _question_or_404(question_id)
    versions = browsing.history(db_session, item)
    return render_template("question_bank/question.html", question=item, current=item.current_version,
                           versions=versions, entries=browsing.audit_entries(db_session, item.id),
                           near=bank.find_near_duplicates(db_session, item.current_version.text, exclude_id=item.id),
                           status_form=StatusForm(), performance=question_performance(db_session, item.id))


@bp.route("/questions/<int:question_id>/history")
@role_required("board")
def history(question_id: int):
    db_session = get_session()
    item = _question_or_404(question_id)
    return render_template("question_bank/history.html", question=item,
                           versions=list(reversed(browsing.history(db_session, item))),
                           entries=browsing.audit_entries(db_session, item.id))


@bp.route("/questions/<int:question_id>/retire", methods=["POST"])
@role_required("board")
def retire(question_id: int):
    return _change_status(question_id, bank.retire_question, _("Đã ngừng dùng câu hỏi %(id)s.", id=question_id))


@bp.route("/questions/<int:question_id>/restore", methods=["POST"])
@role_required("board")
def restore(question_id: int):
    return _change_status(question_id, bank.restore_question, _("Đã dùng lại câu hỏi %(id)s.", id=question_id))


def _change_status(question_id: int, rule, done: str):
    item = _question_or_404(question_id)
    form = StatusForm()
    if not form.validate_on_submit():
        problems = "; ".join(f"{label}: {message}" if label else message for label, message in _problem_list(form))
        flash(_("Yêu cầu không hợp lệ: %(problem)s", problem=problems), "danger")
        return redirect(url_for("bank.question", question_id=question_id))
    db_session = get_session()
    try:
        rule(db_session, item, actor=actor(), now=utcnow(), note=form.note.data or "")
    except bank.BankError as exc:
        db_session.rollback()
        flash(bank_message(exc), "warning")
    else:
        db_session.commit()
        flash(done, "success")
    return redirect(url_for("bank.question", question_id=question_id))


# --- create and edit -----------------------------------------------------------------------------

@bp.route("/questions/new", methods=["GET", "POST"])
@role_required("board")
def new_question():
    return _question_form(None)


@bp.route("/questions/<int:question_id>/edit", methods=["GET", "POST"])
@role_required("board")
def edit_question(question_id: int):
    return _question_form(_question_or_404(question_id))


def _fill_from_version(form: QuestionForm, version) -> None:
    form.topic_id.data = str(version.topic_id)
    form.difficulty.data = version.difficulty
    form.qtype.data = version.qtype
    form.text.data = version.text
    for entry, option in zip(form.options.entries, version.options, strict=False):
        entry.form.text.data = option["text"]
        entry.form.correct.data = bool(option["correct"])
    form.explanation.data = version.explanation
    form.source.data = version.source
    form.tags.data = ", ".join(version.tags or [])
    form.image_name.data = version.image
    form.based_on.data = str(version.id)


def _question_form(item: Question | None):
    db_session = get_session()
    topics = _topics()
    paths_by_id = {str(topic.id): topic.path for topic in topics}
    form = QuestionForm()
    form.topic_id.choices = choices([("", _("— chọn chủ đề —"))] + [(str(t.id), t.path) for t in topics])
    current = item.current_version if item else None
    if request.method == "GET" and current is not None:
        _fill_from_version(form, current)

    preview = None
    status = 200
    if form.is_submitted():
        preview, saved = _handle_question_post(form, item, paths_by_id)
        if saved is not None:
            return saved
        if form.errors:
            status = 422
    text = form.text.data or (current.text if current else "")
    near = bank.find_near_duplicates(db_session, text, exclude_id=item.id if item else None) if text else []
    preview_key = ",".join(OPTION_LETTERS[i] for i, o in enumerate(preview.options) if o.correct) if preview else ""
    return render_template("question_bank/form.html", form=form, question=item, current=current, preview=preview,
                           preview_key=preview_key, near=near, problems=_problem_list(form)), status


def _handle_question_post(form: QuestionForm, item: Question | None, paths_by_id: dict[str, str]):
    """(preview question or None, redirect response when saved or None); errors end up on the form."""
    if not form.validate():
        return None, None
    if item is not None and form.save.data and not (form.note.data or "").strip():
        form.note.errors.append(_("Ghi lý do sửa câu hỏi."))
        return None, None
    image = _image_for(form, item)
    if form.errors:
        return None, None
    filled = form.filled_options()
    draft = bank.QuestionDraft(
        topic=form.topic_path(paths_by_id), difficulty=form.difficulty.data, type=form.qtype.data,
        text=form.text.data or "", options=[(text, correct) for _row, text, correct in filled],
        explanation=form.explanation.data or "", source=form.source.data or "",
        tags=[tag for tag in (form.tags.data or "").split(",") if tag.strip()], image=image)
    parsed, errors = bank.check_question(draft)
    if errors:
        _attach(form, errors, [row for row, _text, _correct in filled])
        return None, None
    if not form.save.data:
        return parsed, None  # "Preview" (or Enter in a field): show, never save
    db_session = get_session()
    now = utcnow()
    try:
        if item is None:
            item = bank.create_question(db_session, draft, actor=actor(), now=now, note=form.note.data or "")
            message = _("Đã tạo câu hỏi %(id)s.", id=item.id)
        else:
            based_on = int(form.based_on.data) if (form.based_on.data or "").isdigit() else None
            version = bank.edit_question(db_session, item, draft, actor=actor(), now=now, note=form.note.data or "",
                                         based_on=based_on)
            message = _("Đã lưu phiên bản %(n)s của câu hỏi %(id)s.", n=version.number, id=item.id)
    except bank.BankError as exc:
        db_session.rollback()
        if exc.code == "stale":
            form.based_on.data = str(item.current_version_id)  # a second Save is a conscious override
        _add_error(form, exc.field, bank_message(exc))
        return None, None
    db_session.commit()
    flash(message, "success")
    return None, redirect(url_for("bank.question", question_id=item.id))


def _add_error(form: QuestionForm, name: str, message: str) -> None:
    """Put a message on the field an import-rule error names; unnamed ones go to the form as a whole."""
    fields = {"topic": form.new_topic, "difficulty": form.difficulty, "type": form.qtype, "text": form.text,
              "explanation": form.explanation, "source": form.source, "tags": form.tags, "image": form.image,
              "note": form.note, "options": form.options, "correct": form.options}
    field = fields.get(name)
    if field is None:
        form.form_errors.append(message)
    else:
        field.errors = list(field.errors) + [message]


def _attach(form: QuestionForm, errors, rows: list[int]) -> None:
    """Import-rule errors onto the form; option_b means the second filled row, whichever row that was."""
    for error in errors:
        match = re.fullmatch(r"option_([a-f])", error.field or "")
        if match and "abcdef".index(match.group(1)) < len(rows):
            row = rows["abcdef".index(match.group(1))]
            entry = form.options.entries[row]
            entry.form.text.errors = list(entry.form.text.errors) + [error.reason]
            _add_error(form, "options", _("Phương án %(letter)s: %(reason)s",
                                          letter=OPTION_LETTERS[row], reason=error.reason))
        else:
            _add_error(form, error.field, error.reason)


def _problem_list(form) -> list[tuple[str, str]]:
    """(field label, message) for the summary at the top of the form."""
    problems = []
    for name, errors in form.errors.items():
        field = getattr(form, name, None) if name else None
        label = field.label.text if field is not None else ""
        for message in errors:
            if isinstance(message, dict) or isinstance(message, list):
                continue  # option rows: summarised by the options field's own message
            problems.append((label, str(message)))
    return problems


def _image_for(form: QuestionForm, item: Question | None) -> str:
    """The image name of the question as submitted: a new upload, the kept one, or none."""
    upload = form.image.data
    if upload and getattr(upload, "filename", ""):
        data = upload.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            form.image.errors.append(_("Hình ảnh quá lớn (tối đa 2 MB)."))
            return ""
        kind = image_kind(data)
        if kind is None:
            form.image.errors.append(_("Chỉ nhận ảnh PNG hoặc JPEG."))
            return ""
        name = store_image(data, kind)
        form.image_name.data = name
        return name
    if form.remove_image.data:
        form.image_name.data = ""
        return ""
    name = (form.image_name.data or "").strip()
    if not name:
        return ""
    kept = item.current_version.image if item is not None else ""
    if name == kept or (UPLOADED_IMAGE.match(name) and (image_dir() / name).is_file()):
        return name
    form.image.errors.append(_("Hình ảnh không còn trên máy chủ; vui lòng tải lên lại."))
    form.image_name.data = ""
    return ""


def image_dir() -> Path:
    return Path(current_app.instance_path) / "bank-images"


def store_image(data: bytes, kind: str) -> str:
    """Write the image as <sha256>.<ext> (once; the same bytes always get the same name).

    Written before the question is committed: a picture without a question is harmless,
    a question pointing at a missing picture is not.
    """
    folder = image_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{hashlib.sha256(data).hexdigest()}.{kind}"
    target = folder / name
    if not target.exists():
        partial = folder / f".{name}.{secrets.token_hex(4)}.part"
        partial.write_bytes(data)
        os.replace(partial, target)
    return name


@bp.route("/images/<name>")
@role_required("board")
def image(name: str):
    if name.startswith("."):
        abort(404)
    return send_from_directory(image_dir(), name)


# --- import --------------------------------------------------------------------------------------

def _import_page(form: ImportForm, report=None, confirm_form=None, status: int = 200):
    return render_template("question_bank/import.html", form=form, report=report, confirm_form=confirm_form,
                           topics=_topics(), problems=_problem_list(form)), status


@bp.route("/import", methods=["GET", "POST"])
@role_required("board")
def import_file():
    form = ImportForm()
    if not form.validate_on_submit():
        return _import_page(form, status=422 if form.is_submitted() else 200)
    upload = form.file.data
    filename = upload_filename(upload)
    content = upload.read()
    default_topic = (form.default_topic.data or "").strip() or None
    report = importer.import_file(get_session(), filename, content, actor=actor(), now=utcnow(),
                                  default_topic=default_topic, dry_run=True)
    if not report.ok:
        return _import_page(form, report, status=422)
    token = STAGING.stage(content, {"filename": filename, "sha256": report.file_sha256, "default_topic": default_topic,
                                    "actor": actor(), "staged_at": utcnow().isoformat()})
    confirm_form = ConfirmImportForm(formdata=None, token=token, sha256=report.file_sha256)
    return _import_page(form, report, confirm_form)


@bp.route("/import/confirm", methods=["POST"])
@role_required("board")
def import_confirm():
    form = ConfirmImportForm()
    staged = STAGING.checked_upload(form, actor=actor())
    if staged is None:
        return redirect(url_for("bank.import_file"))
    content, meta = staged
    db_session = get_session()
    report = importer.import_file(db_session, meta["filename"], content, actor=actor(), now=utcnow(),
                                  default_topic=meta.get("default_topic"))
    if not report.ok:
        db_session.rollback()
        STAGING.unstage(form.token.data)
        return _import_page(ImportForm(formdata=None), report, status=422)
    db_session.commit()
    STAGING.unstage(form.token.data)
    flash(_("Đã nhập %(n)s câu hỏi từ %(file)s (câu %(first)s đến %(last)s).", n=report.added,
            file=meta["filename"], first=report.first_id or "-", last=report.last_id or "-"), "success")
    return redirect(url_for("bank.questions"))


def _download(content: bytes, filename: str, fmt: str):
    return current_app.response_class(content, mimetype=DOWNLOAD_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/import/template.xlsx")
@role_required("board")
def import_template_xlsx():
    return _download(template_xlsx(), "mau-nhap-cau-hoi.xlsx", "xlsx")


@bp.route("/import/template.csv")
@role_required("board")
def import_template_csv():
    return _download(template_csv(), "mau-nhap-cau-hoi.csv", "csv")


# --- export --------------------------------------------------------------------------------------

def _export(fmt: str):
    db_session = get_session()
    now = utcnow()
    questions = browsing.export_questions(db_session)
    content = export_file(fmt, questions)
    bank.record_export(db_session, fmt=fmt, count=len(questions), content=content, actor=actor(), now=now)
    db_session.commit()
    return _download(content, f"ngan-hang-cau-hoi-{now:%Y%m%d-%H%M}.{fmt}", fmt)


@bp.route("/export.xlsx")
@role_required("board")
def export_xlsx():
    return _export("xlsx")


@bp.route("/export.json")
@role_required("board")
def export_json():
    return _export("json")


@bp.route("/export.csv")
@role_required("board")
def export_csv():
    return _export("csv")


# --- topics --------------------------------------------------------------------------------------

def _topics_page(create_form=None, rename_form=None, status: int = 200):
    db_session = get_session()
    rows = browsing.topic_tree(db_session)
    create_form = create_form or TopicCreateForm(formdata=None)
    rename_form = rename_form or TopicRenameForm(formdata=None)
    rename_form.topic_id.choices = choices((row.id, row.path) for row in rows)
    return render_template("question_bank/topics.html", rows=rows, create_form=create_form, rename_form=rename_form,
                           stats=browsing.stats(db_session)), status


@bp.route("/topics")
@role_required("board")
def topics():
    return _topics_page()


@bp.route("/topics/create", methods=["POST"])
@role_required("board")
def create_topic():
    form = TopicCreateForm()
    if not form.validate_on_submit():
        return _topics_page(create_form=form, status=422)
    db_session = get_session()
    try:
        path = bank.normalise_topic_path(form.path.data)
        if bank.topic_by_path(db_session, path) is not None:
            raise bank.BankError(_("Chủ đề này đã có."), "path")
        bank.ensure_topic(db_session, path, actor=actor(), now=utcnow())
    except bank.BankError as exc:
        db_session.rollback()
        form.path.errors.append(bank_message(exc))
        return _topics_page(create_form=form, status=422)
    db_session.commit()
    flash(_("Đã tạo chủ đề %(path)s.", path=path), "success")
    return redirect(url_for("bank.topics"))


@bp.route("/topics/rename", methods=["POST"])
@role_required("board")
def rename_topic():
    form = TopicRenameForm()
    if not form.validate_on_submit():
        return _topics_page(rename_form=form, status=422)
    db_session = get_session()
    topic = db_session.get(Topic, form.topic_id.data)
    if topic is None:
        form.topic_id.errors.append(_("Không tìm thấy chủ đề."))
        return _topics_page(rename_form=form, status=422)
    old_path = topic.path
    try:
        bank.rename_topic(db_session, topic, form.new_path.data, actor=actor(), now=utcnow())
    except bank.BankError as exc:
        db_session.rollback()
        form.new_path.errors.append(bank_message(exc))
        return _topics_page(rename_form=form, status=422)
    db_session.commit()
    flash(_("Đã đổi %(old)s thành %(new)s.", old=old_path, new=topic.path), "success")
    return redirect(url_for("bank.topics"))
