"""``flask --app wsgi demo``: demo staff accounts, the demo bank and the round-1 example exam ready to sit.

Everything goes through the board's own paths: the bank import, ``exams.create_exam``
from examples/round1.toml, publication, ``sittings.create_sitting``, the roster
importer (a generated CSV of 30 candidates), seat assignment and paper generation.
Running it again skips what exists.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import random
import secrets
import time
from datetime import date, timedelta
from pathlib import Path

import click
import numpy as np
from flask.cli import with_appcontext
from sqlalchemy import func, select

from exam.accounts import staff as accounts
from exam.accounts.models import User
from exam.audit.chain import canonical_json
from exam.core.commands import CLI_ACTOR, require_schema, transactional
from exam.core.db import utcnow
from exam.core.errors import Refused
from exam.core.timeutil import iso_utc
from exam.grading import corrections, runs
from exam.grading.models import CandidateScore, KeyCorrection
from exam.merit import lists as merit_lists
from exam.merit import outside_scores
from exam.merit import rule as merit
from exam.merit.models import MeritList
from exam.room import attempts
from exam.room.history import GENESIS_HASH, log_hash
from exam.room.models import Attempt, Response, ResponseLog
from exam.setup import candidate_lists, exams, roster, sittings
from exam.setup.models import Candidate, ExamPool, Paper, PaperItem, Sitting
from exam.setup.papers import generate_papers
from exam.setup.spec import spec_from_toml
from proctor.room import mark_absent
from question_bank.importer import import_file
from question_bank.models import Question, QuestionVersion

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
    require_schema()
    now = utcnow()
    created, existing = [], []
    for username, roles, full_name in DEMO_STAFF:
        user = db_session.scalar(select(User).where(User.username == username))
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
            raise Refused("the demo bank did not import: " + "; ".join(map(str, report.errors[:5])))
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
    load_finished_exam(db_session, now)
    load_demo_exam(db_session, now)


def load_demo_exam(db_session, now) -> None:
    """The round-1 example: created, published, a sitting open now, 30 candidates seated, papers drawn."""
    spec, errors = spec_from_toml(DEMO_SPEC.read_bytes())
    if spec is None:
        raise Refused(f"{DEMO_SPEC.name}: " + "; ".join(map(str, errors)))
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

    if not candidate_lists.candidates_of(db_session, exam):
        report = roster.import_roster(db_session, exam, "demo-thi-sinh.csv", demo_roster_csv(), actor=CLI_ACTOR,
                                      now=now)
        if report.errors:
            raise Refused("the demo roster did not import: " + "; ".join(map(str, report.errors[:5])))
        click.echo(f"demo candidates: {report.added} imported")
    run = sittings.assign_seats(db_session, exam, sitting, actor=CLI_ACTOR, now=now)
    if run.seated:
        click.echo(f"demo seats: {run.seated} candidates seated in {sitting.code}")
    started = time.perf_counter()
    papers = generate_papers(db_session, exam, actor=CLI_ACTOR, now=now)
    click.echo(f"demo papers: {papers.created} created, {papers.checked} checked in "
               f"{time.perf_counter() - started:.2f} s")

    listed = [c for c in candidate_lists.seat_list(db_session, sitting)][:3]
    click.echo("to sit the demo exam: open /thi/ on this server (e.g. http://127.0.0.1:8000/thi/) and sign in with")
    for candidate in listed:
        click.echo(f"  SBD {candidate.registration_no}, ngày sinh {candidate.date_of_birth:%d/%m/%Y} "
                   f"({candidate.date_of_birth.isoformat()})  — {candidate.full_name}, máy {candidate.seat}")
    click.echo(f"  and the sitting's access code, shown by: flask --app wsgi sitting code {sitting.code}")
    click.echo(f"candidates can start once a proctor (giamthi) opens the sitting: /proctor/sittings/{sitting.code}, "
               "“Bắt đầu ca thi”")


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


def demo_roster_csv(n: int = DEMO_CANDIDATES, seed: int = 2026, *, prefix: str = "TS", sittings=(),
                    priorities=(("", 8), ("Con thương binh", 1), ("Dân tộc thiểu số", 1))) -> bytes:
    """A roster CSV of ``n`` made-up candidates with realistic Vietnamese names, dates and CCCD numbers
    (registration numbers ``prefix0001``…; with ``sittings``, spread over them in turn)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("registration_no", "full_name", "date_of_birth", "citizen_id", "post", "priority_category")
                    + (("sitting",) if sittings else ()))
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
        priority = rng.choices([p for p, _ in priorities], weights=[w for _, w in priorities])[0]
        writer.writerow((f"{prefix}{i:04d}", name, born.strftime("%d/%m/%Y"), citizen_id, DEMO_POSTS[i % 2], priority)
                        + ((sittings[(i - 1) * len(sittings) // n],) if sittings else ()))
    return out.getvalue().encode("utf-8")


# --- a finished exam: sat, graded, round-2 scores, a draft merit list (issue 4) ----------------------

FINISHED_CODE = "R1-2025"
FINISHED_TITLE = "Thi tuyển công chức năm 2025 — Vòng 1"
FINISHED_CANDIDATES = 300
FINISHED_PREFIX = "KT"
FINISHED_SITTINGS = (("R1-2025-CA1", "Phòng máy 1"), ("R1-2025-CA2", "Phòng máy 2"), ("R1-2025-CA3", "Phòng máy 3"))
FINISHED_QUOTA = {DEMO_POSTS[0]: 5, DEMO_POSTS[1]: 3}
FINISHED_PRIORITIES = (("", 80), ("Con thương binh", 5), ("Dân tộc thiểu số", 6), ("Hoàn thành nghĩa vụ quân sự", 6),
                       ("Thương binh", 1), ("Con liệt sĩ; Hoàn thành nghĩa vụ quân sự", 2))
FINISHED_SEED = 2025
LEVELS = {"easy": -1.4, "medium": -0.3, "hard": 0.9}  # item difficulty on the ability scale
GUESS = 0.25  # four options: a guess is right one time in four
BLANK_RATE = 0.02
ABSENT_ROUND1 = 8  # candidates who did not come to round 1
ABSENT_ROUND2 = 4  # who passed round 1 but missed round 2


def load_finished_exam(db_session, now) -> None:
    """A second exam, finished: 300 candidates sat it a month ago in three sittings (answers simulated with
    an ability model, submitted and graded through the room's and the grading's own functions), round-2
    scores imported with the outside-scores importer, two posts with quotas 5 and 3, a tie for the last
    place of the first post, a draft merit list, and a key correction awaiting a second board member."""
    exam = exams.exam_by_code(db_session, FINISHED_CODE)
    if exam is not None and db_session.scalar(select(MeritList.id).where(MeritList.exam_id == exam.id).limit(1)):
        click.echo(f"finished exam: {FINISHED_CODE} already has its merit list (/board/merit/{FINISHED_CODE}/)")
        return
    started = time.perf_counter()
    day = now.replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=30)  # 08:00 in Hà Nội
    if exam is None:
        spec, errors = spec_from_toml(DEMO_SPEC.read_bytes())
        if spec is None:
            raise Refused(f"{DEMO_SPEC.name}: " + "; ".join(map(str, errors)))
        spec = dataclasses.replace(spec, code=FINISHED_CODE, title=FINISHED_TITLE,
                                   ranking={"preset": "civil_service", "quota": dict(FINISHED_QUOTA)})
        if exams.check_spec(db_session, spec):
            click.echo(f"finished exam: skipped, the bank cannot hold {DEMO_SPEC.name}")
            return
        exam = exams.create_exam(db_session, spec, CLI_ACTOR, day - timedelta(days=10))
        exams.publish_exam(db_session, exam, actor=CLI_ACTOR, now=day - timedelta(days=8))
    for k, (code, room) in enumerate(FINISHED_SITTINGS):
        if sittings.sitting_by_code(db_session, code) is None:
            starts_at = day + timedelta(hours=6 * k)
            sittings.create_sitting(db_session, exam, code=code, room=room, starts_at=starts_at,
                                    seats=FINISHED_CANDIDATES // len(FINISHED_SITTINGS) + 10, actor=CLI_ACTOR,
                                    now=day - timedelta(days=5))
    if not candidate_lists.candidates_of(db_session, exam):
        report = roster.import_roster(
            db_session, exam, "thi-sinh-2025.csv",
            demo_roster_csv(FINISHED_CANDIDATES, FINISHED_SEED, prefix=FINISHED_PREFIX,
                            sittings=[code for code, _ in FINISHED_SITTINGS], priorities=FINISHED_PRIORITIES),
            actor=CLI_ACTOR, now=day - timedelta(days=5))
        if report.errors:
            raise Refused("the finished exam's roster did not import: " + "; ".join(map(str, report.errors[:5])))
    for code, _ in FINISHED_SITTINGS:
        sittings.assign_seats(db_session, exam, sittings.sitting_by_code(db_session, code), actor=CLI_ACTOR,
                              now=day - timedelta(days=2))
    generate_papers(db_session, exam, actor=CLI_ACTOR, now=day - timedelta(days=1))
    sat, absent = simulate_round1(db_session, exam, day)
    graded_at = day + timedelta(days=1)
    outcome = runs.grade_exam(db_session, exam, actor="hoidong", now=graded_at)
    passed = sum(1 for ok in outcome.passed.values() if ok)
    scores = round2_scores_csv(db_session, exam)
    report = outside_scores.import_scores(db_session, exam, "diem-vong-2-2025.csv", scores, actor="hoidong",
                                          now=day + timedelta(days=20))
    if report.errors:
        raise Refused("the round-2 scores did not import: " + "; ".join(map(str, report.errors[:5])))
    record = merit_lists.build_merit_list(db_session, exam, "hoidong", now)
    propose_demo_correction(db_session, exam, day + timedelta(days=2))
    lists = merit_lists.lists_of(record)
    ties = [(post, tie) for post, ml in lists.items() for tie in ml.ties]
    click.echo(f"finished exam: {exam.code} sat by {sat} candidates ({absent} absent), {passed} passed every "
               f"section; {report.imported} round-2 scores; draft merit list built with {len(ties)} tie(s) for the "
               f"board ({time.perf_counter() - started:.1f} s): /board/merit/{exam.code}/")


def _ability_rng():
    return np.random.default_rng(FINISHED_SEED)


def simulate_round1(db_session, exam, day) -> tuple[int, int]:
    """Every candidate sits their paper (a few are marked absent by the proctor): each answer is right with the
    probability of a three-parameter logistic model (ability θ ~ N(0.1, 1), the question's difficulty by its
    level, a guess), written as the room stores it (the answer and its hash-chained save history), then the
    attempts are submitted by the room's ``finish`` (graded as at submission)."""
    rng = _ability_rng()
    candidates = list(db_session.scalars(select(Candidate).where(Candidate.exam_id == exam.id)
                                         .order_by(Candidate.registration_no)))
    if db_session.scalar(select(func.count()).select_from(Attempt).join(Candidate).where(
            Candidate.exam_id == exam.id, Attempt.status == "submitted")):
        return len(candidates), sum(1 for c in candidates if c.absent_at is not None)
    ability = rng.normal(0.1, 1.0, len(candidates))
    absent_at = set(rng.choice(len(candidates), ABSENT_ROUND1, replace=False).tolist())
    sitting_of = {s.id: s for s in db_session.scalars(select(Sitting).where(Sitting.exam_id == exam.id))}
    papers = {cid: pid for pid, cid in db_session.execute(select(Paper.id, Paper.candidate_id)
                                                          .where(Paper.exam_id == exam.id))}
    items: dict[int, list] = {}
    for row in db_session.execute(
            select(PaperItem.id, PaperItem.paper_id, PaperItem.question_version_id, PaperItem.option_order,
                   PaperItem.option_ids)
            .where(PaperItem.paper_id.in_(list(papers.values()))).order_by(PaperItem.paper_id, PaperItem.position)):
        items.setdefault(row.paper_id, []).append(row)
    versions = {v.id: (v.difficulty, [bool(o.get("correct")) for o in v.options]) for v in db_session.execute(
        select(QuestionVersion.id, QuestionVersion.difficulty, QuestionVersion.options).where(
            QuestionVersion.id.in_({row.question_version_id for rows in items.values() for row in rows})))}
    done: dict[int, list] = {}
    responses, history = [], []
    for index in sorted(absent_at):
        candidate = candidates[index]
        mark_absent(db_session, candidate, actor="giamthi", reason="Không có mặt khi vào phòng thi",
                    now=sitting_of[candidate.sitting_id].starts_at + timedelta(minutes=16))
    # The attempts as the first login creates them (sessions.ensure_attempt), made together: one flush.
    opened = {c.id: Attempt(public_id=secrets.token_hex(12), candidate_id=c.id, paper_id=papers[c.id],
                            status="not_started", section_position=1, extra_seconds=0, last_seq=0,
                            history_hash=GENESIS_HASH, history_count=0, machine="")
              for index, c in enumerate(candidates) if index not in absent_at}
    db_session.add_all(opened.values())
    db_session.flush()
    for index, candidate in enumerate(candidates):
        if index in absent_at:
            continue
        sitting = sitting_of[candidate.sitting_id]
        attempt = opened[candidate.id]
        paper_id = papers[candidate.id]
        begun = sitting.starts_at + timedelta(minutes=int(rng.integers(1, 10)))
        attempt.status, attempt.started_at, attempt.machine = "in_progress", begun, f"10.0.{index // 100}.{index % 100}"
        attempt.deadline = begun + timedelta(minutes=exam.total_minutes)
        attempt.section_position = len(exam.sections)
        head, seq = GENESIS_HASH, 0
        paper_items = items[paper_id]
        at_step = timedelta(seconds=exam.total_minutes * 60 / (len(paper_items) + 1))
        masks = bytearray(len(paper_items))  # the final choices as displayed, as submission keeps them
        draws = rng.random((len(paper_items), 4))
        for k, item in enumerate(paper_items):
            if draws[k, 0] < BLANK_RATE:
                continue
            difficulty, correct = versions[item.question_version_id]
            level = LEVELS.get(difficulty, 0.0) + 0.3 * (draws[k, 1] - 0.5)
            p_right = GUESS + (1 - GUESS) / (1 + math.exp(-1.7 * (ability[index] - level)))
            right = [j for j, original in enumerate(item.option_order) if correct[original]]
            if draws[k, 2] < p_right:
                picked = right
            else:
                wrong = [j for j in range(len(item.option_order)) if j not in right]
                picked = [wrong[int(draws[k, 3] * len(wrong))]] if wrong else []
            masks[k] = sum(1 << j for j in picked)
            choices = [item.option_ids[j] for j in sorted(picked)]
            seq += 1
            saved = begun + at_step * (k + 1)
            at = iso_utc(saved)
            digest = log_hash(attempt_public_id=attempt.public_id, seq=seq, item_id=item.id,
                              choices=choices, flagged=False, at=at, machine=attempt.machine, prev_hash=head)
            responses.append({"attempt_id": attempt.id, "item_id": item.id, "choices": choices, "flagged": False,
                              "seq": seq, "saved_at": saved})
            history.append({"attempt_id": attempt.id, "seq": seq, "item_id": item.id,
                            "choices": canonical_json(choices), "flagged": False, "at": at,
                            "machine": attempt.machine, "prev_hash": head, "hash": digest})
            head = digest
        attempt.history_hash, attempt.history_count, attempt.last_seq = head, seq, seq
        attempt.choice_masks = bytes(masks)
        done.setdefault(sitting.id, []).append(attempt)
    if responses:
        db_session.execute(Response.__table__.insert(), responses)  # core executemany: 70,000 rows at once
        db_session.execute(ResponseLog.__table__.insert(), history)
    db_session.flush()
    for group in done.values():
        end = max(a.deadline for a in group) - timedelta(minutes=5)
        attempts.finish(db_session, group, by="candidate", actor="", now=end)
    return sum(len(group) for group in done.values()), len(absent_at)


def round2_scores_csv(db_session, exam) -> bytes:
    """Round-2 scores (a written exam marked on paper, out of 100, in half points) for the candidates who passed
    round 1, some absent ("vắng"); arranged so that two candidates of the first post, with the same score and no
    priority, share the 5th and last place: a tie for the board."""
    rng = random.Random(FINISHED_SEED)
    rule, _ = merit.rule_from_dict(exam.ranking)
    rows = db_session.execute(select(Candidate.registration_no, Candidate.full_name, Candidate.post,
                                     Candidate.priority_category, CandidateScore.total)
                              .join(CandidateScore, CandidateScore.candidate_id == Candidate.id)
                              .where(Candidate.exam_id == exam.id, CandidateScore.passed.is_(True))
                              .order_by(Candidate.registration_no)).all()
    bonus = {row.registration_no: rule.bonus_for(row.priority_category or "")[0] for row in rows}
    absent = set(rng.sample([row.registration_no for row in rows], min(ABSENT_ROUND2, len(rows))))
    score: dict[str, float | None] = {}
    for row in rows:
        if row.registration_no in absent:
            score[row.registration_no] = None
            continue
        value = 38 + 0.35 * row.total + rng.gauss(0, 9)  # round 2 follows round 1, loosely
        score[row.registration_no] = max(20.0, min(88.0, round(value * 2) / 2))
    # The first post: four clear leaders, then two equal candidates without priority for the 5th place.
    first = [row.registration_no for row in rows if row.post == DEMO_POSTS[0] and score[row.registration_no]]
    plain = [reg for reg in first if not bonus[reg]]
    leaders = [reg for reg in first if reg not in plain[:2]][:4]
    for reg in first:  # everyone else below the tie
        if score[reg] + bonus[reg] > 88.5:
            score[reg] = 88.5 - bonus[reg]
    for reg, total in zip(leaders, (95.0, 93.5, 92.0, 90.5), strict=False):
        score[reg] = total - bonus[reg]
    for reg in plain[:2]:
        score[reg] = 89.5
    # The second post: no tie for its last place (nudge the next candidate down by half a point).
    second = [reg for reg in score if reg not in first and score[reg] is not None]
    while True:
        ranked = sorted((score[reg] + bonus[reg], score[reg], reg) for reg in second if score[reg] >= 50)[::-1]
        quota = FINISHED_QUOTA[DEMO_POSTS[1]]
        if len(ranked) <= quota or ranked[quota - 1][:2] != ranked[quota][:2]:
            break
        score[ranked[quota][2]] -= 0.5
    names = {row.registration_no: row.full_name for row in rows}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(("SBD", "Họ và tên", "Điểm vòng 2"))
    for reg, value in score.items():
        writer.writerow((reg, names[reg], "vắng" if value is None else f"{value:g}".replace(".", ",")))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def propose_demo_correction(db_session, exam, now) -> None:
    """A board member proposes voiding a question of the general-knowledge section (everyone gets its mark):
    it awaits a second board member, and the merit page previews whose rank it would change."""
    if db_session.scalar(select(KeyCorrection.id).where(KeyCorrection.exam_id == exam.id).limit(1)):
        return
    section = exam.sections[0]
    version = db_session.scalar(select(ExamPool.question_version_id).where(
        ExamPool.cell_id.in_([cell.id for cell in section.cells])).order_by(ExamPool.question_version_id).limit(1))
    corrections.propose_correction(db_session, exam, version, "void_award", None,
                                   "Câu hỏi có hai phương án cùng đúng theo văn bản mới (Luật sửa đổi 2025): đề nghị "
                                   "hủy câu, mọi thí sinh được điểm.", CLI_ACTOR, now)
