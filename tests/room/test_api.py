"""The lab client JSON API through the real test client: the contract's flow, its refusals, the
no-key rule over every body a candidate receives, no-store everywhere, JSON errors everywhere."""
from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select, text, update

from exam.core.db import utcnow
from exam.room import api, attempts
from exam.room.models import Attempt
from exam.setup.models import Paper, PaperItem
from exam.setup.sittings import ACCESS_CODE_SECONDS, current_access_code
from question_bank.models import QuestionVersion
from tests.factories import make_ready_candidates

LAB_ADDR = "10.1.1.21"
OTHER_ADDR = "10.1.1.35"
FORBIDDEN_WORDS = ("correct", "key", "answer_key", "is_correct")
ROOT = Path(__file__).resolve().parents[2]


class Machine:
    """One lab machine: a test client at a fixed address; keeps every response it received."""

    def __init__(self, app, addr=LAB_ADDR):
        self.client = app.test_client()
        self.addr = addr
        self.token = None
        self.received = []

    def call(self, method, path, body=None, *, token=None, raw=None):
        headers = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0"}
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs = {"data": raw, "content_type": "application/json"} if raw is not None else (
            {"json": body} if body is not None else {})
        response = self.client.open("/api/v1" + path, method=method, headers=headers,
                                    environ_base={"REMOTE_ADDR": self.addr}, **kwargs)
        self.received.append(response)
        return response

    def login(self, candidate, *, code=None, dob=None, number=None):
        now = utcnow()
        response = self.call("POST", "/login", {
            "registration_no": number or candidate.registration_no,
            "date_of_birth": (dob or candidate.date_of_birth).isoformat(),
            "access_code": code or current_access_code(candidate.sitting, now)})
        if response.status_code == 200:
            self.token = response.get_json()["token"]
        return response

    def save(self, question_id, choices, seq, flagged=None):
        body = {"choices": choices, "seq": seq}
        if flagged is not None:
            body["flagged"] = flagged
        return self.call("PUT", f"/attempt/answers/{question_id}", body)


def paper_key(db, candidate):
    """{question public id: (right option ids, wrong option ids, item)} from the stored paper and bank."""
    paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
    key = {}
    for item in paper.items:
        version = db.get(QuestionVersion, item.question_version_id)
        right = [oid for oid, o in zip(item.option_ids, item.option_order, strict=True)
                 if version.options[o]["correct"]]
        key[item.public_id] = (right, [oid for oid in item.option_ids if oid not in right], item)
    return key


def error_of(response):
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def refresh(db):
    db.rollback()
    db.expire_all()


def set_attempt(db, candidate, **values):
    """Move an attempt's clock underneath the API (the API itself runs on the real clock)."""
    refresh(db)  # no stale read snapshot: SQLite would refuse to upgrade it to a write
    db.execute(update(Attempt).where(Attempt.candidate_id == candidate.id).values(**values))
    db.commit()


def attempt_of(db, candidate):
    refresh(db)
    return db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))


# --- the flow ----------------------------------------------------------------------------------------------

def test_login_read_start_save_submit_result(app, db, room):
    candidate = room[0]
    lab = Machine(app)
    response = lab.login(candidate)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["candidate"] == {"registration_no": candidate.registration_no, "full_name": candidate.full_name,
                                 "seat": candidate.seat}
    assert body["attempt"] == {"status": "not_started"} and body["server_time"].endswith("Z")
    assert body["sitting"]["room"] == "P.101" and body["exam"]["code"] == candidate.exam.code

    before = lab.call("GET", "/attempt").get_json()
    assert before["attempt"]["status"] == "not_started" and before["questions"] == [] and before["answers"] == {}
    assert [s["state"] for s in before["sections"]] == ["upcoming", "upcoming"]

    state = lab.call("POST", "/attempt/start").get_json()
    assert state["attempt"]["status"] == "in_progress"
    assert [s["state"] for s in state["sections"]] == ["open", "upcoming"]
    assert state["sections"][0]["deadline"] == state["attempt"]["section_deadline"]
    assert {q["section"] for q in state["questions"]} == {1}  # the upcoming section is not sent
    assert [q["number"] for q in state["questions"]] == list(range(1, 6))
    key = paper_key(db, candidate)
    seq = 0
    for question in state["questions"][:3]:
        seq += 1
        saved = lab.save(question["id"], key[question["id"]][0], seq)
        assert saved.status_code == 200, saved.get_json()
        assert saved.get_json()["seq"] == seq and saved.get_json()["question_id"] == question["id"]
    seq += 1
    assert lab.save(state["questions"][3]["id"], key[state["questions"][3]["id"]][1][:1], seq,
                    flagged=True).status_code == 200
    beat = lab.call("POST", "/attempt/heartbeat", {"answered": 4}).get_json()
    assert beat["status"] == "in_progress" and beat["section_position"] == 1

    state = lab.call("POST", "/attempt/section/next").get_json()
    assert [s["state"] for s in state["sections"]] == ["closed", "open"]
    assert {q["section"] for q in state["questions"]} == {1, 2}
    assert state["attempt"]["last_seq"] == seq and len(state["answers"]) == 4
    assert state["answers"][state["questions"][3]["id"]]["flagged"] is True
    assert error_of(lab.call("POST", "/attempt/section/next"))["code"] == "last_section"

    assert error_of(lab.call("GET", "/attempt/result"))["code"] == "not_submitted"
    assert error_of(lab.call("POST", "/attempt/submit", {}))["code"] == "invalid_request"
    submitted = lab.call("POST", "/attempt/submit", {"confirm": True})
    assert submitted.status_code == 200 and submitted.get_json()["status"] == "submitted"
    again = lab.call("POST", "/attempt/submit", {"confirm": True}).get_json()
    assert again["submitted_at"] == submitted.get_json()["submitted_at"]

    result = lab.call("GET", "/attempt/result").get_json()
    assert result["show_score"] is True and result["passed"] is False
    assert [(s["title"], s["correct"], s["questions"], s["score"], s["max_score"], s["passed"])
            for s in result["sections"]] == [("Kiến thức chung", 3, 5, 3.0, 5.0, True),
                                              ("Ngoại ngữ", 0, 3, 0.0, 3.0, False)]
    # After submission the token only reads.
    assert lab.call("GET", "/attempt").get_json()["attempt"]["status"] == "submitted"
    assert error_of(lab.save(state["questions"][0]["id"], [], seq + 2))["code"] == "submitted"
    assert lab.call("POST", "/logout").get_json() == {"ok": True}
    assert error_of(lab.call("GET", "/attempt"))["code"] == "invalid_token"


def test_the_score_is_hidden_when_the_exam_says_so(app, db):
    candidate, = make_ready_candidates(db, 1, show_score=False)
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    lab.call("POST", "/attempt/start")
    lab.call("POST", "/attempt/submit", {"confirm": True})
    result = lab.call("GET", "/attempt/result").get_json()
    assert result["show_score"] is False and result["sections"] == [] and result["passed"] is None


# --- the no-key rule ---------------------------------------------------------------------------------------

def walk_keys(value):
    if isinstance(value, dict):
        for name, inner in value.items():
            yield name
            yield from walk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from walk_keys(inner)


def test_no_response_a_candidate_receives_tells_which_option_is_right(app, db, room):
    candidate = room[0]
    lab = Machine(app)
    lab.login(candidate)
    lab.call("GET", "/attempt")
    state = lab.call("POST", "/attempt/start").get_json()
    key = paper_key(db, candidate)
    seq = 0
    for question in state["questions"]:
        right, wrong, _item = key[question["id"]]
        for choices in (wrong[:1], right):  # an answer change, as people do
            seq += 1
            lab.save(question["id"], choices, seq)
    lab.save(state["questions"][0]["id"], right, 1)  # stale: 409
    lab.save(state["questions"][0]["id"], ["nope"], seq + 1)  # 422
    lab.save("0000000000000000", [], seq + 1)  # 404
    lab.call("POST", "/attempt/heartbeat", {"answered": seq})
    state = lab.call("POST", "/attempt/section/next").get_json()
    for question in state["questions"]:
        if question["section"] == 2:
            seq += 1
            lab.save(question["id"], key[question["id"]][0], seq)
    lab.call("GET", "/attempt")
    lab.call("POST", "/attempt/submit", {"confirm": True})
    result = lab.call("GET", "/attempt/result")
    lab.call("POST", "/logout")

    # Texts that may legitimately contain the words ("Choose the correct option…"): the bank's own.
    versions = db.scalars(select(QuestionVersion).where(QuestionVersion.id.in_(
        [item.question_version_id for _r, _w, item in key.values()]))).all()
    bank_texts = sorted({v.text for v in versions} | {o["text"] for v in versions for o in v.options}, key=len,
                        reverse=True)
    explanations = [v.explanation for v in versions if v.explanation]
    assert len(lab.received) > 20
    for response in lab.received:
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_json()
        names = set(walk_keys(body))
        assert not names & {"correct", "is_correct", "key", "answer_key", "option_order", "explanation"} or \
            response is result, (response.request.path, names)
        raw = json.dumps(body, ensure_ascii=False)
        for bank_text in bank_texts:
            raw = raw.replace(json.dumps(bank_text, ensure_ascii=False)[1:-1], "")
        for word in FORBIDDEN_WORDS:
            if response is result and word == "correct":
                continue  # the result's per-section count of correct answers, after submission
            assert word not in raw.lower(), (response.request.path, word, raw[:300])
        for explanation in explanations:
            assert explanation not in raw
    # The result holds counts per section only: nothing per question.
    assert set(result.get_json()) == {"show_score", "sections", "passed", "submitted_at", "merit", "server_time"}
    assert result.get_json()["merit"] == {"published": False}  # the merit list's line, once it is published
    assert all(set(s) == {"title", "correct", "questions", "score", "max_score", "passed"}
               for s in result.get_json()["sections"])

    # Questions carry exactly the contract's fields; option ids are the paper's opaque ones, in its order.
    final = next(r for r in reversed(lab.received) if r.request.path.endswith("/attempt") and r.status_code == 200
                 and r.request.method == "GET").get_json()
    for question in final["questions"]:
        assert set(question) == {"id", "section", "number", "type", "text", "image_url", "options"}
        right, _wrong, item = key[question["id"]]
        version = db.get(QuestionVersion, item.question_version_id)
        assert [o["id"] for o in question["options"]] == item.option_ids
        assert [o["text"] for o in question["options"]] == [version.options[i]["text"] for i in item.option_order]
        assert all(set(o) == {"id", "text"} for o in question["options"])
        assert all(re.fullmatch(r"[0-9a-f]{12}", o["id"]) for o in question["options"])


# --- saves ---------------------------------------------------------------------------------------------------

def test_a_stale_save_gets_409_and_the_newer_one_stays(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    question = lab.call("POST", "/attempt/start").get_json()["questions"][0]
    first, second = question["options"][0]["id"], question["options"][1]["id"]
    assert lab.save(question["id"], [first], 5).status_code == 200
    stale = lab.save(question["id"], [second], 3)
    assert stale.status_code == 409
    assert error_of(stale)["code"] == "stale_seq" and error_of(stale)["current_seq"] == 5
    answers = lab.call("GET", "/attempt").get_json()["answers"]
    assert answers[question["id"]] == {"choices": [first], "flagged": False, "seq": 5}


def test_a_replayed_save_is_acknowledged_again(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    question = lab.call("POST", "/attempt/start").get_json()["questions"][1]
    choice = [question["options"][2]["id"]]
    first = lab.save(question["id"], choice, 1, flagged=False)
    replay = lab.save(question["id"], choice, 1, flagged=False)
    assert first.status_code == replay.status_code == 200
    assert first.get_json()["saved_at"] == replay.get_json()["saved_at"]
    assert attempt_of(db, room[0]).history_count == 1


def test_bad_bodies_are_refused_with_the_right_codes(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    questions = lab.call("POST", "/attempt/start").get_json()["questions"]
    one, other = questions[0], questions[1]
    assert error_of(lab.save(one["id"], [other["options"][0]["id"]], 1))["code"] == "invalid_choice"
    assert lab.save(one["id"], [other["options"][0]["id"]], 1).status_code == 422
    assert error_of(lab.save(one["id"], [], "1"))["code"] == "invalid_request"
    assert error_of(lab.call("PUT", f"/attempt/answers/{one['id']}", raw="{not json"))["code"] == "invalid_request"
    assert error_of(lab.call("PUT", f"/attempt/answers/{one['id']}", [1, 2]))["code"] == "invalid_request"
    assert error_of(lab.call("POST", "/login", {"registration_no": "x"}))["code"] == "invalid_request"
    assert error_of(lab.call("POST", "/login", {"registration_no": "x", "date_of_birth": "31/12/1990",
                                                 "access_code": "123456"}))["code"] == "invalid_request"


def test_saves_before_start_are_refused(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    item = db.scalars(select(PaperItem).join(Paper).where(Paper.candidate_id == room[0].id)).first()
    response = lab.save(item.public_id, [], 1)
    assert response.status_code == 403 and error_of(response)["code"] == "not_started"


def test_another_candidates_question_is_a_404_like_a_missing_one(app, db, room):
    mine, theirs = room
    lab, neighbour = Machine(app), Machine(app, OTHER_ADDR)
    lab.login(mine)
    neighbour.login(theirs)
    lab.call("POST", "/attempt/start")
    their_question = neighbour.call("POST", "/attempt/start").get_json()["questions"][0]
    foreign = lab.save(their_question["id"], [their_question["options"][0]["id"]], 1)
    missing = lab.save("ffffffffffffffff", [their_question["options"][0]["id"]], 1)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_data() == missing.get_data()
    assert attempt_of(db, theirs).history_count == 0


# --- the clock, through the API ---------------------------------------------------------------------------

def test_a_late_save_after_deadline_and_grace_is_refused_and_the_attempt_closed(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    question = lab.call("POST", "/attempt/start").get_json()["questions"][0]
    assert lab.save(question["id"], [question["options"][0]["id"]], 1).status_code == 200
    past = utcnow() - timedelta(seconds=11)
    set_attempt(db, room[0], deadline=past, section_deadline=past, section_position=2)
    late = lab.save(question["id"], [question["options"][1]["id"]], 2)
    assert late.status_code == 403 and error_of(late)["code"] == "deadline_passed"
    attempt = attempt_of(db, room[0])
    assert (attempt.status, attempt.submitted_by, attempt.submitted_at) == ("submitted", "deadline", past)
    assert lab.call("GET", "/attempt").get_json()["answers"][question["id"]]["seq"] == 1
    assert error_of(lab.save(question["id"], [], 3))["code"] == "deadline_passed"


def test_a_section_closes_on_time_and_the_next_opens_at_its_deadline(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    first = lab.call("POST", "/attempt/start").get_json()["questions"][0]
    closed_at = utcnow() - timedelta(minutes=1)
    set_attempt(db, room[0], section_deadline=closed_at)
    refused = lab.save(first["id"], [first["options"][0]["id"]], 1)
    assert refused.status_code == 403 and error_of(refused)["code"] == "section_closed"
    state = lab.call("GET", "/attempt").get_json()
    assert [s["state"] for s in state["sections"]] == ["closed", "open"]
    assert state["attempt"]["section_position"] == 2
    assert state["attempt"]["section_deadline"] == api.iso(closed_at + timedelta(minutes=5))
    assert {q["section"] for q in state["questions"]} == {1, 2}
    second = next(q for q in state["questions"] if q["section"] == 2)
    assert lab.save(second["id"], [second["options"][0]["id"]], 2).status_code == 200
    attempt = attempt_of(db, room[0])
    assert (attempt.section_position, attempt.section_started_at) == (2, closed_at)


# --- sessions: resume, moves, access codes -----------------------------------------------------------------

def test_resume_after_relogin_from_the_same_machine_shows_every_acknowledged_answer(app, db, room):
    lab = Machine(app)
    lab.login(room[0])
    questions = lab.call("POST", "/attempt/start").get_json()["questions"]
    acknowledged = {}
    for seq, question in enumerate(questions, start=1):
        choice = [question["options"][seq % len(question["options"])]["id"]]
        assert lab.save(question["id"], choice, seq).status_code == 200
        acknowledged[question["id"]] = {"choices": choice, "flagged": False, "seq": seq}
    old_token = lab.token
    rebooted = Machine(app)  # the same machine after a crash: same address, new browser session
    assert rebooted.login(room[0]).status_code == 200
    state = rebooted.call("GET", "/attempt").get_json()
    assert state["answers"] == acknowledged and state["attempt"]["last_seq"] == len(questions)
    assert error_of(lab.call("GET", "/attempt", token=old_token))["code"] == "invalid_token"


def test_a_second_machine_is_refused_until_the_move_is_admitted(app, db, room, runner):
    candidate = room[0]
    lab, spare = Machine(app), Machine(app, OTHER_ADDR)
    lab.login(candidate)
    question = lab.call("POST", "/attempt/start").get_json()["questions"][0]
    lab.save(question["id"], [question["options"][0]["id"]], 1)
    refused = spare.login(candidate)
    assert refused.status_code == 409 and error_of(refused)["code"] == "active_elsewhere"
    result = runner.invoke(args=["candidates", "admit-move", candidate.exam.code, candidate.registration_no,
                                 "--reason", "máy 21 treo"])
    assert result.exit_code == 0, result.output
    dead = lab.call("GET", "/attempt")
    assert dead.status_code == 401 and error_of(dead)["code"] == "invalid_token"
    assert "máy khác" in error_of(dead)["message"]
    assert spare.login(candidate).status_code == 200
    state = spare.call("GET", "/attempt").get_json()
    assert state["attempt"]["status"] == "in_progress" and state["answers"][question["id"]]["seq"] == 1


def test_wrong_expired_and_other_room_codes_are_401_bad_access_code(app, db):
    here, = make_ready_candidates(db, 1, room="P.201")
    elsewhere, = make_ready_candidates(db, 1, room="P.202")
    db.commit()
    now = utcnow()
    current = current_access_code(here.sitting, now)
    codes = {
        "wrong": f"{(int(current) + 500_000) % 1_000_000:06d}",
        "expired": current_access_code(here.sitting, now - timedelta(seconds=3 * ACCESS_CODE_SECONDS)),
        "other room": current_access_code(elsewhere.sitting, now),
    }
    lab = Machine(app)
    for label, code in codes.items():
        if code == current:
            continue  # a one-in-a-million collision
        response = lab.login(here, code=code)
        assert response.status_code == 401 and error_of(response)["code"] == "bad_access_code", label


def test_unknown_number_and_wrong_birth_date_look_the_same(app, db, room):
    lab = Machine(app)
    unknown = lab.login(room[0], number="KHONG-TON-TAI")
    wrong_dob = lab.login(room[0], dob=date(1960, 2, 2))
    assert unknown.status_code == wrong_dob.status_code == 401
    assert unknown.get_data() == wrong_dob.get_data()
    assert error_of(unknown)["code"] == "bad_credentials"


def test_login_outside_the_sitting_window(app, db):
    future, = make_ready_candidates(db, 1, starts_at=utcnow() + timedelta(minutes=10))
    late, = make_ready_candidates(db, 1, starts_at=utcnow() - timedelta(minutes=20))
    db.commit()
    lab = Machine(app)
    assert error_of(lab.login(future))["code"] == "sitting_not_started"
    response = lab.login(late)
    assert response.status_code == 403 and error_of(response)["code"] == "late_entry_closed"


# --- every answer: JSON and no-store ---------------------------------------------------------------------------

def test_errors_under_the_api_are_json_and_nothing_is_cached(app, db, room, monkeypatch):
    lab = Machine(app)
    checks = {
        "no token": (lab.call("GET", "/attempt"), 401, "invalid_token"),
        "bad token": (lab.call("GET", "/attempt", token="x" * 43), 401, "invalid_token"),
        "unknown route": (lab.call("GET", "/nowhere"), 404, "not_found"),
        "wrong method": (lab.call("GET", "/login"), 405, "method_not_allowed"),
        "too large": (lab.call("POST", "/login", raw="{" + " " * (api.MAX_BODY_BYTES + 10) + "}"), 413, "too_large"),
    }
    lab.login(room[0])
    lab.call("POST", "/attempt/start")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(attempts, "heartbeat_for_token", lambda *a, **k: 1 / 0)
    checks["server error"] = (lab.call("POST", "/attempt/heartbeat"), 500, "server_error")
    for label, (response, status, code) in checks.items():
        assert response.status_code == status, label
        assert response.mimetype == "application/json", label
        assert error_of(response)["code"] == code and error_of(response)["message"], label
    for response in lab.received:
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers  # bearer tokens only: no cookie, no CSRF surface


def test_question_images_are_served_by_signed_address_only(app, db, room):
    candidate = room[0]
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    name = "a" * 64 + ".png"
    folder = Path(app.instance_path) / "bank-images"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(png)
    item = db.scalars(select(PaperItem).join(Paper).where(Paper.candidate_id == candidate.id)
                      .order_by(PaperItem.position)).first()
    # Frozen versions refuse ORM edits; the test sets the picture underneath.
    refresh(db)
    db.execute(text("UPDATE question_version SET image = :name WHERE id = :id"),
               {"name": name, "id": item.question_version_id})
    db.commit()
    lab = Machine(app)
    lab.login(candidate)
    questions = lab.call("POST", "/attempt/start").get_json()["questions"]
    url = next(q["image_url"] for q in questions if q["id"] == item.public_id)
    assert url.startswith("/api/v1/images/") and name not in url
    assert all(q["image_url"] is None for q in questions if q["id"] != item.public_id)
    picture = lab.client.get(url)
    assert picture.status_code == 200 and picture.data == png
    assert picture.headers["Cache-Control"] == "no-store"
    forged = lab.client.get(url[:-3] + "xyz")
    assert forged.status_code == 404 and forged.get_json()["error"]["code"] == "not_found"


def test_every_api_view_is_candidate_facing_and_documented(app):
    spec = (ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8")
    assert spec.startswith("openapi: 3.1")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        assert getattr(app.view_functions[rule.endpoint], "candidate_facing", False), rule.rule
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        assert f"\n  {path}:\n" in spec, f"{path} missing from docs/openapi.yaml"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            block = "\n" + spec.split(f"\n  {path}:\n", 1)[1].split("\n  /", 1)[0]
            assert f"\n    {method.lower()}:" in block, f"{method} {path} missing from docs/openapi.yaml"
    for code in api.ERRORS:
        assert code in spec, f"error code {code} missing from docs/openapi.yaml"

