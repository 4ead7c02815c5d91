"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 18:44:16.426201
"""
from alembic import op
import sqlalchemy as sa
import nowcast_db.database.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # messages.run_id and worker_runs.triggered_by refer to each other: SQLite
    # takes the forward reference inline, other databases get it afterwards.
    sqlite = op.get_bind().dialect.name == "sqlite"
    run_fk = [_run_fk()] if sqlite else []
    op.create_table('manager_state',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('updated_at', nowcast_db.database.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_manager_state'))
    )
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', nowcast_db.database.models.UTCDateTime(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('type', sa.String(length=200), nullable=True),
    sa.Column('payload', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('reply_type', sa.String(length=200), nullable=False),
    sa.Column('reply_payload', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    *run_fk,
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_messages_message_id'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_messages_source_type', ['source', 'type'], unique=False)

    op.create_table('checklist',
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('value', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('updated_at', nowcast_db.database.models.UTCDateTime(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_checklist_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_checklist'))
    )
    op.create_table('checklist_mutations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('operation', sa.String(length=20), nullable=False),
    sa.Column('before', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('after', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('at', nowcast_db.database.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_checklist_mutations_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checklist_mutations'))
    )
    with op.batch_alter_table('checklist_mutations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checklist_mutations_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_checklist_mutations_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_checklist_mutations_message_id'), ['message_id'], unique=False)

    op.create_table('worker_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('module', sa.String(length=400), nullable=True),
    sa.Column('args', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('launched_by', sa.String(length=20), nullable=False),
    sa.Column('triggered_by', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('command', nowcast_db.database.models.Value(none_as_null=True), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('final_message_type', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('launched_at', nowcast_db.database.models.UTCDateTime(), nullable=False),
    sa.Column('started_at', nowcast_db.database.models.UTCDateTime(), nullable=True),
    sa.Column('finished_at', nowcast_db.database.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['triggered_by'], ['messages.id'], name=op.f('fk_worker_runs_triggered_by_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_runs'))
    )
    with op.batch_alter_table('worker_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_runs_launched_at'), ['launched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_worker_runs_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_worker_runs_triggered_by'), ['triggered_by'], unique=False)
        batch_op.create_index('ix_worker_runs_worker_launched_at', ['worker', 'launched_at'], unique=False)

    if not sqlite:
        op.create_foreign_key(
            op.f('fk_messages_run_id_worker_runs'), 'messages', 'worker_runs', ['run_id'], ['id'],
            ondelete='SET NULL',
        )


def _run_fk():
    return sa.ForeignKeyConstraint(
        ['run_id'], ['worker_runs.id'], name=op.f('fk_messages_run_id_worker_runs'), ondelete='SET NULL'
    )


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('fk_messages_run_id_worker_runs'), 'messages', type_='foreignkey')
    with op.batch_alter_table('worker_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_worker_runs_worker_launched_at')
        batch_op.drop_index(batch_op.f('ix_worker_runs_triggered_by'))
        batch_op.drop_index(batch_op.f('ix_worker_runs_state'))
        batch_op.drop_index(batch_op.f('ix_worker_runs_launched_at'))

    op.drop_table('worker_runs')
    with op.batch_alter_table('checklist_mutations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checklist_mutations_message_id'))
        batch_op.drop_index(batch_op.f('ix_checklist_mutations_key'))
        batch_op.drop_index(batch_op.f('ix_checklist_mutations_at'))

    op.drop_table('checklist_mutations')
    op.drop_table('checklist')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_source_type')
        batch_op.drop_index(batch_op.f('ix_messages_run_id'))
        batch_op.drop_index(batch_op.f('ix_messages_received_at'))

    op.drop_table('messages')
    op.drop_table('manager_state')
