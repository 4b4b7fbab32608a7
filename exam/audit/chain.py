"""The audit chain: an append-only, hash-chained log with signed checkpoints of its head.

``append`` writes an entry in the caller's transaction, so the entry and the change
it describes commit or roll back together. Appenders queue on the single
``audit_head`` row (a row lock on PostgreSQL, the write lock on SQLite), so the
chain never forks. When a transaction that appended commits, a checkpoint of the
head (entry count + head hash + time) signed with the installation's Ed25519 key
is stored with it and copied to a file in the instance folder: cutting entries off
the end of the chain then no longer matches the signed head.

``verify`` is pure: it takes entries and checkpoints as plain dicts, so the same
code checks the live database and an exported file.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from exam.audit.models import GENESIS_HASH, HASHED_FIELDS, AuditCheckpoint, AuditEntry, AuditHead
from exam.core.db import Driver, DriverStatement, loaded_in, utcnow
from exam.core.timeutil import iso_utc


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(fields: dict) -> str:
    """SHA-256 over the canonical JSON of the hashed fields (details already canonical text)."""
    payload = canonical_json({name: fields[name] for name in HASHED_FIELDS})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def checkpoint_message(checkpoint: dict) -> bytes:
    return "exam-audit-checkpoint/1|{chain_id}|{count}|{head_hash}|{at}".format(**checkpoint).encode()


# The append's statements, on the driver's cursor (exam.core.db.DriverStatement): a lab's starts and
# submissions append an entry each, a thousand of them within a second or two.
_TAKE_HEAD = DriverStatement("UPDATE audit_head SET count = count + 1 WHERE id = 1 RETURNING count, hash")
_ENTRY = DriverStatement("""
    INSERT INTO audit_entry (seq, at, actor, role, action, object_type, object_id, details, prev_hash, hash)
    VALUES (:seq, :at, :actor, :role, :action, :object_type, :object_id, :details, :prev_hash, :hash)""")
_MOVE_HEAD = DriverStatement("UPDATE audit_head SET hash = :hash WHERE id = 1")


def append(session: Session, *, actor: str, action: str, object_type: str = "", object_id: str = "",
           details: dict | None = None, role: str = "", now: datetime | None = None) -> AuditEntry:
    """Add one entry to the chain inside the caller's transaction.

    Three statements on the session's connection (take the head, insert the entry, move the head),
    no unit of work. A head already loaded in the session is kept in step."""
    now = now or utcnow()
    driver = Driver(session)
    # Taking the head row first: on PostgreSQL this row lock orders concurrent appenders.
    seq, prev_hash = driver.first(_TAKE_HEAD, {})
    fields = {
        "seq": seq, "at": iso_utc(now), "actor": str(actor)[:128], "role": role[:64], "action": action,
        "object_type": object_type, "object_id": str(object_id)[:128],
        "details": canonical_json(details or {}), "prev_hash": prev_hash,
    }
    fields["hash"] = entry_hash(fields)
    driver.run(_ENTRY, fields)
    driver.run(_MOVE_HEAD, {"hash": fields["hash"]})
    loaded = loaded_in(session, AuditHead, 1)
    if loaded is not None:
        set_committed_value(loaded, "count", seq)
        set_committed_value(loaded, "hash", fields["hash"])
    session.info["audit_appended"] = True
    return AuditEntry(**fields)


# --- signing key -------------------------------------------------------------------------------

class SigningKey:
    def __init__(self, private_key: Ed25519PrivateKey):
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.public_pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()

    @classmethod
    def load_or_create(cls, path: str | os.PathLike) -> SigningKey:
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        return cls(serialization.load_pem_private_key(path.read_bytes(), password=None))


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    return serialization.load_pem_public_key(pem.encode())


def write_checkpoint(session: Session, key: SigningKey, *, now: datetime | None = None) -> AuditCheckpoint:
    head = session.execute(select(AuditHead.chain_id, AuditHead.count, AuditHead.hash)
                           .where(AuditHead.id == 1)).one()  # as stored now, whatever the session holds
    at = iso_utc(now or utcnow())
    fields = {"chain_id": head.chain_id, "count": head.count, "head_hash": head.hash, "at": at}
    checkpoint = AuditCheckpoint(**fields, key_id=key.key_id, signature=key.sign(checkpoint_message(fields)))
    session.add(checkpoint)
    session.flush()
    return checkpoint


def install_checkpointing(session_factory, key: SigningKey, checkpoint_file: str) -> None:
    """Sign the head at the end of every transaction that appended to the chain.

    SQLAlchemy sends these events for a savepoint's release and rollback too; a savepoint is part of
    its transaction (the group commit holds one per write, exam/room/group_commit.py), so only the
    transaction's own commit signs, once, and copies the checkpoint out once it is committed."""

    @event.listens_for(session_factory, "before_commit")
    def sign_head(session):
        if session.in_nested_transaction():
            return
        if session.info.pop("audit_appended", False):
            session.flush()
            session.info.setdefault("audit_checkpoints", []).append(write_checkpoint(session, key).as_dict())

    @event.listens_for(session_factory, "after_commit")
    def copy_out(session):
        if session.in_nested_transaction():
            return
        # A copy outside the database: deleting checkpoint rows with the entries still shows.
        pending = session.info.pop("audit_checkpoints", [])
        if pending:
            with open(checkpoint_file, "a", encoding="utf-8") as fh:
                for checkpoint in pending:
                    fh.write(canonical_json(checkpoint) + "\n")

    @event.listens_for(session_factory, "after_rollback")
    def forget(session):
        if session.in_nested_transaction():
            return  # a savepoint undone: what the transaction appended before it still gets its checkpoint
        session.info.pop("audit_appended", None)
        session.info.pop("audit_checkpoints", None)


def read_checkpoint_file(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    checkpoints = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            checkpoints.append(json.loads(line))
    return checkpoints


# --- verification ------------------------------------------------------------------------------

@dataclass
class Verdict:
    ok: bool
    count: int
    head_hash: str
    problem: str = ""
    first_bad_seq: int | None = None
    checkpoints_checked: int = 0


def verify(entries: Iterable[dict], checkpoints: Iterable[dict] = (), public_key: Ed25519PublicKey | None = None,
           chain_id: str | None = None) -> Verdict:
    """Walk the chain in seq order; name the first entry that was altered, removed or inserted.

    Entries must come ordered by seq. Each checkpoint of this chain must carry a valid
    signature and agree with the entry at its count; a checkpoint beyond the chain's
    end means entries were cut off. A chain with entries but no checkpoint of its own
    is refused too: its checkpoints were removed.
    """
    prev_hash = GENESIS_HASH
    expected_seq = 1
    hash_at: dict[int, str] = {}
    for entry in entries:
        seq = entry["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                return Verdict(False, expected_seq - 1, prev_hash,
                               f"entry {expected_seq} is missing (removed); the chain jumps to entry {seq}",
                               expected_seq)
            return Verdict(False, expected_seq - 1, prev_hash, f"entry {seq} appears twice or out of order", seq)
        if entry["prev_hash"] != prev_hash:
            return Verdict(False, seq - 1, prev_hash,
                           f"entry {seq} does not follow entry {seq - 1} (inserted, or an earlier entry was removed)",
                           seq)
        if entry_hash(entry) != entry["hash"]:
            return Verdict(False, seq - 1, prev_hash, f"entry {seq} was altered: its content does not match its hash",
                           seq)
        prev_hash = entry["hash"]
        hash_at[seq] = prev_hash
        expected_seq += 1
    count = expected_seq - 1
    checked = 0
    # Longest first, so a cut-off chain is reported against the furthest signed head.
    for checkpoint in sorted(checkpoints, key=lambda c: c["count"], reverse=True):
        if chain_id is not None and checkpoint.get("chain_id") != chain_id:
            continue  # another database's checkpoint (e.g. a file kept from an earlier installation)
        label = f"checkpoint of {checkpoint['at']} (entry {checkpoint['count']})"
        if public_key is not None:
            message = checkpoint_message(checkpoint)
            try:
                public_key.verify(base64.b64decode(checkpoint["signature"]), message)
            except (InvalidSignature, ValueError):
                return Verdict(False, count, prev_hash, f"{label} has an invalid signature")
        if checkpoint["count"] > count:
            return Verdict(False, count, prev_hash,
                           f"the chain ends at entry {count} but the signed {label} shows entries up to "
                           f"{checkpoint['count']}: entries {count + 1} to {checkpoint['count']} were cut off",
                           count + 1)
        if checkpoint["count"] > 0 and hash_at[checkpoint["count"]] != checkpoint["head_hash"]:
            return Verdict(False, count, prev_hash,
                           f"entry {checkpoint['count']} does not match the signed {label}: the chain was rewritten",
                           checkpoint["count"])
        checked += 1
    if count and not checked:
        return Verdict(False, count, prev_hash, "no signed checkpoint covers this chain: its checkpoints were removed")
    return Verdict(True, count, prev_hash, checkpoints_checked=checked)


def verify_database(session: Session, key: SigningKey | None, checkpoint_file: str | None = None) -> Verdict:
    entries = (entry.as_dict() for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
               .yield_per(2000))
    checkpoints = [c.as_dict() for c in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))]
    if checkpoint_file:
        checkpoints += read_checkpoint_file(checkpoint_file)
    head = session.get(AuditHead, 1)
    verdict = verify(entries, checkpoints, key.public_key if key else None, chain_id=head.chain_id)
    if verdict.ok and head is not None and (head.count, head.hash) != (verdict.count, verdict.head_hash):
        return Verdict(False, verdict.count, verdict.head_hash,
                       f"the head record says {head.count} entries but the chain holds {verdict.count}",
                       min(head.count, verdict.count) + 1)
    return verdict
