"""results and the room: grading runs, scores, key corrections, outside scores, merit lists,
tie decisions, item statistics, incidents; proctor state on sittings and candidates;
compact key and choice masks for batch grading

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import exam.core.timeutil


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('grading_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('inputs_hash', sa.String(length=64), nullable=False),
    sa.Column('outputs_hash', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_grading_run_exam_id_exam')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grading_run'))
    )
    with op.batch_alter_table('grading_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grading_run_exam_id'), ['exam_id'], unique=False)

    op.create_table('merit_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.JSON(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('grading_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('published_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_merit_list_exam_id_exam')),
    sa.ForeignKeyConstraint(['grading_run_id'], ['grading_run.id'], name=op.f('fk_merit_list_grading_run_id_grading_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merit_list'))
    )
    with op.batch_alter_table('merit_list', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merit_list_exam_id'), ['exam_id'], unique=False)

    op.create_table('candidate_score',
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('grading_run_id', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_candidate_score_candidate_id_candidate')),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_candidate_score_exam_id_exam')),
    sa.ForeignKeyConstraint(['grading_run_id'], ['grading_run.id'], name=op.f('fk_candidate_score_grading_run_id_grading_run')),
    sa.PrimaryKeyConstraint('candidate_id', name=op.f('pk_candidate_score'))
    )
    with op.batch_alter_table('candidate_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidate_score_exam_id'), ['exam_id'], unique=False)

    op.create_table('external_score',
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=40), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('imported_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=64), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_external_score_candidate_id_candidate')),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_external_score_exam_id_exam')),
    sa.PrimaryKeyConstraint('candidate_id', 'component', name=op.f('pk_external_score'))
    )
    with op.batch_alter_table('external_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_external_score_exam_id'), ['exam_id'], unique=False)

    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sitting_id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=True),
    sa.Column('at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_incident_candidate_id_candidate')),
    sa.ForeignKeyConstraint(['sitting_id'], ['sitting.id'], name=op.f('fk_incident_sitting_id_sitting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident'))
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_sitting_id'), ['sitting_id'], unique=False)

    op.create_table('item_statistic',
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('question_version_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('computed_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_item_statistic_exam_id_exam')),
    sa.ForeignKeyConstraint(['question_id'], ['question.id'], name=op.f('fk_item_statistic_question_id_question')),
    sa.ForeignKeyConstraint(['question_version_id'], ['question_version.id'], name=op.f('fk_item_statistic_question_version_id_question_version')),
    sa.PrimaryKeyConstraint('exam_id', 'question_version_id', name=op.f('pk_item_statistic'))
    )
    with op.batch_alter_table('item_statistic', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_statistic_question_id'), ['question_id'], unique=False)

    op.create_table('key_correction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('question_version_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('correct', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('proposed_by', sa.String(length=64), nullable=False),
    sa.Column('proposed_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_key_correction_exam_id_exam')),
    sa.ForeignKeyConstraint(['question_version_id'], ['question_version.id'], name=op.f('fk_key_correction_question_version_id_question_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_correction'))
    )
    with op.batch_alter_table('key_correction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_correction_exam_id'), ['exam_id'], unique=False)

    op.create_table('tie_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('post', sa.String(length=200), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=False),
    sa.Column('decided_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], name=op.f('fk_tie_decision_candidate_id_candidate')),
    sa.ForeignKeyConstraint(['exam_id'], ['exam.id'], name=op.f('fk_tie_decision_exam_id_exam')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tie_decision'))
    )
    with op.batch_alter_table('tie_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tie_decision_exam_id'), ['exam_id'], unique=False)

    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('choice_masks', sa.LargeBinary(), nullable=True))

    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_in_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('absent_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('exam', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ranking', sa.JSON(), nullable=True))

    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_masks', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('version_ids', sa.LargeBinary(), nullable=True))

    with op.batch_alter_table('sitting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_seconds', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('closed_at', exam.core.timeutil.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('sitting', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
        batch_op.drop_column('paused_seconds')
        batch_op.drop_column('paused_at')
        batch_op.drop_column('opened_at')

    with op.batch_alter_table('paper', schema=None) as batch_op:
        batch_op.drop_column('version_ids')
        batch_op.drop_column('key_masks')

    with op.batch_alter_table('exam', schema=None) as batch_op:
        batch_op.drop_column('ranking')

    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.drop_column('absent_at')
        batch_op.drop_column('checked_in_at')

    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.drop_column('choice_masks')

    with op.batch_alter_table('tie_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tie_decision_exam_id'))

    op.drop_table('tie_decision')
    with op.batch_alter_table('key_correction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_correction_exam_id'))

    op.drop_table('key_correction')
    with op.batch_alter_table('item_statistic', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_statistic_question_id'))

    op.drop_table('item_statistic')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_sitting_id'))

    op.drop_table('incident')
    with op.batch_alter_table('external_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_score_exam_id'))

    op.drop_table('external_score')
    with op.batch_alter_table('candidate_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_candidate_score_exam_id'))

    op.drop_table('candidate_score')
    with op.batch_alter_table('merit_list', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merit_list_exam_id'))

    op.drop_table('merit_list')
    with op.batch_alter_table('grading_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grading_run_exam_id'))

    op.drop_table('grading_run')
