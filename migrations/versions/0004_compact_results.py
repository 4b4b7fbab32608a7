"""compact results: candidate scores as packed section results instead of JSON, each paper's option
orders as a compact column, the merit list's content stored as its canonical JSON text

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Existing data is converted (online upgrades only; the ``--sql`` script used to build empty test
schemas carries no data):

* ``candidate_score.sections`` (JSON, a list of section records in position order) becomes
  ``candidate_score.section_results``: per section, in position order, the score (float64 LE),
  then the questions, right answers and answered questions (int32 LE each), then passed (uint8):
  S × 8 + 3 × S × 4 + S bytes, the layout ``exam.grading.runs.pack_section_results`` writes;
* ``paper.option_orders`` is filled from the paper's ``paper_item`` rows: per position the index
  (uint16 LE) of its option order among the orders of its n options in lexicographic order
  (``itertools.permutations(range(n))``);
* ``merit_list.content`` becomes text holding the canonical JSON of the lists (UTF-8, sorted keys,
  no spaces), whose SHA-256 is the list's ``hash``: the stored JSON is rewritten canonically, which
  keeps every hash; a content that does not match its hash is left as it was (the application
  reports it as altered).
"""
import hashlib
import json
import struct
from itertools import permutations

from alembic import context, op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BATCH = 2000


def _pack_sections(sections) -> bytes:
    sections = list(sections or ())
    n = len(sections)
    return (struct.pack(f"<{n}d", *(float(s.get("score") or 0.0) for s in sections))
            + struct.pack(f"<{3 * n}i", *(int(s.get(k) or 0) for k in ("questions", "correct", "answered")
                                          for s in sections))
            + bytes(1 if s.get("passed") else 0 for s in sections))


def _unpack_sections(blob: bytes, titles: list) -> list:
    n = len(blob) // 21
    scores = struct.unpack_from(f"<{n}d", blob)
    counts = struct.unpack_from(f"<{3 * n}i", blob, 8 * n)
    passed = blob[20 * n:]
    records = []
    for k in range(n):
        position, code, title, marks = titles[k] if k < len(titles) else (k + 1, "", "", 1.0)
        records.append({"position": position, "code": code, "title": title, "questions": counts[k],
                        "correct": counts[n + k], "answered": counts[2 * n + k], "score": scores[k],
                        "max_score": round(marks * counts[k], 4), "passed": bool(passed[k])})
    return records


def _json(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


_RANKS: dict = {}


def _rank(order) -> int:
    order = tuple(order)
    if order not in _RANKS:
        _RANKS.update({p: k for k, p in enumerate(permutations(range(len(order))))})
    return _RANKS[order]


def _convert_scores(bind) -> None:
    rows = bind.execute(sa.text("SELECT candidate_id, sections FROM candidate_score")).all()
    for start in range(0, len(rows), BATCH):
        bind.execute(sa.text("UPDATE candidate_score SET section_results = :blob WHERE candidate_id = :id"),
                     [{"id": cid, "blob": _pack_sections(_json(sections))} for cid, sections in rows[start:start + BATCH]])


def _convert_papers(bind) -> None:
    paper_ids = [pid for (pid,) in bind.execute(sa.text(
        "SELECT DISTINCT paper_id FROM paper_item ORDER BY paper_id")).all()]
    for start in range(0, len(paper_ids), BATCH):
        chunk = paper_ids[start:start + BATCH]
        orders: dict = {}
        for paper_id, order in bind.execute(sa.text(
                "SELECT paper_id, option_order FROM paper_item WHERE paper_id BETWEEN :a AND :b "
                "ORDER BY paper_id, position"), {"a": chunk[0], "b": chunk[-1]}):
            orders.setdefault(paper_id, []).append(_rank(_json(order)))
        bind.execute(sa.text("UPDATE paper SET option_orders = :blob WHERE id = :id"),
                     [{"id": pid, "blob": struct.pack(f"<{len(ranks)}H", *ranks)} for pid, ranks in orders.items()])


def _convert_merit_lists(bind) -> None:
    for list_id, content, digest in bind.execute(sa.text("SELECT id, content, hash FROM merit_list")).all():
        text = _canonical(_json(content))
        if hashlib.sha256(text.encode("utf-8")).hexdigest() == digest and text != content:
            bind.execute(sa.text("UPDATE merit_list SET content = :content WHERE id = :id"),
                         {"id": list_id, "content": text})


def upgrade() -> None:
    offline = context.is_offline_mode()
    with op.batch_alter_table('candidate_score', schema=None) as batch_op:
        batch_op.add_column(sa.Column('section_results', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.add_column(sa.Column('option_orders', sa.LargeBinary(), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE merit_list ALTER COLUMN content TYPE TEXT USING content::text")
    else:
        with op.batch_alter_table('merit_list', schema=None) as batch_op:
            batch_op.alter_column('content', existing_type=sa.JSON(), type_=sa.Text(), existing_nullable=False)
    if not offline:
        bind = op.get_bind()
        _convert_scores(bind)
        _convert_papers(bind)
        _convert_merit_lists(bind)
    with op.batch_alter_table('candidate_score', schema=None) as batch_op:
        batch_op.alter_column('section_results', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('sections')


def downgrade() -> None:
    offline = context.is_offline_mode()
    with op.batch_alter_table('candidate_score', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sections', sa.JSON(), nullable=True))
    if not offline:
        bind = op.get_bind()
        for candidate_id, blob in bind.execute(sa.text(
                "SELECT candidate_id, section_results FROM candidate_score")).all():
            exam_id = bind.execute(sa.text("SELECT exam_id FROM candidate_score WHERE candidate_id = :id"),
                                   {"id": candidate_id}).scalar()
            titles = [tuple(r) for r in bind.execute(sa.text(
                "SELECT position, code, title, marks_per_question FROM exam_section WHERE exam_id = :e "
                "ORDER BY position"), {"e": exam_id})]
            bind.execute(sa.text("UPDATE candidate_score SET sections = :s WHERE candidate_id = :id"),
                         {"id": candidate_id, "s": json.dumps(_unpack_sections(bytes(blob), titles))})
    with op.batch_alter_table('candidate_score', schema=None) as batch_op:
        batch_op.alter_column('sections', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('section_results')
    with op.batch_alter_table('paper', schema=None, recreate="never") as batch_op:  # other tables refer to it
        batch_op.drop_column('option_orders')
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE merit_list ALTER COLUMN content TYPE JSON USING content::json")
    else:
        with op.batch_alter_table('merit_list', schema=None) as batch_op:
            batch_op.alter_column('content', existing_type=sa.Text(), type_=sa.JSON(), existing_nullable=False)
