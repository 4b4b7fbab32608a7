"""The room lane (exam/room/lane.py): answer saves and heartbeats answered beneath Flask's dispatch,
with the same answers as the API's views. Each case is sent twice: through the app as served (the lane
first) and straight to the Flask app behind it, and the two answers must agree."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from exam.core.headers import SECURITY_HEADERS
from exam.room.lane import RoomLane
from exam.room.models import ResponseLog
from tests.room.test_api import LAB_ADDR, Machine, error_of

VOLATILE = {"server_time", "saved_at", "deadline", "section_deadline"}


class FlaskOnly(Machine):
    """A lab machine whose requests skip the lane: the Flask app that stands behind it."""

    def __init__(self, app, token):
        super().__init__(app)
        lane = app.wsgi_app
        assert isinstance(lane, RoomLane)
        self.client = Client(lane.flask_wsgi_app, app.response_class)
        self.token = token


@pytest.fixture
def flask_requests(app):
    """How many requests reached Flask's dispatch."""
    seen = []
    app.before_request_funcs.setdefault(None, []).append(lambda: seen.append(1) and None)
    return seen


def stable(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in VOLATILE}


def started(app, candidate):
    lab = Machine(app)
    lab.login(candidate)
    questions = lab.call("POST", "/attempt/start").get_json()["questions"]
    return lab, FlaskOnly(app, lab.token), questions


def test_saves_and_heartbeats_skip_flask_and_answer_as_the_views_do(app, db, room, flask_requests):
    lab, behind, questions = started(app, room[0])
    one, two = questions[0], questions[1]
    before = len(flask_requests)
    by_lane = [lab.save(one["id"], [one["options"][0]["id"]], 1),
               lab.call("POST", "/attempt/heartbeat", {"answered": 1}),
               lab.call("POST", "/attempt/heartbeat")]
    assert len(flask_requests) == before  # the lane answered all three
    by_flask = [behind.save(two["id"], [two["options"][0]["id"]], 2),
                behind.call("POST", "/attempt/heartbeat", {"answered": 2}),
                behind.call("POST", "/attempt/heartbeat")]
    assert len(flask_requests) == before + 3
    for lane, view in zip(by_lane, by_flask, strict=True):
        assert lane.status_code == view.status_code == 200
        assert lane.mimetype == view.mimetype == "application/json"
        for name in ("Cache-Control", "Pragma", *(name for name, _ in SECURITY_HEADERS)):
            assert lane.headers[name] == view.headers[name], name
    assert stable(by_lane[0].get_json()) == {**stable(by_flask[0].get_json()), "question_id": one["id"], "seq": 1}
    assert stable(by_lane[1].get_json()) == stable(by_flask[1].get_json())
    answers = lab.call("GET", "/attempt").get_json()["answers"]
    assert answers[one["id"]]["seq"] == 1 and answers[two["id"]]["seq"] == 2


@pytest.mark.parametrize("case", ["stale", "invalid_choice", "bad_seq", "unknown_question", "ended_token"])
def test_refusals_from_the_lane_are_the_views_refusals(app, db, room, case):
    lab, behind, questions = started(app, room[0])
    one, other = questions[0], questions[1]
    lab.save(one["id"], [one["options"][0]["id"]], 5)
    send = {
        "stale": lambda m: m.save(one["id"], [one["options"][1]["id"]], 3),
        "invalid_choice": lambda m: m.save(one["id"], [other["options"][0]["id"]], 9),
        "bad_seq": lambda m: m.save(one["id"], [], "1"),
        "unknown_question": lambda m: m.save("no-such-question", [], 9),
        "ended_token": lambda m: m.call("POST", "/attempt/heartbeat"),
    }[case]
    if case == "ended_token":
        lab.call("POST", "/logout")
    by_lane, by_flask = send(lab), send(behind)
    assert by_lane.status_code == by_flask.status_code >= 400
    assert error_of(by_lane) == error_of(by_flask)
    assert by_lane.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("request_kind", ["not_json", "json_array", "text_body", "no_token", "too_large"])
def test_what_the_lane_does_not_judge_goes_to_flask_whole(app, db, room, flask_requests, request_kind):
    lab, _behind, questions = started(app, room[0])
    path = f"/attempt/answers/{questions[0]['id']}"
    before = len(flask_requests)
    response = {
        "not_json": lambda: lab.call("PUT", path, raw="{not json"),
        "json_array": lambda: lab.call("PUT", path, [1, 2]),
        "text_body": lambda: lab.client.put("/api/v1" + path, data='{"choices": [], "seq": 1}',
                                            content_type="text/plain",
                                            headers={"Authorization": f"Bearer {lab.token}"}),
        "no_token": lambda: Machine(app).save(questions[0]["id"], [], 1),
        "too_large": lambda: lab.call("PUT", path, {"choices": ["x" * 70_000], "seq": 1}),
    }[request_kind]()
    assert len(flask_requests) == before + 1  # Flask saw it, with its body intact
    expected = {"not_json": (400, "invalid_request"), "json_array": (400, "invalid_request"),
                "text_body": (400, "invalid_request"), "no_token": (401, "invalid_token"),
                "too_large": (413, "too_large")}[request_kind]
    assert (response.status_code, error_of(response)["code"]) == expected


def test_the_lane_records_the_lab_machine_as_the_views_do(app, db, room):
    lab, behind, questions = started(app, room[0])
    lab.save(questions[0]["id"], [questions[0]["options"][0]["id"]], 1)
    behind.save(questions[1]["id"], [questions[1]["options"][0]["id"]], 2)
    db.rollback()
    machines = db.scalars(select(ResponseLog.machine).order_by(ResponseLog.seq)).all()
    assert machines[0] == machines[1] and machines[0].startswith(LAB_ADDR + " Mozilla/5.0")
