"""rate_limit_windows: the API's per-key request counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:20:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_limit_windows',
    sa.Column('key_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('route_class', sa.String(length=32), nullable=False),
    sa.Column('window_seconds', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key_hash', 'route_class', 'window_seconds', 'window_start')
    )
    op.create_index('ix_rate_limit_windows_start', 'rate_limit_windows', ['window_start'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rate_limit_windows_start', table_name='rate_limit_windows')
    op.drop_table('rate_limit_windows')
