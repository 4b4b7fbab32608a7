"""Uploaded files kept on the server between a dry run and the board's confirmation.

The confirmed import reads the bytes the dry run checked, never a second upload from
the browser. Files not confirmed within a day are removed at the next staging.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path

from flask import current_app, flash
from flask_babel import gettext as _

TOKEN = re.compile(r"^[0-9a-f]{32}$")
MAX_AGE_S = 24 * 3600


def upload_filename(upload) -> str:
    """An uploaded file's own name, without the folders some browsers send."""
    return Path((upload.filename or "").replace("\\", "/")).name or "upload"


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

    def checked_upload(self, form, *, actor: str, exam_code: str | None = None) -> tuple[bytes, dict] | None:
        """The bytes a dry run checked, for its confirmation ``form`` (``token`` and ``sha256`` fields). None,
        with the reason flashed, when the form is invalid, the file is gone (imported, or expired), or it is
        not the file this user checked for this exam (it is then dropped)."""
        if not form.validate_on_submit():
            flash(_("Yêu cầu nhập không hợp lệ; vui lòng tải tệp lên lại."), "danger")
            return None
        staged = self.staged(form.token.data)
        if staged is None:
            flash(_("Tệp đã kiểm tra không còn trên máy chủ (đã nhập hoặc đã quá hạn); vui lòng tải lên lại."),
                  "danger")
            return None
        content, meta = staged
        digest = hashlib.sha256(content).hexdigest()
        if (meta.get("actor") != actor or meta.get("exam") != exam_code or digest != meta.get("sha256")
                or digest != form.sha256.data):
            self.unstage(form.token.data)
            flash(_("Tệp đã kiểm tra không khớp; vui lòng tải lên lại."), "danger")
            return None
        return staged
