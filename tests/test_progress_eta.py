"""The running campaign's ETA uses each contact's own time zone for the calling window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from campaign_engine.policy.windows import CallingWindow, next_open
from tests.helpers import launch_campaign, make_config, make_contacts, wait_for
from tests.test_contact_timers import sim_settings
from worker import running_worker
from workflows.campaign import CampaignWorkflow


async def test_progress_eta_waits_for_the_window_in_each_contacts_zone(dev_env, task_queue, carrier_db):
    now = datetime.now(UTC)
    # A two-hour window that is open now in UTC (the window's fallback zone) and closed in
    # Tokyo (UTC+9), where the contacts are.
    start = time(now.hour)
    end = time((now.hour + 2) % 24) if now.hour < 22 else time(23, 59)
    window = CallingWindow(start_time=start, end_time=end, time_zone="UTC")
    contacts = make_contacts(3, zones=["Asia/Tokyo"])
    config = make_config(f"CAMP-ETA-{uuid.uuid4().hex[:6]}", calling_window=window, expected_call_seconds=60)
    handle = await launch_campaign(dev_env.client, config, contacts, task_queue=task_queue, start_paused=True)
    async with running_worker(dev_env.client, sim_settings(carrier_db, task_queue, "completed=1")):
        progress = await wait_for(lambda: handle.query(CampaignWorkflow.progress),
                                  lambda p: p.estimated_completion is not None, what="the first estimate")
    await handle.terminate("test done")
    tokyo_opens = next_open(now, window, ["Asia/Tokyo"], [])
    assert tokyo_opens is not None and tokyo_opens - now > timedelta(hours=6)
    # Not "a few minutes from now", as the window's own zone would say.
    assert progress.estimated_completion >= tokyo_opens
