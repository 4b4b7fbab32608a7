"""The bank's forms: a question (six option rows, blank ones ignored), an import upload, topics.

Only what a form can check on its own lives here (required fields, lengths, the key
against the question type, the image bytes); the question itself is then checked by
the same rules as an import (``bank.check_question``).
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from question_bank.bank import MAX_NOTE_CHARS, MAX_TOPIC_PATH_CHARS

OPTION_ROWS = 6
OPTION_LETTERS = "ABCDEF"
MAX_IMAGE_BYTES = 2 * 1024 * 1024
# Length limits of the import rules, checked here first so the message is in the board's language.
MAX_TEXT_CHARS = 4000
MAX_OPTION_CHARS = 1000
MAX_EXPLANATION_CHARS = 4000
MAX_SOURCE_CHARS = 1000

DIFFICULTY_LABELS = {"easy": _l("Dễ"), "medium": _l("Trung bình"), "hard": _l("Khó")}
TYPE_LABELS = {"single": _l("Một đáp án đúng"), "multiple": _l("Nhiều đáp án đúng")}
STATUS_LABELS = {"active": _l("Đang dùng"), "retired": _l("Đã ngừng dùng")}


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def _too_long(limit: int):
    return Length(max=limit, message=_l("Tối đa %(max)d ký tự.", max=limit))


class OptionForm(Form):
    """One option row; a plain Form because the question form around it carries the CSRF token."""

    text = TextAreaField(_l("Phương án"), validators=[Optional(), _too_long(MAX_OPTION_CHARS)])
    correct = BooleanField(_l("Đúng"))


class QuestionForm(FlaskForm):
    topic_id = SelectField(_l("Chủ đề"), choices=[], validate_choice=False)
    new_topic = StringField(_l("hoặc chủ đề mới (các cấp cách nhau bằng dấu >)"),
                            validators=[_too_long(MAX_TOPIC_PATH_CHARS)])  # no Optional(): validate_new_topic must run
    difficulty = SelectField(_l("Độ khó"), choices=choices(DIFFICULTY_LABELS.items()),
                             validators=[InputRequired(message=_l("Chọn độ khó."))])
    qtype = SelectField(_l("Loại câu hỏi"), choices=choices(TYPE_LABELS.items()),
                        validators=[InputRequired(message=_l("Chọn loại câu hỏi."))])
    text = TextAreaField(_l("Nội dung câu hỏi"), validators=[
        DataRequired(message=_l("Nhập nội dung câu hỏi.")), _too_long(MAX_TEXT_CHARS)])
    options = FieldList(FormField(OptionForm), label=_l("Phương án trả lời"),
                        min_entries=OPTION_ROWS, max_entries=OPTION_ROWS)
    explanation = TextAreaField(_l("Giải thích đáp án"), validators=[Optional(), _too_long(MAX_EXPLANATION_CHARS)])
    source = TextAreaField(_l("Nguồn, căn cứ"), validators=[Optional(), _too_long(MAX_SOURCE_CHARS)])
    tags = StringField(_l("Thẻ (cách nhau bằng dấu phẩy)"), validators=[Optional(), _too_long(1000)])
    image = FileField(_l("Hình ảnh (PNG hoặc JPEG, tối đa 2 MB)"))
    image_name = HiddenField()
    based_on = HiddenField()  # the version id the editor started from
    remove_image = BooleanField(_l("Bỏ hình ảnh"))
    note = StringField(_l("Ghi chú (lý do tạo hoặc sửa)"), validators=[Optional(), _too_long(MAX_NOTE_CHARS)])
    preview = SubmitField(_l("Xem trước"))
    save = SubmitField(_l("Lưu"))

    def filled_options(self) -> list[tuple[int, str, bool]]:
        """(form row, text, correct) of the rows with text, in order."""
        rows = []
        for index, entry in enumerate(self.options.entries):
            text = (entry.form.text.data or "").strip()
            if text:
                rows.append((index, text, bool(entry.form.correct.data)))
        return rows

    def topic_path(self, paths_by_id: dict[str, str]) -> str:
        return (self.new_topic.data or "").strip() or paths_by_id.get(self.topic_id.data or "", "")

    def validate_new_topic(self, field):
        if not (field.data or "").strip() and not self.topic_id.data:
            raise ValidationError(_l("Chọn một chủ đề hoặc nhập chủ đề mới."))

    def validate_options(self, field):
        for entry in field.entries:
            if entry.form.correct.data and not (entry.form.text.data or "").strip():
                entry.form.correct.errors = list(entry.form.correct.errors) + [
                    _l("Phương án trống không thể là đáp án đúng.")]
                raise ValidationError(_l("Có phương án trống được đánh dấu đúng."))
        filled = self.filled_options()
        if len(filled) < 2:
            raise ValidationError(_l("Cần ít nhất 2 phương án."))
        correct = sum(1 for _, _, is_correct in filled if is_correct)
        if correct == 0:
            raise ValidationError(_l("Đánh dấu ít nhất một phương án đúng."))
        if self.qtype.data == "single" and correct > 1:
            raise ValidationError(_l("Câu hỏi một đáp án đúng chỉ được có đúng một phương án đúng."))
        if self.qtype.data == "multiple" and correct == len(filled):
            raise ValidationError(_l("Câu hỏi nhiều đáp án đúng cần ít nhất một phương án sai."))


class StatusForm(FlaskForm):
    """Retire or restore: a POST with a CSRF token and an optional reason."""

    note = StringField(_l("Lý do"), validators=[Optional(), _too_long(MAX_NOTE_CHARS)])


class ImportForm(FlaskForm):
    file = FileField(_l("Tệp câu hỏi (.xlsx, .csv, .json, .gift, .txt)"),
                     validators=[FileRequired(message=_l("Chọn tệp cần nhập."))])
    default_topic = StringField(_l("Chủ đề mặc định (cho câu hỏi không ghi chủ đề)"),
                                validators=[Optional(), _too_long(MAX_TOPIC_PATH_CHARS)])
    submit = SubmitField(_l("Kiểm tra tệp (chưa ghi)"))


class ConfirmImportForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{32}$")])
    sha256 = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    submit = SubmitField(_l("Xác nhận nhập"))


class TopicCreateForm(FlaskForm):
    path = StringField(_l("Chủ đề mới (các cấp cách nhau bằng dấu >)"), validators=[
        DataRequired(message=_l("Nhập tên chủ đề.")), _too_long(MAX_TOPIC_PATH_CHARS)])
    submit = SubmitField(_l("Tạo chủ đề"))


class TopicRenameForm(FlaskForm):
    topic_id = SelectField(_l("Chủ đề"), choices=[], coerce=int, validate_choice=False,
                           validators=[InputRequired(message=_l("Chọn chủ đề."))])
    new_path = StringField(_l("Đường dẫn mới"), validators=[
        DataRequired(message=_l("Nhập đường dẫn mới.")), _too_long(MAX_TOPIC_PATH_CHARS)])
    submit = SubmitField(_l("Đổi tên / chuyển"))


def image_kind(data: bytes) -> str | None:
    """'png' or 'jpg' by the file's first bytes (whatever its name says); None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    return None
