"""`total_calls_today` across midnight: a campaign that started before the day began counts
only the calls placed since (read from its contacts' attempts), one that ended before counts
none, and one that started today counts every call without reading attempts.

The boundary is put in the gap between a campaign's first calls and its redials, which is
where a midnight rollover would fall; the expected counts come from the simulated carrier's
own record of when each call was placed, not from the engine's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from api.routes import monitoring
from api.routes.lifecycle import campaign_handle
from tests.conftest import running_engine
from tests.helpers import wait_for
from workflows.campaign import CampaignWorkflow


def _placed(value) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def test_calls_today_counts_only_the_calls_after_midnight(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, SIMULATED_OUTCOMES="busy=1",
                              SIMULATED_RING_SECONDS="0.05", SIMULATED_TALK_SECONDS="0") as engine:
        body = {"campaignName": "Across midnight", "agentId": "a",
                "contacts": [{"phone_number": f"+9198{i:08d}"} for i in range(4)],
                "redialConfig": {"enabled": True, "maxAttempts": 2, "retryIntervals": [3]}}
        resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
        assert resp.status_code == 200, resp.text
        cid = resp.json()["data"]["campaign"]["campaignId"]
        handle = campaign_handle(engine.client, "acme", cid)
        await wait_for(lambda: handle.query(CampaignWorkflow.progress), lambda p: p.finished_at is not None,
                       timeout=60, what="the campaign to finish")

        times = sorted(_placed(c["placed_at"]) for c in engine.ledger.calls(cid))
        assert len(times) == 8  # four first calls, four redials
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        widest = max(range(len(gaps)), key=gaps.__getitem__)
        assert gaps[widest] > timedelta(seconds=1.5), times  # first calls, then the redials 3 s later
        midnight = times[widest] + gaps[widest] / 2

        snap = await monitoring.snapshot(engine.client, handle, cid)
        sem = asyncio.Semaphore(4)
        assert snap.progress.started_at < midnight < snap.progress.finished_at
        # Started before midnight, ended after: only the redials count.
        assert await monitoring._calls_today(snap, midnight, sem) == len(times) - (widest + 1) == 4
        # The day began before the campaign did: every call, from the counters alone.
        assert await monitoring._calls_today(snap, snap.progress.started_at - timedelta(seconds=1), sem) == 8
        # The campaign ended before the day began: none.
        assert await monitoring._calls_today(snap, snap.progress.finished_at + timedelta(seconds=1), sem) == 0
