"""A sat exam for the auditor's tests: candidates who logged in, answered (changing some answers),
moved on to the second section and submitted, through the exam room's own rules; optionally a
grading run's round-1 scores and a published merit list with a tie at the quota boundary. Also the
intruder's first step on the save history (dropping its append-only triggers), the export command
and the stand-alone verifier run in its own ``python -I`` process."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from exam.audit import chain as audit
from exam.grading.models import CandidateScore, GradingRun
from exam.grading.runs import section_results_of
from exam.merit import ranking as merit
from exam.merit.content import dump_merit_lists, merit_hash
from exam.merit.models import ExternalScore, MeritList
from exam.merit.rule import rule_from_dict
from exam.room import attempts, sessions
from exam.room.models import Attempt
from exam.setup.models import Candidate, PaperItem
from exam.setup.sittings import current_access_code
from question_bank.models import QuestionVersion
from tests.factories import make_ready_candidates

T0 = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
MACHINE = "10.1.1.21 Mozilla/5.0 (Windows NT 10.0)"
POST = "Chuyên viên"
VERIFIER = Path(__file__).resolve().parents[2] / "tools" / "verify_bundle.py"


@dataclass
class SatExam:
    exam: object
    candidates: list
    attempts: list = field(default_factory=list)
    keys: dict = field(default_factory=dict)  # attempt id → [(item, right ids, wrong ids, qtype)]


def paper_items(db, attempt):
    found = []
    for item in db.scalars(select(PaperItem).where(PaperItem.paper_id == attempt.paper_id)
                           .order_by(PaperItem.position)):
        version = db.get(QuestionVersion, item.question_version_id)
        right = [oid for oid, o in zip(item.option_ids, item.option_order, strict=True)
                 if version.options[o]["correct"]]
        found.append((item, right, [oid for oid in item.option_ids if oid not in right], version.qtype))
    return found


def sit(db, n: int = 4, *, fail_last: bool = True, **exam_options) -> SatExam:
    """n candidates sit the small exam: candidate i gets question k right unless (k + i) % 3 == 0,
    answers every question, first saves a wrong choice on question 1 and then corrects it; the last
    candidate (fail_last) answers everything wrong and fails."""
    candidates = make_ready_candidates(db, n, starts_at=T0, **exam_options)
    db.commit()
    sat = SatExam(candidates[0].exam, candidates)
    sections = attempts.exam_sections(db, sat.exam.id)
    for i, candidate in enumerate(candidates):
        now = T0 + timedelta(minutes=1, seconds=i)
        result = sessions.login(db, registration_no=candidate.registration_no,
                                date_of_birth=candidate.date_of_birth,
                                access_code=current_access_code(candidate.sitting, now), machine=MACHINE, now=now)
        attempt = result.attempt
        attempts.start(db, attempt, candidate.sitting, sections, now=now)
        items = paper_items(db, attempt)
        sat.keys[attempt.id] = items
        seq = 0
        first_section = items[0][0].section_id
        for k, (item, right, wrong, _qtype) in enumerate(items, start=1):
            now += timedelta(seconds=20)
            if item.section_id != first_section and attempt.section_position == 1:
                attempts.next_section(db, attempt, sections, now=now)
            good = not (fail_last and i == n - 1) and (k + i) % 3 != 0
            choice = right if good else wrong[:1]
            if k == 1:
                seq += 1
                attempts.save_answer(db, attempt, sections, question_id=item.public_id, choices=wrong[:1], seq=seq,
                                     flagged=True, machine=MACHINE, now=now)
                now += timedelta(seconds=5)
            seq += 1
            attempts.save_answer(db, attempt, sections, question_id=item.public_id, choices=choice, seq=seq,
                                 flagged=False if k == 1 else None, machine=MACHINE, now=now)
        attempts.submit(db, attempt, sections, now=now + timedelta(seconds=30))
        db.commit()
        sat.attempts.append(attempt)
    return sat


def publish_results(db, sat: SatExam, round2: dict[int, float], *, quota: int = 2,
                    now: datetime = T0 + timedelta(days=7)) -> MeritList:
    """What the results issue will do, done by hand here: a grading run's round-1 scores (the scores
    of submission), outside round-2 scores, and a published civil-service merit list whose hash is in
    the audit chain. ``round2``: candidate index → score."""
    run = GradingRun(exam_id=sat.exam.id, at=now, by="hoidong", key_hash="k" * 64, inputs_hash="i" * 64,
                     outputs_hash="o" * 64, summary={})
    db.add(run)
    db.flush()
    results = []
    for i, (candidate, attempt) in enumerate(zip(sat.candidates, sat.attempts, strict=True)):
        db.refresh(attempt)
        db.add(CandidateScore(candidate_id=candidate.id, exam_id=sat.exam.id, grading_run_id=run.id,
                              total=attempt.score["total"], passed=attempt.score["passed"],
                              section_results=section_results_of(attempt.score)))
        components = {}
        if i in round2:
            db.add(ExternalScore(candidate_id=candidate.id, component="round2", exam_id=sat.exam.id, score=round2[i],
                                 imported_at=now, imported_by="hoidong", source_sha256="s" * 64))
            components["round2"] = round2[i]
        sections, total = merit.round1_from_score_record(attempt.score)
        results.append(merit.CandidateResult(
            candidate.registration_no, candidate.full_name, candidate.date_of_birth, candidate.post,
            candidate.priority_category, sections, total, components))
    rule, errors = rule_from_dict({"preset": "civil_service", "quota": {POST: quota}})
    assert not errors, errors
    lists = merit.build_merit_lists(results, rule)
    content = dump_merit_lists(lists).decode("utf-8")
    digest = merit_hash(lists)
    merit_list = MeritList(exam_id=sat.exam.id, status="published", rule=rule.as_dict(), content=content,
                           hash=digest, grading_run_id=run.id, created_at=now, created_by="hoidong",
                           published_at=now, published_by="chutich")
    db.add(merit_list)
    audit.append(db, actor="chutich", action="merit.publish", object_type="exam", object_id=sat.exam.code,
                 details={"hash": digest}, now=now)
    db.commit()
    return merit_list


@pytest.fixture
def sat_exam(db):
    return sit(db)


@pytest.fixture
def results_exam(db):
    """Four candidates, the last failing round 1; round 2: 80, 70, 70 → a tie at the boundary of 2 places."""
    sat = sit(db)
    publish_results(db, sat, {0: 80.0, 1: 70.0, 2: 70.0, 3: 90.0})
    return sat


def attempt_of(db, candidate) -> Attempt:
    db.expire_all()
    return db.scalar(select(Attempt).where(Attempt.candidate_id == candidate.id))


def candidate_by_number(db, number) -> Candidate:
    return db.scalar(select(Candidate).where(Candidate.registration_no == number))


def drop_response_log_guard(db):
    """What an intruder does before editing the save history: remove its append-only triggers."""
    if db.bind.dialect.name == "sqlite":
        for verb in ("update", "delete"):
            db.execute(text(f"DROP TRIGGER response_log_no_{verb}"))
    else:
        db.execute(text("DROP TRIGGER response_log_append_only ON response_log"))
    db.commit()


def export(runner, exam, tmp_path, name="bundle.zip") -> Path:
    target = tmp_path / name
    result = runner.invoke(args=["audit", "export", exam.code, str(target)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return target


def verify(bundle: Path, *args: str, python_flags=("-I",)) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *python_flags, str(VERIFIER), str(bundle), *args], capture_output=True,
                          text=True, cwd=bundle.parent, timeout=120)
