"""Durable timers on the time-skipping server: scheduled calls and hours-long redials."""

from __future__ import annotations

import uuid
from datetime import timedelta


from activities.providers.simulated import CarrierLedger
from campaign_engine.models import CampaignStatus, ContactState, Outcome, RedialPolicy
from campaign_engine.settings import Settings
from tests.helpers import campaign_input, make_config, make_contacts
from worker import running_worker
from workflows.campaign import CampaignWorkflow


def sim_settings(carrier_db, task_queue, outcomes: str) -> Settings:
    return Settings(
        TEMPORAL_TASK_QUEUE=task_queue,
        SIMULATED_CARRIER_DB=carrier_db,
        SIMULATED_OUTCOMES=outcomes,
        SIMULATED_RING_SECONDS="0",
        SIMULATED_TALK_SECONDS="0",
    )


async def test_four_hour_redials_and_next_day_schedule_pass_in_seconds(ts_env, carrier_db, task_queue):
    settings = sim_settings(carrier_db, task_queue, "no-answer=1")
    start = await ts_env.get_current_time()
    contacts = make_contacts(2)
    contacts[1].scheduled_at = start + timedelta(days=1)
    config = make_config(
        f"CAMP-TS-{uuid.uuid4().hex[:6]}",
        is_scheduled=True,
        redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[4 * 3600]),
    )
    async with running_worker(ts_env.client, settings):
        handle = await ts_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, contacts),
            id=f"campaign/acme/{config.campaign_id}", task_queue=task_queue,
        )
        summary = await handle.result()
        progress = await handle.query(CampaignWorkflow.progress)
    assert summary.status == CampaignStatus.COMPLETED
    assert summary.by_disposition == {Outcome.NO_ANSWER.value: 2}
    assert summary.calls_placed == 6
    assert progress.by_state == {ContactState.DONE.value: 2}
    assert all(c.attempts == 3 for c in progress.contacts)
    ledger = CarrierLedger(carrier_db)
    calls = ledger.calls(config.campaign_id)
    assert len(calls) == 6
    by_contact: dict[str, list] = {}
    for call in calls:
        by_contact.setdefault(call["contact_workflow_id"], []).append(call)
    immediate = by_contact[f"campaign/acme/{config.campaign_id}/contact/0"]
    scheduled = by_contact[f"campaign/acme/{config.campaign_id}/contact/1"]
    assert [c["attempt"] for c in immediate] == [1, 2, 3]
    assert [c["attempt"] for c in scheduled] == [1, 2, 3]
