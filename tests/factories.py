"""Factories for exams, sittings and candidates, built through the same rules the app uses."""
from __future__ import annotations

import csv
import dataclasses
import io
import secrets
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from exam.core.db import utcnow
from exam.setup.exams import create_exam, publish_exam
from exam.setup.models import BlueprintCell, Candidate, Exam, ExamSection, Sitting
from exam.setup.papers import generate_papers
from exam.setup.sittings import new_access_secret
from exam.setup.spec import spec_from_toml
from question_bank.bank import topic_by_path
from question_bank.importer import import_file
from question_bank.models import Question

DEMO_BANK = Path(__file__).resolve().parent.parent / "question_bank" / "demo" / "demo_bank.json"

# The round-1 example of the issue, scaled down by default so tests stay fast.
EXAMPLE_SECTIONS = (
    ("general", "Kiến thức chung", 60, [("Kiến thức chung", "easy", 24), ("Kiến thức chung", "medium", 24),
                                        ("Kiến thức chung", "hard", 12)]),
    ("language", "Ngoại ngữ", 30, [("Tiếng Anh", "easy", 12), ("Tiếng Anh", "medium", 12), ("Tiếng Anh", "hard", 6)]),
    ("informatics", "Tin học", 30, [("Tin học", "easy", 12), ("Tin học", "medium", 12), ("Tin học", "hard", 6)]),
)
SMALL_SECTIONS = (
    ("general", "Kiến thức chung", 10, [("Kiến thức chung", "easy", 3), ("Kiến thức chung", "medium", 2)]),
    ("language", "Ngoại ngữ", 5, [("Tiếng Anh", "easy", 2), ("Tiếng Anh", "hard", 1)]),
)


def load_demo_bank(db) -> None:
    report = import_file(db, DEMO_BANK.name, DEMO_BANK.read_bytes(), actor="test", now=utcnow())
    assert not report.errors, report.errors[:3]
    db.flush()


def make_exam(db, *, code: str | None = None, sections=SMALL_SECTIONS, forms: int = 0, publish: bool = True,
              show_score: bool = True, negative_fraction: float = 0.0, multiple_scoring: str = "all_or_nothing",
              now: datetime | None = None) -> Exam:
    """A draft (or published) exam over the demo bank, which is loaded if the bank is empty."""

    now = now or utcnow()
    if db.scalar(select(Question.id).limit(1)) is None:
        load_demo_bank(db)
    exam = Exam(code=code or f"T{secrets.token_hex(3).upper()}", title="Thi tuyển công chức vòng 1 (thử)",
                seed=secrets.token_hex(32), show_score=show_score, forms=forms, spec={}, created_at=now,
                created_by="test")
    for position, (section_code, title, minutes, cells) in enumerate(sections, start=1):
        section = ExamSection(position=position, code=section_code, title=title, minutes=minutes,
                              question_count=sum(c[2] for c in cells), negative_fraction=negative_fraction,
                              multiple_scoring=multiple_scoring)
        for topic_path, difficulty, count in cells:
            section.cells.append(BlueprintCell(topic=topic_by_path(db, topic_path), difficulty=difficulty,
                                               count=count))
        exam.sections.append(section)
    db.add(exam)
    db.flush()
    if publish:
        publish_exam(db, exam, actor="test", now=now)
    return exam


def make_sitting(db, exam: Exam, *, starts_at: datetime | None = None, minutes: int | None = None,
                 seats: int = 40, code: str | None = None, room: str = "P.101", opened: bool = True) -> Sitting:
    """A sitting; ``opened`` (default): the proctor opened it at its start, so candidates may start."""
    starts_at = starts_at or utcnow() - timedelta(minutes=1)
    minutes = minutes if minutes is not None else exam.total_minutes + 15
    sitting = Sitting(exam_id=exam.id, code=code or f"CA-{secrets.token_hex(2).upper()}", room=room,
                      starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes), seats=seats,
                      access_secret=new_access_secret(), created_at=utcnow(),
                      opened_at=starts_at if opened else None)
    db.add(sitting)
    db.flush()
    return sitting


def make_candidates(db, exam: Exam, n: int, *, sitting: Sitting | None = None, posts=("Chuyên viên",),
                    priorities=("",)) -> list[Candidate]:
    candidates = []
    for i in range(1, n + 1):
        candidates.append(Candidate(
            exam_id=exam.id, registration_no=f"{exam.code}-{i:04d}", full_name=f"Nguyễn Văn Thí Sinh {i}",
            date_of_birth=date(1990, 1, 1) + timedelta(days=37 * i), citizen_id=f"{31000000000 + i:012d}",
            post=posts[i % len(posts)], priority_category=priorities[i % len(priorities)],
            sitting_id=sitting.id if sitting else None, seat=i if sitting else None, created_at=utcnow()))
    db.add_all(candidates)
    db.flush()
    return candidates


def make_ready_candidates(db, n: int = 2, *, sections=SMALL_SECTIONS, starts_at: datetime | None = None,
                          minutes: int | None = None, room: str = "P.101", exam: Exam | None = None,
                          sitting: Sitting | None = None, **exam_options) -> list[Candidate]:
    """Candidates seated in a sitting (open since a minute ago by default) with their papers drawn."""

    exam = exam or make_exam(db, sections=sections, **exam_options)
    sitting = sitting or make_sitting(db, exam, starts_at=starts_at, minutes=minutes, room=room)
    already = db.scalar(select(func.count()).select_from(Candidate).where(Candidate.exam_id == exam.id))
    candidates = []
    for i in range(already + 1, already + n + 1):
        candidates.append(Candidate(
            exam_id=exam.id, registration_no=f"{exam.code}-{i:04d}", full_name=f"Trần Thị Dự Thi {i}",
            date_of_birth=date(1992, 3, 1) + timedelta(days=41 * i), citizen_id=f"{32000000000 + i:012d}",
            post="Chuyên viên", sitting_id=sitting.id, seat=i, created_at=utcnow()))
    db.add_all(candidates)
    db.flush()
    generate_papers(db, exam, actor="test", now=utcnow())
    return candidates


def make_ready_candidate(db, **options) -> Candidate:
    """One candidate with a sitting and a paper (see make_ready_candidates)."""
    return make_ready_candidates(db, 1, **options)[0]


# --- exam specifications and rosters (exam/setup/spec.py, exam/setup/roster.py) -------------------

EXAMPLE_TOML = Path(__file__).resolve().parent.parent / "examples" / "round1.toml"
GIVEN_NAMES = ("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Lan", "Minh", "Nga", "Phúc", "Quân", "Sơn", "Trang",
               "Uyên", "Vy")
ROSTER_HEADER = ("registration_no", "full_name", "date_of_birth", "citizen_id", "post", "priority_category",
                 "sitting", "seat")


def example_spec(**changes):
    """The round-1 example spec (examples/round1.toml), with top-level fields replaced."""

    spec, errors = spec_from_toml(EXAMPLE_TOML.read_text(encoding="utf-8"))
    assert not errors, errors
    return dataclasses.replace(spec, **changes) if changes else spec


def make_exam_from_spec(db, spec=None, *, publish: bool = False, now: datetime | None = None) -> Exam:
    """An exam created through exams.create_exam over the demo bank (loaded if the bank is empty)."""

    now = now or utcnow()
    if db.scalar(select(Question.id).limit(1)) is None:
        load_demo_bank(db)
    exam = create_exam(db, spec or example_spec(), "test", now)
    if publish:
        publish_exam(db, exam, actor="test", now=now)
    return exam


def roster_csv(*rows, header=ROSTER_HEADER, delimiter: str = ",") -> bytes:
    """A roster CSV (UTF-8 with BOM, as Excel writes it); rows are tuples in the header's order."""

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def roster_row(i: int, **changes) -> tuple:
    """A valid roster row (registration number TS0001...), with fields replaced by name."""
    values = {"registration_no": f"TS{i:04d}", "full_name": f"Nguyễn Văn {GIVEN_NAMES[i % len(GIVEN_NAMES)]}",
              "date_of_birth": f"{1 + i % 28:02d}/0{1 + i % 9}/199{i % 10}", "citizen_id": f"{1190000000 + i:012d}",
              "post": "Chuyên viên pháp chế", "priority_category": "", "sitting": "", "seat": ""}
    values.update(changes)
    return tuple(values[name] for name in ROSTER_HEADER)
