"""The database: one engine per app, one session per app context, SQLite tuned for a lab.

Rules take a ``Session`` argument and only flush; the request machinery (or the
CLI command) commits once. SQLite runs in WAL mode with ``synchronous=FULL`` so
an acknowledged write survives a power cut; transactions opened for a write
request start with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout
instead of failing on a stale snapshot.
"""
from __future__ import annotations

import contextvars
import json
import re
from datetime import UTC, datetime

from flask import current_app, g, has_request_context, request
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from exam.core.timeutil import UTCDateTime, sqlite_time_text, sqlite_time_value

# Stable constraint names so migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


SQLITE_BUSY_TIMEOUT_MS = 10_000
# CLI commands and tests may force write transactions to start immediately.
force_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("force_immediate", default=False)
# A write request whose writes go through the group commit (exam/room/group_commit.py): its own session only reads.
reads_only: contextvars.ContextVar[bool] = contextvars.ContextVar("reads_only", default=False)


def utcnow() -> datetime:
    """Timezone-aware UTC now; the only clock the views pass into rules."""
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _tune_sqlite(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    return engine


def _wants_write_lock() -> bool:
    if force_immediate.get():
        return True
    if reads_only.get():
        return False
    return has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS")


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Take transaction control from the driver so we can choose BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _wants_write_lock() else "BEGIN")


class Database:
    """Holds the engine and session factory of one app (``app.extensions['exam_db']``)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def init_app(app) -> None:
    app.extensions["exam_db"] = Database(app.config["DATABASE_URL"])

    @app.teardown_appcontext
    def close_session(exc):
        session = g.pop("db_session", None)
        if session is not None:
            # Anything not committed explicitly by the view is rolled back.
            session.close()


def loaded_in(session: Session, model, ident):
    """The ``model`` object with primary key ``ident`` if this session has it loaded, else None (asked
    after writes on the driver's cursor, to keep such an object in step; its session usually holds none)."""
    if not len(session.identity_map):
        return None
    return session.identity_map.get(session.identity_key(model, ident))


def get_session() -> Session:
    """The session of the current app context (request or CLI command)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["exam_db"].sessionmaker()
    return g.db_session


def get_database() -> Database:
    return current_app.extensions["exam_db"]


# --- statements of the hottest path, run on the driver's cursor -----------------------------------------

class DriverStatement:
    """One SQL statement of a path that runs a thousand times a second (the exam room's answer saves),
    executed on the DB-API cursor of the session's connection, inside the session's transaction.

    SQLAlchemy's execution layer costs ~50 µs a statement, more than SQLite's own work; here a
    statement is its SQL text, written once with ``:name`` parameters (sqlite3 takes them as they
    are; psycopg gets ``%(name)s``). ``lock`` is appended on PostgreSQL only (e.g. ``FOR UPDATE OF a``:
    SQLite write transactions are serialized already). Values go in and come out as the driver has
    them: ``Driver`` runs them and converts times and JSON.
    """

    _NAME = re.compile(r"(?<![:\w]):(\w+)")

    def __init__(self, sql: str, *, lock: str = ""):
        self.sql = " ".join(sql.split())
        self.lock = lock
        self._text: dict[str, str] = {}

    def text(self, dialect_name: str) -> str:
        found = self._text.get(dialect_name)
        if found is None:
            if dialect_name == "sqlite":
                found = self.sql
            else:  # psycopg: pyformat, a literal % doubled
                found = self._NAME.sub(r"%(\1)s", self.sql.replace("%", "%%"))
                if self.lock:
                    found += " " + self.lock
            self._text[dialect_name] = found
        return found


class Driver:
    """The driver-level connection of a session's transaction, for ``DriverStatement``s: taken once per
    unit of work (asking the session for its connection costs as much as a statement). It converts
    values the way the columns' types store them: times as ``UTCDateTime`` (SQLite: naive UTC text),
    JSON as text in and a value out (SQLite returns the text; PostgreSQL decodes it)."""

    _time_processors: dict[str, tuple] = {}

    def __init__(self, session: Session):
        # Kept in the session for its transaction: a batch of saves asks for it once per save, and the
        # session's connection() costs as much as a statement. Not across an ORM savepoint: asking the
        # session for its connection is what emits the SAVEPOINT of a begin_nested().
        transaction, savepoint = session.get_transaction(), session.get_nested_transaction()
        kept = session.info.get("driver_connection")
        if transaction is None or kept is None or kept[0] is not transaction or kept[1] is not savepoint:
            connection = session.connection()
            kept = session.info["driver_connection"] = (session.get_transaction(), session.get_nested_transaction(),
                                                        connection.connection, connection.dialect)
        self.connection, dialect = kept[2], kept[3]  # the pool's DB-API connection, in the transaction
        self.dialect = dialect.name
        processors = self._time_processors.get(self.dialect)
        if processors is None:
            processors = self._time_processors[self.dialect] = self._time_conversions(dialect)
        self._bind_time, self._read_time = processors

    @staticmethod
    def _time_conversions(dialect) -> tuple:
        """How ``UTCDateTime`` columns take and give times on this dialect. On SQLite (naive UTC text) the
        standard library's ISO functions do what SQLAlchemy's processors do (tests/test_db.py compares
        them), at a fraction of the cost: a save reads several times."""
        if dialect.name == "sqlite":
            return sqlite_time_text, sqlite_time_value
        column_type = UTCDateTime().dialect_impl(dialect)  # the dialect's own DATETIME underneath
        return (column_type.bind_processor(dialect) or (lambda value: value),
                column_type.result_processor(dialect, None) or (lambda value: value))

    def first(self, statement: DriverStatement, params: dict) -> tuple | None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(statement.text(self.dialect), params)
            return cursor.fetchone()
        finally:
            cursor.close()

    def all(self, statement: DriverStatement, params: dict) -> list[tuple]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(statement.text(self.dialect), params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def run(self, statement: DriverStatement, params: dict) -> int:
        """Execute without reading rows; the number of rows changed."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(statement.text(self.dialect), params)
            return cursor.rowcount
        finally:
            cursor.close()

    def time(self, value: datetime | None):
        return None if value is None else self._bind_time(value)

    def read_time(self, value) -> datetime | None:
        return None if value is None else self._read_time(value)

    @staticmethod
    def read_json(value):
        return json.loads(value) if isinstance(value, (str, bytes)) else value
