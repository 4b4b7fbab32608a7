"""The save history: every acknowledged save of an attempt, appended to ``response_log`` and chained by hash.

Each entry's hash covers the attempt, the save (seq, question, choices, flag), when and from which machine it
arrived, and the hash of the entry before it (``GENESIS_HASH`` for the first), so an entry altered, removed or
put in another order breaks the chain from there on. The chain's head (hash and count) lives on the attempt's
own row, and submission carries it into the global audit chain. The save rule (exam/room/attempts.py) writes
the entries; ``verify_history`` walks them back, and so do the auditor's pages and the re-tally
(exam/audit/), which import this module and nothing else of the room's rules.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.audit.chain import canonical_json
from exam.room.models import Attempt, ResponseLog

GENESIS_HASH = "0" * 64


def log_hash(*, attempt_public_id: str, seq: int, item_id: int, choices: list, flagged: bool, at: str,
             machine: str, prev_hash: str) -> str:
    payload = canonical_json({"attempt": attempt_public_id, "seq": seq, "item": item_id, "choices": choices,
                              "flagged": flagged, "at": at, "machine": machine, "prev_hash": prev_hash})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class HistoryVerdict:
    ok: bool
    count: int
    head_hash: str
    problem: str = ""


def verify_history(attempt_public_id: str, rows: Iterable[dict]) -> HistoryVerdict:
    """Walk one attempt's save log (rows in id order, as dicts of the log's columns); pure."""
    prev = GENESIS_HASH
    count = 0
    for row in rows:
        count += 1
        if row["prev_hash"] != prev:
            return HistoryVerdict(False, count - 1, prev, f"save {count} (seq {row['seq']}) does not follow the one "
                                                          f"before it")
        expected = log_hash(attempt_public_id=attempt_public_id, seq=row["seq"], item_id=row["item_id"],
                            choices=json.loads(row["choices"]), flagged=bool(row["flagged"]), at=row["at"],
                            machine=row["machine"], prev_hash=prev)
        if expected != row["hash"]:
            return HistoryVerdict(False, count - 1, prev, f"save {count} (seq {row['seq']}) was altered")
        prev = row["hash"]
    return HistoryVerdict(True, count, prev)


def verify_attempt_history(session: Session, attempt: Attempt) -> HistoryVerdict:
    """The stored log against the attempt's recorded head (hash and count)."""
    columns = ResponseLog.__table__.c
    rows = session.execute(select(columns.seq, columns.item_id, columns.choices, columns.flagged, columns.at,
                                  columns.machine, columns.prev_hash, columns.hash)
                           .where(columns.attempt_id == attempt.id).order_by(columns.id)).mappings()
    verdict = verify_history(attempt.public_id, rows)
    if verdict.ok and (verdict.count, verdict.head_hash) != (attempt.history_count, attempt.history_hash):
        return HistoryVerdict(False, verdict.count, verdict.head_hash,
                              f"the attempt records {attempt.history_count} saves ending in "
                              f"{attempt.history_hash[:12]}…, the log holds {verdict.count}")
    return verdict
