"""A throw-away exam room for the benchmarks, built through the app's own rules.

``build_room`` makes a fresh database (SQLite in the given instance folder unless a
database URL is given), imports the demo bank, creates the round-1 example exam from
examples/round1.toml, publishes it, creates sittings of ``seats`` seats, imports a
roster of ``candidates`` made-up candidates (registration numbers BN000001...) through
the roster importer and, unless told not to, draws every paper. Each step is its own
transaction, timed.
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from exam.app import create_app
from exam.core import schema
from exam.core.db import force_immediate, get_session, utcnow
from exam.setup import exams, roster, sittings
from exam.setup.models import Sitting
from exam.setup.papers import generate_papers
from exam.setup.spec import spec_from_toml
from question_bank.importer import import_file

# Imported as bench.room (by bench/load.py and bench/papers.py, which put the repo on sys.path first), never run.
ROOT = Path(__file__).resolve().parent.parent
DEMO_BANK = ROOT / "question_bank" / "demo" / "demo_bank.json"
ROUND1 = ROOT / "examples" / "round1.toml"
ACTOR = "bench"
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ")
MIDDLE = ("Văn", "Thị", "Hữu", "Ngọc", "Minh", "Thu")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Lan", "Minh", "Nga", "Phúc", "Quân", "Sơn", "Trang")


@dataclass
class Room:
    app: object
    exam_code: str
    sittings: list[str]  # sitting codes, in order
    candidates: int
    timings: dict[str, float] = field(default_factory=dict)


def registration_no(i: int) -> str:
    return f"BN{i:06d}"


def date_of_birth(i: int) -> date:
    return date(1980, 1, 1) + timedelta(days=(i * 7919) % (20 * 365))


def roster_csv(n: int, sittings: list[str] | None = None, seats: int = 40) -> bytes:
    """n candidates; with sittings, candidate i sits in sittings[(i-1) // seats] at seat (i-1) % seats + 1."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("registration_no", "full_name", "date_of_birth", "citizen_id", "post", "sitting", "seat"))
    for i in range(1, n + 1):
        name = f"{FAMILY[i % len(FAMILY)]} {MIDDLE[(i // 10) % len(MIDDLE)]} {GIVEN[(i // 60) % len(GIVEN)]}"
        sitting, seat = "", ""
        if sittings:
            sitting, seat = sittings[(i - 1) // seats], str((i - 1) % seats + 1)
        writer.writerow((registration_no(i), name, date_of_birth(i).strftime("%d/%m/%Y"), f"{79_000_000_000 + i:012d}",
                         "Chuyên viên", sitting, seat))
    return out.getvalue().encode("utf-8")


def make_app(instance: Path, database_url: str | None = None):
    config = {"SECRET_KEY": "bench-secret", "ATTEMPT_SWEEPER": False}
    config["DATABASE_URL"] = database_url or f"sqlite:///{instance / 'exam.sqlite3'}"
    return create_app(config, instance_path=str(instance))


def _step(timings: dict, label: str, app, fn):
    with app.app_context():
        token = force_immediate.set(True)
        try:
            db = get_session()
            started = time.perf_counter()
            result = fn(db)
            timings[label] = time.perf_counter() - started
            started = time.perf_counter()
            db.commit()
            timings[label + " (commit)"] = time.perf_counter() - started
            return result
        finally:
            force_immediate.reset(token)


def build_room(instance: Path, *, candidates: int, database_url: str | None = None, seats: int = 40,
               with_sittings: bool = True, draw_papers: bool = True, sitting_start: datetime | None = None,
               sitting_minutes: int | None = None, log=print) -> Room:
    instance.mkdir(parents=True, exist_ok=True)
    app = make_app(instance, database_url)
    engine = app.extensions["exam_db"].engine
    if database_url and not database_url.startswith("sqlite"):
        _reset_postgres(engine)
    schema.upgrade(engine)
    timings: dict[str, float] = {}

    def bank(db):
        report = import_file(db, DEMO_BANK.name, DEMO_BANK.read_bytes(), actor=ACTOR, now=utcnow())
        assert not report.errors, report.errors[:3]

    _step(timings, "bank import", app, bank)

    def exam_step(db):
        spec, errors = spec_from_toml(ROUND1.read_bytes())
        assert spec is not None, errors
        exam = exams.create_exam(db, spec, ACTOR, utcnow())
        exams.publish_exam(db, exam, actor=ACTOR, now=utcnow())
        return exam.code, exam.total_minutes

    exam_code, total_minutes = _step(timings, "exam create + publish", app, exam_step)

    codes: list[str] = []
    if with_sittings:
        n_sittings = (candidates + seats - 1) // seats
        starts = sitting_start or utcnow() - timedelta(minutes=1)
        minutes = sitting_minutes or total_minutes + 60

        def sittings_step(db):
            exam = exams.exam_by_code(db, exam_code)
            for s in range(1, n_sittings + 1):
                code = f"CA{s:04d}"
                sitting = sittings.create_sitting(db, exam, code=code, room=f"Phòng {s}", starts_at=starts,
                                                  seats=seats, minutes=minutes, late_entry_minutes=120, actor=ACTOR,
                                                  now=utcnow())
                sitting.opened_at = starts  # the proctor opened the room at its start
                codes.append(code)

        _step(timings, f"{n_sittings} sittings", app, sittings_step)

    def roster_step(db):
        exam = exams.exam_by_code(db, exam_code)
        report = roster.import_roster(db, exam, "bench.csv", roster_csv(candidates, codes or None, seats),
                                      actor=ACTOR, now=utcnow())
        assert not report.errors, report.errors[:3]

    _step(timings, f"roster of {candidates}", app, roster_step)

    if draw_papers:
        def papers_step(db):
            return generate_papers(db, exams.exam_by_code(db, exam_code), actor=ACTOR, now=utcnow())

        _step(timings, "papers", app, papers_step)
    for label, seconds in timings.items():
        log(f"  setup: {label:<32} {seconds:8.2f} s")
    return Room(app, exam_code, codes, candidates, timings)


def _reset_postgres(engine) -> None:
    """A given PostgreSQL database is emptied first (the benchmark owns it): only one whose name
    starts with "bench", so a real database is never emptied by a mistyped URL."""
    if not (engine.url.database or "").startswith("bench"):
        raise SystemExit(f"refusing to empty database {engine.url.database!r}: give a throw-away database "
                         "whose name starts with 'bench' (e.g. createdb bench_load)")
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


def sitting_secrets(app, codes: list[str]) -> dict[str, str]:
    with app.app_context():
        return dict(get_session().execute(select(Sitting.code, Sitting.access_secret)
                                          .where(Sitting.code.in_(codes))).all())
