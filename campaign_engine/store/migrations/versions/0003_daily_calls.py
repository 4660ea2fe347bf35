"""daily_calls: calls placed per campaign and UTC day (total_calls_today in a row per campaign)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:45:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('daily_calls',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'day', 'campaign_id')
    )
    # Attempts recorded before this revision.
    op.execute("INSERT INTO daily_calls (tenant_id, campaign_id, day, calls) "
               "SELECT tenant_id, campaign_id, (placed_at AT TIME ZONE 'UTC')::date, count(*) FROM attempts "
               "WHERE placed_at IS NOT NULL AND provider IS NOT NULL GROUP BY 1, 2, 3")


def downgrade() -> None:
    op.drop_table('daily_calls')
