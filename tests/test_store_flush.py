"""The campaign's flush to the store (activities/records.py), against the real PostgreSQL:
a late attempt of an earlier flush writes nothing, and a large campaign's flush between
recounts keeps the last counts while still writing its rows."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.records import RecordActivities
from campaign_engine.models import CampaignStatus, ContactState, Outcome
from campaign_engine.settings import Settings
from campaign_engine.store import repo
from campaign_engine.store.db import store_engine
from campaign_engine.store.records import CampaignChanges, CampaignCounters, ContactChange
from campaign_engine.store.tables import campaigns
from tests.helpers import campaign_rows, make_config, make_contacts


@pytest.fixture
async def campaign():
    db = store_engine(Settings())
    config = make_config(f"CAMP-FLUSH-{os.urandom(3).hex()}")
    await repo.create_campaign(db, config, make_contacts(2), status=CampaignStatus.IN_PROGRESS,
                               counts=lambda: (2, 0))
    try:
        yield db, config
    finally:
        await db.dispose()


def flush(config, number: int, status: CampaignStatus, done: list[int], other: ContactState = ContactState.QUEUED,
          *, recount: bool = True) -> CampaignChanges:
    counters = CampaignCounters(name=config.name, status=status, total_contacts=2, duplicates_merged=0,
                                calls_placed=len(done), live_calls=0)
    changes = [ContactChange(key=k, state=ContactState.DONE if k in done else other,
                             disposition=Outcome.COMPLETED if k in done else None) for k in range(2)]
    return CampaignChanges(tenant_id=config.tenant_id, campaign_id=config.campaign_id, flush=number,
                           counters=counters, config=config, contacts=changes, recount=recount)


async def test_a_late_flush_writes_nothing_over_a_newer_one(campaign):
    # A flush's local activity attempt that finishes after a newer flush was written (it was
    # retried, or a replay ran it again) must not put older figures back; the same flush
    # again (a retry) is written again.
    db, config = campaign
    records, env = RecordActivities(db), ActivityEnvironment()
    await env.run(records.record_campaign_changes, flush(config, 2, CampaignStatus.COMPLETED, [0, 1]))
    late = await env.run(records.record_campaign_changes, flush(config, 1, CampaignStatus.IN_PROGRESS, []))
    assert late.status == CampaignStatus.COMPLETED  # the store's progress, as flush 2 wrote it
    async with db.connect() as conn:
        row = (await conn.execute(select(campaigns.c.status, campaigns.c.flushed).where(
            campaigns.c.campaign_id == config.campaign_id))).one()
    assert (row.status, row.flushed) == ("completed", 2)
    assert [c.state for c in await campaign_rows(config.tenant_id, config.campaign_id)] == [ContactState.DONE] * 2
    again = await env.run(records.record_campaign_changes, flush(config, 2, CampaignStatus.COMPLETED, [0, 1]))
    assert again.status == CampaignStatus.COMPLETED and again.by_state == {"done": 2}


async def test_between_recounts_the_counts_stay_and_the_rows_are_written(campaign):
    db, config = campaign
    records, env = RecordActivities(db), ActivityEnvironment()
    first = await env.run(records.record_campaign_changes, flush(config, 1, CampaignStatus.IN_PROGRESS, [0]))
    assert first.by_state == {"done": 1, "queued": 1}
    between = await env.run(records.record_campaign_changes,
                            flush(config, 2, CampaignStatus.IN_PROGRESS, [0, 1], recount=False))
    assert between.by_state == {"done": 1, "queued": 1} and between.calls_placed == 2  # counters are current
    assert [c.state for c in await campaign_rows(config.tenant_id, config.campaign_id)] == [ContactState.DONE] * 2
    recounted = await env.run(records.record_campaign_changes, flush(config, 3, CampaignStatus.IN_PROGRESS, [0, 1]))
    assert recounted.by_state == {"done": 2} and recounted.percentage == 100.0
