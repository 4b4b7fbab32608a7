"""What a room write answers when it does not answer its body: a refusal, or a write that was not committed.

``RoomError`` is a refusal of the rules (``Refused`` with the contract's code: docs/exam-room-contract.md);
what the rule recorded before refusing is committed all the same. ``BatchFailed`` is the transport's: the
group commit holding the write did not commit (or its writer did not answer in time), nothing of it was
acknowledged, and the page sends it again (HTTP 503 ``busy``; saves are idempotent by seq). Both are here,
beneath the rules, the group commit, the writer process's client and the API, so that each of them can
raise or catch either without importing the others.
"""
from __future__ import annotations

from exam.core.errors import Refused


class RoomError(Refused):
    """A refused exam-room action; ``code`` is the contract's machine-readable code."""

    def __init__(self, code: str, **details):
        super().__init__(code, code=code, **details)


class BatchFailed(Exception):
    """The batch holding this write did not commit (or the wait ran out): nothing of it was written
    (after a timeout: maybe written later); the client sends it again."""
