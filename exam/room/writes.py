"""The room's one write door: which way a candidate's write goes, decided by one setting, ``ROOM_WRITES``.

Three routes for the room's frequent writes (answer saves, heartbeats, starts, submissions: the named
operations of exam/room/operations.py):

* ``process``: to the writer process (exam/room/writer.py, reached through exam/room/writer_client.py),
  one process applying the writes of every worker in one group commit; the other candidate writes
  (login, logout, section/next) go to the worker's writer thread, as with ``thread``;
* ``thread``: to the group commit's writer thread in each worker (exam/room/group_commit.py);
* ``request``: each request its own transaction, committed by the request (also on a refusal).

``ROOM_WRITES`` is ``auto`` (the default), ``process``, ``thread`` or ``request``. ``auto`` means: on
SQLite the process, or the thread under tests (the suite runs the thread unless a test asks for the
process); on PostgreSQL, which groups concurrent commits itself, ``request``. ``process`` needs a
database file to put its socket beside: where there is none (SQLite in memory, PostgreSQL) it is the
thread.

The settings it replaces stay accepted as aliases: while ``ROOM_WRITES`` is ``auto``, a given
``SAVE_BATCHING`` (auto | on | off) or ``SAVE_WRITER`` (auto | process | thread) decides as it always
did (``SAVE_BATCHING`` off: ``request``; on, or auto on SQLite: ``SAVE_WRITER``'s choice, whose auto is
the process outside tests and the thread under them; auto on PostgreSQL: ``request``). The table is in
docs/deploy.md. A ``ROOM_WRITES`` other than ``auto`` wins over both.

The choice is asked at every write, so it is kept per app for as long as the settings it follows stay
the same. The door imports the group commit and the writer's client; they know nothing of each other
nor of it.
"""
from __future__ import annotations

from typing import Any

from flask import current_app

from exam.core.db import get_session
from exam.room import writer_client
from exam.room.errors import RoomError
from exam.room.group_commit import WAIT_SECONDS, Work, committer
from exam.room.operations import OPERATIONS

ROUTES = ("process", "thread", "request")
SETTINGS = ("auto", *ROUTES)
_ON = ("on", "true", "yes", "1")


def route(app) -> str:
    """Where this app's room writes go: "process", "thread" or "request" (see the module's docstring)."""
    config = app.config
    settings = (config.get("ROOM_WRITES"), config.get("SAVE_BATCHING"), config.get("SAVE_WRITER"), app.testing)
    kept = app.extensions.get("room_writes")
    if kept is not None and kept[0] == settings:
        return kept[1]
    chosen = _choose(app, *settings)
    app.extensions["room_writes"] = (settings, chosen)
    return chosen


def _choose(app, room_writes, save_batching, save_writer, testing: bool) -> str:
    setting = "auto" if room_writes is None else str(room_writes).strip().lower()
    if setting not in SETTINGS:
        raise ValueError(f"ROOM_WRITES is {room_writes!r}: it must be one of {', '.join(SETTINGS)}")
    if setting == "auto" and (save_batching is not None or save_writer is not None):
        return _aliased(app, save_batching, save_writer, testing)
    if setting == "request" or (setting == "auto" and not app.extensions["exam_db"].is_sqlite):
        return "request"
    return _writer(app, setting, testing)


def _aliased(app, save_batching, save_writer, testing: bool) -> str:
    """The route the old pair of settings gave (``SAVE_BATCHING`` + ``SAVE_WRITER``), each as it was read."""
    batching = "auto" if save_batching is None else save_batching
    if isinstance(batching, str):
        batching = batching.strip().lower()
        batching = app.extensions["exam_db"].is_sqlite if batching == "auto" else batching in _ON
    if not batching:
        return "request"
    return _writer(app, str("auto" if save_writer is None else save_writer).strip().lower(), testing)


def _writer(app, setting: str, testing: bool) -> str:
    """With the group commit on: the writer process or the worker's thread (``setting``: auto, process, thread;
    anything else is the thread, as ``SAVE_WRITER`` always read it)."""
    if setting == "thread" or writer_client.socket_path(app) is None:
        return "thread"
    return "process" if setting == "process" or (setting == "auto" and not testing) else "thread"


def batching_enabled(app=None) -> bool:
    """The room's writes go through a group commit (the writer process's or the worker's thread), so a write
    request's own session only reads."""
    return route(app or current_app._get_current_object()) != "request"


def process_enabled(app) -> bool:
    """The room's frequent writes go to the writer process."""
    return route(app) == "process"


def write(work: Work, *, light: bool = False) -> Any:
    """Run a write of the current request: ``work(session)``, in the group commit unless the route is
    "request" (then in the request's own session, committed here, also on a RoomError as the API does).
    Returns what ``work`` returns; RoomError and BatchFailed go up. ``light``: an exam-room operation
    (see ``GroupCommitter._apply_light``)."""
    app = current_app._get_current_object()
    return _run(app, route(app), work, light)


def write_operation(name: str, **arguments) -> Any:
    """Run one of the exam room's frequent writes (``operations.OPERATIONS``) where the route sends it:
    the writer process, the group commit's thread, or the request's own transaction. Same rule, same answer."""
    app = current_app._get_current_object()
    way = route(app)
    if way == "process":
        return writer_client.client(app).call(name, arguments, WAIT_SECONDS)
    operation = OPERATIONS[name]
    return _run(app, way, lambda session: operation(session, **arguments), True)


def _run(app, way: str, work: Work, light: bool) -> Any:
    if way != "request":
        return committer(app).submit(work, light=light)
    session = get_session()
    try:
        result = work(session)
    except RoomError:
        session.commit()
        raise
    session.commit()
    return result


def warm(app) -> None:
    """Have the writer process up ahead of the writes (``WriterClient.warm``) where the route is "process"."""
    if route(app) == "process":
        writer_client.client(app).warm()
