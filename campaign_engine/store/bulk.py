"""A new campaign whose contacts arrive as a stream (a CSV or Excel upload of any size).

The campaign's row and its contacts are written in one transaction, page by page: each page
of valid rows goes by COPY into a temporary staging table (with its file row number), and at
the end one statement moves the first row of every number into `contacts` with keys
0, 1, 2, ... in file order. Duplicates are found by PostgreSQL, not by a set in the API's
memory, so memory stays flat whatever the file's size. Nothing is visible until the commit, and
a failure (bad input, a lost connection) rolls everything back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic_core import to_json
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from campaign_engine.models import CampaignConfig, CampaignStatus, Contact, ContactState
from campaign_engine.store.contact_copy import consent_json
from campaign_engine.store.tables import campaigns

STAGE_COLUMNS = ["row", "phone", "name", "email", "custom_data", "scheduled_at", "timezone", "zones", "consent"]


@dataclass
class BulkResult:
    total: int          # contacts written (duplicates merged)
    duplicates: int


class CampaignExists(Exception):
    """The Idempotency-Key (or campaign id) is taken: the existing row."""

    def __init__(self, row: Row) -> None:
        super().__init__(row.campaign_id)
        self.row = row


async def begin_campaign(conn: AsyncConnection, config: CampaignConfig, *, status: CampaignStatus,
                         idempotency_key: str | None, fingerprint: str | None) -> None:
    """The campaign's row (no contacts yet) and the staging table, in `conn`'s transaction;
    CampaignExists when the key was used before (nothing written)."""
    now = datetime.now(UTC)
    inserted = await conn.execute(
        insert(campaigns).values(
            tenant_id=config.tenant_id, campaign_id=config.campaign_id, object_id=config.object_id,
            name=config.name, agent_id=config.agent_id, status=status.value,
            config=config.model_dump(mode="json"), total_contacts=0, received_contacts=0,
            duplicates_merged=0, idempotency_key=idempotency_key, fingerprint=fingerprint,
            created_at=config.created_at, updated_at=now,
        ).on_conflict_do_nothing().returning(campaigns.c.campaign_id))
    if inserted.first() is None:
        existing = await conn.execute(select(campaigns).where(
            campaigns.c.tenant_id == config.tenant_id,
            (campaigns.c.idempotency_key == idempotency_key) if idempotency_key
            else (campaigns.c.campaign_id == config.campaign_id)))
        raise CampaignExists(existing.one())
    await conn.execute(text(
        "CREATE TEMPORARY TABLE upload_stage (row integer NOT NULL, phone text NOT NULL, name text, email text, "
        "custom_data text NOT NULL, scheduled_at timestamptz, timezone text, zones text NOT NULL, consent text) "
        "ON COMMIT DROP"))


async def stage_page(conn: AsyncConnection, rows: Sequence[tuple[int, Contact]]) -> None:
    """One page of valid (file row, Contact) pairs into the staging table, by COPY."""
    if not rows:
        return
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table("upload_stage", columns=STAGE_COLUMNS, records=[
        (n, c.phone, c.name, c.email, to_json(c.custom_data).decode(), c.scheduled_at, c.timezone, to_json(c.zones).decode(),
         consent_json(c)) for n, c in rows])


async def finish_campaign(conn: AsyncConnection, config: CampaignConfig, *, received: int) -> BulkResult:
    """Move the staged rows into `contacts` (the first row of each number, keys in file order)
    and record the campaign's totals."""
    result = await conn.execute(text(
        "INSERT INTO contacts (tenant_id, campaign_id, key, phone, name, email, custom_data, scheduled_at, "
        "timezone, zones, state, next_call_at, consent) "
        "SELECT :tenant, :campaign, (row_number() OVER (ORDER BY row)) - 1, phone, name, email, "
        "custom_data::jsonb, scheduled_at, timezone, zones::jsonb, :state, scheduled_at, consent::jsonb "
        "FROM (SELECT DISTINCT ON (phone) * FROM upload_stage ORDER BY phone, row) AS firsts"),
        {"tenant": config.tenant_id, "campaign": config.campaign_id, "state": ContactState.PENDING.value})
    total = result.rowcount
    staged = (await conn.execute(text("SELECT count(*) FROM upload_stage"))).scalar_one()
    await conn.execute(update(campaigns).where(
        campaigns.c.tenant_id == config.tenant_id, campaigns.c.campaign_id == config.campaign_id).values(
        total_contacts=total, received_contacts=received, duplicates_merged=staged - total))
    return BulkResult(total=total, duplicates=staged - total)
