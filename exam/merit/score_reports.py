"""A candidate's score report and response sheet (phiếu bài làm): their answers against the key, section
scores, and their line on the merit list; as plain data (``build_report``), HTML (the board's page) and PDF.

Answers are shown as the candidate saw them: the option letters of their own paper (A, B, C…
in the paper's order), the correct letters of that paper, with the board's approved key
corrections in force (the latest approved decision per question version: ``rekey`` changes
the key, ``void_award`` gives everyone the mark, ``void_remove`` takes the question out).
Section scores are the latest grading's (``candidate_score``), else those computed at
submission. The rank and status come from the list handed in: the published list for the
candidate (nothing before publication), the current one for the board.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.grading.models import KeyCorrection
from exam.grading.runs import stored_scores
from exam.merit import ranking as merit
from exam.merit.exports import FONT_BOLD, FONT_REGULAR, LOCAL_TZ
from exam.merit.lists import find_row
from exam.merit.models import MeritList
from exam.merit.rule import BONUS
from exam.room.models import Attempt, Response
from exam.setup.models import Candidate, Exam, ExamSection, PaperItem
from question_bank.models import QuestionVersion

LETTERS = "ABCDEFGH"
OUTCOME_LABELS = {
    "right": "Đúng",
    "wrong": "Sai",
    "blank": "Không trả lời",
    "void_award": "Câu hủy: mọi thí sinh được điểm",
    "void_remove": "Câu hủy: không tính điểm",
}


@dataclass(frozen=True)
class AnswerLine:
    number: int  # the position on the paper, 1..N
    section: str
    text: str
    options: tuple[tuple[str, str], ...]  # (letter, text) in the paper's order
    chosen: str  # "B", "A, C", "" for no answer
    key: str  # the correct letters on this paper
    outcome: str  # right | wrong | blank | void_award | void_remove
    corrected: bool = False  # the key was corrected by the board after the sitting

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]


@dataclass
class ScoreReport:
    exam_code: str
    exam_title: str
    registration_no: str
    full_name: str
    date_of_birth: date | None
    post: str
    submitted_at: datetime | None
    sections: list[dict] = field(default_factory=list)  # title, correct, questions, score, max_score, passed
    round1_total: float | None = None
    round1_max: float | None = None
    round1_passed: bool | None = None
    answers: list[AnswerLine] = field(default_factory=list)
    # From the merit list, when one is given:
    list_status: str = ""  # "published" | "draft" | ""
    list_hash: str = ""
    published_at: datetime | None = None
    list_post: str = ""
    quota: int | None = None
    row: merit.MeritRow | None = None
    components: list[tuple[str, float | None]] = field(default_factory=list)  # (label, score) of the list's columns
    bonus_label: str = ""

    @property
    def status_text(self) -> str:
        if self.row is None:
            return ""
        text = self.row.status_label
        if self.row.reasons:
            text += ": " + self.row.reason_text
        if self.row.decided_by_board:
            text += " (Hội đồng quyết định)"
        return text

    def as_dict(self) -> dict:
        """JSON-ready (the candidate API's response sheet)."""
        row = self.row
        return {
            "exam": {"code": self.exam_code, "title": self.exam_title},
            "candidate": {"registration_no": self.registration_no, "full_name": self.full_name,
                          "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
                          "post": self.post},
            "sections": [{k: s[k] for k in ("title", "correct", "questions", "score", "max_score", "passed")}
                         for s in self.sections],
            "round1_total": self.round1_total, "round1_passed": self.round1_passed,
            "merit": None if row is None else {
                "post": self.list_post, "quota": self.quota, "rank": row.rank, "status": row.status,
                "status_label": self.status_text, "total": row.total, "bonus": row.bonus,
                "components": [{"label": label, "score": value} for label, value in self.components],
                "list_hash": self.list_hash},
            "answers": [{"number": a.number, "section": a.section, "text": a.text,
                         "options": [{"letter": letter, "text": text} for letter, text in a.options],
                         "chosen": a.chosen, "key": a.key, "outcome": a.outcome, "corrected": a.corrected}
                        for a in self.answers],
        }


def corrections_in_force(session: Session, exam: Exam) -> dict[int, KeyCorrection]:
    """Question version id → the latest approved key correction of the exam."""
    found: dict[int, KeyCorrection] = {}
    for correction in session.scalars(select(KeyCorrection).where(KeyCorrection.exam_id == exam.id,
                                                                  KeyCorrection.status == "approved")
                                      .order_by(KeyCorrection.decided_at, KeyCorrection.id)):
        found[correction.question_version_id] = correction
    return found


def _answers(session: Session, attempt: Attempt, corrections: dict[int, KeyCorrection]) -> list[AnswerLine]:
    chosen_of = dict(session.execute(select(Response.item_id, Response.choices)
                                     .where(Response.attempt_id == attempt.id)).all())
    lines = []
    for item, text, options, section in session.execute(
            select(PaperItem, QuestionVersion.text, QuestionVersion.options, ExamSection.title)
            .join(QuestionVersion, QuestionVersion.id == PaperItem.question_version_id)
            .join(ExamSection, ExamSection.id == PaperItem.section_id)
            .where(PaperItem.paper_id == attempt.paper_id).order_by(PaperItem.position)):
        correction = corrections.get(item.question_version_id)
        correct = {i for i, option in enumerate(options) if option.get("correct")}
        if correction is not None and correction.action == "rekey" and correction.correct is not None:
            correct = set(correction.correct)
        displayed = list(item.option_order)
        key = [LETTERS[j] for j, original in enumerate(displayed) if original in correct]
        picked_ids = set(chosen_of.get(item.id) or ())
        chosen = [LETTERS[j] for j, option_id in enumerate(item.option_ids) if option_id in picked_ids]
        if correction is not None and correction.action in ("void_award", "void_remove"):
            outcome = correction.action
        elif not chosen:
            outcome = "blank"
        else:
            outcome = "right" if chosen == key and key else "wrong"
        lines.append(AnswerLine(
            number=item.position, section=section, text=text,
            options=tuple((LETTERS[j], options[original]["text"]) for j, original in enumerate(displayed)),
            chosen=", ".join(chosen), key=", ".join(key), outcome=outcome, corrected=correction is not None))
    return lines


def build_report(session: Session, exam: Exam, candidate: Candidate, *, record: MeritList | None = None
                 ) -> ScoreReport:
    """The report of one candidate; ``record`` is the merit list to read the rank and status from."""
    attempt = session.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))
    report = ScoreReport(exam_code=exam.code, exam_title=exam.title, registration_no=candidate.registration_no,
                         full_name=candidate.full_name, date_of_birth=candidate.date_of_birth, post=candidate.post,
                         submitted_at=attempt.submitted_at if attempt is not None else None)
    scores = stored_scores(session, exam, [candidate.id])
    record_score = scores.record(candidate.id) if len(scores) else \
        (attempt.score if attempt is not None and attempt.status == "submitted" else None)
    if record_score:
        report.sections = list(record_score.get("sections") or ())
        report.round1_total = record_score.get("total")
        report.round1_passed = record_score.get("passed")
        report.round1_max = record_score.get("max_total") or (
            sum(s.get("max_score", 0) for s in report.sections) if report.sections else None)
    if attempt is not None and attempt.status == "submitted":
        report.answers = _answers(session, attempt, corrections_in_force(session, exam))
    if record is not None:
        report.list_status, report.list_hash = record.status, record.hash
        report.published_at = record.published_at if record.status == "published" else None
        found = find_row(record, candidate.registration_no)
        if found is not None:
            ml, row = found
            report.row, report.list_post, report.quota = row, ml.post, ml.quota
            report.components = [(ml.rule.label(c), row.components.get(c)) for c in ml.components]
            report.bonus_label = ml.rule.label(BONUS)
    return report


# --- PDF -------------------------------------------------------------------------------------------

MARGIN = 14.0


@cache
def _pdf_class():
    from fpdf import FPDF  # imported on first use: the app starts without it

    class ReportPDF(FPDF):
        footer_text = ""

        def footer(self):
            self.set_y(-11)
            self.set_draw_color(160, 160, 160)
            self.line(MARGIN, self.get_y() - 1, self.w - MARGIN, self.get_y() - 1)
            self.set_font("DejaVu", "", 6.5)
            self.cell(self.w - 2 * MARGIN - 24, 4, self.footer_text)
            self.set_font("DejaVu", "", 8)
            self.cell(24, 4, f"Trang {self.page_no()}/{{nb}}", align="R")

    return ReportPDF


def _points(value: float | None) -> str:
    return merit.format_points(value, 2) if value is not None else "—"


def report_pdf(report: ScoreReport) -> bytes:
    """The report as an A4 PDF (DejaVu fonts: Vietnamese prints right), the list's hash in every footer."""
    from fpdf.fonts import FontFace  # on first use, as _pdf_class's fpdf

    pdf = _pdf_class()(unit="mm", format="A4")
    pdf.footer_text = (f"{report.exam_code} · SBD {report.registration_no}"
                       + (f" · Mã kiểm tra danh sách (SHA-256): {report.list_hash}" if report.list_hash else ""))
    pdf.set_title(f"Phiếu bài làm {report.registration_no} — {report.exam_title}")
    pdf.set_creator("exam")
    if report.published_at is not None:
        pdf.set_creation_date(report.published_at)
    pdf.add_font("DejaVu", "", str(FONT_REGULAR))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_page()
    width = pdf.w - 2 * MARGIN
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(width / 2, 5, "HỘI ĐỒNG TUYỂN DỤNG")
    pdf.cell(width / 2, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(width / 2, 5, report.exam_code)
    pdf.cell(width / 2, 5, "Độc lập - Tự do - Hạnh phúc", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(width, 7, "PHIẾU BÀI LÀM VÀ KẾT QUẢ THI", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(width, 5, report.exam_title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    facts = [("Họ và tên", report.full_name), ("Số báo danh", report.registration_no),
             ("Ngày sinh", report.date_of_birth.strftime("%d/%m/%Y") if report.date_of_birth else ""),
             ("Vị trí dự tuyển", report.post)]
    if report.submitted_at is not None:
        facts.append(("Nộp bài lúc", f"{report.submitted_at.astimezone(LOCAL_TZ):%H:%M %d/%m/%Y}"))
    for label, value in facts:
        pdf.set_font("DejaVu", "", 9.5)
        pdf.cell(38, 5.5, label + ":")
        pdf.set_font("DejaVu", "B", 9.5)
        pdf.multi_cell(width - 38, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    heading = FontFace(emphasis="BOLD", fill_color=(221, 229, 240))
    if report.sections:
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width, 6, "Kết quả vòng 1", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)
        with pdf.table(col_widths=(70, 30, 30, 30), width=width, line_height=5, headings_style=heading,
                       text_align=("LEFT", "RIGHT", "RIGHT", "LEFT")) as table:
            row = table.row()
            for text in ("Phần thi", "Số câu đúng", "Điểm", "Kết quả"):
                row.cell(text)
            for section in report.sections:
                row = table.row()
                row.cell(section["title"])
                row.cell(f"{section['correct']}/{section['questions']}")
                row.cell(f"{_points(section['score'])}/{_points(section['max_score'])}")
                row.cell("Đạt" if section["passed"] else "Không đạt")
            row = table.row()
            row.cell("Tổng điểm vòng 1", style=FontFace(emphasis="BOLD"))
            row.cell("")
            row.cell(f"{_points(report.round1_total)}/{_points(report.round1_max)}", style=FontFace(emphasis="BOLD"))
            row.cell("" if report.round1_passed is None else ("Đạt" if report.round1_passed else "Không đạt"))
        pdf.ln(3)

    if report.row is not None:
        pdf.set_font("DejaVu", "B", 10)
        title = "Kết quả xếp hạng" + ("" if report.list_status == "published" else " (bản dự thảo, chưa công bố)")
        pdf.cell(width, 6, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9.5)
        lines = [f"Vị trí việc làm: {report.list_post} (chỉ tiêu: {report.quota})"]
        lines += [f"{label}: {_points(value)}" for label, value in report.components]
        lines.append(f"{report.bonus_label}: {_points(report.row.bonus)}")
        lines.append(f"Tổng điểm: {_points(report.row.total)}")
        lines.append(f"Hạng: {report.row.rank if report.row.rank is not None else '—'}")
        for line in lines:
            pdf.multi_cell(width, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(width, 5.5, f"Kết quả: {report.status_text}", new_x="LMARGIN", new_y="NEXT")
        if report.published_at is not None:
            pdf.set_font("DejaVu", "", 8.5)
            pdf.cell(width, 5, f"Công bố lúc {report.published_at.astimezone(LOCAL_TZ):%H:%M ngày %d/%m/%Y}",
                     new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)

    if report.answers:
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width, 6, "Bài làm so với đáp án", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 7.5)
        with pdf.table(col_widths=(10, 112, 16, 16, 28), width=width, line_height=3.6, headings_style=heading,
                       text_align=("RIGHT", "LEFT", "CENTER", "CENTER", "LEFT"), repeat_headings=1,
                       padding=0.8) as table:
            row = table.row()
            for text in ("Câu", "Câu hỏi và các phương án", "Đã chọn", "Đáp án", "Kết quả"):
                row.cell(text)
            wrong_style = FontFace(color=(156, 0, 6))
            for answer in report.answers:
                row = table.row()
                row.cell(str(answer.number))
                body = f"[{answer.section}] {answer.text}\n" + "\n".join(f"{letter}. {text}"
                                                                         for letter, text in answer.options)
                row.cell(body)
                row.cell(answer.chosen or "—")
                row.cell(answer.key + (" *" if answer.corrected else ""))
                row.cell(answer.outcome_label, style=wrong_style if answer.outcome == "wrong" else None)
        if any(a.corrected for a in report.answers):
            pdf.set_font("DejaVu", "", 7.5)
            pdf.multi_cell(width, 4, "* Đáp án đã được Hội đồng điều chỉnh sau khi thi.", new_x="LMARGIN",
                           new_y="NEXT")
    return bytes(pdf.output())
