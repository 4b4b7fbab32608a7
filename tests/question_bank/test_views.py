"""The bank pages through the real client, CSRF included: roles, escaping, form and preview, history, import, topics."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import struct
import zlib
from pathlib import Path

from sqlalchemy import func, select

from exam.audit.models import AuditEntry
from exam.core.db import get_session
from question_bank import bank
from question_bank.models import Question, QuestionVersion, Topic
from tests.conftest import csrf_from
from tests.question_bank.test_importer import GOOD_ROWS, csv_file

SCRIPT = "<script>alert('x')</script>"
BANK_PAGES = ("/bank/", "/bank/questions/new", "/bank/import", "/bank/topics", "/bank/export.xlsx",
              "/bank/export.json", "/bank/import/template.xlsx", "/bank/import/template.csv")


def png_bytes() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def question_form(token: str, **overrides) -> dict:
    data = {"csrf_token": token, "new_topic": "Kiến thức chung > Hiến pháp 2013", "difficulty": "easy",
            "qtype": "single", "text": "Hiến pháp năm 2013 có hiệu lực từ ngày nào?",
            "options-0-text": "01/01/2014", "options-0-correct": "y", "options-1-text": "28/11/2013",
            "options-2-text": "", "options-3-text": "01/7/2014", "explanation": "", "source": "Hiến pháp",
            "tags": "hiến pháp, hiệu lực", "note": "", "save": "Lưu"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def count_questions(app) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(Question))


def test_proctor_and_auditor_get_403_on_every_bank_page(client, app, login_as, make_question):
    question = make_question()
    pages = BANK_PAGES + (f"/bank/questions/{question.id}", f"/bank/questions/{question.id}/edit",
                          f"/bank/questions/{question.id}/history", "/bank/images/x.png")
    for role in ("proctor", "auditor"):
        login_as(role)
        token = csrf_from(client.get("/").get_data(as_text=True))
        for url in pages:
            assert client.get(url).status_code == 403, (role, url)
        for url in ("/bank/questions/new", f"/bank/questions/{question.id}/retire", "/bank/import",
                    "/bank/import/confirm", "/bank/topics/create", "/bank/topics/rename"):
            assert client.post(url, data={"csrf_token": token}).status_code == 403, (role, url)
    assert db_status(app, question.id) == "active"


def db_status(app, question_id):
    with app.app_context():
        return get_session().get(Question, question_id).status


def test_board_reaches_every_bank_page(client, login_as, make_question):
    question = make_question()
    login_as("board")
    for url in BANK_PAGES + (f"/bank/questions/{question.id}", f"/bank/questions/{question.id}/edit",
                             f"/bank/questions/{question.id}/history"):
        assert client.get(url).status_code == 200, url
    assert client.get("/bank/questions/999999").status_code == 404


def test_script_in_question_text_is_escaped_on_browse_view_and_history(client, app, login_as, make_question):
    question = make_question()
    with app.app_context():  # text from before the import rules refused HTML: the pages must still escape it
        db = get_session()
        db.query(QuestionVersion).filter_by(id=question.current_version_id).update(
            {"text": f"Câu {SCRIPT} hỏi",
             "options": [{"text": SCRIPT, "correct": True}, {"text": "b", "correct": False}]})
        db.commit()
    login_as("board")
    for url in ("/bank/", f"/bank/questions/{question.id}", f"/bank/questions/{question.id}/history",
                f"/bank/questions/{question.id}/edit"):
        html = client.get(url).get_data(as_text=True)
        assert SCRIPT not in html and "&lt;script&gt;" in html, url


def test_preview_escapes_and_never_saves(client, app, login_as):
    login_as("board")
    token = csrf_from(client.get("/bank/questions/new").get_data(as_text=True))
    tricky = 'Nếu x<5 && y > "2" thì đúng không?'
    response = client.post("/bank/questions/new", data=question_form(
        token, text=tricky, save=None, preview="Xem trước", **{"options-1-text": "a<b & c"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    preview = html[html.index('data-role="candidate-view"'):]
    preview = preview[:preview.index("</div>")]
    assert "Nếu x&lt;5 &amp;&amp; y &gt; &#34;2&#34; thì đúng không?" in preview
    assert re.findall(r'class="letter">([A-F])\.', preview) == ["A", "B", "C"]  # blank row dropped, letters closed up
    assert "a&lt;b &amp; c" in preview and "Đáp án đúng" not in preview and "01/01/2014" in preview
    assert count_questions(app) == 0

    response = client.post("/bank/questions/new", data=question_form(token, text=f"Câu {SCRIPT}?", save=None,
                                                                       preview="Xem trước"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and SCRIPT not in html and "HTML" in html
    assert count_questions(app) == 0


def test_create_then_edit_makes_version_2_with_a_note(client, app, login_as):
    user = login_as("board")
    token = csrf_from(client.get("/bank/questions/new").get_data(as_text=True))
    response = client.post("/bank/questions/new", data=question_form(token))
    assert response.status_code == 302
    question_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/bank/questions/{question_id}").get_data(as_text=True)
    assert "01/01/2014" in page and "bank.question.create" in page and user.username in page

    edit = client.get(f"/bank/questions/{question_id}/edit").get_data(as_text=True)
    assert "Hiến pháp năm 2013 có hiệu lực từ ngày nào?" in edit
    with app.app_context():
        topic_id = get_session().scalar(select(Topic.id).where(Topic.path == "Kiến thức chung > Hiến pháp 2013"))
    changed = question_form(token, new_topic="", topic_id=str(topic_id), difficulty="medium")
    response = client.post(f"/bank/questions/{question_id}/edit", data=changed)
    assert response.status_code == 422 and "Ghi lý do sửa câu hỏi." in response.get_data(as_text=True)
    response = client.post(f"/bank/questions/{question_id}/edit", data={**changed, "note": "đổi độ khó"})
    assert response.status_code == 302
    response = client.post(f"/bank/questions/{question_id}/edit", data={**changed, "note": "lại"})
    assert response.status_code == 422  # nothing changed: no empty version
    with app.app_context():
        question = get_session().get(Question, question_id)
        assert [(v.number, v.difficulty, v.note) for v in question.versions] == [(1, "easy", ""),
                                                                                 (2, "medium", "đổi độ khó")]
    history = client.get(f"/bank/questions/{question_id}/history").get_data(as_text=True)
    assert "Phiên bản 2" in history and "đổi độ khó" in history and "bank-changed" in history


def test_saving_over_someone_elses_newer_version_needs_a_second_save(client, app, login_as, make_question, clock):
    question = make_question()
    login_as("board")
    page = client.get(f"/bank/questions/{question.id}/edit").get_data(as_text=True)
    based_on = re.search(r'name="based_on" type="hidden" value="(\d+)"', page).group(1)
    with app.app_context():  # a colleague saves version 2 meanwhile
        db = get_session()
        theirs = db.get(Question, question.id)
        harder = dataclasses.replace(bank.QuestionDraft.from_version(theirs.current_version), difficulty="hard")
        bank.edit_question(db, theirs, harder, actor="dong-nghiep", now=clock(), note="khó hơn")
        db.commit()
    mine = question_form(csrf_from(page), new_topic="Kiến thức chung > Hiến pháp 2013", text="Nội dung của tôi?",
                         based_on=based_on, note="sửa của tôi")
    response = client.post(f"/bank/questions/{question.id}/edit", data=mine)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "người khác đã lưu một phiên bản mới" in html
    again = re.search(r'name="based_on" type="hidden" value="(\d+)"', html).group(1)
    assert again != based_on
    assert client.post(f"/bank/questions/{question.id}/edit", data={**mine, "based_on": again}).status_code == 302
    with app.app_context():
        versions = get_session().get(Question, question.id).versions
        assert [(v.number, v.created_by) for v in versions][1:] == [(2, "dong-nghiep"), (3, versions[2].created_by)]


def test_validation_errors_name_the_field(client, app, login_as):
    login_as("board")
    token = csrf_from(client.get("/bank/questions/new").get_data(as_text=True))
    response = client.post("/bank/questions/new", data=question_form(
        token, text="", new_topic="", **{"options-1-correct": "y", "options-2-correct": "y"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nhập nội dung câu hỏi." in html and "Chọn một chủ đề hoặc nhập chủ đề mới." in html
    assert "Phương án trống không thể là đáp án đúng." in html
    response = client.post("/bank/questions/new", data=question_form(token, **{"options-1-correct": "y"}))
    assert "chỉ được có đúng một phương án đúng" in response.get_data(as_text=True)
    response = client.post("/bank/questions/new", data=question_form(token, **{"options-1-text": "01/01/2014"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Phương án B" in html and "options must differ" in html
    assert client.post("/bank/questions/new", data={k: v for k, v in question_form(token).items()
                                                    if k != "csrf_token"}).status_code == 400
    assert count_questions(app) == 0


def test_near_duplicate_warning_links_the_existing_question(client, login_as, make_question):
    existing = make_question()
    login_as("board")
    token = csrf_from(client.get("/bank/questions/new").get_data(as_text=True))
    response = client.post("/bank/questions/new", data=question_form(
        token, text="HIẾN PHÁP năm 2013 có hiệu lực từ ngày nào", save=None, preview="Xem trước"))
    html = response.get_data(as_text=True)
    assert "gần trùng" in html and f'href="/bank/questions/{existing.id}"' in html


def test_image_upload_checks_the_bytes_and_is_served_to_the_board(client, app, login_as):
    login_as("board")
    token = csrf_from(client.get("/bank/questions/new").get_data(as_text=True))
    fake = question_form(token, image=(io.BytesIO(b"GIF89a not really a png"), "anh.png"))
    response = client.post("/bank/questions/new", data=fake, content_type="multipart/form-data")
    assert response.status_code == 422 and "Chỉ nhận ảnh PNG hoặc JPEG." in response.get_data(as_text=True)
    big = question_form(token, image=(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024)), "to.png"))
    response = client.post("/bank/questions/new", data=big, content_type="multipart/form-data")
    assert response.status_code == 422 and "tối đa 2 MB" in response.get_data(as_text=True)

    data = png_bytes()
    response = client.post("/bank/questions/new", data=question_form(token, image=(io.BytesIO(data), "hinh.jpg")),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        version = get_session().scalar(select(QuestionVersion))
    assert version.image == hashlib.sha256(data).hexdigest() + ".png"
    assert (Path(app.instance_path) / "bank-images" / version.image).read_bytes() == data
    served = client.get(f"/bank/images/{version.image}")
    assert served.status_code == 200 and served.data == data and served.mimetype == "image/png"
    assert client.get("/bank/images/..%2Fsecret_key").status_code == 404


def test_an_image_uploaded_at_preview_is_kept_when_saving(client, app, login_as):
    login_as("board")
    token = csrf_from(client.get("/bank/questions/new").get_data(as_text=True))
    response = client.post("/bank/questions/new", content_type="multipart/form-data", data=question_form(
        token, save=None, preview="Xem trước", image=(io.BytesIO(png_bytes()), "hinh.png")))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and count_questions(app) == 0
    name = re.search(r'name="image_name" type="hidden" value="([0-9a-f]{64}\.png)"', html).group(1)
    assert f'src="/bank/images/{name}"' in html[html.index('data-role="candidate-view"'):]
    response = client.post("/bank/questions/new", data=question_form(csrf_from(html), image_name=name))
    assert response.status_code == 302
    with app.app_context():
        assert get_session().scalar(select(QuestionVersion.image)) == name
    forged = question_form(token, image_name="../../secret_key", text="Câu khác hẳn?")
    response = client.post("/bank/questions/new", data=forged)
    assert response.status_code == 422 and count_questions(app) == 1


def test_retire_and_restore_buttons_post_with_csrf(client, app, login_as, make_question):
    question = make_question()
    login_as("board")
    page = client.get(f"/bank/questions/{question.id}").get_data(as_text=True)
    token = csrf_from(page)
    assert client.post(f"/bank/questions/{question.id}/retire", data={}).status_code == 400
    assert db_status(app, question.id) == "active"
    client.post(f"/bank/questions/{question.id}/retire", data={"csrf_token": token, "note": "sai căn cứ"})
    assert db_status(app, question.id) == "retired"
    html = client.get(f"/bank/questions/{question.id}").get_data(as_text=True)
    assert "bank.question.retire" in html and "sai căn cứ" in html
    client.post(f"/bank/questions/{question.id}/restore", data={"csrf_token": token})
    assert db_status(app, question.id) == "active"


def test_browse_filters_and_keyset_links(client, app, login_as, make_question):
    app.config["BANK_PAGE_SIZE"] = 2
    for i in range(3):
        make_question(text=f"Câu hỏi Hiến pháp số {i}?")
    make_question(text="Hàm SUM trong Excel?", topic="Tin học > Excel")
    login_as("board")
    html = client.get("/bank/?q=hien+phap").get_data(as_text=True)
    assert "3 câu hỏi phù hợp" in html and "Hàm SUM" not in html
    next_link = re.search(r'href="(/bank/\?[^"]*after=\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    assert "q=hien+phap" in next_link
    second = client.get(next_link).get_data(as_text=True)
    assert "Câu hỏi Hiến pháp số 0?" in second and "Trang đầu" in second and "Trang sau" not in second


def test_import_dry_run_then_confirm_adds_the_questions(client, app, login_as):
    login_as("board")
    page = client.get("/bank/import").get_data(as_text=True)
    assert "/bank/import/template.xlsx" in page and "option_a" in page
    response = client.post("/bank/import", data={"csrf_token": csrf_from(page),
                                                 "file": (io.BytesIO(csv_file(*GOOD_ROWS)), "cau-hoi.csv")},
                           content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "3 câu hỏi sẽ được thêm" in html and "Tin học &gt; Excel" in html
    assert count_questions(app) == 0
    staged = list((Path(app.instance_path) / "import-staging").glob("*.bin"))
    assert len(staged) == 1
    token = re.search(r'name="token" type="hidden" value="([0-9a-f]+)"', html).group(1)
    sha = re.search(r'name="sha256" type="hidden" value="([0-9a-f]+)"', html).group(1)

    wrong = client.post("/bank/import/confirm",
                        data={"csrf_token": csrf_from(html), "token": token, "sha256": "0" * 64})
    assert wrong.status_code == 302 and count_questions(app) == 0
    assert not staged[0].exists()  # a mismatch throws the staged file away: upload again

    response = client.post("/bank/import", data={"csrf_token": csrf_from(html),
                                                 "file": (io.BytesIO(csv_file(*GOOD_ROWS)), "cau-hoi.csv")},
                           content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    token = re.search(r'name="token" type="hidden" value="([0-9a-f]+)"', html).group(1)
    response = client.post("/bank/import/confirm", data={"csrf_token": csrf_from(html), "token": token, "sha256": sha})
    assert response.status_code == 302 and count_questions(app) == 3
    assert not list((Path(app.instance_path) / "import-staging").glob("*"))
    again = client.post("/bank/import/confirm", data={"csrf_token": csrf_from(html), "token": token, "sha256": sha})
    assert again.status_code == 302 and count_questions(app) == 3  # a token works once
    with app.app_context():
        assert get_session().scalar(select(AuditEntry.action).where(AuditEntry.action == "bank.import"))


def test_bad_import_file_shows_every_error_and_writes_nothing(client, app, login_as):
    login_as("board")
    page = client.get("/bank/import").get_data(as_text=True)
    content = csv_file(GOOD_ROWS[0], "Tin học > Excel,rất khó,single,Câu <b>lỗi</b>?,A,B,,,A,,,,",
                       "Tin học > Excel,easy,single,Câu thiếu đáp án?,A,B,,,,,,,")
    response = client.post("/bank/import", data={"csrf_token": csrf_from(page), "file": (io.BytesIO(content), "x.csv")},
                           content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    table = html[html.index('id="import-errors"'):]
    rows = re.findall(r"<tr><td[^>]*>(row \d+)</td><td[^>]*>(\w+)</td>", table[:table.index("</table>")])
    assert rows == [("row 3", "text"), ("row 3", "difficulty"), ("row 4", "correct")]  # every error, in order
    assert "<b>lỗi" not in html
    assert "/bank/import/confirm" not in html and count_questions(app) == 0
    assert not (Path(app.instance_path) / "import-staging").exists()


def test_topics_page_creates_and_renames(client, app, login_as, make_question):
    make_question(topic="Tin hoc > Excel")
    login_as("board")
    page = client.get("/bank/topics").get_data(as_text=True)
    assert "Tin hoc" in page
    token = csrf_from(page)
    created = client.post("/bank/topics/create", data={"csrf_token": token, "path": "Ngoại ngữ > Tiếng Anh"})
    assert created.status_code == 302
    assert client.post("/bank/topics/create", data={"csrf_token": token, "path": "Ngoại ngữ"}).status_code == 422
    with app.app_context():
        topic_id = get_session().scalar(select(Topic.id).where(Topic.path == "Tin hoc"))
    response = client.post("/bank/topics/rename",
                           data={"csrf_token": token, "topic_id": topic_id, "new_path": "Tin học"})
    assert response.status_code == 302
    page = client.get("/bank/topics").get_data(as_text=True)
    assert "Tin học &gt; Excel" in page and "Tiếng Anh" in page
    with app.app_context():
        paths = set(get_session().scalars(select(Topic.path)))
    assert {"Tin học", "Tin học > Excel", "Ngoại ngữ", "Ngoại ngữ > Tiếng Anh"} == paths
    refused = client.post("/bank/topics/rename", data={"csrf_token": token, "topic_id": topic_id,
                                                       "new_path": "Tin học > Excel > Con"})
    assert refused.status_code == 422
    assert "Không thể chuyển chủ đề vào bên trong chính nó." in refused.get_data(as_text=True)


def test_exports_download_the_bank_and_are_audited(client, app, login_as, make_question):
    make_question()
    login_as("board")
    response = client.get("/bank/export.json")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    document = json.loads(response.data)
    assert document["questions"][0]["text"] == "Hiến pháp năm 2013 có hiệu lực từ ngày nào?"
    xlsx = client.get("/bank/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    with app.app_context():
        exports = get_session().scalars(select(AuditEntry.details)
                                        .where(AuditEntry.action == "bank.export")).all()
    assert [json.loads(d)["format"] for d in exports] == ["json", "xlsx"]
