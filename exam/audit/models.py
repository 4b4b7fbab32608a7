"""The audit chain as stored: its entries, its head (one row), its signed checkpoints."""
from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exam.core.db import Base

GENESIS_HASH = "0" * 64
HASHED_FIELDS = ("seq", "at", "actor", "role", "action", "object_type", "object_id", "details", "prev_hash")


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))  # ISO UTC text: hashed exactly as stored
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64), default="")
    object_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON text
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in HASHED_FIELDS + ("hash",)}


class AuditHead(Base):
    """One row: the number and hash of the last entry. The lock appenders queue on."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    chain_id: Mapped[str] = mapped_column(String(32))  # random, set when the database is created


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column()
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))  # base64 Ed25519 over checkpoint_message()

    def as_dict(self) -> dict:
        return {"chain_id": self.chain_id, "count": self.count, "head_hash": self.head_hash, "at": self.at,
                "key_id": self.key_id, "signature": self.signature}
