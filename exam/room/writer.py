"""The writer process: on SQLite, one process applies the answer saves, heartbeats, starts and submissions of
every worker (``python -m exam.room.writer``, started by the workers).

Why a process: a save's own work is ~0.15 ms, but in a worker serving many request threads the
group commit's writer thread waits for Python's GIL after every SQLite call (the driver lets go of
it around each statement), and a batch held the database's write lock ~1 ms per save: that, not
the disk, capped a lab. Here the writes run in a process of their own, with nobody to wait for.

* The workers' request threads send ``exam/room/operations.py`` operations over a Unix socket
  (exam/room/writer_client.py: the socket, its frames, the client that starts this process on demand)
  and wait for the answer; the process applies every request that arrived meanwhile as ONE batch
  (``group_commit.GroupCommitter.apply``: one transaction, a savepoint per write, one fsync) and then
  answers each with its own result, only after the commit.
* It ends when the worker that started it ends, or after ``IDLE_SECONDS`` without a client.
* Other writes (login, logout, section/next...) stay in the workers' own group commit; the two take
  turns on the database through the same ``WriterTurn`` lock file.

A program on top of the app, as wsgi.py is: it builds its own app (``create_app``), so nothing of the app
imports it; the workers reach it through exam/room/writer_client.py, and the write door
(exam/room/writes.py, ``ROOM_WRITES``) decides whether they do.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import selectors
import signal
import socket
import sqlite3
import sys
import threading
import time

from sqlalchemy import event as sqlalchemy_event

from exam.app import create_app
from exam.room import operations
from exam.room.errors import BatchFailed, RoomError
from exam.room.group_commit import GroupCommitter, Write
from exam.room.writer_client import FRAME_HEADER, MAX_FRAME, send_frame

IDLE_SECONDS = 60.0


class WalCheckpointer:
    """Keeps SQLite's write-ahead log short without making a batch wait for it.

    By default the connection that commits copies the log back into the database once it passes
    1,000 pages: that batch then waits for the copy and its fsync (tens of milliseconds), and under
    a continuous load the log is never found empty, so it is never restarted and grows without end
    (hundreds of MB in a minute), every later commit checkpointing again. Here the writer's own
    connections never checkpoint (``wal_autocheckpoint=0``); a thread copies the log every
    ``every`` seconds on a connection of its own (PASSIVE: writers are not held, and the GIL is let
    go during the copy); and once the log is long the writer's loop, right after a commit, finishes
    the (already nearly done) copy itself, so that its next transaction starts the log afresh."""

    RESTART_FRAMES = 1000

    def __init__(self, engine, every: float = 0.25):
        self.every = every
        self.frames = 0  # the log's length at the last copy
        self.restarts = 0  # copies finished by the writer's loop
        self._stop = threading.Event()
        self._connection = sqlite3.connect(engine.url.database, timeout=30, isolation_level=None,
                                           check_same_thread=False)
        self._connection.execute("PRAGMA synchronous=FULL")

        @sqlalchemy_event.listens_for(engine, "connect")
        def no_autocheckpoint(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

        engine.dispose()  # connections opened before the listener: reopened with it
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _copy(self, connection) -> None:
        busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        self.frames = frames

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._copy(self._connection)
            except Exception:  # noqa: BLE001 - the next round tries again; commits never depend on it
                pass

    def after_commit(self, engine) -> None:
        """In the writer's loop, between batches: restart a long log (see the class docstring)."""
        if self.frames < self.RESTART_FRAMES:
            return
        self.restarts += 1
        with engine.connect() as connection:
            self._copy(connection.connection.driver_connection)
            connection.rollback()

    def stop(self) -> None:
        self._stop.set()


class WriterServer:
    """Accepts the workers' connections; every request that arrived while the last batch ran goes into
    the next one."""

    def __init__(self, app, path: str, parent: int | None = None):
        self.app = app
        self.path = path
        self.parent = parent
        self.committer = GroupCommitter(app)
        self.engine = app.extensions["exam_db"].engine
        self.checkpointer = WalCheckpointer(self.engine)
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytearray] = {}

    def listen(self) -> None:
        try:
            os.unlink(self.path)  # a socket left by a writer that died (we hold the start lock)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # owner only: the socket takes writes without a password
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        self.inode = os.stat(self.path).st_ino
        listener.listen(1024)
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, "listener")

    def serve(self) -> None:
        idle_since = time.monotonic()
        while True:
            pending = []
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "listener":
                    self._accept(key.fileobj)
                else:
                    pending.extend(self._read(key.fileobj))
            if pending:
                for start in range(0, len(pending), self.committer.max_batch):
                    self._apply(pending[start:start + self.committer.max_batch])
                self.checkpointer.after_commit(self.engine)
                self.committer.report()
            if self.buffers or pending:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_SECONDS:
                return
            if self.parent is not None and os.getppid() != self.parent:
                return  # the worker that started us ended: the next one starts a writer of its own code

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            self.buffers[conn] = bytearray()
            self.selector.register(conn, selectors.EVENT_READ, "client")

    def _close(self, conn: socket.socket) -> None:
        self.selector.unregister(conn)
        self.buffers.pop(conn, None)
        conn.close()

    def _read(self, conn: socket.socket) -> list:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return []
        buffer = self.buffers[conn]
        buffer.extend(data)
        requests = []
        while len(buffer) >= FRAME_HEADER.size:
            (size,) = FRAME_HEADER.unpack_from(buffer)
            if size > MAX_FRAME:
                self._close(conn)
                return requests
            if len(buffer) < FRAME_HEADER.size + size:
                break
            frame = bytes(buffer[FRAME_HEADER.size:FRAME_HEADER.size + size])
            del buffer[:FRAME_HEADER.size + size]
            requests.append((conn, frame))
        return requests

    def _apply(self, requests: list) -> None:
        writes = []
        for _conn, frame in requests:
            try:
                message = json.loads(frame)
                operation = operations.OPERATIONS[message["op"]]
                arguments = operations.decode_arguments(message["args"])
            except (ValueError, KeyError, TypeError):
                writes.append(Write(work=None, error=ValueError("malformed request")))
                continue
            writes.append(Write(work=lambda session, operation=operation, arguments=arguments:
                                 operation(session, **arguments), light=True))
        runnable = [w for w in writes if w.work is not None]
        if runnable:
            self.committer.apply(runnable)
        for (conn, _), write in zip(requests, writes, strict=True):  # one write per request
            self._answer(conn, write)

    def _answer(self, conn: socket.socket, write) -> None:
        error = write.error
        if error is None:
            reply = {"ok": write.result}
        elif isinstance(error, RoomError):
            reply = {"error": {"code": error.code, "details": error.details}}
        elif isinstance(error, BatchFailed):
            reply = {"failed": str(error)}
        else:
            self.app.logger.error("writer process: %s failed: %r", "write", error)
            reply = {"failed": f"the write failed: {error.__class__.__name__}"}
        if conn not in self.buffers:
            return  # the worker gave up on it
        try:
            conn.setblocking(True)
            conn.settimeout(5.0)
            send_frame(conn, reply)
            conn.setblocking(False)
        except OSError:
            self._close(conn)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The exam room's writer process (started by the workers).")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--parent", type=int)
    args = parser.parse_args(argv)
    settings = json.loads(os.environ.get("EXAM_WRITER_SETTINGS") or "{}")
    app = create_app({**settings, "ATTEMPT_SWEEPER": False, "ROOM_WRITES": "thread"},
                     instance_path=args.instance)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped with the workers: clean up the socket
    server = WriterServer(app, args.socket, args.parent)
    gc.collect()
    gc.freeze()  # the app, for good: out of the cyclic collector's sight (its passes paused batches)
    server.listen()
    server.checkpointer.start()
    try:
        server.serve()
    finally:
        server.checkpointer.stop()
        server.selector.close()
        try:
            if os.stat(args.socket).st_ino == server.inode:  # not a newer writer's socket
                os.unlink(args.socket)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
