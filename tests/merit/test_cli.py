"""The merit and scores commands: outside scores imported (dry run first), the list built from the grading
in memory and from the database alike, ties decided, published, exported, the rule printed."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from exam.core.db import get_session
from exam.grading import runs as results
from exam.merit.models import MeritList
from tests.merit.helpers import ACCOUNTS, LAW, T0, correct_the_key, make_round, round2_csv


def test_the_merit_and_scores_commands(app, runner, tmp_path):
    with app.app_context():
        db = get_session()
        found = make_round(db, code="R1-CLI")
        correct_the_key(db, found)
        results.grade_exam(db, found.exam, actor="hoidong", now=T0 + timedelta(days=4))
        db.commit()
    scores = tmp_path / "vong2.csv"
    scores.write_bytes(round2_csv({"TS07": "79"}))
    result = runner.invoke(args=["scores", "import", "R1-CLI", str(scores), "--dry-run"])
    assert result.exit_code == 0 and "would import 1 scores" in result.output, result.output
    result = runner.invoke(args=["scores", "import", "R1-CLI", str(scores)])
    assert result.exit_code == 0 and "imported 1 scores" in result.output, result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(round2_csv({"TS99": "79"}))
    result = runner.invoke(args=["scores", "import", "R1-CLI", str(bad)])
    assert result.exit_code != 0 and "TS99 is not a candidate" in result.output

    # Grading with --merit builds the draft from the scores in memory: the same list as a build from the database.
    result = runner.invoke(args=["exam", "grade", "R1-CLI", "--merit"])
    assert result.exit_code == 0 and "draft merit list" in result.output, result.output
    in_memory = result.output.split("draft merit list")[1].split("hash ")[1].split()[0]
    result = runner.invoke(args=["merit", "build", "R1-CLI"])
    assert result.exit_code == 0, result.output
    assert "tie at rank 2 for 1 place(s)" in result.output and "TS01, TS02" in result.output
    with app.app_context():
        assert get_session().scalar(select(MeritList.hash)) == in_memory
    result = runner.invoke(args=["merit", "publish", "R1-CLI"])
    assert result.exit_code != 0 and "await the board" in result.output
    result = runner.invoke(args=["merit", "decide", "R1-CLI", "--post", "chuyên viên pháp chế", "--selected", "TS01",
                                 "--selected", "TS02", "--reason", "Hội đồng chọn cả hai người."])
    assert result.exit_code != 0 and "2 selected for 1 place(s)" in result.output
    result = runner.invoke(args=["merit", "decide", "R1-CLI", "--post", "chuyên viên pháp chế", "--selected", "TS02",
                                 "--not-selected", "TS01", "--reason", "Biên bản họp Hội đồng số 12."])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["merit", "publish", "R1-CLI"])
    assert result.exit_code == 0 and "published; hash" in result.output, result.output
    for name in ("all.csv", "all.xlsx", "all.pdf"):
        out = tmp_path / name
        result = runner.invoke(args=["merit", "export", "R1-CLI", "--out", str(out)])
        assert result.exit_code == 0 and "published;" in result.output, result.output
        assert out.stat().st_size > 500
    out = tmp_path / "ke-toan.csv"
    result = runner.invoke(args=["merit", "export", "R1-CLI", "--post", ACCOUNTS, "--out", str(out)])
    assert result.exit_code == 0 and LAW not in out.read_text(encoding="utf-8-sig")
    result = runner.invoke(args=["merit", "export", "R1-CLI", "--out", str(tmp_path / "x.docx")])
    assert result.exit_code != 0 and "cannot export" in result.output
    result = runner.invoke(args=["merit", "ranking", "R1-CLI"])
    assert result.exit_code == 0 and 'preset = "civil_service"' in result.output
