"""Sittings: the rotating access code the proctor shows, and the sitting's time window."""
from __future__ import annotations

import secrets
from datetime import datetime

import pyotp

from exam.models import Sitting

ACCESS_CODE_SECONDS = 120  # long enough to read off a projector and type
ACCESS_CODE_DIGITS = 6


def new_access_secret() -> str:
    return pyotp.random_base32()


def _totp(sitting: Sitting) -> pyotp.TOTP:
    return pyotp.TOTP(sitting.access_secret, digits=ACCESS_CODE_DIGITS, interval=ACCESS_CODE_SECONDS)


def current_access_code(sitting: Sitting, now: datetime) -> str:
    return _totp(sitting).at(now)


def seconds_until_rotation(now: datetime) -> int:
    return ACCESS_CODE_SECONDS - int(now.timestamp()) % ACCESS_CODE_SECONDS


def check_access_code(sitting: Sitting, code: str, now: datetime) -> bool:
    """The current code, or the one just before it (a candidate still typing when it rotated)."""
    code = "".join((code or "").split())
    if not code.isdigit():
        return False
    totp = _totp(sitting)
    return any(secrets.compare_digest(totp.at(now, counter_offset=offset), code) for offset in (0, -1))
