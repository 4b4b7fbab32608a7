"""Factories for exams, sittings and candidates, built through the same rules the app uses."""
from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from exam.db import utcnow
from exam.exams import publish_exam
from exam.models import BlueprintCell, Candidate, Exam, ExamSection, Sitting
from exam.sittings import new_access_secret

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
    from question_bank.importer import import_file

    report = import_file(db, DEMO_BANK.name, DEMO_BANK.read_bytes(), actor="test", now=utcnow())
    assert not report.errors, report.errors[:3]
    db.flush()


def make_exam(db, *, code: str | None = None, sections=SMALL_SECTIONS, forms: int = 0, publish: bool = True,
              show_score: bool = True, negative_fraction: float = 0.0, multiple_scoring: str = "all_or_nothing",
              now: datetime | None = None) -> Exam:
    """A draft (or published) exam over the demo bank, which is loaded if the bank is empty."""
    from question_bank.bank import topic_by_path
    from question_bank.models import Question

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
                 seats: int = 40, code: str | None = None, room: str = "P.101") -> Sitting:
    starts_at = starts_at or utcnow() - timedelta(minutes=1)
    minutes = minutes if minutes is not None else exam.total_minutes + 15
    sitting = Sitting(exam_id=exam.id, code=code or f"CA-{secrets.token_hex(2).upper()}", room=room,
                      starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes), seats=seats,
                      access_secret=new_access_secret(), created_at=utcnow())
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
