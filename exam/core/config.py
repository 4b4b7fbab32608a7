"""Settings: read from the environment, with defaults that are safe on a lab server.

Every setting can be given as an environment variable of the same name
(e.g. ``DATABASE_URL``, ``SECRET_KEY``) or in ``instance/config.py``.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

# Variables read from the environment; anything else comes from instance/config.py.
ENV_SETTINGS = (
    "DATABASE_URL",
    "SECRET_KEY",
    "AUDIT_SIGNING_KEY_FILE",
    "SESSION_COOKIE_SECURE",
    "BABEL_DEFAULT_LOCALE",
    "MAX_UPLOAD_MB",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_MINUTES",
    "PROXY_HOPS",
    "SAVE_GRACE_SECONDS",
    "ATTEMPT_SWEEPER",
    "ATTEMPT_SWEEP_SECONDS",
    "SAVE_BATCHING",
    "SAVE_WRITER",
)


class Defaults:
    BABEL_DEFAULT_LOCALE = "vi"
    BABEL_DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
    LANGUAGES = ("vi", "en")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # set true behind HTTPS
    REMEMBER_COOKIE_DURATION = 0  # staff never get a "remember me" cookie
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    MAX_UPLOAD_MB = 20
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCKOUT_MINUTES = 15
    TOTP_VALID_WINDOW = 1  # accept one 30 s step either side: lab clocks drift
    BANK_PAGE_SIZE = 50
    # Reverse proxies in front of the app (nginx: 1). The exam room tells machines apart by
    # address, so behind a proxy this must be set or every lab machine looks the same.
    PROXY_HOPS = 0
    SAVE_GRACE_SECONDS = 10  # saves accepted this long after a section closes (requests in flight)
    ATTEMPT_SWEEPER = True  # submit overdue attempts in the background
    ATTEMPT_SWEEP_SECONDS = 15
    # How often the exam page tells the server it is alive (and learns of extensions and pauses);
    # the proctor console shows a machine as disconnected after 60 s of silence, so keep it well under.
    HEARTBEAT_SECONDS = 20
    # Group commit of the exam room's writes (exam/room/group_commit.py): "auto" (on for SQLite, where one
    # fsync'd commit per save caps a lab at ~400 saves/s), or on / off.
    SAVE_BATCHING = "auto"
    # Where the group commit of the answer saves and heartbeats runs (exam/room/writer.py): "auto"
    # (a writer process of its own wherever the group commit is on), "process" or "thread".
    SAVE_WRITER = "auto"


def _coerce(value: str):
    low = value.lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0"):
        return False
    try:
        return int(value)
    except ValueError:
        return value


def configure(app, test_config: dict | None) -> None:
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for name in ENV_SETTINGS:
        if name in os.environ:
            app.config[name] = _coerce(os.environ[name]) if name != "DATABASE_URL" else os.environ[name]
    if test_config:
        app.config.update(test_config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.setdefault("DATABASE_URL", f"sqlite:///{instance / 'exam.sqlite3'}")
    app.config.setdefault("AUDIT_SIGNING_KEY_FILE", str(instance / "audit-signing-key.pem"))
    app.config.setdefault("AUDIT_CHECKPOINT_FILE", str(instance / "audit-checkpoints.jsonl"))
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_MB"]) * 1024 * 1024
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")


def _instance_secret(path: Path) -> str:
    """Generate the secret key once into the instance folder, readable by the owner only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by another worker starting at the same moment
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


# The languages a page can be shown in (the top bar's switch), Vietnamese first: it is the source language.
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
