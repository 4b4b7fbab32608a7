"""The exam room's two most frequent requests, answered beneath Flask's dispatch: an answer save
(``PUT /api/v1/attempt/answers/<question_id>``) and a heartbeat (``POST /api/v1/attempt/heartbeat``).

A full lab sends about 1,400 of them a second. Flask's request context, URL map, session cookie
and response object cost a save about as much CPU as the save itself, and on a two-core server
that decided whether a save waits 5 ms or 30 (bench/load.py). Here, in an app context, they get the
API's own answer (``api.answer_save``, ``api.answer_heartbeat``: the same operation, the same JSON,
error bodies and headers as the views, which call the same functions), with the security headers
every answer carries (``exam.core.headers.SECURITY_HEADERS``, handed in by ``create_app``).

What is left here is what WSGI needs: telling the two requests apart by method and path, reading the
token (``api.parse_bearer``) and the body from the environ, and writing the answer. Whatever is unusual
is left to Flask as it came (its body put back): no bearer token, a body that is not a small JSON
object, a request the views would refuse before writing. Flask's views in exam/room/api.py answer those,
and the OpenAPI document describes both as one API.
"""
from __future__ import annotations

import io
import json
from http import HTTPStatus

from exam.core.db import force_immediate, utcnow
from exam.room import api, sweeper, writes

SAVE_PREFIX = "/api/v1/attempt/answers/"
HEARTBEAT_PATH = "/api/v1/attempt/heartbeat"
JSON_TYPES = ("application/json",)


class RoomLane:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``)."""

    def __init__(self, app, flask_wsgi_app, security_headers: tuple = ()):
        self.app = app
        self.flask_wsgi_app = flask_wsgi_app
        self.security_headers = security_headers

    def __call__(self, environ, start_response):
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        if method == "PUT" and path.startswith(SAVE_PREFIX) and "/" not in path[len(SAVE_PREFIX):] \
                and len(path) > len(SAVE_PREFIX):
            question_id = path[len(SAVE_PREFIX):].encode("latin-1").decode("utf-8", "replace")  # WSGI's str
        elif method == "POST" and path == HEARTBEAT_PATH:
            question_id = None
        else:
            return self.flask_wsgi_app(environ, start_response)
        token = api.parse_bearer(environ.get("HTTP_AUTHORIZATION", ""))
        body = read_body(environ)
        if not token or body is None:
            return self.flask_wsgi_app(environ, start_response)
        status, payload, headers = self.answer(token, question_id, body, environ)
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [*headers, ("Content-Length", str(len(payload))), *self.security_headers])
        return [payload]

    def answer(self, token: str, question_id: str | None, body: dict, environ) -> tuple[int, bytes, tuple]:
        """The view's answer, in an app context; an unexpected failure as Flask answers an API view's one
        (JSON 500, logged)."""
        sweeper.start_sweeper(self.app)
        with self.app.app_context():
            # Without the group commit the request commits its own write: take SQLite's write lock at
            # BEGIN, as a write request under Flask does.
            immediate = force_immediate.set(not writes.batching_enabled(self.app))
            try:
                if question_id is None:
                    return api.answer_heartbeat(token, utcnow())
                machine = api.machine_label(environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"))
                return api.answer_save(token, question_id, body, machine, utcnow())
            except Exception:  # noqa: BLE001 - as Flask answers an API view's failure: JSON 500, logged
                self.app.logger.exception("%s failed", "heartbeat" if question_id is None else "save_answer")
                return api.error_answer("server_error")
            finally:
                force_immediate.reset(immediate)


def read_body(environ) -> dict | None:
    """The request's JSON object (``{}`` for no body), or None for anything the views should judge: a
    body too large, chunked, not JSON, not an object. The body is put back for Flask either way."""
    if environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length < 0 or length > api.MAX_BODY_BYTES:
        return None
    data = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(data)
    if not data:
        return {}
    if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() not in JSON_TYPES:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
