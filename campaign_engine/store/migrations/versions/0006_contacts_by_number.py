"""contacts by tenant and number: the frequency cap counts one number's attempts across campaigns

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:40:00.000000
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_contacts_tenant_phone', 'contacts', ['tenant_id', 'phone'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_contacts_tenant_phone', table_name='contacts')
