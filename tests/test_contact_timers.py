"""Durable timers on the time-skipping server: scheduled calls and hours-long redials."""

from __future__ import annotations

import uuid
from datetime import timedelta


from activities.providers.simulated import CarrierLedger
from campaign_engine.models import CampaignStatus, ContactState, Outcome, RedialPolicy, RedialUpdate
from campaign_engine.settings import Settings
from tests.helpers import store_contacts, launch_campaign, make_config, make_contacts, wait_for
from worker import running_worker
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow


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
        handle = await launch_campaign(ts_env.client, config, contacts,
            id=f"campaign/acme/{config.campaign_id}", task_queue=task_queue,
        )
        summary = await handle.result()
        progress = await handle.query(CampaignWorkflow.progress)
    assert summary.status == CampaignStatus.COMPLETED
    assert summary.by_disposition == {Outcome.NO_ANSWER.value: 2}
    assert summary.calls_placed == 6
    assert progress.by_state == {ContactState.DONE.value: 2}
    assert all(c.attempts == 3 for c in await store_contacts(config))
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


# --- PUT /updateCampaignData while contacts wait to redial: the waits are planned again -------


async def _busy_contact_waiting_four_hours(ts_env, carrier_db, task_queue):
    config = make_config(
        f"CAMP-TS-{uuid.uuid4().hex[:6]}",
        redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[4 * 3600]),
    )
    handle = await launch_campaign(ts_env.client, config, make_contacts(1),
        id=f"campaign/acme/{config.campaign_id}", task_queue=task_queue,
    )
    await wait_for(lambda: handle.query(CampaignWorkflow.progress),
                   lambda p: p.by_state.get(ContactState.REDIAL_WAIT.value) == 1, what="the redial wait")
    contact = ts_env.client.get_workflow_handle(f"{handle.id}/contact/0")
    return config, handle, contact


def _new_rules(*, max_attempts: int = 3, interval: int = 600) -> RedialUpdate:
    return RedialUpdate(redial=RedialPolicy(enabled=True, max_attempts=max_attempts, retry_intervals=[interval]))


async def test_new_rules_replan_a_redial_already_waiting(ts_env, carrier_db, task_queue):
    """Busy, waiting 4 h; the rules become 10 min: the redial comes 10 min after the call."""
    async with running_worker(ts_env.client, sim_settings(carrier_db, task_queue, "busy=1")):
        _, handle, contact = await _busy_contact_waiting_four_hours(ts_env, carrier_db, task_queue)
        await handle.execute_update(CampaignWorkflow.update_redial, _new_rules())
        summary = await handle.result()
        status = await contact.query(ContactCallWorkflow.status)
    assert summary.calls_placed == 3 and summary.by_disposition == {Outcome.BUSY.value: 1}
    first, second, third = (a.placed_at for a in status.attempts)
    assert timedelta(minutes=10) <= second - first < timedelta(minutes=11), second - first
    assert timedelta(minutes=10) <= third - second < timedelta(minutes=11), third - second


async def test_new_rules_replan_from_the_call_so_a_passed_time_redials_at_once(ts_env, carrier_db, task_queue):
    """Updated to 10 min when the contact has waited 30 min already: it redials at once."""
    async with running_worker(ts_env.client, sim_settings(carrier_db, task_queue, "busy=1")):
        _, handle, contact = await _busy_contact_waiting_four_hours(ts_env, carrier_db, task_queue)
        await ts_env.sleep(timedelta(minutes=30))
        await handle.execute_update(CampaignWorkflow.update_redial, _new_rules(max_attempts=2))
        summary = await handle.result()
        status = await contact.query(ContactCallWorkflow.status)
    assert summary.calls_placed == 2
    first, second = (a.placed_at for a in status.attempts)
    assert timedelta(minutes=30) <= second - first < timedelta(minutes=35), second - first


async def test_new_rules_without_a_call_left_end_the_waiting_contact(ts_env, carrier_db, task_queue):
    async with running_worker(ts_env.client, sim_settings(carrier_db, task_queue, "busy=1")):
        config, handle, contact = await _busy_contact_waiting_four_hours(ts_env, carrier_db, task_queue)
        start = await ts_env.get_current_time()
        await handle.execute_update(CampaignWorkflow.update_redial, _new_rules(max_attempts=1))
        summary = await handle.result()
        status = await contact.query(ContactCallWorkflow.status)
    assert summary.calls_placed == 1 and summary.by_disposition == {Outcome.BUSY.value: 1}
    assert status.state == ContactState.DONE and len(status.attempts) == 1
    assert "redial configuration updated" in (status.reason or "") and "attempts used" in status.reason
    assert (await store_contacts(config))[0].reason == status.reason
    assert summary.finished_at - start < timedelta(minutes=1)
