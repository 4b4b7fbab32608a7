"""The deadline sweeper: a thread per process that submits overdue attempts, so an attempt closes at its
deadline even when its candidate never comes back.

It starts with the first request a worker serves (Flask's, through ``install_sweeper`` on the API's
blueprint, or the room lane's: exam/room/lane.py), never in a ``flask`` batch command or under tests
(``ATTEMPT_SWEEPER``, ``ATTEMPT_SWEEP_SECONDS``); the rule it runs is ``attempts.close_overdue``, which the
``exam close-overdue`` command runs too.
"""
from __future__ import annotations

import os
import threading
from datetime import timedelta

from exam.core.db import force_immediate, get_session, utcnow
from exam.room import attempts

SWEEP_INTERVAL_S = 15


class Sweeper:
    """Submits overdue attempts every ``interval`` seconds in its own app context and session.

    One per process; safe with many: ``close_overdue`` skips rows another sweeper holds and
    submits with an UPDATE conditional on the status. A cheap read comes first, so an idle
    sweeper takes no write lock.
    """

    def __init__(self, app, interval: float = SWEEP_INTERVAL_S):
        self.app = app
        self.interval = interval
        self.stop = threading.Event()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self.run, name="attempt-sweeper", daemon=True)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - keep sweeping; the next round retries
                self.app.logger.exception("attempt sweeper: close_overdue failed")

    def sweep(self) -> int:
        with self.app.app_context():
            grace_period = timedelta(seconds=float(self.app.config["SAVE_GRACE_SECONDS"]))
            db_session = get_session()
            if not attempts.overdue_exists(db_session, utcnow(), grace_period):
                db_session.rollback()
                return 0
            db_session.rollback()
            token = force_immediate.set(True)
            closed = 0
            try:
                while True:
                    batch = attempts.close_overdue(db_session, utcnow(), grace_period)
                    db_session.commit()
                    closed += len(batch)
                    if len(batch) < attempts.SWEEP_BATCH:
                        return closed
            finally:
                force_immediate.reset(token)


_sweepers: dict[int, Sweeper] = {}
_sweepers_lock = threading.Lock()


def ensure_sweeper(app) -> Sweeper | None:
    """Start this process's sweeper for ``app`` once (again after a fork: threads do not survive one)."""
    if not app.config["ATTEMPT_SWEEPER"] or app.testing:
        return None
    with _sweepers_lock:
        sweeper = _sweepers.get(id(app))
        if sweeper is None or sweeper.pid != os.getpid():
            sweeper = Sweeper(app, float(app.config["ATTEMPT_SWEEP_SECONDS"]))
            _sweepers[id(app)] = sweeper
            sweeper.thread.start()
        return sweeper


def start_sweeper(app) -> None:
    """Start this process's sweeper if it has none yet: with the first request each worker serves
    (Flask's or the room lane's; never in a ``flask`` batch command, which serves no request)."""
    if not app.config["ATTEMPT_SWEEPER"] or app.testing:
        return
    sweeper = _sweepers.get(id(app))
    if sweeper is None or sweeper.pid != os.getpid():
        ensure_sweeper(app)


def install_sweeper(state) -> None:
    """A blueprint's ``record_once``: every request the app serves makes sure its process sweeps."""
    app = state.app
    app.before_request(lambda: start_sweeper(app))
