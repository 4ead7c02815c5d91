"""worker_runs.output_path: the file a launched run's stdout and stderr go to

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 21:35:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # a plain ADD COLUMN, as in 0004: batch mode would rebuild the table under 0003's views
    op.add_column('worker_runs', sa.Column('output_path', sa.String(1000), nullable=True))


def downgrade():
    op.drop_column('worker_runs', 'output_path')
