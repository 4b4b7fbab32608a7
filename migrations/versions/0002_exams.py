"""exams, sittings, candidates, papers, attempts and responses

response_log (every acknowledged save) refuses UPDATE and DELETE like the audit tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import exam.core.timeutil


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exam',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('show_score', sa.Boolean(), nullable=False),
    sa.Column('forms', sa.Integer(), nullable=False),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('published_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam')),
    sa.UniqueConstraint('code', name=op.f('uq_exam_code'))
    )
    op.create_table('exam_section',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('question_count', sa.Integer(), nullable=False),
    sa.Column('marks_per_question', sa.Float(), nullable=False),
    sa.Column('negative_fraction', sa.Float(), nullable=False),
    sa.Column('multiple_scoring', sa.String(length=16), nullable=False),
    sa.Column('pass_ratio', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_exam_section_exam_id_exam'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_section')),
    sa.UniqueConstraint('exam_id', 'position', name='uq_exam_section_position')
    )
    with op.batch_alter_table('exam_section', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exam_section_exam_id'), ['exam_id'], unique=False)

    op.create_table('sitting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('room', sa.String(length=100), nullable=False),
    sa.Column('starts_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('late_entry_minutes', sa.Integer(), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('access_secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_sitting_exam_id_exam')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sitting')),
    sa.UniqueConstraint('code', name=op.f('uq_sitting_code'))
    )
    with op.batch_alter_table('sitting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sitting_exam_id'), ['exam_id'], unique=False)

    op.create_table('blueprint_cell',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.Integer(), nullable=False),
    sa.Column('difficulty', sa.String(length=8), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['section_id'], ['exam_section.id'], name=op.f('fk_blueprint_cell_section_id_exam_section'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['topic.id'], name=op.f('fk_blueprint_cell_topic_id_topic')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blueprint_cell'))
    )
    with op.batch_alter_table('blueprint_cell', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blueprint_cell_section_id'), ['section_id'], unique=False)

    op.create_table('candidate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('registration_no', sa.String(length=40), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('citizen_id', sa.String(length=20), nullable=False),
    sa.Column('post', sa.String(length=200), nullable=False),
    sa.Column('priority_category', sa.String(length=100), nullable=False),
    sa.Column('sitting_id', sa.Integer(), nullable=True),
    sa.Column('seat', sa.Integer(), nullable=True),
    sa.Column('move_admitted_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_candidate_exam_id_exam')),
    sa.ForeignKeyConstraint(['sitting_id'], ['sitting.id'], name=op.f('fk_candidate_sitting_id_sitting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_candidate')),
    sa.UniqueConstraint('exam_id', 'registration_no', name='uq_candidate_exam_registration'),
    sa.UniqueConstraint('sitting_id', 'seat', name='uq_candidate_sitting_seat')
    )
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidate_exam_id'), ['exam_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_candidate_sitting_id'), ['sitting_id'], unique=False)

    op.create_table('candidate_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('machine', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_candidate_session_candidate_id_candidate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_candidate_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_candidate_session_token_hash'))
    )
    with op.batch_alter_table('candidate_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidate_session_candidate_id'), ['candidate_id'], unique=False)

    op.create_table('exam_pool',
    sa.Column('cell_id', sa.Integer(), nullable=False),
    sa.Column('question_version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cell_id'], ['blueprint_cell.id'], name=op.f('fk_exam_pool_cell_id_blueprint_cell'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_version_id'], ['question_version.id'], name=op.f('fk_exam_pool_question_version_id_question_version')),
    sa.PrimaryKeyConstraint('cell_id', 'question_version_id', name=op.f('pk_exam_pool'))
    )
    op.create_table('paper',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('form', sa.Integer(), nullable=True),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_paper_candidate_id_candidate')),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_paper_exam_id_exam')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paper')),
    sa.UniqueConstraint('candidate_id', name=op.f('uq_paper_candidate_id'))
    )
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_paper_exam_id'), ['exam_id'], unique=False)

    op.create_table('attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('paper_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('section_position', sa.Integer(), nullable=False),
    sa.Column('section_started_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('section_deadline', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('extra_seconds', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('history_hash', sa.String(length=64), nullable=False),
    sa.Column('history_count', sa.Integer(), nullable=False),
    sa.Column('submitted_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_by', sa.String(length=32), nullable=True),
    sa.Column('last_heartbeat_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('machine', sa.String(length=200), nullable=False),
    sa.Column('score', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_attempt_candidate_id_candidate')),
    sa.ForeignKeyConstraint(['paper_id'], ['paper.id'], name=op.f('fk_attempt_paper_id_paper')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempt')),
    sa.UniqueConstraint('candidate_id', name=op.f('uq_attempt_candidate_id')),
    sa.UniqueConstraint('public_id', name=op.f('uq_attempt_public_id'))
    )
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.create_index('ix_attempt_open_deadline', ['status', 'deadline'], unique=False)

    op.create_table('paper_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('paper_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=False),
    sa.Column('question_version_id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=24), nullable=False),
    sa.Column('option_order', sa.JSON(), nullable=False),
    sa.Column('option_ids', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['paper_id'], ['paper.id'], name=op.f('fk_paper_item_paper_id_paper'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_version_id'], ['question_version.id'], name=op.f('fk_paper_item_question_version_id_question_version')),
    sa.ForeignKeyConstraint(['section_id'], ['exam_section.id'], name=op.f('fk_paper_item_section_id_exam_section')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paper_item')),
    sa.UniqueConstraint('paper_id', 'position', name='uq_paper_item_position'),
    sa.UniqueConstraint('paper_id', 'public_id', name='uq_paper_item_public_id')
    )
    op.create_table('response',
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('saved_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempt.id'], name=op.f('fk_response_attempt_id_attempt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['paper_item.id'], name=op.f('fk_response_item_id_paper_item')),
    sa.PrimaryKeyConstraint('attempt_id', 'item_id', name=op.f('pk_response'))
    )
    op.create_table('response_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('choices', sa.Text(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('machine', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempt.id'], name=op.f('fk_response_log_attempt_id_attempt')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_response_log'))
    )
    with op.batch_alter_table('response_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_response_log_attempt_id'), ['attempt_id'], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER response_log_no_{verb.lower()} BEFORE {verb} ON response_log "
                       f"BEGIN SELECT RAISE(ABORT, 'response_log is append-only: {verb} refused'); END")
    else:
        # audit_refuse_change() comes from revision 0001.
        op.execute("CREATE TRIGGER response_log_append_only BEFORE UPDATE OR DELETE ON response_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")


def downgrade() -> None:
    with op.batch_alter_table('response_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_response_log_attempt_id'))

    op.drop_table('response_log')
    op.drop_table('response')
    op.drop_table('paper_item')
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_attempt_open_deadline')

    op.drop_table('attempt')
    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paper_exam_id'))

    op.drop_table('paper')
    op.drop_table('exam_pool')
    with op.batch_alter_table('candidate_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_candidate_session_candidate_id'))

    op.drop_table('candidate_session')
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_candidate_sitting_id'))
        batch_op.drop_index(batch_op.f('ix_candidate_exam_id'))

    op.drop_table('candidate')
    with op.batch_alter_table('blueprint_cell', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blueprint_cell_section_id'))

    op.drop_table('blueprint_cell')
    with op.batch_alter_table('sitting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sitting_exam_id'))

    op.drop_table('sitting')
    with op.batch_alter_table('exam_section', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exam_section_exam_id'))

    op.drop_table('exam_section')
    op.drop_table('exam')
