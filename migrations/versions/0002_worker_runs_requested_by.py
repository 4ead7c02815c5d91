"""worker_runs.requested_by

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 19:05:00.795409
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('worker_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_by', sa.String(length=200), nullable=True))



def downgrade():
    with op.batch_alter_table('worker_runs', schema=None) as batch_op:
        batch_op.drop_column('requested_by')

