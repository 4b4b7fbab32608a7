"""The proctor console through the real client (CSRF on): the pages, every action refused without a
reason, actions seen by the candidate's API (extension, pause), the door, the report, the auditor
refused everywhere, and the room's JSON for 200 seats in a bounded number of queries."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from exam.audit.models import AuditEntry
from exam.core.db import utcnow
from exam.room import attempts, sessions
from exam.setup.models import PaperItem, Sitting
from exam.setup.sittings import current_access_code
from tests.conftest import csrf_from
from tests.factories import make_exam, make_ready_candidates, make_sitting

LAB = "10.1.1.21"


def make_room(app, n=3, *, opened=True):
    with app.extensions["exam_db"].sessionmaker() as db:
        exam = make_exam(db)
        sitting = make_sitting(db, exam, starts_at=utcnow() - timedelta(minutes=2), opened=opened, room="P.101")
        people = make_ready_candidates(db, n, exam=exam, sitting=sitting)
        db.commit()
        return sitting.code, [(c.registration_no, c.date_of_birth) for c in people]


class Lab:
    """A lab machine speaking the candidate API with its bearer token."""

    def __init__(self, app, addr=LAB):
        self.app, self.client, self.addr, self.token = app, app.test_client(), addr, None

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.open("/api/v1" + path, method=method, headers=headers, json=body,
                                environ_base={"REMOTE_ADDR": self.addr})

    def sign_in(self, code, person):
        with self.app.extensions["exam_db"].sessionmaker() as db:
            sitting = db.scalar(select(Sitting).where(Sitting.code == code))
            access = current_access_code(sitting, utcnow())
        number, born = person
        response = self.call("POST", "/login", {"registration_no": number, "date_of_birth": born.isoformat(),
                                                 "access_code": access})
        if response.status_code == 200:
            self.token = response.get_json()["token"]
        return response

    def start(self, code, person):
        assert self.sign_in(code, person).status_code == 200
        response = self.call("POST", "/attempt/start")
        assert response.status_code == 200, response.get_json()
        return response.get_json()


def left_of(body) -> float:
    """Section time left as the page computes it: deadline - server_time."""
    def parse(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    deadline = body["attempt"]["section_deadline"] if "attempt" in body else body["section_deadline"]
    return (parse(deadline) - parse(body["server_time"])).total_seconds()


def console_token(client, code) -> str:
    page = client.get(f"/proctor/sittings/{code}")
    assert page.status_code == 200
    return csrf_from(page.get_data(as_text=True))


def post(client, url, token, **data):
    return client.post(url, data={"csrf_token": token, **data})


def audit_count(app) -> int:
    with app.extensions["exam_db"].sessionmaker() as db:
        return db.scalar(select(func.count()).select_from(AuditEntry))


# --- pages --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ("proctor", "board"))
def test_every_page_renders_in_vietnamese_without_inline_code(app, client, login_as, role):
    code, people = make_room(app, 3)
    login_as(role)
    number = people[0][0]
    pages = ["/proctor/", f"/proctor/sittings/{code}", f"/proctor/sittings/{code}/access-code",
             f"/proctor/sittings/{code}/check-in", f"/proctor/sittings/{code}/admit-cards",
             f"/proctor/sittings/{code}/report"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert "style=" not in html, url  # CSP: no inline styles
        for script in re.findall(r"<script[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, (url, script)
        assert "lang=\"vi\"" in html
    console = client.get(f"/proctor/sittings/{code}").get_data(as_text=True)
    assert "Mã truy cập ca thi" in console and "Ca thi " + code + " · P.101" in console
    assert "Tạm dừng phòng thi" in console
    state = client.get(f"/proctor/sittings/{code}/room.json").get_json()
    assert [seat["number"] for seat in state["seats"]] == [p[0] for p in people]
    assert state["sitting"]["access_code"].isdigit() and len(state["sitting"]["access_code"]) == 6
    assert 0 < state["sitting"]["code_seconds_left"] <= 120
    assert client.get(f"/proctor/sittings/{code}/access-code.json").get_json()["access_code"] == \
        state["sitting"]["access_code"]
    assert client.get(f"/proctor/sittings/{code}/seats/{number}/compensation.json").get_json() == {"proposal": None}
    assert client.get("/proctor/sittings/NO-SUCH/room.json").status_code == 404
    assert client.get(f"/proctor/sittings/{code}/seats/NO-SUCH/compensation.json").status_code == 404


def test_the_auditor_is_refused_every_proctor_route_and_changes_nothing(app, client, login_as, staff):
    code, people = make_room(app, 2)
    number = people[0][0]
    login_as("auditor")
    token = csrf_from(client.get("/").get_data(as_text=True))
    before = audit_count(app)
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("proctor.")]
    assert len(rules) >= 18
    for rule in rules:
        url = rule.rule.replace("<code>", code).replace("<number>", number)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"csrf_token": token, "reason": "Thanh tra thử",
                                                                "minutes": "5", "registration_no": number})
            assert response.status_code == 403, (method, url)
    assert audit_count(app) == before


ACTION_PATHS = ("open", "pause", "resume", "incidents", "seats/{n}/extend", "seats/{n}/compensate",
                "seats/{n}/force-submit", "seats/{n}/absent", "seats/{n}/present", "seats/{n}/move")


def test_every_action_page_refuses_an_empty_reason_and_changes_nothing(app, client, login_as):
    code, people = make_room(app, 2, opened=False)
    login_as("proctor")
    token = console_token(client, code)
    before = audit_count(app)
    for path in ACTION_PATHS:
        url = f"/proctor/sittings/{code}/" + path.format(n=people[0][0])
        for reason in ("", "   "):
            response = post(client, url, token, reason=reason, minutes="5", kind="note")
            assert response.status_code == 422, url
            assert "Hãy ghi lý do" in response.get_data(as_text=True), url
    assert audit_count(app) == before
    with app.extensions["exam_db"].sessionmaker() as db:
        sitting = db.scalar(select(Sitting).where(Sitting.code == code))
        assert sitting.opened_at is None and sitting.paused_at is None
    # With a reason it goes through, once; the second time says why not.
    response = post(client, f"/proctor/sittings/{code}/open", token, reason="Bắt đầu đúng giờ")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/proctor/sittings/{code}")
    assert "Đã bắt đầu ca thi" in client.get(f"/proctor/sittings/{code}").get_data(as_text=True)
    again = post(client, f"/proctor/sittings/{code}/open", token, reason="Lần nữa")
    assert again.status_code == 422 and "Ca thi đã được bắt đầu." in again.get_data(as_text=True)
    assert client.post(f"/proctor/sittings/{code}/pause", data={"reason": "Không có mã CSRF"}).status_code == 400


def test_an_extension_from_the_console_shows_in_the_candidates_clock(app, client, login_as):
    code, people = make_room(app, 1)
    lab = Lab(app)
    started = lab.start(code, people[0])
    login_as("proctor")
    token = console_token(client, code)
    response = post(client, f"/proctor/sittings/{code}/seats/{people[0][0]}/extend", token, minutes="7",
                    reason="Máy treo, đã khởi động lại")
    assert response.status_code == 302
    body = lab.call("GET", "/attempt").get_json()
    assert left_of(body) == pytest.approx(left_of(started) + 7 * 60, abs=3)
    beat = lab.call("POST", "/attempt/heartbeat", {}).get_json()
    assert beat["paused"] is False and beat["section_deadline"] == body["attempt"]["section_deadline"]
    seat = client.get(f"/proctor/sittings/{code}/room.json").get_json()["seats"][0]
    assert seat["state"] == "answering" and seat["extra_seconds"] == 420 and seat["ip"] == LAB
    bad = post(client, f"/proctor/sittings/{code}/seats/{people[0][0]}/extend", token, minutes="abc", reason="x")
    assert bad.status_code == 422


def test_a_pause_from_the_console_freezes_every_clock_and_the_resume_keeps_the_time_left(app, client, login_as):
    code, people = make_room(app, 2)
    lab = Lab(app)
    lab.start(code, people[0])
    other = Lab(app, "10.1.1.22")
    other.sign_in(code, people[1])  # reading the instructions
    question = lab.call("GET", "/attempt").get_json()["questions"][0]
    login_as("proctor")
    token = console_token(client, code)
    assert post(client, f"/proctor/sittings/{code}/pause", token, reason="Mất điện toàn phòng").status_code == 302

    first = lab.call("GET", "/attempt").get_json()
    time.sleep(0.5)
    second = lab.call("GET", "/attempt").get_json()
    assert first["paused"] is second["paused"] is True
    assert left_of(first) == pytest.approx(left_of(second), abs=0.002)  # frozen, to the millisecond
    beat = lab.call("POST", "/attempt/heartbeat", {}).get_json()
    assert beat["paused"] is True and left_of(beat) == pytest.approx(left_of(first), abs=0.002)
    saved = lab.call("PUT", f"/attempt/answers/{question['id']}", {"choices": [question["options"][0]["id"]],
                                                                     "seq": 1})
    assert saved.status_code == 403 and saved.get_json()["error"]["code"] == "room_paused"
    assert other.call("POST", "/attempt/start").get_json()["error"]["code"] == "room_paused"
    console = client.get(f"/proctor/sittings/{code}/room.json").get_json()
    assert console["sitting"]["paused"] and console["sitting"]["phase"] == "paused"

    time.sleep(0.5)
    assert post(client, f"/proctor/sittings/{code}/resume", token, reason="Đã có điện").status_code == 302
    after = lab.call("GET", "/attempt").get_json()
    assert after["paused"] is False
    assert left_of(after) == pytest.approx(left_of(first), abs=0.5)  # the same time left, less the request's time
    saved = lab.call("PUT", f"/attempt/answers/{question['id']}", {"choices": [question["options"][0]["id"]],
                                                                     "seq": 1})
    assert saved.status_code == 200


def test_force_submit_and_absence_from_the_console(app, client, login_as):
    code, people = make_room(app, 2)
    lab = Lab(app)
    lab.start(code, people[0])
    login_as("proctor")
    token = console_token(client, code)
    assert post(client, f"/proctor/sittings/{code}/seats/{people[0][0]}/force-submit", token,
                reason="Vi phạm quy chế").status_code == 302
    assert lab.call("GET", "/attempt").get_json()["attempt"]["status"] == "submitted"
    assert post(client, f"/proctor/sittings/{code}/seats/{people[1][0]}/absent", token,
                reason="Không đến").status_code == 302
    refused = Lab(app, "10.1.1.23").sign_in(code, people[1])
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "marked_absent"
    seats = {s["number"]: s for s in client.get(f"/proctor/sittings/{code}/room.json").get_json()["seats"]}
    assert seats[people[0][0]]["state"] == "submitted" and seats[people[1][0]]["state"] == "absent"
    report = client.get(f"/proctor/sittings/{code}/report").get_data(as_text=True)
    for text in ("BIÊN BẢN CA THI", "Vi phạm quy chế", "Không đến", "Giám thị thu bài", "Giám thị 1", "Giám thị 2"):
        assert text in report, text


def test_the_door_scans_numbers_and_keeps_the_reason(app, client, login_as):
    code, people = make_room(app, 2)
    login_as("proctor")
    page = client.get(f"/proctor/sittings/{code}/check-in")
    token = csrf_from(page.get_data(as_text=True))
    url = f"/proctor/sittings/{code}/check-in"
    response = client.post(url, data={"csrf_token": token, "registration_no": f" {people[0][0]} ",
                                      "reason": "Đối chiếu CCCD"})
    assert response.status_code == 302
    html = client.get(url).get_data(as_text=True)
    assert "Mời vào máy số 1" in html and 'value="Đối chiếu CCCD"' in html
    again = client.post(url, data={"csrf_token": token, "registration_no": people[0][0], "reason": "Đối chiếu CCCD"})
    assert again.status_code == 302 and "Đã điểm danh trước đó" in client.get(url).get_data(as_text=True)
    unknown = client.post(url, data={"csrf_token": token, "registration_no": "KHONG-CO", "reason": "Đối chiếu"})
    assert unknown.status_code == 422 and "Không có thí sinh số báo danh KHONG-CO" in unknown.get_data(as_text=True)
    blank = client.post(url, data={"csrf_token": token, "registration_no": people[1][0], "reason": " "})
    assert blank.status_code == 422 and "Hãy ghi lý do" in blank.get_data(as_text=True)
    seats = {s["number"]: s for s in client.get(f"/proctor/sittings/{code}/room.json").get_json()["seats"]}
    assert seats[people[0][0]]["state"] == "checked_in" and seats[people[1][0]]["state"] == "not_arrived"


def test_admit_cards_carry_the_number_as_a_qr_code(app, client, login_as):
    code, people = make_room(app, 3)
    login_as("proctor")
    html = client.get(f"/proctor/sittings/{code}/admit-cards").get_data(as_text=True)
    assert html.count('class="pc-admit-card"') == 3 and html.count("data:image/svg+xml") == 3
    for number, _born in people:
        assert number in html
    assert "THẺ DỰ THI" in html and "Ảnh 3×4" in html


# --- one poll, 200 seats, a bounded number of queries --------------------------------------------------------

def test_the_room_json_for_200_seats_takes_as_many_queries_as_for_2(app, client, login_as):
    small, _people = make_room(app, 2)
    with app.extensions["exam_db"].sessionmaker() as db:
        exam = make_exam(db)
        sitting = make_sitting(db, exam, starts_at=utcnow() - timedelta(minutes=2), seats=200)
        people = make_ready_candidates(db, 200, exam=exam, sitting=sitting)
        now = utcnow()
        plan = attempts.exam_sections(db, exam.id)
        for i, candidate in enumerate(people[:150]):
            result = sessions.login(db, registration_no=candidate.registration_no,
                                    date_of_birth=candidate.date_of_birth,
                                    access_code=current_access_code(sitting, now), machine=f"10.2.0.{i} x", now=now)
            attempts.start(db, result.attempt, sitting, plan, now=now)
            if i % 3 == 0:
                item = db.scalar(select(PaperItem).where(PaperItem.paper_id == result.attempt.paper_id)
                                 .order_by(PaperItem.position))
                attempts.save_answer(db, result.attempt, plan, question_id=item.public_id,
                                     choices=[item.option_ids[0]], seq=1, flagged=None, machine="x", now=now)
        db.commit()
        big = sitting.code
    login_as("proctor")
    engine = app.extensions["exam_db"].engine
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    def queries(url):
        client.get(url)  # warm: the exam's sections are kept in memory once read
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = client.get(url)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return len(statements), response.get_json()

    few, _small_state = queries(f"/proctor/sittings/{small}/room.json")
    many, state = queries(f"/proctor/sittings/{big}/room.json")
    own = [s for s in statements if s.startswith("SELECT") and "FROM staff_" not in s]
    assert many == few and len(own) <= 3, "\n".join(s[:90] for s in statements)  # the sitting, the seats, incidents
    assert len(state["seats"]) == 200 and state["counts"]["answering"] == 150
    assert sum(seat["answered"] for seat in state["seats"]) == 50
