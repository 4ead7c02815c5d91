"""messages.synthesized

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 20:01:52.077426
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # a plain ADD COLUMN: SQLite's batch mode would rebuild the table, which the views of 0003 forbid
    op.add_column('messages', sa.Column('synthesized', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade():
    op.drop_column('messages', 'synthesized')

