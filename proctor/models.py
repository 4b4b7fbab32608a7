"""The proctor's records: incidents noted in the room, each with its reason."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exam.core.db import Base
from exam.core.timeutil import UTCDateTime


class Incident(Base):
    """Something the proctor noted against a seat or the whole room."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    sitting_id: Mapped[int] = mapped_column(ForeignKey("sitting.id"), index=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidate.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. violation, technical, power, note
    description: Mapped[str] = mapped_column(Text)
