"""Activities between the campaign workflow and the store (PostgreSQL): the flush of what
changed, the pages of contacts to launch, and the contacts silent for too long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from campaign_engine.models import CampaignProgress, ContactState, LaunchPageRequest, LaunchRow
from campaign_engine.policy.eta import campaign_eta
from campaign_engine.store import roster
from campaign_engine.store.records import CampaignChanges
from campaign_engine.store.tables import campaigns


class SilentContactsRequest(BaseModel):
    tenant_id: str
    campaign_id: str
    grace_seconds: float
    call_bound_seconds: float


class RecordActivities:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    @activity.defn
    async def record_campaign_changes(self, changes: CampaignChanges) -> CampaignProgress:
        """What changed for the campaign's contacts and attempts since the last flush, and the
        campaign's progress computed from its rows, in one transaction (idempotent: a retry
        writes the same values). Answers the progress as written."""
        async with self.db.begin() as conn:
            # The campaign's row locked first: flushes are written one at a time, in order.
            row = (await conn.execute(select(campaigns.c.progress, campaigns.c.flushed).where(
                campaigns.c.tenant_id == changes.tenant_id, campaigns.c.campaign_id == changes.campaign_id,
            ).with_for_update())).first()
            last = CampaignProgress.model_validate(row.progress) if row is not None and row.progress else None
            if row is not None and last is not None and row.flushed > changes.flush:
                # A late attempt of an earlier flush after a newer one was written: it must not
                # put older figures back. Normal, not a fault: a workflow task the server
                # refused (a signal came as the run completed) is replayed, and the flushes whose
                # markers it had not recorded run again.
                activity.logger.info("flush %d of %s is older than the store's (%d): not written",
                                     changes.flush, changes.campaign_id, row.flushed)
                return last
            await roster.write_changes(conn, changes)
            if changes.recount or last is None:
                figures = await roster.row_figures(conn, changes.tenant_id, changes.campaign_id)
                eta = self._eta(changes, await roster.eta_rows(conn, changes.tenant_id, changes.campaign_id))
            else:  # a large campaign between recounts: the counts as last counted
                figures = roster.RowFigures(
                    by_state=last.by_state, by_disposition=last.by_disposition, redials_made=last.redials_made,
                    pending_redials=last.pending_redials, next_redial_at=last.next_redial_at)
                eta = last.estimated_completion
            progress = _progress(changes, figures, eta)
            await conn.execute(campaigns.update().where(
                campaigns.c.tenant_id == changes.tenant_id, campaigns.c.campaign_id == changes.campaign_id,
            ).values(
                status=changes.counters.status.value, progress=progress.model_dump(mode="json"), flushed=changes.flush,
                # total_contacts and duplicates_merged are the API's (uploads and appends write them).
                talk_seconds=changes.counters.answered_talk_seconds, started_at=progress.started_at,
                finished_at=progress.finished_at, updated_at=datetime.now(UTC),
                **({"config": changes.config.model_dump(mode="json")} if changes.config_changed else {}),
            ))
        return progress

    def _eta(self, changes: CampaignChanges, rows: list[tuple]) -> datetime | None:
        c = changes.counters
        if c.finished_at is not None:
            return c.finished_at
        due, zones, made = [], [], []
        for minute, attempts, contact_zones, n in rows:
            due.extend([minute] * n)
            zones.extend([contact_zones] * n)
            made.extend([attempts] * n)
        return campaign_eta(
            changes.config, datetime.now(UTC), due, contact_zones=zones, attempts_made=made,
            live_calls=c.live_calls, observed_calls=sum(c.outcome_counts.values()),
            observed_answered=c.answered_calls, observed_call_seconds=c.answered_talk_seconds,
        )

    @activity.defn
    async def load_launch_page(self, request: LaunchPageRequest) -> list[LaunchRow]:
        """The campaign's next contacts to launch, in key order (the store is the roster)."""
        return await roster.launch_page(self.db, request)

    @activity.defn
    async def find_silent_contacts(self, request: SilentContactsRequest) -> list[int]:
        """Open contacts that should have spoken by now (see roster.silent_contacts)."""
        return await roster.silent_contacts(
            self.db, request.tenant_id, request.campaign_id, now=datetime.now(UTC),
            grace=timedelta(seconds=request.grace_seconds), call_bound=timedelta(seconds=request.call_bound_seconds))


def _progress(changes: CampaignChanges, figures: roster.RowFigures, eta) -> CampaignProgress:
    c = changes.counters
    total = c.total_contacts
    final = sum(n for state, n in figures.by_state.items() if ContactState(state).is_final)
    return CampaignProgress(
        campaign_id=changes.campaign_id, name=c.name, status=c.status, total_contacts=total,
        expected_contacts=total, duplicates_merged=c.duplicates_merged, by_state=figures.by_state,
        by_disposition=figures.by_disposition, outcome_counts=c.outcome_counts, calls_placed=c.calls_placed,
        live_calls=c.live_calls, redials_made=figures.redials_made, pending_redials=figures.pending_redials,
        next_redial_at=figures.next_redial_at, percentage=round(100.0 * final / total, 1) if total else 0.0,
        estimated_completion=eta, started_at=c.started_at, finished_at=c.finished_at, run=c.run,
        pause_reason=c.pause_reason,
    )
