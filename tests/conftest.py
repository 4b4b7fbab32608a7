"""Shared fixtures: an app on a fresh database per test (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set), the real test client with CSRF on, the CLI runner,
staff user factories and login-as-role through the real login pages."""
from __future__ import annotations

import io
import os
import re
import shutil
import uuid
from datetime import timedelta

import pyotp
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from exam.accounts import staff as accounts
from exam.app import create_app
from exam.core import schema
from exam.core.db import get_session, make_engine, utcnow

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
PASSWORD = "mat-khau-thu-nghiem-1"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """Migrate once, copy per test: every test still starts from the real migrated schema."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema_sql():
    """The migrations as one SQL script (Alembic's --sql mode), generated once per run.

    Running the script in a fresh schema takes a few milliseconds where running the
    migrations takes a few hundred; tests/test_cli.py still runs them for real."""
    buffer = io.StringIO()
    cfg = Config(output_buffer=buffer)
    cfg.set_main_option("script_location", str(schema.MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", PG_URL)
    command.upgrade(cfg, "head", sql=True)
    return buffer.getvalue()


@pytest.fixture
def database_url(tmp_path, request):
    if PG_URL:
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        script = request.getfixturevalue("pg_schema_sql")
        with admin.connect() as conn:
            raw = conn.connection.driver_connection
            raw.autocommit = True
            # Straight to the driver: the script's plpgsql contains '%' that must not be read as parameters.
            raw.execute(f'CREATE SCHEMA "{name}"')
            raw.execute(f'SET search_path TO "{name}"')
            raw.execute(script)
            raw.execute("RESET search_path")
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{name}"
        yield url
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
    else:
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "exam.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret"},
                     instance_path=str(tmp_path / "instance"))
    yield app
    app.extensions["exam_db"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A session for testing rules directly. Deliberately outside any app context: a
    pushed context would be shared by the test client's requests (and their ``g``)."""
    session = app.extensions["exam_db"].sessionmaker()
    yield session
    session.close()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'type="hidden" name="csrf_token" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class StaffFactory:
    """Creates staff users; each gets its own TOTP secret so logins never collide on a replayed step."""

    def __init__(self, app):
        self.app = app

    def create(self, *roles: str, enrolled: bool = True, username: str | None = None):
        username = username or f"{'-'.join(roles) or 'user'}-{uuid.uuid4().hex[:6]}"
        with self.app.app_context():
            db_session = get_session()
            user = accounts.create_user(db_session, username, PASSWORD, roles, full_name=f"Cán bộ {username}")
            if enrolled:
                user.totp_confirmed_at = utcnow()
            db_session.commit()
            return StaffUser(user.username, PASSWORD, user.totp_secret, set(roles))


class StaffUser:
    def __init__(self, username, password, totp_secret, roles):
        self.username, self.password, self.totp_secret, self.roles = username, password, totp_secret, roles
        self._step_offset = 0

    def next_code(self) -> str:
        """A fresh code each call: steps within the drift window, never reused."""
        totp = pyotp.TOTP(self.totp_secret)
        code = totp.at(utcnow() + timedelta(seconds=30 * self._step_offset))
        self._step_offset += 1
        return code


@pytest.fixture
def staff(app):
    return StaffFactory(app)


def login(client, user: StaffUser, *, with_code: bool = True):
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                           "username": user.username, "password": user.password})
    assert response.status_code == 302, response.get_data(as_text=True)
    if with_code and response.headers["Location"].endswith("/login/code"):
        page = client.get("/login/code")
        response = client.post("/login/code", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                     "code": user.next_code()})
        assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def login_as(staff, client):
    """login_as('board') → a client signed in as a fresh board user (2FA passed)."""

    def _login_as(*roles: str):
        user = staff.create(*roles)
        login(client, user)
        return user

    return _login_as
