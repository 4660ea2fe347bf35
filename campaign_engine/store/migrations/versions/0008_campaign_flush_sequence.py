"""campaigns.flushed: the number of the campaign workflow's last flush written, so a late
flush (a retried or replayed local activity finishing after a newer one) writes nothing

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('campaigns', sa.Column('flushed', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    op.drop_column('campaigns', 'flushed')
