"""The board's exam, sitting and roster pages through the real client, CSRF included."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from exam.core.db import get_session, utcnow
from exam.setup.models import Candidate, Exam, Paper, Sitting
from exam.setup.sittings import check_access_code, local_time
from exam.setup.spec import spec_from_toml
from tests.conftest import csrf_from
from tests.factories import EXAMPLE_TOML, load_demo_bank, make_exam_from_spec, roster_csv, roster_row

SMALL_TOML = """
code = "T-FORM"
title = "Thi thử từ biểu mẫu"
show_score = false
forms = 0
instructions = "Làm bài cẩn thận."
[[sections]]
code = "general"
title = "Kiến thức chung"
minutes = 20
questions = 5
blueprint = [
  { topic = "Kiến thức chung > Hiến pháp 2013", difficulty = "easy", count = 3 },
  { topic = "Kiến thức chung > Tổ chức bộ máy nhà nước", difficulty = "any", count = 2 },
]
[sections.scoring]
marks_per_question = 2.0
negative_fraction = 0.25
multiple = "partial"
pass_ratio = 0.6
[[sections]]
code = "it"
title = "Tin học"
minutes = 10
questions = 2
blueprint = [ { topic = "Tin học", difficulty = "hard", count = 2 } ]
"""


@pytest.fixture
def bank(db):
    load_demo_bank(db)
    db.commit()


@pytest.fixture
def board(client, login_as):
    login_as("board")
    return csrf_from(client.get("/").get_data(as_text=True))


def page(response) -> str:
    return response.get_data(as_text=True)


def exam_in_db(app, code):
    with app.app_context():
        return get_session().scalar(select(Exam).where(Exam.code == code))


def form_data(token: str) -> dict:
    """The board form filled in to mean SMALL_TOML (blank rows and blocks left blank)."""
    data = {"csrf_token": token, "code": "T-FORM", "title": "Thi thử từ biểu mẫu", "forms": "0",
            "instructions": "Làm bài cẩn thận.",
            "sections-0-code": "general", "sections-0-title": "Kiến thức chung", "sections-0-minutes": "20",
            "sections-0-questions": "", "sections-0-marks_per_question": "2", "sections-0-negative_fraction": "0,25",
            "sections-0-multiple": "partial", "sections-0-pass_ratio": "0.6",
            "sections-0-cells-0-topic": "Kiến thức chung > Hiến pháp 2013", "sections-0-cells-0-difficulty": "easy",
            "sections-0-cells-0-count": "3",
            "sections-0-cells-4-topic": "Kiến thức chung>Tổ chức bộ máy nhà nước",
            "sections-0-cells-4-difficulty": "any", "sections-0-cells-4-count": "2",
            "sections-2-code": "it", "sections-2-title": "Tin học", "sections-2-minutes": "10",
            "sections-2-marks_per_question": "1", "sections-2-negative_fraction": "0", "sections-2-pass_ratio": "0.5",
            "sections-2-multiple": "all_or_nothing",
            "sections-2-cells-0-topic": "Tin học", "sections-2-cells-0-difficulty": "hard",
            "sections-2-cells-0-count": "2"}
    for s in (1, 3):  # untouched blocks keep their default scoring values, as the browser sends them
        data.update({f"sections-{s}-marks_per_question": "1", f"sections-{s}-negative_fraction": "0",
                     f"sections-{s}-pass_ratio": "0.5", f"sections-{s}-multiple": "all_or_nothing"})
    return data


def test_proctor_and_auditor_get_403_on_board_pages(app, client, login_as, db, bank):
    exam = make_exam_from_spec(db)
    db.commit()
    urls = ["/board/exams/", "/board/exams/new", f"/board/exams/{exam.code}", f"/board/exams/{exam.code}/publish",
            f"/board/exams/{exam.code}/candidates", f"/board/exams/{exam.code}/candidates/import",
            f"/board/exams/{exam.code}/sittings/new", f"/board/exams/{exam.code}/spec.toml",
            "/board/roster-template.xlsx"]
    posts = ["/board/exams/new/toml", "/board/exams/new/form", f"/board/exams/{exam.code}/publish",
             f"/board/exams/{exam.code}/papers", f"/board/exams/{exam.code}/candidates/import/confirm"]
    for role in ("proctor", "auditor"):
        login_as(role)
        token = csrf_from(page(client.get("/")))
        for url in urls:
            assert client.get(url).status_code == 403, (role, url)
        for url in posts:
            assert client.post(url, data={"csrf_token": token}).status_code == 403, (role, url)
    assert exam_in_db(app, exam.code).status == "draft"


def test_create_from_pasted_toml_then_publish_with_confirmation(app, client, board, bank):
    assert "Chưa có kỳ thi nào" in page(client.get("/board/exams/"))
    new = page(client.get("/board/exams/new"))
    assert "Kiến thức chung &gt; Hiến pháp 2013" in new  # the bank's counts help fill the blueprint
    response = client.post("/board/exams/new/toml", data={"csrf_token": board,
                                                          "text": EXAMPLE_TOML.read_text(encoding="utf-8")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/board/exams/R1-2026")
    detail = page(client.get("/board/exams/R1-2026"))
    assert "Thi tuyển công chức năm 2026 — Vòng 1" in detail and "Ngân hàng đang có" in detail
    assert "board-cell-short" not in detail.replace('.board-cell-short', '')
    assert "R1-2026" in page(client.get("/board/exams/"))

    confirm = client.get("/board/exams/R1-2026/publish")
    assert confirm.status_code == 200 and "Công bố kỳ thi" in page(confirm)
    refused = client.post("/board/exams/R1-2026/publish", data={"csrf_token": board})
    assert refused.status_code == 422 and exam_in_db(app, "R1-2026").status == "draft"
    done = client.post("/board/exams/R1-2026/publish", data={"csrf_token": board, "confirm": "y"})
    assert done.status_code == 302 and exam_in_db(app, "R1-2026").status == "published"
    assert "Câu đã khóa để rút" in page(client.get("/board/exams/R1-2026"))
    spec = client.get("/board/exams/R1-2026/spec.toml")
    assert spec.status_code == 200 and spec_from_toml(spec.data)[0].code == "R1-2026"


def test_toml_upload_with_errors_shows_every_key_and_writes_nothing(app, client, board, bank):
    text = EXAMPLE_TOML.read_text(encoding="utf-8").replace("minutes = 30", "minutes = 1000", 1)
    text = text.replace('"Tin học > Windows và quản lý tệp", difficulty = "easy", count = 3',
                        '"Tin học > Windows và quản lý tệp", difficulty = "easy", count = 30')
    response = client.post("/board/exams/new/toml", content_type="multipart/form-data", data={
        "csrf_token": board, "file": (io.BytesIO(text.encode("utf-8")), "round1.toml")})
    assert response.status_code == 422
    html = page(response)
    assert "sections[1].minutes" in html and "must be between 1 and 600 (got 1000)" in html
    assert "sections[2].blueprint[0].count" in html and "needs 30 questions but the bank has 8" in html
    assert exam_in_db(app, "R1-2026") is None
    empty = client.post("/board/exams/new/toml", data={"csrf_token": board, "text": ""})
    assert empty.status_code == 422


def test_the_form_builds_the_same_spec_as_toml(app, client, board, bank):
    response = client.post("/board/exams/new/form", data=form_data(board))
    assert response.status_code == 302, page(response)
    expected, errors = spec_from_toml(SMALL_TOML)
    with app.app_context():
        exam = get_session().scalar(select(Exam).where(Exam.code == "T-FORM"))
        assert errors == [] and exam.spec == expected.as_dict()
        assert exam.show_score is False
        assert [(s.code, s.question_count, s.marks_per_question, s.negative_fraction, s.multiple_scoring,
                 s.pass_ratio) for s in exam.sections] == [("general", 5, 2.0, 0.25, "partial", 0.6),
                                                           ("it", 2, 1.0, 0.0, "all_or_nothing", 0.5)]


def test_form_errors_are_shown_at_their_fields(app, client, board, bank):
    data = form_data(board)
    data.update({"code": "T FORM", "sections-0-minutes": "", "sections-0-cells-4-count": "hai",
                 "sections-2-cells-0-topic": "Tin hoc"})
    response = client.post("/board/exams/new/form", data=data)
    assert response.status_code == 422
    html = page(response)
    assert "Phần 1, ma trận dòng 5" in html and "must be a whole number (got text &#39;hai&#39;)" in html
    assert "Phần 3, ma trận dòng 1" in html and "no topic &#39;Tin hoc&#39; in the bank" in html
    assert html.count("is-invalid") >= 4  # code, minutes, the count, the topic
    assert 'value="hai"' in html  # what was typed stays for fixing
    assert exam_in_db(app, "T-FORM") is None and exam_in_db(app, "T FORM") is None


def test_sitting_roster_seats_lists_code_and_papers(app, client, board, db, bank):
    exam = make_exam_from_spec(db, publish=True)
    db.commit()
    start = (utcnow() - timedelta(minutes=5))
    local_start = local_time(start, "%Y-%m-%dT%H:%M")
    response = client.post(f"/board/exams/{exam.code}/sittings/new", data={
        "csrf_token": board, "code": "CA1", "room": "Phòng máy 1", "starts_at": local_start, "minutes": "",
        "ends_at": "", "seats": "4", "late_entry": "15"})
    assert response.status_code == 302, page(response)
    refused = client.post(f"/board/exams/{exam.code}/sittings/new", data={
        "csrf_token": board, "code": "CA1", "room": "P2", "starts_at": local_start, "minutes": "30", "seats": "4",
        "late_entry": "15"})
    assert refused.status_code == 422
    assert "already exists" in page(refused) and "nobody could finish it" in page(refused)

    sitting_page = page(client.get("/board/sittings/CA1"))
    code = re.search(r'id="access-code">(\d{6})<', sitting_page).group(1)
    with app.app_context():
        sitting = get_session().scalar(select(Sitting).where(Sitting.code == "CA1"))
        assert check_access_code(sitting, code, utcnow())
    assert 'http-equiv="refresh"' in sitting_page

    names = ["Nguyễn Văn Đức", "Trần Thị Ánh", "Lê Văn An", "Phạm Thị Bình"]
    content = roster_csv(*(roster_row(i, full_name=name) for i, name in enumerate(names, start=1)))
    upload = client.post(f"/board/exams/{exam.code}/candidates/import", content_type="multipart/form-data",
                         data={"csrf_token": board, "file": (io.BytesIO(content), "ds.csv")})
    assert upload.status_code == 200 and "4 thí sinh sẽ được thêm" in page(upload)
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Candidate)) == 0  # only checked so far
    token = re.search(r'name="token" type="hidden" value="([0-9a-f]{32})"', page(upload)).group(1)
    sha = re.search(r'name="sha256" type="hidden" value="([0-9a-f]{64})"', page(upload)).group(1)
    forged = client.post(f"/board/exams/{exam.code}/candidates/import/confirm",
                         data={"csrf_token": board, "token": token, "sha256": "0" * 64})
    assert forged.status_code == 302
    confirm = client.post(f"/board/exams/{exam.code}/candidates/import/confirm",
                          data={"csrf_token": board, "token": token, "sha256": sha})
    assert confirm.status_code == 302  # the forged attempt threw the staged file away
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Candidate)) == 0
    upload = client.post(f"/board/exams/{exam.code}/candidates/import", content_type="multipart/form-data",
                         data={"csrf_token": board, "file": (io.BytesIO(content), "ds.csv")})
    token = re.search(r'name="token" type="hidden" value="([0-9a-f]{32})"', page(upload)).group(1)
    confirm = client.post(f"/board/exams/{exam.code}/candidates/import/confirm",
                          data={"csrf_token": board, "token": token, "sha256": sha})
    assert confirm.status_code == 302 and confirm.headers["Location"].endswith(f"/board/exams/{exam.code}/candidates")
    assert "Trần Thị Ánh" in page(client.get(f"/board/exams/{exam.code}/candidates"))

    assert client.post("/board/sittings/CA1/seats", data={"csrf_token": board}).status_code == 302
    seat_list = page(client.get("/board/sittings/CA1/seat-list"))
    assert [m for m in re.findall(r"<td>([^<]+)</td><td>\d\d/\d\d/\d{4}</td>", seat_list)] == names
    door_list = page(client.get("/board/sittings/CA1/door-list"))
    assert re.findall(r"<td>([^<]+)</td><td>\d\d/\d\d/\d{4}</td>", door_list) == [
        "Lê Văn An", "Trần Thị Ánh", "Phạm Thị Bình", "Nguyễn Văn Đức"]
    assert "Chữ ký" in door_list and "A4" in page(client.get("/static/css/board.css"))

    papers = client.post(f"/board/exams/{exam.code}/papers", data={"csrf_token": board}, follow_redirects=True)
    assert "Đã tạo 4 đề" in page(papers)
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Paper)) == 4


def test_a_bad_roster_upload_lists_errors_and_writes_nothing(app, client, board, db, bank):
    exam = make_exam_from_spec(db)
    db.commit()
    content = roster_csv(roster_row(1), roster_row(2, date_of_birth="31/02/1990"), roster_row(1))
    response = client.post(f"/board/exams/{exam.code}/candidates/import", content_type="multipart/form-data",
                           data={"csrf_token": board, "file": (io.BytesIO(content), "ds.csv")})
    assert response.status_code == 422
    html = page(response)
    assert "Tệp có 3 lỗi" in html and "is not a real date" in html and "TS0001 is also at row 2" in html
    assert 'name="token"' not in html
    assert client.get("/board/roster-template.xlsx").status_code == 200
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Candidate)) == 0


def test_board_pages_carry_no_inline_script_or_style(client, board, db, bank):
    exam = make_exam_from_spec(db)
    db.commit()
    for url in ("/board/exams/", "/board/exams/new", f"/board/exams/{exam.code}", f"/board/exams/{exam.code}/publish",
                f"/board/exams/{exam.code}/sittings/new", f"/board/exams/{exam.code}/candidates/import",
                f"/board/exams/{exam.code}/candidates"):
        html = page(client.get(url))
        assert "<script" not in html and "style=" not in html and "<style" not in html, url
        assert 'name="csrf_token"' in html or url.endswith("/candidates"), url
