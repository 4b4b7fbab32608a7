"""Batch commands: init-db, users; clear errors and non-zero exits."""
from __future__ import annotations

from sqlalchemy import select

from exam import accounts, audit, schema


def test_init_db_on_current_database_keeps_data(runner, db, app):
    accounts.create_user(db, "giu-lai", "mat-khau-dai-du-10", ["proctor"])
    db.commit()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "already at schema" in result.output
    assert db.scalar(select(accounts.User).where(accounts.User.username == "giu-lai"))


def test_init_db_creates_a_new_database(tmp_path):
    from exam import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}"}, instance_path=str(tmp_path / "i"))
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    engine = app.extensions["exam_db"].engine
    assert schema.current_revision(engine) == schema.head_revision(engine)


def test_users_create_prompts_for_password_and_prints_uri(runner, db):
    result = runner.invoke(args=["users", "create", "to-truong", "--role", "board", "--role", "auditor"],
                           input="mat-khau-dai-du-10\nmat-khau-dai-du-10\n")
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/" in result.output and "auditor board" in result.output
    user = db.scalar(select(accounts.User).where(accounts.User.username == "to-truong"))
    assert user.role_set == {"board", "auditor"}
    assert not user.password_hash.startswith("mat-khau")  # hashed (scrypt)
    assert db.scalar(select(audit.AuditEntry).where(audit.AuditEntry.action == "user.create"))


def test_users_create_refuses_bad_input_and_writes_nothing(runner, db):
    result = runner.invoke(args=["users", "create", "x", "--role", "board"], input="short\nshort\n")
    assert result.exit_code != 0 and "at least 10 characters" in result.output
    result = runner.invoke(args=["users", "create", "x", "--role", "janitor"], input="mat-khau-dai-du-10\n" * 2)
    assert result.exit_code != 0 and "janitor" in result.output
    assert db.scalar(select(accounts.User)) is None


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
    from tests.conftest import login

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
