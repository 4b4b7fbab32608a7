"""The exam room's two most frequent requests, answered beneath Flask's dispatch: an answer save
(``PUT /api/v1/attempt/answers/<question_id>``) and a heartbeat (``POST /api/v1/attempt/heartbeat``).

A full lab sends about 1,400 of them a second. Flask's request context, URL map, session cookie
and response object cost a save about as much CPU as the save itself, and on a two-core server
that decided whether a save waits 5 ms or 30 (bench/load.py). Here they run the same operation as
the API's views (``api.room_write``, in an app context), answer the same JSON with the same
headers, and refuse with the same error bodies (``api.error_body``).

Whatever is unusual is left to Flask as it came (its body put back): no bearer token, a body
that is not a small JSON object, a request the views would refuse before writing. Flask's views
in exam/api.py answer those, and the OpenAPI document describes both as one API.
"""
from __future__ import annotations

import io
import json
from http import HTTPStatus

from exam.core.db import force_immediate, utcnow

SAVE_PREFIX = "/api/v1/attempt/answers/"
HEARTBEAT_PATH = "/api/v1/attempt/heartbeat"
JSON_TYPES = ("application/json",)


class RoomLane:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``)."""

    def __init__(self, app, flask_wsgi_app):
        self.app = app
        self.flask_wsgi_app = flask_wsgi_app

    def __call__(self, environ, start_response):
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        if method == "PUT" and path.startswith(SAVE_PREFIX) and "/" not in path[len(SAVE_PREFIX):] \
                and len(path) > len(SAVE_PREFIX):
            question_id = path[len(SAVE_PREFIX):].encode("latin-1").decode("utf-8", "replace")  # WSGI's str
        elif method == "POST" and path == HEARTBEAT_PATH:
            question_id = None
        else:
            return self.flask_wsgi_app(environ, start_response)
        token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
        body = read_body(environ)
        if not token or body is None:
            return self.flask_wsgi_app(environ, start_response)
        if question_id is None:
            arguments = {}
        else:
            from exam.room import api

            arguments = {"question_id": question_id, "choices": body.get("choices"), "seq": body.get("seq"),
                         "flagged": body.get("flagged"),
                         "machine": api.machine_label(environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"))}
        status, answer, extra = self.write("heartbeat" if question_id is None else "save_answer", token, arguments)
        payload = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}", response_headers(len(payload), extra))
        return [payload]

    def write(self, name: str, token: str, arguments: dict) -> tuple[int, dict, list]:
        """The view's work: the operation, or its refusal as the blueprint's error handlers render it."""
        from exam.core.db import get_session
        from exam.room import api
        from exam.room import group_commit as save_batch
        from exam.room.attempts import RoomError

        api.start_sweeper(self.app)
        with self.app.app_context():
            # Without the group commit the request commits its own write: take SQLite's write lock at
            # BEGIN, as a write request under Flask does.
            immediate = force_immediate.set(not save_batch.batching_enabled(self.app))
            try:
                return 200, api.room_write(name, token, utcnow(), **arguments), []
            except RoomError as exc:
                get_session().commit()  # as api.room_error: keep what the rule recorded before refusing
                return (*api.error_body(exc.code, **exc.details), [])
            except save_batch.BatchFailed:
                return (*api.error_body("busy"), [("Retry-After", "1")])
            except Exception:  # noqa: BLE001 - as Flask answers an API view's failure: JSON 500, logged
                self.app.logger.exception("%s failed", name)
                return (*api.error_body("server_error"), [])
            finally:
                force_immediate.reset(immediate)


def bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def read_body(environ) -> dict | None:
    """The request's JSON object (``{}`` for no body), or None for anything the views should judge: a
    body too large, chunked, not JSON, not an object. The body is put back for Flask either way."""
    from exam.room.api import MAX_BODY_BYTES

    if environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length < 0 or length > MAX_BODY_BYTES:
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


def response_headers(length: int, extra: list) -> list[tuple[str, str]]:
    from exam.core.headers import SECURITY_HEADERS

    return [("Content-Type", "application/json"), ("Content-Length", str(length)), ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"), *extra, *SECURITY_HEADERS]
