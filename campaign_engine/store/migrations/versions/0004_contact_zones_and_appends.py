"""contacts.zones (what a contact's workflow needs comes from its row) and appends (idempotent appends)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:10:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('contacts', sa.Column('zones', postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                                        server_default='[]'))
    op.create_table('appends',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('first_key', sa.Integer(), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'key_hash')
    )


def downgrade() -> None:
    op.drop_table('appends')
    op.drop_column('contacts', 'zones')
