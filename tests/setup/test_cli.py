"""The exam, sitting and candidates commands through the CLI runner, and the demo."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from exam.core.db import utcnow
from exam.setup.models import Candidate, Exam, Paper, Sitting
from exam.setup.sittings import check_access_code
from tests.factories import EXAMPLE_TOML, load_demo_bank, roster_csv, roster_row

COMMANDS = (["exam", "create"], ["exam", "publish"], ["exam", "papers"], ["exam", "list"], ["exam", "spec"],
            ["sitting", "create"], ["sitting", "list"], ["sitting", "code"], ["candidates", "import"],
            ["candidates", "list"], ["candidates", "seat"])


@pytest.fixture
def bank(db):
    load_demo_bank(db)
    db.commit()


def ok(result):
    assert result.exit_code == 0, result.output
    return result.output


def create_example(runner, *extra):
    return runner.invoke(args=["exam", "create", str(EXAMPLE_TOML), *extra])


def test_every_command_has_help(runner):
    for command in COMMANDS:
        output = ok(runner.invoke(args=[*command, "--help"]))
        assert "Usage:" in output, command


def test_exam_create_publish_and_list(runner, db, bank):
    assert "would have 3 sections, 120 questions" in ok(create_example(runner, "--dry-run"))
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Exam)) == 0
    assert "created exam R1-2026 (draft): 3 sections, 120 questions, 120 minutes" in ok(create_example(runner))
    assert ok(runner.invoke(args=["exam", "list"])) == "R1-2026\tdraft\tThi tuyển công chức năm 2026 — Vòng 1\n"
    assert "published R1-2026" in ok(runner.invoke(args=["exam", "publish", "R1-2026"]))
    assert ok(runner.invoke(args=["exam", "list"])).startswith("R1-2026\tpublished\t")
    again = runner.invoke(args=["exam", "publish", "R1-2026"])
    assert again.exit_code == 1 and "already published" in again.output
    taken = create_example(runner)
    assert taken.exit_code == 1 and "code: an exam with code 'R1-2026' already exists" in taken.output
    spec = ok(runner.invoke(args=["exam", "spec", "R1-2026"]))
    assert spec.startswith('code = "R1-2026"') and "[[sections]]" in spec


def test_exam_create_reports_every_problem_with_its_key(runner, db, bank, tmp_path):
    text = EXAMPLE_TOML.read_text(encoding="utf-8")
    text = text.replace("minutes = 60", "minutes = 0", 1)
    text = text.replace('"Tin học > Bảng tính (Excel)", difficulty = "easy", count = 3',
                        '"Tin học > Bảng tính", difficulty = "easy", count = 3')
    text = text.replace('"Tiếng Anh > Đọc hiểu", difficulty = "hard", count = 2',
                        '"Tiếng Anh > Đọc hiểu", difficulty = "hard", count = 2, weight = 1')
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["exam", "create", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith(str(path) + ": sections")]
    assert [line.split(": ")[1] for line in lines] == [
        "sections[0].minutes", "sections[1].blueprint[8].weight", "sections[2].blueprint[6].topic"]
    assert "did you mean 'Tin học > Bảng tính (Excel)'?" in result.output
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Exam)) == 0
    missing = runner.invoke(args=["exam", "publish", "NOPE"])
    assert missing.exit_code == 1 and "no exam with code 'NOPE'" in missing.output


def test_sittings_codes_candidates_seats_and_papers(runner, db, bank, tmp_path):
    ok(create_example(runner))
    ok(runner.invoke(args=["exam", "publish", "R1-2026"]))
    output = ok(runner.invoke(args=["sitting", "create", "R1-2026", "--code", "CA1", "--room", "Phòng máy 1",
                                    "--start", "2030-12-01 08:00", "--seats", "3"]))
    assert "01/12/2030 08:00 to 01/12/2030 10:15" in output  # exam 120 min + 15 min late entry
    db.rollback()
    sitting = db.scalar(select(Sitting))
    assert sitting.starts_at == datetime(2030, 12, 1, 1, 0, tzinfo=UTC)  # Vietnam is UTC+7
    ok(runner.invoke(args=["sitting", "create", "R1-2026", "--code", "CA2", "--room", "Phòng máy 2",
                           "--start", "2030-12-01 13:30", "--end", "2030-12-01 16:00", "--seats", "40"]))
    assert ok(runner.invoke(args=["sitting", "list", "R1-2026"])).splitlines() == [
        "CA1\tPhòng máy 1\t2030-12-01 08:00\t2030-12-01 10:15\t3\t0",
        "CA2\tPhòng máy 2\t2030-12-01 13:30\t2030-12-01 16:00\t40\t0"]
    short = runner.invoke(args=["sitting", "create", "R1-2026", "--code", "CA3", "--room", "P", "--start",
                                "2030-12-02 08:00", "--minutes", "60", "--seats", "0"])
    assert short.exit_code == 1
    assert "seats: must be a whole number from 1 to 2000" in short.output
    assert "ends_at: the sitting lasts 60 minutes but the exam takes 120" in short.output
    bad_time = runner.invoke(args=["sitting", "create", "R1-2026", "--code", "CA3", "--room", "P", "--start",
                                   "tomorrow", "--seats", "3"])
    assert bad_time.exit_code == 2 and "2026-12-01 08:00" in bad_time.output

    code = ok(runner.invoke(args=["sitting", "code", "CA1"])).strip()
    assert re.fullmatch(r"\d{6}", code)
    assert check_access_code(sitting, code, utcnow())
    verbose = ok(runner.invoke(args=["sitting", "code", "CA1", "--verbose"])).splitlines()
    assert re.fullmatch(r"\d{6}", verbose[0]) and re.fullmatch(r"changes in \d+ s", verbose[1])
    assert runner.invoke(args=["sitting", "code", "NOPE"]).exit_code == 1

    roster = tmp_path / "ds.csv"
    roster.write_bytes(roster_csv(roster_row(3), roster_row(1, full_name="Trần Thị Lan", date_of_birth="05/09/1994"),
                                  roster_row(2)))
    assert "dry run: 3 candidates would be imported" in ok(
        runner.invoke(args=["candidates", "import", "R1-2026", str(roster), "--dry-run"]))
    assert "imported 3 candidates into R1-2026" in ok(runner.invoke(args=["candidates", "import", "R1-2026",
                                                                           str(roster)]))
    again = runner.invoke(args=["candidates", "import", "R1-2026", str(roster)])
    assert again.exit_code == 1
    assert f"{roster}: row 2, registration_no: TS0003 is already a candidate of exam R1-2026" in again.output

    assert "3 candidates seated now, 3 of 3 seats taken" in ok(
        runner.invoke(args=["candidates", "seat", "R1-2026", "--sitting", "CA1"]))
    listed = ok(runner.invoke(args=["candidates", "list", "R1-2026"]))
    rows = list(csv.reader(io.StringIO(listed)))
    assert rows[0] == ["registration_no", "date_of_birth", "full_name", "seat"]
    assert rows[1] == ["TS0001", "1994-09-05", "Trần Thị Lan", "1"]
    assert [r[0] for r in rows[1:]] == ["TS0001", "TS0002", "TS0003"] and [r[3] for r in rows[1:]] == ["1", "2", "3"]
    assert ok(runner.invoke(args=["candidates", "list", "R1-2026", "--sitting", "CA2"])).splitlines() == [
        "registration_no,date_of_birth,full_name,seat"]

    output = ok(runner.invoke(args=["exam", "papers", "R1-2026"]))
    assert re.fullmatch(r"papers of R1-2026: 3 created, 0 checked in \d+\.\d\d s\n", output)
    assert "0 created, 3 checked" in ok(runner.invoke(args=["exam", "papers", "R1-2026"]))


def test_demo_loads_the_example_exam_ready_to_sit_and_runs_twice(runner, db):
    first = ok(runner.invoke(args=["demo"]))
    assert "demo exam: R1-2026 published" in first
    assert "demo candidates: 30 imported" in first and "demo papers: 30 created" in first
    assert "/thi/" in first and "flask --app wsgi sitting code R1-CA1" in first
    pairs = re.findall(r"SBD (\S+), ngày sinh \d\d/\d\d/\d{4} \((\d{4}-\d\d-\d\d)\)", first)
    assert len(pairs) == 3
    second = ok(runner.invoke(args=["demo"]))
    assert "already exists (published)" in second and "demo papers: 0 created, 30 checked" in second
    db.rollback()
    sitting = db.scalar(select(Sitting).where(Sitting.code == "R1-CA1"))
    now = utcnow()
    assert sitting.starts_at < now < sitting.ends_at and sitting.room == "Phòng máy 1" and sitting.seats == 40
    exam = db.scalar(select(Exam).where(Exam.code == "R1-2026"))  # the demo's finished exam is R1-2025
    assert exam.status == "published" and (sitting.ends_at - sitting.starts_at).total_seconds() == (120 + 35) * 60
    candidates = db.scalars(select(Candidate).where(Candidate.exam_id == exam.id)).all()
    assert len(candidates) == 30 and all(c.sitting_id == sitting.id and c.seat for c in candidates)
    assert {c.post for c in candidates} == {"Chuyên viên pháp chế", "Chuyên viên công nghệ thông tin"}
    assert all(len(c.citizen_id) == 12 for c in candidates)
    assert db.scalar(select(func.count()).select_from(Paper).where(Paper.exam_id == exam.id)) == 30
    registration_no, dob = pairs[0]
    candidate = next(c for c in candidates if c.registration_no == registration_no)
    assert candidate.date_of_birth.isoformat() == dob
