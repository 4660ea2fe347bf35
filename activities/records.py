"""Activities that write the system of record (PostgreSQL) for the workflows."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from campaign_engine.store import repo
from campaign_engine.store.records import CampaignChanges


class RecordActivities:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    @activity.defn
    async def record_campaign_changes(self, changes: CampaignChanges) -> None:
        """The campaign's status and counters, and what changed for its contacts and
        attempts since the last flush, in one transaction (idempotent: a retry rewrites the
        same values)."""
        await repo.record_campaign_changes(self.db, changes)
