"""Staff accounts: roles, passwords, TOTP second factor, recovery codes, sessions.

Plain rules that take a session and ``now``; the auth blueprint calls them.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from exam.accounts.models import ROLES, RecoveryCode, StaffSession, User
from exam.audit import chain as audit
from exam.core.db import utcnow
from exam.core.errors import Refused

RECOVERY_CODE_COUNT = 10
# Checked against when the username is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


class AccountError(Refused):
    """A refused account operation, with a message fit to show."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_roles(roles) -> list[str]:
    roles = sorted(set(roles))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AccountError(f"unknown role {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if not roles:
        raise AccountError("give at least one role")
    return roles


def check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise AccountError("the password must have at least 10 characters")


def create_user(session: Session, username: str, password: str, roles, *, full_name: str = "",
                actor: str = "system", now: datetime | None = None) -> User:
    now = now or utcnow()
    username = username.strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise AccountError("username must be 1-64 letters, digits, '.', '_' or '-'")
    if session.scalar(select(User).where(User.username == username)):
        raise AccountError(f"user {username!r} already exists")
    roles = _check_roles(roles)
    check_password_strength(password)
    user = User(username=username, full_name=full_name, password_hash=generate_password_hash(password),
                roles=" ".join(roles), totp_secret=pyotp.random_base32(), created_at=now)
    session.add(user)
    session.flush()
    audit.append(session, actor=actor, action="user.create", object_type="user", object_id=username,
                 details={"roles": roles, "full_name": full_name}, now=now)
    return user


def set_active(session: Session, user: User, active: bool, *, actor: str, now: datetime | None = None) -> None:
    user.active = active
    if not active:
        for staff_session in session.scalars(select(StaffSession).where(
                StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))):
            staff_session.ended_at = now or utcnow()
    audit.append(session, actor=actor, action="user.enable" if active else "user.disable",
                 object_type="user", object_id=user.username, details={}, now=now)


def set_password(session: Session, user: User, password: str, *, actor: str, now: datetime | None = None) -> None:
    check_password_strength(password)
    user.password_hash = generate_password_hash(password)
    audit.append(session, actor=actor, action="user.password", object_type="user",
                 object_id=user.username, details={}, now=now)


@dataclass
class LoginOutcome:
    user: User | None
    token: str | None = None
    error: str | None = None  # "invalid", "locked", "disabled"


def start_login(session: Session, username: str, password: str, *, now: datetime, remote_addr: str = "",
                max_failures: int = 5, lockout: timedelta = timedelta(minutes=15)) -> LoginOutcome:
    """Check the password; on success open a new StaffSession (the second factor may still be owed)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        audit.append(session, actor=username.strip()[:64] or "?", action="auth.login_failed", object_type="user",
                     object_id=username.strip()[:64], details={"reason": "unknown user", "ip": remote_addr}, now=now)
        return LoginOutcome(None, error="invalid")
    if user.locked_until and user.locked_until > now:
        check_password_hash(_DUMMY_HASH, password)
        audit.append(session, actor=user.username, action="auth.login_failed", object_type="user",
                     object_id=user.username, details={"reason": "locked", "ip": remote_addr}, now=now)
        return LoginOutcome(user, error="locked")
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        details = {"reason": "wrong password", "failures": user.failed_logins, "ip": remote_addr}
        audit.append(session, actor=user.username, action="auth.login_failed", object_type="user",
                     object_id=user.username, details=details, now=now)
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
            audit.append(session, actor="system", action="auth.lockout", object_type="user", object_id=user.username,
                         details={"until": user.locked_until.isoformat(), "ip": remote_addr}, now=now)
        return LoginOutcome(user, error="invalid")
    if not user.active:
        audit.append(session, actor=user.username, action="auth.login_failed", object_type="user",
                     object_id=user.username, details={"reason": "disabled", "ip": remote_addr}, now=now)
        return LoginOutcome(user, error="disabled")
    user.failed_logins = 0
    user.locked_until = None
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_sha256(token), user_id=user.id, created_at=now, remote_addr=remote_addr))
    audit.append(session, actor=user.username, action="auth.password_ok", object_type="user",
                 object_id=user.username, details={"ip": remote_addr, "second_factor_due": user.needs_2fa}, now=now)
    return LoginOutcome(user, token=token)


def session_for_token(session: Session, token: str) -> StaffSession | None:
    staff_session = session.scalar(select(StaffSession).where(StaffSession.token_hash == _sha256(token)))
    if staff_session is None or staff_session.ended_at is not None or not staff_session.user.active:
        return None
    return staff_session


def end_session(session: Session, staff_session: StaffSession, *, now: datetime) -> None:
    staff_session.ended_at = now
    audit.append(session, actor=staff_session.user.username, action="auth.logout", object_type="user",
                 object_id=staff_session.user.username, details={}, now=now)


def _accept_totp_code(user: User, code: str, now: datetime, valid_window: int) -> bool:
    """True when ``code`` is valid within the drift window and newer than the last accepted one."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(user.totp_secret)
    step_now = int(now.timestamp()) // totp.interval
    for step in range(step_now - valid_window, step_now + valid_window + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            if step <= user.totp_last_step:
                return False  # already used: a replay
            user.totp_last_step = step
            return True
    return False


def _accept_recovery_code(user: User, code: str, now: datetime) -> bool:
    digest = _sha256(code.strip().replace("-", "").lower())
    for recovery in user.recovery_codes:
        if recovery.used_at is None and secrets.compare_digest(recovery.code_hash, digest):
            recovery.used_at = now
            return True
    return False


def pass_second_factor(session: Session, staff_session: StaffSession, code: str, *, now: datetime,
                       valid_window: int = 1) -> bool:
    """Check a TOTP or recovery code for an enrolled user; marks the session fully authenticated."""
    user = staff_session.user
    if not user.totp_enrolled:
        return False
    if _accept_totp_code(user, code, now, valid_window):
        method = "totp"
    elif _accept_recovery_code(user, code, now):
        method = "recovery_code"
    else:
        audit.append(session, actor=user.username, action="auth.2fa_failed", object_type="user",
                     object_id=user.username, details={}, now=now)
        return False
    staff_session.second_factor_at = now
    audit.append(session, actor=user.username, action="auth.2fa_ok", object_type="user",
                 object_id=user.username, details={"method": method}, now=now)
    return True


def confirm_enrolment(session: Session, staff_session: StaffSession, code: str, *, now: datetime,
                      valid_window: int = 1) -> list[str] | None:
    """First TOTP code proves the authenticator works; returns fresh recovery codes (shown once)."""
    user = staff_session.user
    if user.totp_enrolled or not _accept_totp_code(user, code, now, valid_window):
        return None
    user.totp_confirmed_at = now
    staff_session.second_factor_at = now
    codes = new_recovery_codes(session, user, now=now)
    audit.append(session, actor=user.username, action="auth.2fa_enrolled", object_type="user",
                 object_id=user.username, details={"recovery_codes": len(codes)}, now=now)
    return codes


def new_recovery_codes(session: Session, user: User, *, now: datetime) -> list[str]:
    user.recovery_codes.clear()
    session.flush()
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)  # 10 hex digits, shown as xxxxx-xxxxx
        codes.append(f"{raw[:5]}-{raw[5:]}")
        user.recovery_codes.append(RecoveryCode(code_hash=_sha256(raw)))
    return codes


def reset_totp(session: Session, user: User, *, actor: str, now: datetime) -> None:
    """A lost phone: the user enrols again at the next login."""
    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed_at = None
    user.totp_last_step = 0
    user.recovery_codes.clear()
    audit.append(session, actor=actor, action="user.2fa_reset", object_type="user",
                 object_id=user.username, details={}, now=now)
