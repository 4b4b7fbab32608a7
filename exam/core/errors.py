"""The one base of every refusal: an action the rules decline, with a code and a message fit to show.

Each area subclasses it (``AccountError``, ``ExamError``, ``RoomError``, ``ProctorError``, ...), so a caller
that only needs to know "refused, nothing written" catches ``Refused``: the CLI's ``transactional`` turns it
into a clean exit, the pages into a message. Anything else that goes wrong is a bug and stays a traceback.

It is a ``ValueError`` because most refusals are of bad input, and callers written against the older
``ValueError`` subclasses keep working.
"""
from __future__ import annotations


class Refused(ValueError):
    """A refused action. ``code`` is machine-readable (the JSON contract's error codes, a view's message key);
    ``details`` are its particulars; ``str()`` is the message (or the code when there is none)."""

    code = "refused"

    def __init__(self, message: str = "", /, *, code: str | None = None, **details):
        super().__init__(message or code or type(self).code)
        self.code = code or type(self).code
        self.details = details
