"""contacts.consent: a contact's consent to be called (source, obtained_at, text or reference), issue 14

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:20:00.000000
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('contacts', sa.Column('consent', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('contacts', 'consent')
