"""``flask bank import / export / stats`` through the CLI runner."""
from __future__ import annotations

from sqlalchemy import func, select

from exam.audit.models import AuditEntry
from exam.core.db import get_session
from question_bank import browsing
from question_bank.models import Question
from tests.question_bank.test_importer import DEMO_BANK, GOOD_ROWS, csv_file, fields_of


def questions_in(db) -> int:
    db.rollback()  # see what the command committed
    return db.scalar(select(func.count()).select_from(Question))


def test_import_prints_the_table_and_writes(runner, db, tmp_path):
    path = tmp_path / "cau-hoi.csv"
    path.write_bytes(csv_file(*GOOD_ROWS))
    dry = runner.invoke(args=["bank", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Tin học > Excel" in dry.output and "would be imported" in dry.output and questions_in(db) == 0
    result = runner.invoke(args=["bank", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 3 questions" in result.output and questions_in(db) == 3
    assert "TOTAL" in result.output
    assert db.scalar(select(AuditEntry.actor).where(AuditEntry.action == "bank.import")) == "cli"


def test_bad_file_exits_1_naming_every_error_and_writes_nothing(runner, db, tmp_path):
    path = tmp_path / "loi.csv"
    path.write_bytes(csv_file(GOOD_ROWS[0], "Tin học > Excel,rất khó,single,Câu?,A,B,,,A,,,,",
                              "Tin học > Excel,easy,single,Câu hai?,A,B,,,G,,,,"))
    result = runner.invoke(args=["bank", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}: row 3, difficulty: must be one of" in result.output
    assert f"{path}: row 4, correct:" in result.output
    assert "nothing imported" in result.output
    assert questions_in(db) == 0 and db.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_topic_option_and_near_duplicate_warnings(runner, db, tmp_path, make_question):
    make_question(text="Câu không chủ đề?")
    path = tmp_path / "a.csv"
    path.write_bytes(csv_file(",easy,single,Câu không chủ đề?,Có,Không,,,A,,,,"))
    result = runner.invoke(args=["bank", "import", str(path), "--topic", "Chung > Khác"])
    assert result.exit_code == 0, result.output
    assert "Chung > Khác" in result.output and "near-duplicate" in result.output


def test_export_then_import_into_a_fresh_bank_gives_the_same_bank(runner, db, tmp_path, fresh_app):
    assert runner.invoke(args=["bank", "import", str(DEMO_BANK)]).exit_code == 0
    originals = browsing.export_questions(db)
    for suffix in ("xlsx", "json", "csv"):
        target = tmp_path / f"ngan-hang.{suffix}"
        result = runner.invoke(args=["bank", "export", str(target)])
        assert result.exit_code == 0, result.output
        assert "exported 300 questions" in result.output
        other = fresh_app()
        result = other.test_cli_runner().invoke(args=["bank", "import", str(target)])
        assert result.exit_code == 0, (suffix, result.output)
        with other.app_context():

            again = browsing.export_questions(get_session())
        assert [fields_of(q) for q in again] == [fields_of(q) for q in originals], suffix
    assert runner.invoke(args=["bank", "export", str(tmp_path / "x.pdf")]).exit_code == 2


def test_stats_counts_per_topic_and_difficulty(runner, make_question):
    make_question(difficulty="hard")
    make_question(text="Câu khác?", topic="Tin học > Word")
    result = runner.invoke(args=["bank", "stats"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["topic", "easy", "medium", "hard", "total"]
    assert lines[1].split()[-4:] == ["0", "0", "1", "1"] and lines[1].startswith("Kiến thức chung > Hiến pháp 2013")
    assert lines[-1].split() == ["TOTAL", "1", "0", "1", "2"]


def test_every_bank_command_has_help(runner):
    for command in ("import", "export", "stats"):
        result = runner.invoke(args=["bank", command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 3
