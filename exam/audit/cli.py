"""Audit commands (the ``audit`` group):

    flask --app wsgi audit verify                       check the whole chain and its signed checkpoints
    flask --app wsgi audit public-key | checkpoint      the key that verifies checkpoints / sign the head now
    flask --app wsgi audit retally R1-2026              re-tally every score; exit 1 listing differences
    flask --app wsgi audit export R1-2026 bundle.zip    the exam's audit bundle (see exam/audit/bundle.py)
    flask --app wsgi audit fingerprint --qr head.svg    the chain head, short, with a QR code to print

Reading commands read one snapshot and write nothing, except the export's own audit entry,
written after the file is complete.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import segno
from flask import current_app

from exam.audit import bundle as audit_bundle
from exam.audit import chain as audit
from exam.audit import retally
from exam.audit.models import AuditHead
from exam.core.commands import CLI_ACTOR, audit_cli, require_schema, transactional
from exam.core.db import get_database, get_session, utcnow
from exam.setup.exams import exam_or_exit
from exam.setup.models import Exam


@audit_cli.command("verify")
def audit_verify():
    """Check the whole chain and its signed checkpoints; exit 1 naming the first broken entry."""
    require_schema()
    verdict = audit.verify_database(get_session(), current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    if not verdict.ok:
        click.echo(f"BROKEN: {verdict.problem}", err=True)
        if verdict.first_bad_seq is not None:
            click.echo(f"first broken entry: {verdict.first_bad_seq}", err=True)
        sys.exit(1)
    click.echo(f"intact: {verdict.count} entries, head {verdict.head_hash}, "
               f"{verdict.checkpoints_checked} signed checkpoints checked")


@audit_cli.command("public-key")
def audit_public_key():
    """Print the installation's Ed25519 public key (PEM) that signs checkpoints."""
    click.echo(current_app.extensions["audit_key"].public_pem, nl=False)


@audit_cli.command("checkpoint")
@transactional
def audit_checkpoint(db_session):
    """Sign the current head now (e.g. before a backup or at the end of a sitting)."""
    require_schema()
    checkpoint = audit.write_checkpoint(db_session, current_app.extensions["audit_key"])
    db_session.info.setdefault("audit_checkpoints", []).append(checkpoint.as_dict())
    click.echo(f"checkpoint: {checkpoint.count} entries, head {checkpoint.head_hash}")


@audit_cli.command("retally")
@click.argument("exam_code", metavar="EXAM")
def audit_retally(exam_code):
    """Recompute every score of EXAM from the stored answers and the key (plain Python, not the
    grader) and compare with the stored scores and the published merit list; exit 1 listing every
    difference."""
    require_schema()
    db_session = audit_bundle.snapshot_session(get_database())
    try:
        report = retally.retally_exam(db_session, exam_or_exit(db_session, exam_code))
    finally:
        db_session.close()
    merit = f"published merit list {report.merit_list[:16]}… checked" if report.merit_list else \
        "no published merit list"
    click.echo(f"exam {report.exam}: {report.candidates} candidates, {report.tallied} submitted attempts "
               f"re-tallied, {report.corrections} approved key corrections applied, {merit}")
    if not report.ok:
        for difference in report.differences:
            click.echo(f"DIFFERENCE {difference}", err=True)
        click.echo(f"{len(report.differences)} difference(s)", err=True)
        sys.exit(1)
    click.echo("no differences: every stored score matches the re-tally")


@audit_cli.command("export")
@click.argument("exam_code", metavar="EXAM")
@click.argument("target", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
def audit_export(exam_code, target: Path):
    """Write EXAM's audit bundle (a zip) to FILE; check it with tools/verify_bundle.py."""
    require_schema()
    now = utcnow()
    partial = target.with_name(target.name + ".partial")
    db_session = audit_bundle.snapshot_session(get_database())
    try:
        exam = exam_or_exit(db_session, exam_code)
        summary = audit_bundle.write_bundle(
            db_session, exam, str(partial), public_pem=current_app.extensions["audit_key"].public_pem,
            checkpoint_file=current_app.config["AUDIT_CHECKPOINT_FILE"], now=now, name=target.name)
        exam_id = exam.id
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        db_session.close()
    os.replace(partial, target)
    _record_export(exam_id, summary, now)
    click.echo(f"wrote {target}: {len(summary.files) + 1} files, {summary.candidates} candidates, "
               f"{summary.attempts} attempts, chain of {summary.entries} entries")
    click.echo(f"chain head {summary.fingerprint}  ({summary.head_hash})")
    click.echo(f"manifest SHA-256 {summary.manifest_sha256}")


@transactional
def _record_export(db_session, exam_id, summary, now):
    audit_bundle.record_export(db_session, db_session.get(Exam, exam_id), summary, actor=CLI_ACTOR, now=now)


@audit_cli.command("fingerprint")
@click.option("--qr", "qr_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the head as a QR code: FILE.svg or FILE.png.")
def audit_fingerprint(qr_file: Path | None):
    """Print the chain head as a short fingerprint (entries · first 16 hex digits) after checking the
    whole chain; exit 1 when the chain is broken (a broken head is no anchor)."""
    require_schema()
    db_session = get_session()
    verdict = audit.verify_database(db_session, current_app.extensions["audit_key"],
                                    current_app.config["AUDIT_CHECKPOINT_FILE"])
    if not verdict.ok:
        click.echo(f"BROKEN: {verdict.problem}", err=True)
        sys.exit(1)
    head = db_session.get(AuditHead, 1)
    click.echo(audit_bundle.fingerprint(verdict.count, verdict.head_hash))
    click.echo(f"chain {head.chain_id}, {verdict.count} entries, head {verdict.head_hash}")
    if qr_file is not None:
        if qr_file.suffix.lower() not in (".svg", ".png"):
            raise click.ClickException("the QR file must end in .svg or .png")
        qr = segno.make(audit_bundle.head_qr_text(head.chain_id, verdict.count, verdict.head_hash), error="m")
        qr.save(str(qr_file), scale=6, border=4)
        click.echo(f"QR code written to {qr_file}")
