"""``flask --app wsgi demo``: demo staff accounts, the demo bank and the round-1 example exam ready to sit.

Everything goes through the board's own paths: the bank import, ``exams.create_exam``
from examples/round1.toml, publication, ``sittings.create_sitting``, the roster
importer (a generated CSV of 30 candidates), seat assignment and paper generation.
Running it again skips what exists.
"""
from __future__ import annotations

import csv
import io
import random
import time
from datetime import date, timedelta
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from exam import accounts
from exam.cli import CLI_ACTOR, require_schema, transactional
from exam.db import utcnow

ROOT = Path(__file__).resolve().parent.parent
DEMO_BANK = ROOT / "question_bank" / "demo" / "demo_bank.json"
DEMO_SPEC = ROOT / "examples" / "round1.toml"
DEMO_SITTING = "R1-CA1"
DEMO_ROOM = "Phòng máy 1"
DEMO_SEATS = 40
DEMO_CANDIDATES = 30
DEMO_STAFF = (
    # username, roles, full name
    ("hoidong", ("board",), "Nguyễn Văn Hội Đồng"),
    ("giamthi", ("proctor",), "Trần Thị Giám Thị"),
    ("thanhtra", ("auditor",), "Lê Văn Thanh Tra"),
)
DEMO_PASSWORD = "demo-{username}-2026"  # demo only: printed, and a board must replace these accounts


@click.command("demo")
@with_appcontext
@transactional
def demo(db_session):
    """Load demo staff, the demo bank and the example exam with a sitting open now.

    Run init-db first; safe to run twice (what exists is kept).
    """
    from question_bank.importer import import_file
    from question_bank.models import Question

    require_schema()
    now = utcnow()
    created, existing = [], []
    for username, roles, full_name in DEMO_STAFF:
        user = db_session.scalar(select(accounts.User).where(accounts.User.username == username))
        if user is None:
            password = DEMO_PASSWORD.format(username=username)
            user = accounts.create_user(db_session, username, password, roles, full_name=full_name,
                                        actor=CLI_ACTOR, now=now)
            created.append((user, password))
        else:
            existing.append(user)
    if not db_session.scalar(select(func.count()).select_from(Question)):
        report = import_file(db_session, DEMO_BANK.name, DEMO_BANK.read_bytes(), actor=CLI_ACTOR, now=now)
        if report.errors:
            raise ValueError("the demo bank did not import: " + "; ".join(map(str, report.errors[:5])))
        click.echo(f"demo bank: {report.added} questions imported")
    else:
        click.echo("demo bank: the bank already holds questions, nothing imported")
    for user in existing:
        click.echo(f"staff: {user.username} already exists ({', '.join(sorted(user.role_set))}); "
                   f"its password is the one printed when it was created")
    for user, password in created:
        click.echo(f"staff: {user.username} / {password}  ({', '.join(sorted(user.role_set))})")
        if user.needs_2fa:
            click.echo(f"       two-factor: the first login shows a QR code; or add this key to an "
                       f"authenticator app: {user.totp_secret}")
    load_demo_exam(db_session, now)


def load_demo_exam(db_session, now) -> None:
    """The round-1 example: created, published, a sitting open now, 30 candidates seated, papers drawn."""
    from exam import exams, roster, sittings
    from exam.exam_spec import spec_from_toml
    from exam.papers import generate_papers

    spec, errors = spec_from_toml(DEMO_SPEC.read_bytes())
    if spec is None:
        raise ValueError(f"{DEMO_SPEC.name}: " + "; ".join(map(str, errors)))
    exam = exams.exam_by_code(db_session, spec.code)
    if exam is None:
        problems = exams.check_spec(db_session, spec)
        if problems:
            click.echo(f"demo exam: skipped, the bank cannot hold {DEMO_SPEC.name}: "
                       + "; ".join(map(str, problems[:3])))
            return
        exam = exams.create_exam(db_session, spec, CLI_ACTOR, now)
        click.echo(f"demo exam: {exam.code} created from examples/{DEMO_SPEC.name}")
    else:
        click.echo(f"demo exam: {exam.code} already exists ({exam.status})")
    if exam.status != "published":
        frozen = exams.publish_exam(db_session, exam, actor=CLI_ACTOR, now=now)
        click.echo(f"demo exam: {exam.code} published ({frozen} question versions frozen)")

    sitting = sittings.sitting_by_code(db_session, DEMO_SITTING)
    if sitting is None:
        starts_at = now - timedelta(minutes=5)
        sitting = sittings.create_sitting(
            db_session, exam, code=DEMO_SITTING, room=DEMO_ROOM, starts_at=starts_at,
            ends_at=now + timedelta(minutes=exam.total_minutes + 30), seats=DEMO_SEATS, actor=CLI_ACTOR, now=now)
        click.echo(f"demo sitting: {sitting.code} in {sitting.room}, {sittings.local_time(sitting.starts_at)} to "
                   f"{sittings.local_time(sitting.ends_at, '%H:%M')} (Asia/Ho_Chi_Minh), {sitting.seats} seats")
    elif sitting.ends_at <= now:
        click.echo(f"demo sitting: {sitting.code} ended at {sittings.local_time(sitting.ends_at)}; to sit the demo "
                   "again, start from a new database (remove instance/exam.sqlite3, then bin/demo)")

    if not roster.candidates_of(db_session, exam):
        report = roster.import_roster(db_session, exam, "demo-thi-sinh.csv", demo_roster_csv(), actor=CLI_ACTOR,
                                      now=now)
        if report.errors:
            raise ValueError("the demo roster did not import: " + "; ".join(map(str, report.errors[:5])))
        click.echo(f"demo candidates: {report.added} imported")
    run = sittings.assign_seats(db_session, exam, sitting, actor=CLI_ACTOR, now=now)
    if run.seated:
        click.echo(f"demo seats: {run.seated} candidates seated in {sitting.code}")
    started = time.perf_counter()
    papers = generate_papers(db_session, exam, actor=CLI_ACTOR, now=now)
    click.echo(f"demo papers: {papers.created} created, {papers.checked} checked in "
               f"{time.perf_counter() - started:.2f} s")

    listed = [c for c in roster.seat_list(db_session, sitting)][:3]
    click.echo("to sit the demo exam: open /thi/ on this server (e.g. http://127.0.0.1:8000/thi/) and sign in with")
    for candidate in listed:
        click.echo(f"  SBD {candidate.registration_no}, ngày sinh {candidate.date_of_birth:%d/%m/%Y} "
                   f"({candidate.date_of_birth.isoformat()})  — {candidate.full_name}, máy {candidate.seat}")
    click.echo(f"  and the sitting's access code, shown by: flask --app wsgi sitting code {sitting.code}")


FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
                "Ngô", "Dương", "Lý")
MIDDLE_NAMES = {"m": ("Văn", "Hữu", "Đức", "Quốc", "Minh", "Công", "Thành"),
                "f": ("Thị", "Ngọc", "Thu", "Thanh", "Mỹ", "Bảo", "Thị Thu")}
GIVEN_NAMES = {"m": ("An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phong", "Quân",
                     "Sơn", "Thắng", "Tuấn", "Việt"),
               "f": ("Anh", "Châu", "Giang", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai", "Ngân", "Nhung",
                     "Phương", "Quỳnh", "Thảo", "Trang", "Yến")}
PROVINCE_CODES = ("001", "031", "036", "038", "040", "046", "048", "079", "092", "094")  # Hà Nội ... Sóc Trăng
DEMO_POSTS = ("Chuyên viên pháp chế", "Chuyên viên công nghệ thông tin")


def demo_roster_csv(n: int = DEMO_CANDIDATES, seed: int = 2026) -> bytes:
    """A roster CSV of ``n`` made-up candidates with realistic Vietnamese names, dates and CCCD numbers."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("registration_no", "full_name", "date_of_birth", "citizen_id", "post", "priority_category"))
    used_names = set()
    for i in range(1, n + 1):
        sex = rng.choice("mf")
        while True:
            name = f"{rng.choice(FAMILY_NAMES)} {rng.choice(MIDDLE_NAMES[sex])} {rng.choice(GIVEN_NAMES[sex])}"
            if name not in used_names:
                used_names.add(name)
                break
        born = date(1986, 1, 1) + timedelta(days=rng.randrange(16 * 365))
        century = (0 if born.year < 2000 else 2) + (1 if sex == "f" else 0)
        citizen_id = f"{rng.choice(PROVINCE_CODES)}{century}{born.year % 100:02d}{rng.randrange(10**6):06d}"
        priority = rng.choices(("", "Con thương binh", "Dân tộc thiểu số"), weights=(8, 1, 1))[0]
        writer.writerow((f"TS{i:04d}", name, born.strftime("%d/%m/%Y"), citizen_id, DEMO_POSTS[i % 2], priority))
    return out.getvalue().encode("utf-8")
