"""`total_calls_today` across midnight: the store counts the attempts placed since the day
began (one SQL count, whatever the campaigns' size): a campaign that started before midnight
counts only its later calls, one that ended before counts none.

The boundary is put in the gap between a campaign's first calls and its redials, which is
where a midnight rollover would fall; the expected counts come from the simulated carrier's
own record of when each call was placed, not from the engine's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from api.campaign_calls import campaign_handle
from campaign_engine.store import repo
from campaign_engine.store.db import store_engine
from campaign_engine.store.tables import attempts
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
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        widest = max(range(len(gaps)), key=gaps.__getitem__)
        assert gaps[widest] > timedelta(seconds=1.5), times  # first calls, then the redials 3 s later
        midnight = times[widest] + gaps[widest] / 2

        db = store_engine(engine.settings)
        try:
            row = await repo.get_campaign(db, "acme", cid)
            assert row.started_at < midnight < row.finished_at
            # Started before midnight, ended after: only the redials count.
            assert await repo.calls_since(db, "acme", midnight) == len(times) - (widest + 1) == 4
            # The day began before the campaign did: every call.
            assert await repo.calls_since(db, "acme", row.started_at - timedelta(seconds=1)) == 8
            # The campaign ended before the day began: none; another tenant: none.
            assert await repo.calls_since(db, "acme", row.finished_at + timedelta(seconds=1)) == 0
            assert await repo.calls_since(db, "globex", row.started_at - timedelta(seconds=1)) == 0
            # The statuses' figure: the day's counter, one row per campaign, as the attempts say.
            days = [a.placed_at.astimezone(UTC).date() for a in await attempt_rows(db, cid)]
            today = datetime.now(UTC).date()
            assert len(days) == 8
            assert await repo.calls_on(db, "acme", today) == days.count(today)
            assert await repo.calls_on(db, "acme", today, [cid]) == days.count(today)
            assert await repo.calls_on(db, "acme", today, ["CAMP-2026-OTHER"]) == 0
            assert await repo.calls_on(db, "globex", today) == 0
            statuses = (await engine.http.get("/getCampaignStatuses", headers=engine.headers())).json()
            assert statuses["summary"]["total_calls_today"] == days.count(today)
        finally:
            await db.dispose()


async def attempt_rows(db, campaign_id: str) -> list:
    async with db.connect() as conn:
        return list((await conn.execute(select(attempts).where(attempts.c.campaign_id == campaign_id))).all())
