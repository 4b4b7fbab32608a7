"""Uploaded files kept on the server between a dry run and the board's confirmation.

The confirmed import reads the bytes the dry run checked, never a second upload from
the browser. Files not confirmed within a day are removed at the next staging.
"""
from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

from flask import current_app

TOKEN = re.compile(r"^[0-9a-f]{32}$")
MAX_AGE_S = 24 * 3600


class UploadStaging:
    """Staged uploads of one kind (``roster``, ``scores``...) under instance/import-staging/."""

    def __init__(self, kind: str):
        self.kind = kind

    @staticmethod
    def folder() -> Path:
        return Path(current_app.instance_path) / "import-staging"

    def _path(self, token: str, suffix: str) -> Path:
        return self.folder() / f"{self.kind}-{token}{suffix}"

    def stage(self, content: bytes, meta: dict) -> str:
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - MAX_AGE_S
        for old in folder.glob(f"{self.kind}-*"):
            if old.is_file() and old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
        token = secrets.token_hex(16)
        self._path(token, ".bin").write_bytes(content)
        self._path(token, ".json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return token

    def staged(self, token: str) -> tuple[bytes, dict] | None:
        if not TOKEN.match(token or ""):
            return None
        try:
            meta = json.loads(self._path(token, ".json").read_text(encoding="utf-8"))
            content = self._path(token, ".bin").read_bytes()
        except (OSError, ValueError):
            return None
        return content, meta

    def unstage(self, token: str) -> None:
        if TOKEN.match(token or ""):
            for suffix in (".bin", ".json"):
                self._path(token, suffix).unlink(missing_ok=True)
