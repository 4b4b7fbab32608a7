"""Group commit: the exam room's writes, many requests to one fsync'd transaction.

On SQLite with ``synchronous=FULL`` a commit waits for the disk (~2.3 ms here), so one
transaction per save caps a full lab at ~400 saves a second however fast the rest is.
Each worker process therefore has one writer thread. A request hands it its write (a
function of a session, the ``work``) and waits; the thread takes every write that
arrived meanwhile and applies them in ONE transaction:

    BEGIN IMMEDIATE
      SAVEPOINT; work 1; RELEASE        -- a refused write (RoomError) keeps what its rule
      SAVEPOINT; work 2; RELEASE        --   recorded before refusing, as a request's own
      SAVEPOINT; work 3; ROLLBACK TO    --   commit does; an unexpected error undoes only its own
    COMMIT
    wake every request with its own result (200 / 403 / 404 / 409 / 422 ...)

A write is acknowledged only after its commit. When the commit fails, every request of
the batch gets ``BatchFailed`` (HTTP 503): nothing of the batch was written, and the
page sends the same saves again (they are idempotent by seq). The thread holds no lock
of the application's beyond the database's own write lock: on SQLite the writers of the
worker processes hand that lock over through a lock file held exactly as long as it
(``WriterTurn``), so the next one wakes at once instead of in SQLite's sleeping retries;
on PostgreSQL a batch waits only for the rows it touches.

Whether a write comes here at all is the room's write door's choice (exam/room/writes.py,
``ROOM_WRITES``): on SQLite the frequent writes go to the writer process (exam/room/writer.py,
which runs a ``GroupCommitter`` of its own) and the others come here; on PostgreSQL, which groups
concurrent commits itself, each request keeps its own transaction. This module knows neither the
door nor the writer process: both import it.
"""
from __future__ import annotations

import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from exam.core.db import Driver, force_immediate
from exam.room.errors import BatchFailed, RoomError

MAX_BATCH = 256  # writes per transaction: bounds how long one batch holds the write lock
WAIT_SECONDS = 30.0  # a request gives up (503) after this; its write may still land, and a resend is idempotent
IDLE_SECONDS = 60.0  # the writer thread ends after this long without work (and starts again on the next write)

Work = Callable[[Session], Any]


@dataclass(eq=False)
class Write:
    """One queued write: its work, and once applied its result or its error (the writer process makes these
    from the requests it receives)."""

    work: Work
    light: bool = False  # an exam-room operation (exam/room/operations.py): the driver's own savepoint
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    batches: int = 0
    writes: int = 0
    failed_batches: int = 0
    largest: int = 0
    turn_wait: float = 0.0  # seconds waiting for the other processes' writers (SQLite)
    held: float = 0.0  # seconds holding the write lock: BEGIN to COMMIT
    committing: float = 0.0  # of which in COMMIT (the fsync)

    def line(self) -> str:
        n = max(self.batches, 1)
        return (f"group commit: {self.batches} batches, {self.writes} writes (avg {self.writes / n:.1f}, "
                f"max {self.largest}), {self.failed_batches} failed; per batch: waited for the turn "
                f"{self.turn_wait / n * 1000:.2f} ms, held the write lock {self.held / n * 1000:.2f} ms "
                f"(commit {self.committing / n * 1000:.2f} ms)")


class WriterTurn:
    """SQLite: the group committers of one database file, one per worker process, take turns through a
    lock file (``<database>-writer.lock``), held exactly while a batch holds the database's write lock.

    SQLite's own wait for its write lock sleeps 1, 2, 5, 10, 15, 20, 25 ms... between tries, so a writer
    that commits batch after batch can keep the other process's writer asleep for tens of milliseconds;
    a writer blocked on this lock instead wakes the moment the other one commits. Nothing else takes
    this lock; other writers (the sweeper, board pages, commands) wait on the database as before.
    """

    def __init__(self, path: str | None):
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()  # one process's writer at a time (one thread per app; tests make many)

    @classmethod
    def for_engine(cls, engine) -> WriterTurn:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        return cls(f"{database}-writer.lock" if database and database != ":memory:" else None)

    def reopened(self) -> WriterTurn:
        """After a fork: a descriptor shared with the parent would share its lock, so open the file again."""
        return WriterTurn(self.path)

    def __enter__(self):
        self._lock.acquire()
        if self.path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:  # no lock file (read-only folder): SQLite's own waiting still serializes
                pass
        return self

    def __exit__(self, *exc):
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


class GroupCommitter:
    """One writer thread (started on first use, again after a fork) applying queued writes in batches."""

    def __init__(self, app, max_batch: int = MAX_BATCH):
        self.app = app
        self.sessionmaker = app.extensions["exam_db"].sessionmaker
        self.max_batch = max_batch
        self.queue: queue.SimpleQueue[Write] = queue.SimpleQueue()
        self.stats = BatchStats()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()
        self.turn = WriterTurn.for_engine(app.extensions["exam_db"].engine)
        self._reported = time.monotonic()

    def submit(self, work: Work, timeout: float = WAIT_SECONDS, *, light: bool = False) -> Any:
        """Run ``work(session)`` in the next batch; return its result or raise its RoomError (or BatchFailed)."""
        if self._pid != os.getpid():
            self._after_fork()
        write = Write(work, light)
        self.queue.put(write)
        self._ensure_thread()  # after the put: a writer ending for idleness either sees it or is replaced
        if not write.done.wait(timeout):
            raise BatchFailed("no answer from the writer in time")
        if write.error is not None:
            raise write.error
        return write.result

    def _after_fork(self) -> None:
        """A fork copied the parent's queue and the thread's handle, not the thread: start afresh."""
        with self._start_lock:
            if self._pid != os.getpid():
                self.queue = queue.SimpleQueue()
                self._thread = None
                self.turn = self.turn.reopened()
                self._pid = os.getpid()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                writes = [self.queue.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                with self._start_lock:
                    if self.queue.empty():
                        self._thread = None
                        return
                continue
            while len(writes) < self.max_batch:
                try:
                    writes.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.apply(writes)
                self.report()
            except BaseException as exc:  # noqa: BLE001 - the thread must outlive any batch
                for write in writes:
                    if not write.done.is_set():
                        write.result, write.error = None, BatchFailed(f"the writer failed: {exc!r}")
                        write.done.set()

    def apply(self, writes: list[Write]) -> None:
        """One transaction for the batch, one savepoint per write; then wake every writer's request."""
        asked = time.perf_counter()
        with self.app.app_context(), self.turn:
            began = time.perf_counter()
            token = force_immediate.set(True)  # SQLite: take the write lock at BEGIN, not halfway through
            session = self.sessionmaker()
            try:
                Driver(session)  # BEGIN (IMMEDIATE on SQLite) now, kept for the writes: failing fails the batch
                for write in writes:
                    self._apply_one(session, write)
                committing = time.perf_counter()
                self.commit(session)
                self.stats.committing += time.perf_counter() - committing
            except Exception as exc:  # noqa: BLE001 - the commit (or BEGIN) failed: nothing of the batch stands
                self.app.logger.warning("group commit of %d writes failed: %r", len(writes), exc)
                try:
                    session.rollback()
                except Exception:  # noqa: BLE001
                    pass
                failed = BatchFailed(f"the batch did not commit: {exc.__class__.__name__}")
                for write in writes:
                    write.result, write.error = None, failed
                self.stats.failed_batches += 1
            finally:
                session.close()
                force_immediate.reset(token)
                self.stats.held += time.perf_counter() - began
                self.stats.turn_wait += began - asked
        self.stats.batches += 1
        self.stats.writes += len(writes)
        self.stats.largest = max(self.stats.largest, len(writes))
        for write in writes:
            write.done.set()

    @staticmethod
    def _apply_one(session: Session, write: Write) -> None:
        if write.light:
            GroupCommitter._apply_light(session, write)
            return
        savepoint = session.begin_nested()
        try:
            write.result = write.work(session)
            savepoint.commit()
        except RoomError as exc:
            # Refused: keep what the rule recorded before refusing (a failed-login audit entry, a
            # submission by the deadline), as the API commits a refusal too.
            write.error = exc
            try:
                savepoint.commit()
            except Exception as late:  # noqa: BLE001
                if savepoint.is_active:
                    savepoint.rollback()
                write.error = late
        except Exception as exc:  # noqa: BLE001 - only this write is undone; the request answers 500
            if savepoint.is_active:
                savepoint.rollback()
            write.result, write.error = None, exc

    @staticmethod
    def _apply_light(session: Session, write: Write) -> None:
        """An exam-room operation: its usual case writes through the driver only (exam.core.db.Driver), so its
        savepoint is the driver's own, a tenth of the ORM's. What its ORM fallback (settling the clock,
        a submission by the deadline) changed is flushed before the release; after an unexpected error
        the savepoint is rolled back and the session forgets what it had loaded, which may be undone."""
        cursor = Driver(session).connection.cursor()
        try:
            cursor.execute("SAVEPOINT room_write")
            try:
                write.result = write.work(session)
                session.flush()
            except RoomError as exc:  # refused: keep what the rule recorded first, as the ORM path does
                write.error = exc
                session.flush()
            cursor.execute("RELEASE room_write")
        except Exception as exc:  # noqa: BLE001 - only this write is undone; the request answers 500
            write.result, write.error = None, exc
            cursor.execute("ROLLBACK TO room_write")
            cursor.execute("RELEASE room_write")
            session.expunge_all()
        finally:
            cursor.close()

    def commit(self, session: Session) -> None:
        session.commit()

    def report(self) -> None:
        """Log the batch figures every SAVE_BATCH_STATS_SECONDS (0, the default: never); for benchmarks."""
        every = float(self.app.config.get("SAVE_BATCH_STATS_SECONDS") or 0)
        now = time.monotonic()
        if every and now - self._reported >= every:
            self._reported = now
            self.app.logger.warning("pid %d %s", os.getpid(), self.stats.line())


_committers_lock = threading.Lock()


def committer(app=None) -> GroupCommitter:
    """This app's group committer (one per app and process)."""
    app = app or current_app._get_current_object()
    found = app.extensions.get("group_commit")
    if found is None:
        with _committers_lock:
            found = app.extensions.get("group_commit")
            if found is None:
                found = app.extensions["group_commit"] = GroupCommitter(app)
    return found
