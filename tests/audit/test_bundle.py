"""The audit bundle and the stand-alone verifier, run as an outside auditor would: in a separate
``python -I`` process, from another directory, with nothing of the project importable."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from sqlalchemy import select, update

from exam.audit import chain as audit
from exam.audit.models import HASHED_FIELDS, AuditEntry, AuditHead
from exam.grading.models import CandidateScore
from exam.merit.models import MeritList
from exam.room.models import Attempt, CandidateSession, Response, ResponseLog
from tests.audit.conftest import attempt_of, drop_response_log_guard, export, verify
from tests.merit.test_content import rows_format


def rewrite(bundle: Path, name: str, change) -> None:
    """Edit one file of the bundle in place, keeping the manifest as it was (a careless forger)."""
    with zipfile.ZipFile(bundle) as source:
        files = {info.filename: source.read(info.filename) for info in source.infolist()}
    files[name] = change(files[name])
    with zipfile.ZipFile(bundle, "w") as target:
        for member, data in files.items():
            target.writestr(member, data)


def test_clean_exam_exports_and_verifies(runner, db, results_exam, tmp_path):
    bundle = export(runner, results_exam.exam, tmp_path)
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        chain = [json.loads(line) for line in z.read("chain.jsonl").decode().splitlines()]
        attempts = [json.loads(line) for line in z.read("attempts.jsonl").decode().splitlines()]
        questions = json.loads(z.read("questions.json"))
    assert {"chain.jsonl", "checkpoints.json", "public_key.pem", "head.json", "exam.json", "questions.json",
            "key_corrections.json", "candidates.jsonl", "papers.jsonl", "attempts.jsonl", "scores.jsonl",
            "grading_runs.json", "merit_list.json", "README.txt", "manifest.json"} <= names
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert set(chain[0]) == set(HASHED_FIELDS) | {"hash"}
    assert len(chain) == db.get(AuditHead, 1).count - 1  # the export's own entry came after
    assert chain[-1]["action"] == "merit.publish"
    assert len(attempts) == 4 and all(a["history"] and a["responses"] for a in attempts)
    assert all("correct" in option for q in questions for option in q["options"])
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "audit.export")).one()

    result = verify(bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALL CHECKS PASSED" in result.stdout
    assert "signatures verified" in result.stdout
    assert "tie at the quota boundary, rank 2" in result.stdout
    head = json.loads(zipfile.ZipFile(bundle).read("head.json"))
    assert verify(bundle, "--expect-head", head["fingerprint"]).returncode == 0
    wrong = verify(bundle, "--expect-head", f"{head['count']} · 0000 0000 0000 0000")
    assert wrong.returncode == 1 and "does not match entry" in wrong.stdout


def test_verifier_needs_only_the_standard_library_and_says_when_it_skips_signatures(runner, sat_exam, tmp_path):
    """-S: no site-packages at all, so not even `cryptography`: the checks run, the signatures are skipped
    and the output says so."""
    bundle = export(runner, sat_exam.exam, tmp_path)
    result = verify(bundle, python_flags=("-I", "-S"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIP  checkpoint signatures NOT checked: the `cryptography` package is not installed" in result.stdout
    assert "checkpoint signatures NOT checked" in result.stdout.splitlines()[-1]
    assert "no published merit list" in result.stdout


def test_edited_json_line_fails_the_manifest_and_the_chain(runner, sat_exam, tmp_path):
    bundle = export(runner, sat_exam.exam, tmp_path)

    def edit(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        entry = json.loads(lines[2])
        entry["actor"] = "mallory"
        lines[2] = json.dumps(entry, ensure_ascii=False)
        return ("\n".join(lines) + "\n").encode()

    rewrite(bundle, "chain.jsonl", edit)
    result = verify(bundle)
    assert result.returncode == 1
    assert "FAIL  manifest: chain.jsonl does not match its SHA-256" in result.stdout
    assert "FAIL  chain: entry 3" in result.stdout and "was altered" in result.stdout


def test_consistent_forgery_of_a_bundle_is_caught_by_the_signed_checkpoints(runner, sat_exam, tmp_path):
    """A forger who edits an entry, recomputes every hash after it and the manifest still cannot sign."""
    bundle = export(runner, sat_exam.exam, tmp_path)
    with zipfile.ZipFile(bundle) as source:
        files = {name: source.read(name) for name in source.namelist()}
    chain = [json.loads(line) for line in files["chain.jsonl"].decode().splitlines()]
    prev = "0" * 64
    for entry in chain:
        if entry["seq"] == 2:
            entry["actor"] = "mallory"
        entry["prev_hash"] = prev
        entry["hash"] = prev = audit.entry_hash(entry)
    files["chain.jsonl"] = "".join(audit.canonical_json(e) + "\n" for e in chain).encode()
    head = json.loads(files["head.json"])
    head["hash"] = prev
    files["head.json"] = json.dumps(head).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["chain"]["head_hash"] = prev
    for name in ("chain.jsonl", "head.json"):
        manifest["files"][name] = {"sha256": hashlib.sha256(files[name]).hexdigest(), "bytes": len(files[name])}
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(bundle, "w") as target:
        for name, data in files.items():
            target.writestr(name, data)
    result = verify(bundle)
    assert result.returncode == 1
    assert "ok    manifest" in result.stdout and "ok    chain" in result.stdout
    assert "the chain was rewritten" in result.stdout


def test_altered_response_row_fails_the_verifier(runner, db, sat_exam, tmp_path):
    attempt = sat_exam.attempts[0]
    item, right, wrong, _ = sat_exam.keys[attempt.id][1]
    db.execute(update(Response).where(Response.attempt_id == attempt.id, Response.item_id == item.id)
               .values(choices=wrong[:1]))
    db.commit()
    result = verify(export(runner, sat_exam.exam, tmp_path))
    assert result.returncode == 1
    assert f"FAIL  attempt of {sat_exam.candidates[0].registration_no}: question 2: stored response" in result.stdout


def test_altered_save_history_fails_the_verifier(runner, db, sat_exam, tmp_path):
    attempt = sat_exam.attempts[2]
    drop_response_log_guard(db)
    row = db.scalars(select(ResponseLog).where(ResponseLog.attempt_id == attempt.id).order_by(ResponseLog.id)).first()
    db.execute(update(ResponseLog).where(ResponseLog.id == row.id).values(at="2026-06-15T01:59:59.000000Z"))
    db.commit()
    result = verify(export(runner, sat_exam.exam, tmp_path))
    assert result.returncode == 1
    assert f"attempt of {sat_exam.candidates[2].registration_no}: save 1 (seq 1) was altered" in result.stdout


def test_altered_scores_fail_the_verifier(runner, db, results_exam, tmp_path):
    first, second = results_exam.attempts[:2]
    score = json.loads(json.dumps(attempt_of(db, results_exam.candidates[0]).score))
    score["sections"][1]["correct"] += 1
    db.execute(update(Attempt).where(Attempt.id == first.id).values(score=score))
    db.execute(update(CandidateScore).where(CandidateScore.candidate_id == second.candidate_id)
               .values(total=CandidateScore.total + 0.25))
    db.commit()
    result = verify(export(runner, results_exam.exam, tmp_path))
    assert result.returncode == 1
    one, two = (c.registration_no for c in results_exam.candidates[:2])
    assert f"FAIL  attempt of {one}: stored attempt score: section language: correct" in result.stdout
    assert f"FAIL  attempt of {two}: round-1 score of the grading run: total" in result.stdout


def test_deleted_attempt_is_missed(runner, db, sat_exam, tmp_path):
    """An attempt removed from the database (history, responses and all) still left its start and
    submission in the chain."""
    attempt = sat_exam.attempts[1]
    drop_response_log_guard(db)
    db.execute(Response.__table__.delete().where(Response.attempt_id == attempt.id))
    db.execute(ResponseLog.__table__.delete().where(ResponseLog.attempt_id == attempt.id))
    db.execute(CandidateSession.__table__.delete().where(CandidateSession.candidate_id == attempt.candidate_id))
    db.execute(Attempt.__table__.delete().where(Attempt.id == attempt.id))
    db.commit()
    result = verify(export(runner, sat_exam.exam, tmp_path))
    assert result.returncode == 1
    assert "the chain records its start" in result.stdout and "(removed)" in result.stdout


def test_merit_list_against_its_rule(runner, db, results_exam, tmp_path):
    """A published list whose statuses were edited (and its hash recomputed) breaks the rule and the hash
    no longer matches the one in the chain."""

    merit_list = db.scalar(select(MeritList))
    content = json.loads(merit_list.content)
    data = content["lists"][0]
    status = data["columns"]["status"]
    data["columns"]["status"] = ["selected" if s == "tie" else s for s in status]  # the tie silently broken
    assert status != data["columns"]["status"]
    data["ties"] = []
    digest = hashlib.sha256(audit.canonical_json(content).encode()).hexdigest()
    db.execute(update(MeritList).where(MeritList.id == merit_list.id).values(content=audit.canonical_json(content),
                                                                              hash=digest))
    db.commit()
    result = verify(export(runner, results_exam.exam, tmp_path))
    assert result.returncode == 1
    assert "its hash" in result.stdout and "is in no merit.publish entry of the audit chain" in result.stdout
    assert "is selected, the rule gives tie" in result.stdout
    assert "3 selected for a quota of 2" in result.stdout  # the first, and both tied


def test_bundle_of_unknown_exam_is_refused(runner, tmp_path):
    result = runner.invoke(args=["audit", "export", "NOPE", str(tmp_path / "x.zip")])
    assert result.exit_code != 0 and "no exam with code 'NOPE'" in result.output
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.partial").exists()


def test_not_a_bundle_exits_2(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert verify(junk).returncode == 2


def test_a_list_published_in_the_earlier_row_format_still_verifies(runner, db, results_exam, tmp_path):
    """Lists published before the column format (merit-lists/1, one list per row) keep their hash: the
    verifier reads and checks them the same."""

    merit_list = db.scalar(select(MeritList))
    content = rows_format(json.loads(merit_list.content))
    text = audit.canonical_json(content)
    digest = hashlib.sha256(text.encode()).hexdigest()
    db.execute(update(MeritList).where(MeritList.id == merit_list.id).values(content=text, hash=digest))
    audit.append(db, actor="chutich", action="merit.publish", object_type="exam", object_id=results_exam.exam.code,
                 details={"hash": digest}, now=merit_list.published_at)
    db.commit()
    result = verify(export(runner, results_exam.exam, tmp_path))
    assert result.returncode == 0, result.stdout
    assert "tie at the quota boundary, rank 2" in result.stdout
    content["lists"][0]["rows"][0][content["lists"][0]["row_fields"].index("rank")] = 7
    text = audit.canonical_json(content)
    db.execute(update(MeritList).where(MeritList.id == merit_list.id)
               .values(content=text, hash=hashlib.sha256(text.encode()).hexdigest()))
    db.commit()
    (tmp_path / "again").mkdir()
    result = verify(export(runner, results_exam.exam, tmp_path / "again"))
    assert result.returncode == 1 and "is ranked 7, the rule gives 1" in result.stdout
