"""The room's write door (exam/room/writes.py): one setting, ``ROOM_WRITES``, sends the room's writes to the
writer process, the worker's group-commit thread or each request's own transaction; the pair it replaces,
``SAVE_BATCHING`` + ``SAVE_WRITER``, is still read exactly as before while ``ROOM_WRITES`` is auto."""
from __future__ import annotations

import itertools

import pytest

from exam.room import group_commit as save_batch
from exam.room import writer_client, writes
from tests.factories import make_ready_candidates
from tests.room.test_group_commit import Lab
from tests.room.test_writer import Machine

OLD_NAMES = ("SAVE_BATCHING", "SAVE_WRITER")


def configure(app, **settings):
    """Set the given settings; None: not given at all (as when neither the environment nor instance/config.py
    names it)."""
    for name, value in settings.items():
        if value is None:
            app.config.pop(name, None)
        else:
            app.config[name] = value


def ready(db):
    """One candidate with a paper, in a sitting open since a minute ago (committed: the API sees it)."""
    candidate = make_ready_candidates(db, 1)[0]
    db.commit()
    return candidate


def sqlite_only(app):
    if not app.extensions["exam_db"].is_sqlite:
        pytest.skip("the writer process serves SQLite (PostgreSQL takes concurrent writers itself)")


def stop_writer(app):
    started = writer_client.client(app)._started
    if started is not None and started.poll() is None:
        started.terminate()
        started.wait(10)


# --- the one setting ------------------------------------------------------------------------------------

def test_no_setting_given_is_auto(app):
    assert app.config["ROOM_WRITES"] == "auto" and not any(name in app.config for name in OLD_NAMES)
    sqlite = app.extensions["exam_db"].is_sqlite
    assert writes.route(app) == ("thread" if sqlite else "request")  # tests run the thread unless they ask
    app.testing = False
    try:
        assert writes.route(app) == ("process" if sqlite else "request")
    finally:
        app.testing = True


@pytest.mark.parametrize("setting, on_sqlite, on_postgresql", [
    ("auto", "thread", "request"),  # under tests; outside them, the process on SQLite (above)
    ("process", "process", "thread"),  # no database file on PostgreSQL to put the writer's socket beside
    ("thread", "thread", "thread"),
    ("request", "request", "request"),
    (" Thread ", "thread", "thread"),  # read as the old names were: spaces and case do not matter
])
def test_each_value_of_room_writes(app, setting, on_sqlite, on_postgresql):
    configure(app, ROOM_WRITES=setting)
    expected = on_sqlite if app.extensions["exam_db"].is_sqlite else on_postgresql
    assert writes.route(app) == expected
    assert writes.batching_enabled(app) is (expected != "request")
    assert writes.process_enabled(app) is (expected == "process")


def test_a_room_writes_other_than_auto_wins_over_the_old_names(app):
    configure(app, ROOM_WRITES="request", SAVE_BATCHING="on", SAVE_WRITER="process")
    assert writes.route(app) == "request"
    configure(app, ROOM_WRITES="thread", SAVE_BATCHING="off")
    assert writes.route(app) == "thread"


def test_an_unknown_room_writes_is_refused_by_name(app):
    configure(app, ROOM_WRITES="batch")
    with pytest.raises(ValueError, match="ROOM_WRITES"):
        writes.route(app)


def test_the_choice_follows_a_changed_setting(app):
    configure(app, ROOM_WRITES="thread")
    assert writes.route(app) == "thread"
    configure(app, ROOM_WRITES="request")
    assert writes.route(app) == "request"


# --- the old names, as aliases ----------------------------------------------------------------------------

def old_batching_enabled(app) -> bool:
    """``group_commit.batching_enabled`` as it was before the door (the oracle of the alias)."""
    setting = app.config.get("SAVE_BATCHING", "auto")
    if isinstance(setting, str):
        setting = setting.strip().lower()
        if setting == "auto":
            return app.extensions["exam_db"].is_sqlite
        return setting in ("on", "true", "yes", "1")
    return bool(setting)


def old_process_enabled(app) -> bool:
    """``writer.process_enabled`` as it was before the door."""
    setting = str(app.config.get("SAVE_WRITER", "auto")).strip().lower()
    if setting == "thread" or not old_batching_enabled(app) or writer_client.socket_path(app) is None:
        return False
    return setting == "process" or (setting == "auto" and not app.testing)


@pytest.mark.parametrize("batching, writer, testing", list(itertools.product(
    (None, "auto", "on", "off", "yes", "0", True, False, 1, 0), (None, "auto", "process", "thread", "other"),
    (True, False))))
def test_every_old_combination_routes_as_it_did(app, batching, writer, testing):
    configure(app, SAVE_BATCHING=batching, SAVE_WRITER=writer)
    app.testing = testing
    try:
        expected = "request" if not old_batching_enabled(app) else "process" if old_process_enabled(app) else "thread"
        assert writes.route(app) == expected
    finally:
        app.testing = True


@pytest.mark.parametrize("batching, writer, on_sqlite, on_postgresql", [
    # The table of docs/deploy.md (under tests: outside them, auto's writer is the process on SQLite).
    ("auto", "auto", "thread", "request"),
    ("auto", "thread", "thread", "request"),
    ("auto", "process", "process", "request"),
    ("on", "auto", "thread", "thread"),
    ("on", "thread", "thread", "thread"),
    ("on", "process", "process", "thread"),
    ("off", "auto", "request", "request"),
    ("off", "process", "request", "request"),
])
def test_the_documented_mapping_of_the_old_names(app, batching, writer, on_sqlite, on_postgresql):
    configure(app, SAVE_BATCHING=batching, SAVE_WRITER=writer)
    assert writes.route(app) == (on_sqlite if app.extensions["exam_db"].is_sqlite else on_postgresql)


# --- the routes, end to end -------------------------------------------------------------------------------

def test_room_writes_request_gives_each_request_its_own_transaction(app, db):
    configure(app, ROOM_WRITES="request")
    lab = Lab(app, ready(db), 1)
    before = save_batch.committer(app).stats.writes
    q = lab.questions[0]
    assert lab.save(q, 0, 2).status_code == 200
    assert lab.save(q, 1, 1).status_code == 409
    assert lab.save(q, 0, 2).status_code == 200
    assert save_batch.committer(app).stats.writes == before


def test_room_writes_thread_keeps_the_writes_in_the_worker(app, db):
    configure(app, ROOM_WRITES="thread")
    lab = Lab(app, ready(db), 1)  # the login and the start: two writes of the thread
    before = save_batch.committer(app).stats.writes
    assert before >= 2
    assert lab.save(lab.questions[0], 1, 1).status_code == 200
    assert save_batch.committer(app).stats.writes == before + 1
    assert writer_client.client(app)._started is None


def test_room_writes_process_sends_them_to_the_writer_process(app, db):
    sqlite_only(app)
    configure(app, ROOM_WRITES="process")
    try:
        machine = Machine(app, ready(db))
        before = save_batch.committer(app).stats.writes
        assert machine.save(0, 1, 1).status_code == 200
        assert save_batch.committer(app).stats.writes == before  # not this worker's thread
        assert writer_client.client(app)._started.poll() is None  # the process that answered
    finally:
        stop_writer(app)


# --- moved here from tests/room/test_group_commit.py and tests/room/test_writer.py --------------------------

class TestGroupCommitAliases:
    """``SAVE_BATCHING``, with the group commit on as tests/room/test_group_commit.py has it."""

    @pytest.fixture
    def app(self, app):
        app.config["SAVE_BATCHING"] = "on"  # on PostgreSQL too: the batcher is tested on both databases
        return app

    @pytest.fixture
    def labs(self, app, db):
        candidates = make_ready_candidates(db, 6)
        db.commit()
        return [Lab(app, candidate, n) for n, candidate in enumerate(candidates, start=1)]

    def test_batching_off_gives_the_same_answers_in_the_requests_own_transaction(self, app, db, labs):
        app.config["SAVE_BATCHING"] = "off"
        lab = labs[0]
        before = save_batch.committer(app).stats.writes
        q = lab.questions[0]
        assert lab.save(q, 0, 2).status_code == 200
        assert lab.save(q, 1, 1).status_code == 409
        assert lab.save(q, 0, 2).status_code == 200
        assert save_batch.committer(app).stats.writes == before

    def test_auto_means_on_for_sqlite_only(self, app):
        app.config["SAVE_BATCHING"] = "auto"
        assert writes.batching_enabled(app) is app.extensions["exam_db"].is_sqlite
        for value, expected in (("on", True), ("off", False), (True, True), (False, False)):
            app.config["SAVE_BATCHING"] = value
            assert writes.batching_enabled(app) is expected


class TestWriterAliases:
    """``SAVE_WRITER``, with the writer process asked for as tests/room/test_writer.py has it."""

    @pytest.fixture
    def app(self, app):
        sqlite_only(app)
        app.config.update(SAVE_BATCHING="on", SAVE_WRITER="process")
        yield app
        stop_writer(app)

    def test_the_process_is_on_by_default_for_sqlite_outside_tests_only(self, app):
        app.config["SAVE_WRITER"] = "auto"
        assert not writes.process_enabled(app)  # tests run the thread unless they ask
        app.testing = False
        assert writes.process_enabled(app)
        app.config["SAVE_BATCHING"] = "off"
        assert not writes.process_enabled(app)
        app.testing = True

    def test_the_thread_setting_keeps_the_writes_in_the_worker(self, app, db):
        app.config["SAVE_WRITER"] = "thread"
        candidate = make_ready_candidates(db, 1)[0]
        db.commit()
        machine = Machine(app, candidate)
        before = save_batch.committer(app).stats.writes
        assert machine.save(0, 1, 1).status_code == 200
        assert save_batch.committer(app).stats.writes == before + 1
        assert writer_client.client(app)._started is None
