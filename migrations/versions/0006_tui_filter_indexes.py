"""Indexes for nowcast-tui's filters: newest first by worker, by message type, errors

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:00:00

Each index ends with the id, so a filtered page (``WHERE worker = ? AND id < ?
ORDER BY id DESC LIMIT 200``) is read straight from the index, newest first,
without sorting every matching row: the TUI's filters stay fast on a history
of a million messages.  The errors index is partial: it holds only the few
messages that have an error.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

HAS_ERROR = sa.text("error IS NOT NULL")


def upgrade():
    # plain CREATE INDEX: batch mode would rebuild the tables under 0003's views
    op.create_index('ix_worker_runs_worker_id', 'worker_runs', ['worker', 'id'])
    op.create_index('ix_messages_source_id', 'messages', ['source', 'id'])
    op.create_index('ix_messages_type_id', 'messages', ['type', 'id'])
    op.create_index('ix_messages_errors', 'messages', ['id'], sqlite_where=HAS_ERROR, postgresql_where=HAS_ERROR)


def downgrade():
    op.drop_index('ix_messages_errors', 'messages')
    op.drop_index('ix_messages_type_id', 'messages')
    op.drop_index('ix_messages_source_id', 'messages')
    op.drop_index('ix_worker_runs_worker_id', 'worker_runs')
