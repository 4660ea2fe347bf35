"""campaigns, contacts and attempts

Revision ID: 0001
Revises: 
Create Date: 2026-12-01 23:18:44.024425
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attempts',
    sa.Column('idempotency_key', sa.Text(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('contact_key', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('call_id', sa.Text(), nullable=True),
    sa.Column('from_number', sa.String(length=32), nullable=True),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('hangup_cause', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('recording_url', sa.Text(), nullable=True),
    sa.Column('analysis', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('idempotency_key')
    )
    op.create_index('ix_attempts_contact', 'attempts', ['tenant_id', 'campaign_id', 'contact_key', 'attempt'], unique=False)
    op.create_index('ix_attempts_tenant_placed', 'attempts', ['tenant_id', 'placed_at'], unique=False)
    op.create_table('campaigns',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('agent_id', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('progress', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('talk_seconds', sa.Float(), server_default='0', nullable=False),
    sa.Column('total_contacts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('received_contacts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('duplicates_merged', sa.Integer(), server_default='0', nullable=False),
    sa.Column('idempotency_key', sa.Text(), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id'),
    sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_campaigns_idempotency_key')
    )
    op.create_index('ix_campaigns_tenant_created', 'campaigns', ['tenant_id', 'created_at'], unique=False)
    op.create_table('contacts',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('custom_data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timezone', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('disposition', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_outcome', sa.String(length=16), nullable=True),
    sa.Column('next_call_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('talk_seconds', sa.Float(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'key'),
    sa.UniqueConstraint('tenant_id', 'campaign_id', 'phone', name='uq_contacts_phone')
    )
    op.create_index('ix_contacts_state', 'contacts', ['tenant_id', 'campaign_id', 'state', 'key'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_contacts_state', table_name='contacts')
    op.drop_table('contacts')
    op.drop_index('ix_campaigns_tenant_created', table_name='campaigns')
    op.drop_table('campaigns')
    op.drop_index('ix_attempts_tenant_placed', table_name='attempts')
    op.drop_index('ix_attempts_contact', table_name='attempts')
    op.drop_table('attempts')
