"""Batch commands: init-db, users; clear errors and non-zero exits."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, select, text

from exam.accounts import staff as accounts
from exam.accounts.models import User
from exam.app import create_app
from exam.audit.models import AuditEntry
from exam.core import schema
from exam.core.db import make_engine, utcnow
from tests.conftest import PG_URL, login


def test_init_db_on_current_database_keeps_data(runner, db, app):
    accounts.create_user(db, "giu-lai", "mat-khau-dai-du-10", ["proctor"])
    db.commit()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "already at schema" in result.output
    assert db.scalar(select(User).where(User.username == "giu-lai"))


@pytest.fixture
def empty_database_url(tmp_path):
    """An empty database (no tables): a new SQLite file, or a new PostgreSQL schema."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'new.sqlite3'}"
        return
    name = f"e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


def test_init_db_creates_a_new_database(empty_database_url, tmp_path):
    app = create_app({"DATABASE_URL": empty_database_url}, instance_path=str(tmp_path / "i"))
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    engine = app.extensions["exam_db"].engine
    assert schema.current_revision(engine) == schema.head_revision(engine)
    app.extensions["exam_db"].engine.dispose()


def test_upgrade_keeps_the_data_of_an_older_schema(empty_database_url):
    """A board upgrading from the exam-room schema (0002) to the current one keeps its rows."""
    engine = make_engine(empty_database_url)
    schema.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO exam (id, code, title, status, seed, show_score, forms, instructions, spec, "
                          "created_at, created_by) VALUES (1, 'R1', 'Vòng 1', 'draft', 'ab', true, 0, '', '{}', "
                          ":now, 'x')"), {"now": utcnow()})
        conn.execute(text("INSERT INTO sitting (id, exam_id, code, room, starts_at, ends_at, late_entry_minutes, "
                          "seats, access_secret, created_at) VALUES (1, 1, 'CA1', 'P1', :now, :now, 15, 40, 'S', "
                          ":now)"), {"now": utcnow()})
    schema.upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT code, room, paused_seconds FROM sitting")).one()
        assert tuple(row) == ("CA1", "P1", 0)
        assert conn.execute(text("SELECT title FROM exam")).scalar() == "Vòng 1"
    assert schema.current_revision(engine) == schema.head_revision(engine)
    engine.dispose()


def test_users_create_prompts_for_password_and_prints_uri(runner, db):
    result = runner.invoke(args=["users", "create", "to-truong", "--role", "board", "--role", "auditor"],
                           input="mat-khau-dai-du-10\nmat-khau-dai-du-10\n")
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/" in result.output and "auditor board" in result.output
    user = db.scalar(select(User).where(User.username == "to-truong"))
    assert user.role_set == {"board", "auditor"}
    assert not user.password_hash.startswith("mat-khau")  # hashed (scrypt)
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "user.create"))


def test_users_create_refuses_bad_input_and_writes_nothing(runner, db):
    result = runner.invoke(args=["users", "create", "x", "--role", "board"], input="short\nshort\n")
    assert result.exit_code != 0 and "at least 10 characters" in result.output
    result = runner.invoke(args=["users", "create", "x", "--role", "janitor"], input="mat-khau-dai-du-10\n" * 2)
    assert result.exit_code != 0 and "janitor" in result.output
    assert db.scalar(select(User)) is None


def test_users_list_disable_enable(runner, db):
    accounts.create_user(db, "giamthi1", "mat-khau-dai-du-10", ["proctor"])
    db.commit()
    assert runner.invoke(args=["users", "disable", "giamthi1"]).exit_code == 0
    listed = runner.invoke(args=["users", "list"]).output
    assert "giamthi1\tproctor\tdisabled" in listed
    assert runner.invoke(args=["users", "enable", "giamthi1"]).exit_code == 0
    assert "giamthi1\tproctor\tactive" in runner.invoke(args=["users", "list"]).output
    missing = runner.invoke(args=["users", "disable", "nobody"])
    assert missing.exit_code != 0 and "no user named 'nobody'" in missing.output


def test_disabled_user_cannot_log_in_and_loses_open_sessions(app, staff, runner):
    user = staff.create("proctor")
    client = app.test_client()
    login(client, user)
    assert client.get("/").status_code == 200
    assert runner.invoke(args=["users", "disable", user.username]).exit_code == 0
    assert client.get("/").status_code == 302


def test_every_command_has_help(runner):
    for args in (["init-db"], ["demo"], ["users"], ["users", "create"], ["users", "list"], ["audit", "verify"],
                 ["bank"]):
        result = runner.invoke(args=args + ["--help"])
        assert result.exit_code == 0 and "Usage" in result.output, args
