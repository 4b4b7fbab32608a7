"""The audit bundle of an exam: everything an outside auditor needs to check it without the system.

A zip of JSON files (JSON lines for the long ones), read in one database snapshot so the
chain, the attempts and the scores agree with one another:

=====================  ==========================================================================
manifest.json          format, exam, chain head, and the SHA-256 and size of every other file
README.txt             what is in the bundle and how to check it
chain.jsonl            the whole audit chain, every entry with all its fields, in seq order
checkpoints.json       the chain id and the signed checkpoints of its head: from the database and
                       from the checkpoint file of the instance folder
public_key.pem         the installation's Ed25519 public key that signs the checkpoints
head.json              the chain head (count, hash) and its short fingerprint
exam.json              the exam: settings, specification, sections and their scoring rules, the
                       frozen pool per blueprint cell, the ranking rule
questions.json         every question version in the pool or on a paper: text, options, correct flags
key_corrections.json   the board's key corrections (every status; the approved ones are in force)
candidates.jsonl       one line per candidate: registration number, name, post, priority categories
papers.jsonl           one line per paper: items with their question version, option order and ids
attempts.jsonl         one line per attempt: times, recorded history head, stored score, stored
                       responses and the full save history (response_log rows)
scores.jsonl           one line per candidate with a round-1 score or outside scores
grading_runs.json      the grading runs of the exam
merit_list.json        the published merit list (rule, content, hash, board decisions) or null;
                       the hash is of the content's canonical JSON: format merit-lists/2, each
                       post's rows column by column (merit-lists/1: one list per row, before)
=====================  ==========================================================================

``tools/verify_bundle.py`` checks a bundle with the Python standard library alone.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam.audit import chain as audit
from exam.audit import records
from exam.audit.chain import canonical_json
from exam.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from exam.core.timeutil import iso_utc
from exam.grading.models import GradingRun
from exam.merit.models import TieDecision
from exam.setup.models import BlueprintCell, Candidate, ExamPool, ExamSection
from question_bank.models import Topic

FORMAT = "exam-audit-bundle/1"
MANIFEST = "manifest.json"
SPOOL_BYTES = 16 * 1024 * 1024

README = """Audit bundle of exam {exam}, made {at} (UTC).

Check it on any machine with Python 3.9 or later (nothing else is needed):

    python3 verify_bundle.py {name}

verify_bundle.py comes with the exam system (tools/verify_bundle.py); use a copy you obtained
independently of this bundle. It checks the manifest, the audit chain and its signed checkpoints
(the signatures only when the `cryptography` package is installed; it says so when it skips
them), every attempt's save history against the hash the chain recorded at submission, re-tallies
every score from the saves and the key, and checks the published merit list against its rule.

Compare the chain head with the fingerprint printed at publication:
    {fingerprint}
Pass it to the verifier with --expect-head "{fingerprint}".

The bundle holds the exam's key and candidates' personal data: keep it as confidential as the
exam records themselves.
"""


def fingerprint(count: int, head_hash: str) -> str:
    """The chain head in a form short enough to print and read aloud: count and 16 hex digits."""
    digits = head_hash[:16]
    return f"{count} · " + " ".join(digits[i:i + 4] for i in range(0, 16, 4))


def head_qr_text(chain_id: str, count: int, head_hash: str) -> str:
    """What the printed QR code holds: the full head, so a scan can be compared with a bundle."""
    return f"exam-audit-head/1|{chain_id}|{count}|{head_hash}"


def snapshot_session(database) -> Session:
    """A read session whose every query sees one moment of the database (PostgreSQL: repeatable read;
    SQLite: one deferred transaction, which reads one snapshot in WAL mode)."""
    session = database.sessionmaker()
    if not database.is_sqlite:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session


class _Member:
    """A file being written into the zip, hashed as it goes."""

    def __init__(self, stream):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.digest.update(data)
        self.size += len(data)
        self.stream.write(data)

    def line(self, value) -> None:
        self.write(canonical_json(value) + "\n")


@dataclass
class BundleSummary:
    exam: str
    entries: int
    head_hash: str
    fingerprint: str
    candidates: int
    attempts: int
    manifest_sha256: str
    files: dict


class _BundleWriter:
    def __init__(self, target: IO[bytes] | str):
        self.zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.files: dict[str, dict] = {}

    @contextmanager
    def member(self, name: str):
        """A file of the bundle, spooled first (several are written side by side), then stored."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            member = _Member(spool)
            yield member
            spool.seek(0)
            with self.zip.open(name, "w", force_zip64=True) as stream:
                shutil.copyfileobj(spool, stream, 1024 * 1024)
        self.files[name] = {"sha256": member.digest.hexdigest(), "bytes": member.size}

    def json(self, name: str, value) -> None:
        with self.member(name) as out:
            out.write(json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n")


def write_bundle(session: Session, exam, target: IO[bytes] | str, *, public_pem: str, checkpoint_file: str | None,
                 now: datetime, name: str = "bundle.zip") -> BundleSummary:
    """Write the exam's audit bundle to ``target`` (a path or a binary file). Reads only."""
    head = session.get(AuditHead, 1)
    chain_id, count, head_hash = head.chain_id, head.count, head.hash
    writer = _BundleWriter(target)
    try:
        with writer.member("chain.jsonl") as out:
            written = 0
            for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)
                                         .where(AuditEntry.seq <= count).execution_options(yield_per=2000)):
                out.line(entry.as_dict())
                written += 1
        database_checkpoints = [c.as_dict() for c in session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id))]
        # The file is shared with writers that committed after our snapshot: keep what the snapshot covers.
        file_checkpoints = [c for c in (audit.read_checkpoint_file(checkpoint_file) if checkpoint_file else [])
                            if c.get("chain_id") == chain_id and c.get("count", 0) <= count]
        writer.json("checkpoints.json", {"chain_id": chain_id, "database": database_checkpoints,
                                         "file": file_checkpoints})
        with writer.member("public_key.pem") as out:
            out.write(public_pem)
        head_fingerprint = fingerprint(count, head_hash)
        writer.json("head.json", {"chain_id": chain_id, "count": count, "hash": head_hash,
                                  "fingerprint": head_fingerprint, "qr": head_qr_text(chain_id, count, head_hash)})

        sections = records.section_rows(session, exam.id)
        pool = _pool(session, exam.id)
        writer.json("exam.json", {
            "code": exam.code, "title": exam.title, "status": exam.status, "forms": exam.forms,
            "show_score": exam.show_score, "spec": exam.spec, "ranking": exam.ranking,
            "published_at": _iso(exam.published_at), "published_by": exam.published_by,
            "sections": sections, "pool": pool})
        writer.json("key_corrections.json", records.correction_rows(session, exam.id))

        version_ids = {v for cell in pool for v in cell["question_version_ids"]}
        candidates = attempts = 0
        with writer.member("candidates.jsonl") as c_out, writer.member("papers.jsonl") as p_out, \
                writer.member("attempts.jsonl") as a_out, writer.member("scores.jsonl") as s_out:
            for batch in records.candidate_records(session, exam.id):
                for record in batch:
                    reg = record["candidate"]["registration_no"]
                    candidates += 1
                    c_out.line(record["candidate"])
                    paper = record["paper"]
                    if paper is not None:
                        version_ids.update(item["question_version_id"] for item in paper["items"])
                        p_out.line({"registration_no": reg, "id": paper["id"], "form": paper["form"],
                                    "slot": paper["slot"], "content_hash": paper["content_hash"],
                                    "items": paper["items"]})
                    attempt = record["attempt"]
                    if attempt is not None:
                        attempts += 1
                        a_out.line({"registration_no": reg,
                                    **{k: v for k, v in attempt.items() if k != "choice_masks"},
                                    "responses": record["responses"], "history": record["history"]})
                    if record["candidate_score"] is not None or record["external_scores"]:
                        s_out.line({"registration_no": reg, "candidate_score": record["candidate_score"],
                                    "external_scores": record["external_scores"]})
        versions = records.version_rows(session, version_ids)
        writer.json("questions.json", [versions[v] for v in sorted(versions)])
        writer.json("grading_runs.json", [{
            "id": run.id, "at": _iso(run.at), "by": run.by, "key_hash": run.key_hash,
            "inputs_hash": run.inputs_hash, "outputs_hash": run.outputs_hash, "summary": run.summary}
            for run in session.scalars(select(GradingRun).where(GradingRun.exam_id == exam.id)
                                       .order_by(GradingRun.id))])
        writer.json("merit_list.json", _merit_list(session, exam.id))
        with writer.member("README.txt") as out:
            out.write(README.format(exam=exam.code, at=iso_utc(now), name=name, fingerprint=head_fingerprint))

        manifest = {"format": FORMAT, "exam": exam.code, "created_at": iso_utc(now),
                    "chain": {"chain_id": chain_id, "count": count, "head_hash": head_hash,
                              "fingerprint": head_fingerprint},
                    "files": dict(sorted(writer.files.items()))}
        manifest_text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
        writer.zip.writestr(MANIFEST, manifest_text.encode("utf-8"))
    finally:
        writer.zip.close()
    return BundleSummary(exam=exam.code, entries=written, head_hash=head_hash, fingerprint=head_fingerprint,
                         candidates=candidates, attempts=attempts,
                         manifest_sha256=hashlib.sha256(manifest_text.encode("utf-8")).hexdigest(),
                         files=manifest["files"])


def _iso(value) -> str | None:
    return iso_utc(value) if value is not None else None


def _pool(session: Session, exam_id: int) -> list[dict]:
    cells: dict[int, dict] = {}
    for cell, position, topic_path in session.execute(
            select(BlueprintCell, ExamSection.position, Topic.path)
            .join(ExamSection, ExamSection.id == BlueprintCell.section_id)
            .join(Topic, Topic.id == BlueprintCell.topic_id)
            .where(ExamSection.exam_id == exam_id).order_by(ExamSection.position, BlueprintCell.id)):
        cells[cell.id] = {"cell_id": cell.id, "section_position": position, "topic": topic_path,
                          "difficulty": cell.difficulty, "count": cell.count, "question_version_ids": []}
    if cells:
        for cell_id, version_id in session.execute(
                select(ExamPool.cell_id, ExamPool.question_version_id)
                .where(ExamPool.cell_id.in_(list(cells))).order_by(ExamPool.cell_id, ExamPool.question_version_id)):
            cells[cell_id]["question_version_ids"].append(version_id)
    return list(cells.values())


def _merit_list(session: Session, exam_id: int) -> dict | None:
    merit = records.published_merit_list(session, exam_id)
    if merit is None:
        return None
    decisions = [{"post": d.post, "registration_no": reg, "decision": d.decision, "reason": d.reason,
                  "decided_by": d.decided_by, "decided_at": _iso(d.decided_at)}
                 for d, reg in session.execute(select(TieDecision, Candidate.registration_no)
                                               .join(Candidate, Candidate.id == TieDecision.candidate_id)
                                               .where(TieDecision.exam_id == exam_id).order_by(TieDecision.id))]
    return {"id": merit.id, "status": merit.status, "rule": merit.rule, "content": json.loads(merit.content),
            "hash": merit.hash, "grading_run_id": merit.grading_run_id, "created_at": _iso(merit.created_at),
            "created_by": merit.created_by, "published_at": _iso(merit.published_at),
            "published_by": merit.published_by, "tie_decisions": decisions}


def bundle_bytes(session: Session, exam, **options) -> tuple[bytes, BundleSummary]:
    """The bundle in memory (small exams, tests)."""
    buffer = io.BytesIO()
    summary = write_bundle(session, exam, buffer, **options)
    return buffer.getvalue(), summary


def record_export(session: Session, exam, summary: BundleSummary, *, actor: str, role: str = "",
                  now: datetime) -> None:
    """The export in the audit chain: who took which exam's records, and the manifest's hash."""
    audit.append(session, actor=actor, role=role, action="audit.export", object_type="exam", object_id=exam.code,
                 details={"manifest_sha256": summary.manifest_sha256, "chain_count": summary.entries,
                          "chain_head": summary.head_hash, "candidates": summary.candidates,
                          "attempts": summary.attempts}, now=now)
    session.flush()
