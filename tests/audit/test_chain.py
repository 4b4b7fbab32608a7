"""The audit chain: appends in the caller's transaction, refuses UPDATE/DELETE, and
`audit verify` names the first entry altered, removed or inserted with raw SQL, and
catches entries cut off the end through the signed checkpoints."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from exam.audit import chain as audit
from exam.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEntry, AuditHead
from exam.room import group_commit as save_batch


def add_entries(db, n: int) -> None:
    for i in range(n):
        audit.append(db, actor="tester", action="test.event", object_type="thing", object_id=str(i),
                     details={"i": i, "text": "Hội đồng thi"})
        db.commit()  # one transaction each, so each gets its own signed checkpoint


def run_verify(runner):
    return runner.invoke(args=["audit", "verify"])


def drop_guards(db) -> None:
    """What an intruder with database access does first: remove the append-only triggers."""
    if db.bind.dialect.name == "sqlite":
        for table in AuditEntry.__tablename__, AuditCheckpoint.__tablename__:
            for verb in ("update", "delete"):
                db.execute(text(f"DROP TRIGGER {table}_no_{verb}"))
    else:
        for table in AuditEntry.__tablename__, AuditCheckpoint.__tablename__:
            db.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
    db.commit()


def test_intact_chain_verifies_with_count_and_head(db, runner):
    add_entries(db, 5)
    head = db.get(AuditHead, 1)
    result = run_verify(runner)
    assert result.exit_code == 0, result.output
    assert f"intact: 5 entries, head {head.hash}" in result.output


def test_entry_written_in_callers_transaction_is_gone_on_rollback(db):
    audit.append(db, actor="tester", action="test.event")
    db.rollback()
    assert db.scalar(select(AuditEntry)) is None
    assert db.get(AuditHead, 1).count == 0


def test_a_head_already_in_the_session_follows_the_appends_and_each_commit_signs_the_stored_head(db, runner):
    add_entries(db, 1)
    head = db.get(AuditHead, 1)  # loaded: appends write the head underneath the session
    audit.append(db, actor="tester", action="test.event", object_id="a")
    entry = audit.append(db, actor="tester", action="test.event", object_id="b")
    assert (head.count, head.hash) == (3, entry.hash) and entry.seq == 3
    db.commit()
    checkpoint = db.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc())).first()
    assert (checkpoint.count, checkpoint.head_hash) == (3, entry.hash)
    assert run_verify(runner).exit_code == 0


def test_a_group_commit_is_signed_once_and_only_once_committed(app, db, runner):
    """The group commit runs each write in a savepoint (exam/room/group_commit.py): a savepoint's release is no
    commit, so the batch gets one checkpoint, written and copied out at its commit, covering what stands."""

    path = app.config["AUDIT_CHECKPOINT_FILE"]
    add_entries(db, 1)
    copied = len(audit.read_checkpoint_file(path))
    stored = db.scalar(select(func.count()).select_from(AuditCheckpoint))

    def appending(n):
        def work(session):
            audit.append(session, actor="tester", action="test.batch", object_id=str(n))
            if n == 2:
                raise ValueError("this write fails: only its own savepoint is undone")
            return n
        return save_batch.Write(work=work)

    writes = [appending(n) for n in range(4)]
    save_batch.GroupCommitter(app).apply(writes)
    assert [w.result for w in writes] == [0, 1, None, 3] and isinstance(writes[2].error, ValueError)
    db.rollback()
    head = db.get(AuditHead, 1)
    assert head.count == 4  # the first entry and three of the batch
    checkpoints = audit.read_checkpoint_file(path)
    assert len(checkpoints) == copied + 1 and (checkpoints[-1]["count"], checkpoints[-1]["head_hash"]) == (
        head.count, head.hash)
    assert db.scalar(select(func.count()).select_from(AuditCheckpoint)) == stored + 1

    # A batch whose commit fails (after signing) leaves no checkpoint behind, in the database or the file.
    def fail(session):
        if not session.in_nested_transaction():
            raise OSError("disk full")

    factory = app.extensions["exam_db"].sessionmaker
    event.listen(factory, "before_commit", fail)  # after the signing listener
    try:
        failed = [appending(10), appending(11)]
        save_batch.GroupCommitter(app).apply(failed)
    finally:
        event.remove(factory, "before_commit", fail)
    assert all(isinstance(w.error, save_batch.BatchFailed) for w in failed)
    assert db.scalar(select(func.count()).select_from(AuditCheckpoint)) == stored + 1
    assert len(audit.read_checkpoint_file(path)) == copied + 1
    assert run_verify(runner).exit_code == 0


@pytest.mark.parametrize("statement", ["UPDATE audit_entry SET actor = 'mallory' WHERE seq = 2",
                                       "DELETE FROM audit_entry WHERE seq = 2",
                                       "DELETE FROM audit_checkpoint"])
def test_database_refuses_update_and_delete(db, statement):
    add_entries(db, 3)
    with pytest.raises(DBAPIError, match="append-only"):
        db.execute(text(statement))
        db.flush()
    db.rollback()


def test_altered_entry_is_named(db, runner):
    add_entries(db, 5)
    drop_guards(db)
    db.execute(text("UPDATE audit_entry SET details = :d WHERE seq = 3"), {"d": '{"i":99}'})
    db.commit()
    result = run_verify(runner)
    assert result.exit_code == 1
    assert "entry 3 was altered" in result.output


def test_removed_entry_is_named(db, runner):
    add_entries(db, 5)
    drop_guards(db)
    db.execute(text("DELETE FROM audit_entry WHERE seq = 2"))
    db.commit()
    result = run_verify(runner)
    assert result.exit_code == 1
    assert "entry 2 is missing" in result.output


def test_inserted_entry_is_named(db, runner):
    add_entries(db, 5)
    drop_guards(db)
    # Shift entries 4..5 up and slip a forged entry in at 4, with a correct-looking own hash.
    db.execute(text("UPDATE audit_entry SET seq = seq + 10 WHERE seq >= 4"))
    db.execute(text("UPDATE audit_entry SET seq = seq - 9 WHERE seq >= 14"))
    forged = {"seq": 4, "at": "2026-01-01T00:00:00.000000Z", "actor": "mallory", "role": "", "action": "test.event",
              "object_type": "", "object_id": "", "details": "{}", "prev_hash": "f" * 64}
    forged["hash"] = audit.entry_hash(forged)
    db.execute(text("INSERT INTO audit_entry (seq, at, actor, role, action, object_type, object_id, details, "
                    "prev_hash, hash) VALUES (:seq, :at, :actor, :role, :action, :object_type, :object_id, "
                    ":details, :prev_hash, :hash)"), forged)
    db.commit()
    result = run_verify(runner)
    assert result.exit_code == 1
    assert "entry 4 does not follow entry 3" in result.output


def test_rewritten_chain_with_recomputed_hashes_is_caught_by_signed_checkpoints(db, runner):
    add_entries(db, 4)
    drop_guards(db)
    rows = [dict(r._mapping) for r in db.execute(text("SELECT * FROM audit_entry ORDER BY seq"))]
    prev = GENESIS_HASH
    db.execute(text("DELETE FROM audit_entry"))
    for row in rows:
        if row["seq"] == 2:
            row["actor"] = "mallory"
        row["prev_hash"] = prev
        row["hash"] = prev = audit.entry_hash(row)
        db.execute(text("INSERT INTO audit_entry (seq, at, actor, role, action, object_type, object_id, details, "
                        "prev_hash, hash) VALUES (:seq, :at, :actor, :role, :action, :object_type, :object_id, "
                        ":details, :prev_hash, :hash)"), row)
    db.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    db.commit()
    result = run_verify(runner)
    assert result.exit_code == 1
    assert "the chain was rewritten" in result.output


def test_truncated_chain_is_caught_even_with_database_checkpoints_removed(db, runner):
    add_entries(db, 6)
    drop_guards(db)
    db.execute(text("DELETE FROM audit_entry WHERE seq > 4"))
    db.execute(text("DELETE FROM audit_checkpoint WHERE count > 4"))
    db.execute(text("UPDATE audit_head SET count = 4, hash = (SELECT hash FROM audit_entry WHERE seq = 4)"))
    db.commit()
    result = run_verify(runner)
    assert result.exit_code == 1
    assert "entries 5 to 6 were cut off" in result.output


def test_forged_checkpoint_signature_is_refused(app, db, runner):
    add_entries(db, 2)
    path = app.config["AUDIT_CHECKPOINT_FILE"]
    lines = open(path).read().splitlines()
    forged = json.loads(lines[-1])
    forged["count"] = 1  # claims a shorter chain, signature no longer matches
    with open(path, "a") as fh:
        fh.write(json.dumps(forged) + "\n")
    result = run_verify(runner)
    assert result.exit_code == 1
    assert "invalid signature" in result.output


def test_verify_is_pure_and_checks_an_export(db, app):
    add_entries(db, 3)
    entries = [e.as_dict() for e in db.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    exported = [json.loads(json.dumps(e)) for e in entries]  # through JSON, as an offline auditor gets it
    checkpoints = audit.read_checkpoint_file(app.config["AUDIT_CHECKPOINT_FILE"])
    public_key = audit.public_key_from_pem(app.extensions["audit_key"].public_pem)
    chain_id = db.get(AuditHead, 1).chain_id
    assert audit.verify(exported, checkpoints, public_key, chain_id=chain_id).ok
    exported[1]["actor"] = "mallory"
    verdict = audit.verify(exported, checkpoints, public_key, chain_id=chain_id)
    assert not verdict.ok and verdict.first_bad_seq == 2


def test_public_key_command_prints_pem(runner):
    result = runner.invoke(args=["audit", "public-key"])
    assert result.exit_code == 0 and result.output.startswith("-----BEGIN PUBLIC KEY-----")


def test_auditor_page_shows_verdict(client, login_as, db):
    login_as("auditor")
    page = client.get("/audit/verify").get_data(as_text=True)
    assert 'id="verdict"' in page and "alert-success" in page
