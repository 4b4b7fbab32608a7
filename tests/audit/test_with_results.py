"""The auditor's independent path against the real results path (``exam.grading.runs``, ``exam.merit.lists``):
key corrections approved by two people, the batch grading run, a merit list with the board's decision
on a tie, published. Re-tally and the stand-alone verifier must agree with all of it."""
from __future__ import annotations

from datetime import timedelta

from exam.grading import corrections
from exam.grading import runs as results
from exam.merit import lists as merit_lists
from exam.merit.models import ExternalScore
from tests.audit.conftest import POST, T0, export, sit, verify


def test_corrected_graded_ranked_and_published_exam_retallies_and_verifies(runner, db, tmp_path):
    sat = sit(db)
    exam, now = sat.exam, T0 + timedelta(days=2)
    first = sat.attempts[0]
    item, right, wrong, _ = sat.keys[first.id][0]
    rekey = corrections.propose_correction(db, exam, item.question_version_id, "rekey",
                                           [item.option_order[item.option_ids.index(wrong[0])]],
                                           "Đáp án gốc in nhầm phương án", "hoidong-a", now)
    corrections.approve_correction(db, rekey, actor="hoidong-b", now=now + timedelta(minutes=1))
    other = sat.keys[sat.attempts[1].id][-1][0]
    void = corrections.propose_correction(db, exam, other.question_version_id, "void_award", None,
                                          "Câu hỏi có hai cách hiểu", "hoidong-a", now)
    corrections.approve_correction(db, void, actor="hoidong-b", now=now + timedelta(minutes=2))
    results.grade_exam(db, exam, actor="hoidong", now=now + timedelta(minutes=3))
    for candidate, score in zip(sat.candidates, (80.0, 70.0, 70.0, 90.0), strict=True):
        db.add(ExternalScore(candidate_id=candidate.id, component="round2", exam_id=exam.id, score=score,
                             imported_at=now, imported_by="hoidong", source_sha256="s" * 64))
    merit_lists.set_ranking(db, exam, {"preset": "civil_service", "quota": {POST: 2}}, actor="hoidong",
                            now=now + timedelta(minutes=4))
    record = merit_lists.build_merit_list(db, exam, "hoidong", now + timedelta(minutes=5))
    decided = 0
    for post, merit_list in merit_lists.lists_of(record).items():
        for tie in merit_list.ties:
            chosen = set(tie.registration_nos[:tie.places])
            merit_lists.decide_tie(db, exam, post=post, decisions={
                reg: "selected" if reg in chosen else "not_selected" for reg in tie.registration_nos},
                reason="Hội đồng xét phỏng vấn bổ sung", actor="chutich", now=now + timedelta(minutes=6))
            decided += 1
    merit_lists.publish_merit_list(db, exam, actor="chutich", now=now + timedelta(minutes=7))
    db.commit()

    result = runner.invoke(args=["audit", "retally", exam.code])
    assert result.exit_code == 0, result.output
    assert "2 approved key corrections applied, published merit list" in result.output

    checked = verify(export(runner, exam, tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "with 2 approved key correction(s), no difference" in checked.stdout
    if decided:
        assert "decided by the board" in checked.stdout
