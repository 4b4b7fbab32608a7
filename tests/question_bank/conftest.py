"""Bank fixtures: a clock, a question factory over the real rules, a second empty app for round trips."""
from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from exam.app import create_app
from exam.core import schema
from question_bank import bank
from tests.conftest import PG_URL

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    """now() that moves one second per call, so versions and entries get distinct times."""
    state = {"now": T0}

    def now():
        state["now"] += timedelta(seconds=1)
        return state["now"]

    return now


def draft(**overrides) -> bank.QuestionDraft:
    values = dict(topic="Kiến thức chung > Hiến pháp 2013", difficulty="easy", type="single",
                  text="Hiến pháp năm 2013 có hiệu lực từ ngày nào?",
                  options=[("01/01/2014", True), ("28/11/2013", False), ("01/7/2014", False)],
                  explanation="Nghị quyết 64/2013/QH13.", source="Hiến pháp 2013", tags=["hiến pháp"])
    values.update(overrides)
    return bank.QuestionDraft(**values)


@pytest.fixture
def make_question(db, clock):
    """make_question(text=..., topic=...) → a committed question made through bank.create_question."""

    def _make(actor: str = "hoidong", note: str = "", **overrides):
        question = bank.create_question(db, draft(**overrides), actor=actor, now=clock(), note=note)
        db.commit()
        return question

    return _make


@pytest.fixture
def fresh_app(tmp_path, request):
    """A factory of further apps, each on its own empty migrated database (SQLite or PostgreSQL)."""
    made = []

    def _fresh():
        n = len(made)
        if PG_URL:
            name = f"t_{uuid.uuid4().hex[:12]}"
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            admin.dispose()
            sep = "&" if "?" in PG_URL else "?"
            url = f"{PG_URL}{sep}options=-csearch_path%3D{name}"
            engine = create_engine(url)
            schema.upgrade(engine)
            engine.dispose()
        else:
            name = None
            path = tmp_path / f"fresh-{n}.sqlite3"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            url = f"sqlite:///{path}"
        app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret"},
                         instance_path=str(tmp_path / f"fresh-instance-{n}"))
        made.append((app, name))
        return app

    yield _fresh
    for app, name in made:
        app.extensions["exam_db"].engine.dispose()
        if name:
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            admin.dispose()
