"""The writer process: on SQLite, one process applies the answer saves, heartbeats and starts of every worker.

Why a process: a save's own work is ~0.15 ms, but in a worker serving many request threads the
group commit's writer thread waits for Python's GIL after every SQLite call (the driver lets go of
it around each statement), and a batch held the database's write lock ~1 ms per save: that, not
the disk, capped a lab. Here the writes run in a process of their own, with nobody to wait for.

* The workers' request threads send ``exam.room_writes`` operations (name + plain arguments,
  JSON frames over a Unix socket beside the database, ``<database>-writer.sock``, owner-only)
  and wait for the answer; the process applies every request that arrived meanwhile as ONE batch
  (``save_batch.GroupCommitter.apply``: one transaction, a savepoint per write, one fsync) and then
  answers each with its own result, only after the commit.
* The first worker that finds no writer starts one (``python -m exam.room.writer``), under a
  lock file so two workers never start two; it ends when the worker that started it ends, or
  after ``IDLE_SECONDS`` without a client. A writer gone mid-request answers 503 (``BatchFailed``):
  nothing of that batch was acknowledged, the page sends the saves again (idempotent by seq), and
  the next request starts a new writer.
* Other writes (login, submit...) stay in the workers' own group commit; the two take
  turns on the database through the same ``WriterTurn`` lock file.

``SAVE_WRITER``: "auto" (the process, where the group commit is on, i.e. SQLite; never under
tests, which run the thread unless they ask), "process" or "thread".
"""
from __future__ import annotations

import argparse
import fcntl
import gc
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import event as sqlalchemy_event

from exam.room import operations as room_writes
from exam.room.attempts import RoomError

IDLE_SECONDS = 60.0
CONNECT_SECONDS = 10.0  # how long a worker waits for a writer it started to listen
MAX_FRAME = 1 << 20
_HEADER = struct.Struct("!I")
# What the writer's own app needs of the worker's settings (the rest comes from the instance folder).
PASSED_SETTINGS = ("DATABASE_URL", "SECRET_KEY", "AUDIT_SIGNING_KEY_FILE", "AUDIT_CHECKPOINT_FILE",
                   "SAVE_BATCH_STATS_SECONDS")


def socket_path(app) -> str | None:
    """``<database>-writer.sock`` beside the SQLite file (None: no file, or a path too long for a socket)."""
    engine = app.extensions["exam_db"].engine
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return None
    path = os.path.abspath(database) + "-writer.sock"
    return path if len(path.encode()) < 100 else None


def process_enabled(app) -> bool:
    """Whether this app's room writes go to the writer process; asked at every save, so kept for as long
    as the settings it follows stay the same."""
    from exam.room import group_commit as save_batch

    settings = (app.config.get("SAVE_WRITER", "auto"), app.config.get("SAVE_BATCHING", "auto"), app.testing)
    kept = app.extensions.get("writer_process_enabled")
    if kept is not None and kept[0] == settings:
        return kept[1]
    setting = str(settings[0]).strip().lower()
    if setting == "thread" or not save_batch.batching_enabled(app) or socket_path(app) is None:
        enabled = False
    else:
        enabled = setting == "process" or (setting == "auto" and not app.testing)
    app.extensions["writer_process_enabled"] = (settings, enabled)
    return enabled


# --- frames ---------------------------------------------------------------------------------------------

def send_frame(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("the writer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > MAX_FRAME:
        raise ConnectionError("frame too large")
    return json.loads(_recv_exact(sock, size))


# --- the workers' side ----------------------------------------------------------------------------------

class WriterClient:
    """A worker's way to the writer: one connection per request thread, the writer started on demand."""

    def __init__(self, app):
        self.app = app
        self.path = socket_path(app)
        self._local = threading.local()
        self._pid = os.getpid()
        self._started: subprocess.Popen | None = None
        self._held: tuple[int, socket.socket] | None = None  # (pid, connection) kept open by ``warm``
        self._warming = threading.Lock()

    def warm(self) -> None:
        """Have the writer running without waiting for it, and keep it: a connection is held open, so it
        does not end for idleness (a candidate's login calls this: the lab reads its instructions, then
        presses Start at once, and a writer started by the first Start holds every Start for the second
        it takes to come up). Returns at once; a writer that cannot start is started by the next write."""
        held = self._held
        if held is not None and held[0] == os.getpid() and _alive(held[1]):
            return
        if self._warming.acquire(blocking=False):
            threading.Thread(target=self._hold, name="writer-warm", daemon=True).start()

    def _hold(self) -> None:
        try:
            if self._pid != os.getpid():  # forked: nothing of the parent's connections is ours
                self._local, self._pid, self._started = threading.local(), os.getpid(), None
            try:
                sock = self._connect()
            except (OSError, ConnectionError):
                return
            old, self._held = self._held, (os.getpid(), sock)
            if old is not None and old[0] == os.getpid():
                old[1].close()
        finally:
            self._warming.release()

    def call(self, name: str, arguments: dict, timeout: float) -> dict | None:
        """Run the operation in the writer's next batch: its body, or RoomError / BatchFailed."""
        from exam.room.group_commit import BatchFailed

        request = {"op": name, "args": room_writes.encode_arguments(arguments)}
        try:
            sock = self._connection()
            sock.settimeout(timeout)
            send_frame(sock, request)
            reply = recv_frame(sock)
        except (OSError, ConnectionError, ValueError) as exc:
            self._drop()  # a late answer must never be read as the next request's
            raise BatchFailed(f"the writer process did not answer: {exc.__class__.__name__}") from None
        if "error" in reply:
            raise RoomError(reply["error"]["code"], **reply["error"].get("details", {}))
        if "failed" in reply:
            raise BatchFailed(reply["failed"])
        return reply["ok"]

    def _connection(self) -> socket.socket:
        if self._pid != os.getpid():  # forked: nothing of the parent's connections is ours
            self._local, self._pid, self._started = threading.local(), os.getpid(), None
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._local.sock = self._connect()
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    def _try_connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
            return sock
        except OSError:
            sock.close()
            return None

    def _connect(self) -> socket.socket:
        sock = self._try_connect()
        if sock is not None:
            return sock
        # No writer: start one, under a lock so that two workers never start two.
        with open(self.path + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sock = self._try_connect()
            if sock is not None:
                return sock
            self._start()
            deadline = time.monotonic() + CONNECT_SECONDS
            while time.monotonic() < deadline:
                sock = self._try_connect()
                if sock is not None:
                    return sock
                if self._started is not None and self._started.poll() is not None:
                    break
                time.sleep(0.02)
        raise ConnectionError("the writer process did not start")

    def _start(self) -> None:
        if self._started is not None:
            self._started.poll()  # reap a writer that ended
        settings = {name: self.app.config[name] for name in PASSED_SETTINGS if self.app.config.get(name) is not None}
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "EXAM_WRITER_SETTINGS": json.dumps(settings),
               "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        self._started = subprocess.Popen(
            [sys.executable, "-m", "exam.room.writer", "--socket", self.path, "--instance", self.app.instance_path,
             "--parent", str(os.getpid())], env=env, cwd=root, stdin=subprocess.DEVNULL, close_fds=True)


_clients: dict[int, WriterClient] = {}
_clients_lock = threading.Lock()


def client(app) -> WriterClient:
    """This app's client (one per app and process); an app made after another one ended may reuse its
    id, so the client is checked to be this app's."""
    found = _clients.get(id(app))
    if found is None or found.app is not app:
        with _clients_lock:
            found = _clients.get(id(app))
            if found is None or found.app is not app:
                found = _clients[id(app)] = WriterClient(app)
    return found


def warm(app) -> None:
    """``WriterClient.warm`` where the writer process is on."""
    if process_enabled(app):
        client(app).warm()


def _alive(sock: socket.socket) -> bool:
    """The writer has not closed this connection (it never sends unasked: nothing to read while it lives)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


# --- the writer's side ----------------------------------------------------------------------------------

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
        import sqlite3

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
        from exam.room.group_commit import GroupCommitter

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
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if size > MAX_FRAME:
                self._close(conn)
                return requests
            if len(buffer) < _HEADER.size + size:
                break
            frame = bytes(buffer[_HEADER.size:_HEADER.size + size])
            del buffer[:_HEADER.size + size]
            requests.append((conn, frame))
        return requests

    def _apply(self, requests: list) -> None:
        from exam.room.group_commit import _Write

        writes = []
        for conn, frame in requests:
            try:
                message = json.loads(frame)
                operation = room_writes.OPERATIONS[message["op"]]
                arguments = room_writes.decode_arguments(message["args"])
            except (ValueError, KeyError, TypeError):
                writes.append(_Write(work=None, error=ValueError("malformed request")))
                continue
            writes.append(_Write(work=lambda session, operation=operation, arguments=arguments:
                                 operation(session, **arguments), light=True))
        runnable = [w for w in writes if w.work is not None]
        if runnable:
            self.committer.apply(runnable)
        for (conn, _), write in zip(requests, writes):
            self._answer(conn, write)

    def _answer(self, conn: socket.socket, write) -> None:
        from exam.room.group_commit import BatchFailed

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
    from exam.app import create_app

    settings = json.loads(os.environ.get("EXAM_WRITER_SETTINGS") or "{}")
    app = create_app({**settings, "ATTEMPT_SWEEPER": False, "SAVE_BATCHING": "on", "SAVE_WRITER": "thread"},
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
