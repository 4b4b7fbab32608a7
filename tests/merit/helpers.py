"""The civil-service example for the merit-list tests: the round-1 exam of examples/round1.toml with a
[ranking] table, two posts, candidates who sit it (answers written as the room stores them, submitted
by the room's ``finish``), graded by ``results.grade_exam``, with round-2 scores imported."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from exam.grading import corrections
from exam.grading import runs as results
from exam.merit import outside_scores
from exam.room import attempts, sessions
from exam.room.models import Attempt, CandidateSession, Response
from exam.setup.models import Candidate, Exam, Paper, PaperItem
from exam.setup.papers import generate_papers
from exam.setup.spec import read_spec_toml
from question_bank.models import QuestionVersion
from tests.factories import EXAMPLE_TOML, make_exam_from_spec, make_sitting

T0 = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
LAW = "Chuyên viên pháp chế"
ACCOUNTS = "Kế toán viên"
RANKING = f"""
[ranking]
preset = "civil_service"

[ranking.quota]
"{LAW}" = 2
"{ACCOUNTS}" = 1
"""

# registration no, name, post, priority, round 2 ("vắng": absent; None: not in the file), sits round 1
PEOPLE = (
    ("TS01", "Nguyễn Thị Ánh", LAW, "", "80", True),
    ("TS02", "Trần Văn Đức", LAW, "", "80", True),
    ("TS03", "Lê Hoàng Yến", LAW, "Hoàn thành nghĩa vụ quân sự", "70", True),
    ("TS04", "Phạm Quốc Việt", LAW, "", "90", True),  # fails Tin học by one question, until the key is corrected
    ("TS05", "Đỗ Thị Hường", LAW, "", None, False),  # did not sit round 1
    ("TS06", "Vũ Minh Châu", ACCOUNTS, "Con thương binh", "75", True),
    ("TS07", "Bùi Thị Ngọc Lưu", ACCOUNTS, "", "78", True),
    ("TS08", "Hồ Văn Sỹ", ACCOUNTS, "", "vắng", True),
)
FAILING = "TS04"


def spec_toml(extra: str = RANKING) -> str:
    return EXAMPLE_TOML.read_text(encoding="utf-8") + extra


@dataclass
class Round:
    exam: Exam
    candidates: dict[str, Candidate]
    attempts: dict[str, Attempt] = field(default_factory=dict)
    question: int = 0  # the informatics question TS04 answered "wrong" (version id)
    their_option: int = 0  # the option TS04 chose on it (author's order)


def make_round(db, *, code: str | None = None) -> Round:
    """The exam created from the example TOML with its [ranking] table, published, sat and graded."""
    reading = read_spec_toml(spec_toml())
    assert not reading.errors, reading.errors
    import dataclasses

    spec = dataclasses.replace(reading.spec, code=code or f"R1-{secrets.token_hex(2).upper()}")
    exam = make_exam_from_spec(db, spec, publish=True, now=T0 - timedelta(days=5))
    sitting = make_sitting(db, exam, starts_at=T0, minutes=exam.total_minutes + 30)
    candidates = {}
    for seat, (reg, name, post, priority, _, _) in enumerate(PEOPLE, start=1):
        candidates[reg] = Candidate(exam_id=exam.id, registration_no=reg, full_name=name,
                                    date_of_birth=date(1995, 1, seat), citizen_id=f"{1195000000 + seat:012d}",
                                    post=post, priority_category=priority, sitting_id=sitting.id, seat=seat,
                                    created_at=T0 - timedelta(days=3))
    db.add_all(candidates.values())
    db.flush()
    generate_papers(db, exam, actor="test", now=T0 - timedelta(days=1))
    found = Round(exam, candidates)
    sit(db, found, [candidates[p[0]] for p in PEOPLE if p[5]])
    results.grade_exam(db, exam, actor="hoidong", now=T0 + timedelta(days=1))
    report = outside_scores.import_scores(db, exam, "vong2.csv", round2_csv(), actor="hoidong",
                                          now=T0 + timedelta(days=10))
    assert report.ok, report.errors
    db.flush()
    return found


def round2_csv(scores: dict[str, str] | None = None) -> bytes:
    rows = scores or {p[0]: p[4] for p in PEOPLE if p[4] is not None}
    lines = ["SBD;Họ và tên;Điểm vòng 2"]
    names = {p[0]: p[1] for p in PEOPLE}
    lines += [f"{reg};{names.get(reg, '')};{value}" for reg, value in rows.items()]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def sit(db, found: Round, candidates: list[Candidate], *, now: datetime = T0) -> None:
    """Everyone answers every question right, except TS04 in Tin học: 14 of 30 right, and on the first
    single-answer question of that section the first wrong option (the one a corrected key will accept)."""
    informatics = next(s for s in found.exam.sections if s.code == "informatics")
    done = []
    for candidate in candidates:
        paper = db.scalar(select(Paper).where(Paper.candidate_id == candidate.id))
        attempt = sessions.ensure_attempt(db, candidate, paper)
        attempt.status, attempt.started_at, attempt.deadline = "in_progress", now, now + timedelta(hours=3)
        items = list(db.scalars(select(PaperItem).where(PaperItem.paper_id == paper.id).order_by(PaperItem.position)))
        versions = {v.id: v for v in db.scalars(select(QuestionVersion).where(
            QuestionVersion.id.in_({i.question_version_id for i in items})))}
        right_left = 14
        for seq, item in enumerate(items, start=1):
            version = versions[item.question_version_id]
            correct = [j for j, option in enumerate(version.options) if option["correct"]]
            picks = correct
            if candidate.registration_no == FAILING and item.section_id == informatics.id:
                wrong = [j for j in range(len(version.options)) if j not in correct]
                if not found.question and version.qtype == "single":
                    found.question, found.their_option = version.id, wrong[0]
                    picks = [wrong[0]]
                elif right_left:
                    right_left -= 1
                else:
                    picks = wrong[:1]
            ids = [item.option_ids[item.option_order.index(j)] for j in picks]
            db.add(Response(attempt_id=attempt.id, item_id=item.id, choices=ids, flagged=False, seq=seq,
                            saved_at=now))
        db.flush()
        done.append(attempt)
        found.attempts[candidate.registration_no] = attempt
    attempts.finish(db, done, by="candidate", actor="", now=now + timedelta(minutes=100))


def correct_the_key(db, found: Round, *, now: datetime = T0 + timedelta(days=2)):
    """The board rekeys TS04's question to the option TS04 chose: proposed by one member, approved by another."""
    correction = corrections.propose_correction(db, found.exam, found.question, "rekey", [found.their_option],
                                                "Đáp án công bố sai: theo Luật sửa đổi, phương án này mới đúng.",
                                                "hoidong", now)
    corrections.approve_correction(db, correction, actor="hoidong2", now=now + timedelta(hours=1))
    db.flush()
    return correction


def candidate_token(db, candidate: Candidate, *, now: datetime = T0) -> str:
    """A live lab session for the candidate (what POST /login gives), without the sitting's access code."""
    token = secrets.token_urlsafe(32)
    db.add(CandidateSession(candidate_id=candidate.id, token_hash=sessions.hash_token(token), created_at=now,
                            machine="10.0.0.9 test"))
    db.flush()
    return token

