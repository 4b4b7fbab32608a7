"""Times are stored and compared in UTC, aware, on SQLite and PostgreSQL alike."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime column (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """ISO 8601 with microseconds and a Z: the form hashed into the audit chain (what
    ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` wrote, at a third of its cost: a save formats several)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


def sqlite_time_text(value: datetime) -> str:
    """An aware time as a UTC column holds it on SQLite (naive UTC text, as SQLAlchemy writes it)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_time_value(text: str) -> datetime:
    """A UTC column's SQLite text as an aware time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
