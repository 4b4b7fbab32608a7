"""exam/core/db.py's driver path: its time conversions against SQLAlchemy's own, and one connection per transaction."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite

from exam.audit import chain as audit
from exam.core.db import Driver
from exam.core.timeutil import UTCDateTime, iso_utc, sqlite_time_text, sqlite_time_value
from exam.room.operations import iso


def some_times(n=500):
    rng = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30))]
    times = [datetime(2026, 11, 25, 7, 0, 0, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    for _ in range(n):
        moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 40 * 365 * 86400))
        if rng.random() < 0.2:
            moment = moment.replace(microsecond=0)
        times.append(moment.astimezone(rng.choice(zones)))
    return times


def test_sqlite_times_are_written_and_read_as_sqlalchemy_does():
    dialect = sqlite.dialect()
    column = UTCDateTime().dialect_impl(dialect)
    bind, read = column.bind_processor(dialect), column.result_processor(dialect, None)
    for moment in some_times():
        text = bind(moment)
        assert sqlite_time_text(moment) == text
        assert sqlite_time_value(text) == read(text) == moment
        assert sqlite_time_value(text).tzinfo == UTC
    assert sqlite_time_value("2026-11-25 07:00:00") == read("2026-11-25 07:00:00")  # no fraction written by hand


def test_iso_forms_are_the_strftime_forms_they_replace():
    for moment in some_times():
        utc = moment.astimezone(UTC)
        assert iso_utc(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert iso(utc) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        sqlite_time_text(datetime(2026, 1, 1))


def test_the_driver_keeps_one_connection_per_transaction(db):
    first = Driver(db)
    assert Driver(db).connection is first.connection
    transaction = db.get_transaction()
    db.commit()
    after = Driver(db)
    assert db.get_transaction() is not transaction and db.info["driver_connection"][0] is db.get_transaction()
    assert Driver(db).connection is after.connection
    db.rollback()
    assert db.info["driver_connection"][0] is not db.get_transaction()


def test_the_driver_is_taken_again_inside_an_orm_savepoint_so_that_it_is_emitted(db):
    Driver(db)
    before = db.scalar(select(func.count()).select_from(audit.AuditEntry))
    savepoint = db.begin_nested()
    audit.append(db, actor="tester", action="test.undone")  # through a Driver of the savepoint
    savepoint.rollback()
    assert db.scalar(select(func.count()).select_from(audit.AuditEntry)) == before
