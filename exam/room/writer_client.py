"""The workers' side of the writer process: its socket, the frames on it, and each worker's client.

The writer process itself (exam/room/writer.py) applies the frequent room writes of every worker in one
group commit; a worker reaches it here. Its request threads send ``exam/room/operations.py`` operations
(name + plain arguments, JSON frames over a Unix socket beside the database, ``<database>-writer.sock``,
owner-only) and wait for the answer, which comes only after the batch holding it has committed. The
first worker that finds no writer starts one (``python -m exam.room.writer``) under a lock file, so two
workers never start two; a writer gone mid-request answers 503 (``BatchFailed``): nothing of that batch
was acknowledged, the page sends the saves again (idempotent by seq), and the next request starts a new
writer.

Whether the writes go there at all is the write door's choice (exam/room/writes.py).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from exam.room import operations
from exam.room.errors import BatchFailed, RoomError

CONNECT_SECONDS = 10.0  # how long a worker waits for a writer it started to listen
MAX_FRAME = 1 << 20
FRAME_HEADER = struct.Struct("!I")  # a frame: its length, then that many bytes of JSON
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


# --- frames ---------------------------------------------------------------------------------------------

def send_frame(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    sock.sendall(FRAME_HEADER.pack(len(data)) + data)


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
    (size,) = FRAME_HEADER.unpack(_recv_exact(sock, FRAME_HEADER.size))
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
        request = {"op": name, "args": operations.encode_arguments(arguments)}
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


def _alive(sock: socket.socket) -> bool:
    """The writer has not closed this connection (it never sends unasked: nothing to read while it lives)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False

