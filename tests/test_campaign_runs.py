"""How contacts' reports reach the campaign across its runs (dev server).

Contacts report by signal to the campaign's workflow id, whichever run is current, except
that one dialled with its start ends with its final report as its result, seen by the run
that started it (a run that continues as new first tells such children to report by signal);
a contact whose workflow closed without its final report (terminated by an operator) is found
by the campaign's check on silent contacts. Nothing may be lost or
counted twice, and the campaign's carried state stays bounded by what is in flight.
"""

from __future__ import annotations

import asyncio

import uuid

from temporalio.api.enums.v1 import EventType

from activities.providers.simulated import CarrierLedger
from campaign_engine.ids import contact_workflow_id
from campaign_engine.models import CampaignStatus, ContactState, Outcome, RedialPolicy
from tests.helpers import launch_campaign, make_config, make_contacts, store_contacts, wait_for
from tests.test_contact_timers import sim_settings
from worker import running_worker
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow


async def continue_as_new_inputs(client, wf_id: str) -> list[int]:
    """The size (bytes) of every continue-as-new input of the campaign's runs."""
    sizes = []
    async for execution in client.list_workflows(f"WorkflowId = '{wf_id}'"):
        async for event in client.get_workflow_handle(wf_id, run_id=execution.run_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                attrs = event.workflow_execution_continued_as_new_event_attributes
                sizes.append(sum(len(p.data) for p in attrs.input.payloads))
    return sizes


async def test_reports_reach_the_campaign_across_continue_as_new(dev_env, task_queue, carrier_db):
    # 60 contacts, 15 launched per run: four runs or more, each continuing as new while most of
    # its contacts are still on a call (0.5-1.5 s); they report to whichever run is current.
    settings = sim_settings(carrier_db, task_queue, "completed=3,busy=1").model_copy(
        update={"simulated_talk_seconds": "0.5-1.5"})
    n = 60
    config = make_config(f"CAMP-RUNS-{uuid.uuid4().hex[:6]}", children_per_run=15)
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await launch_campaign(dev_env.client, config, make_contacts(n), id=wf_id, task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 120)
        progress = await handle.query(CampaignWorkflow.progress)

    assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == n
    assert progress.run >= 4
    ledger = CarrierLedger(carrier_db)
    calls = ledger.calls(config.campaign_id)
    ledger.close()
    assert len(calls) == n and len({c["idempotency_key"] for c in calls}) == n
    assert summary.calls_placed == n and sum(summary.outcome_counts.values()) == n
    by_key = {int(c["idempotency_key"].split("/contact/")[1].split("/")[0]): c["outcome"] for c in calls}
    rows = await store_contacts(config)
    assert all(c.state == ContactState.DONE for c in rows)
    assert {c.key: c.disposition.value for c in rows} == by_key
    # What continue-as-new carried: counters and what was in flight, never the roster.
    sizes = await continue_as_new_inputs(dev_env.client, wf_id)
    assert len(sizes) >= 3 and max(sizes) < 16_000, sizes
    # Both ways of reporting an end were taken: as the result (no signal from the contact at
    # all), and by signal after a run handed its open children over.
    by_result, handed_over = 0, 0
    for key in range(n):
        events = [e.event_type async for e in dev_env.client.get_workflow_handle(
            contact_workflow_id(wf_id, key)).fetch_history_events()]
        signals_sent = events.count(EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
        told = events.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        by_result += signals_sent == 0
        handed_over += told >= 1 and signals_sent == 1
    assert by_result >= 5 and handed_over >= 5, (by_result, handed_over)


async def test_a_full_dial_queue_turns_contacts_away_until_there_is_room(dev_env, task_queue, carrier_db):
    # One call at a time, at most two requests queued, one contact launched ahead: the others
    # are told to ask again later, and every contact is still called exactly once.
    settings = sim_settings(carrier_db, task_queue, "completed=1").model_copy(
        update={"simulated_talk_seconds": "0.2"})
    config = make_config(f"CAMP-FULL-{uuid.uuid4().hex[:6]}", max_concurrent_calls=1, dial_queue_limit=2,
                         launch_ahead=1, expected_call_seconds=0.2)
    n = 8
    async with running_worker(dev_env.client, settings):
        handle = await launch_campaign(dev_env.client, config, make_contacts(n), task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 120)
    assert summary.status == CampaignStatus.COMPLETED and summary.calls_placed == n
    ledger = CarrierLedger(carrier_db)
    assert len({c["idempotency_key"] for c in ledger.calls(config.campaign_id)}) == n
    ledger.close()


async def terminate_contacts_on_a_call(dev_env, task_queue, carrier_db, config, n: int):
    """Run a campaign of n contacts on 10-minute calls; once all n are on a call, terminate
    every contact workflow (as an operator would in the Web UI). Returns the campaign's
    summary and progress."""
    settings = sim_settings(carrier_db, task_queue, "completed=1").model_copy(
        update={"simulated_talk_seconds": "600"})
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await launch_campaign(dev_env.client, config, make_contacts(n), id=wf_id, task_queue=task_queue)
        ledger = CarrierLedger(carrier_db)

        async def calls_placed() -> int:
            return len(ledger.calls(config.campaign_id))

        await wait_for(calls_placed, lambda placed: placed == n, what=f"all {n} contacts on a call")
        ledger.close()
        for key in range(n):
            await dev_env.client.get_workflow_handle(f"{wf_id}/contact/{key}").terminate("operator")
        summary = await asyncio.wait_for(handle.result(), 60)
        progress = await handle.query(CampaignWorkflow.progress)
    return summary, progress


async def test_terminated_contact_workflows_end_their_contacts(dev_env, task_queue, carrier_db):
    # 4 contacts, 2 launched per run: contacts of the first run and of the second, all on a
    # call, are terminated; the campaign's check on silent contacts finds every one.
    config = make_config(f"CAMP-TERM-{uuid.uuid4().hex[:6]}", children_per_run=2, silent_contact_check_seconds=0.5)
    summary, progress = await terminate_contacts_on_a_call(dev_env, task_queue, carrier_db, config, 4)
    assert summary.status == CampaignStatus.COMPLETED and progress.run >= 2
    assert summary.by_disposition == {Outcome.FAILED.value: 4}
    assert summary.calls_placed == 4  # the calls went out (the carrier has them): still counted
    assert all("closed without reporting its end" in (c.reason or "") for c in await store_contacts(config))


async def test_contacts_of_a_terminated_campaign_end_instead_of_waiting_for_ever(dev_env, carrier_db, task_queue):
    # An operator terminates the campaign's workflow while its contacts wait to redial. When
    # the wait is over each asks the campaign for the call, finds it gone, and ends (canceled)
    # without dialling: no call without the campaign's go-ahead, and no workflow left open.
    settings = sim_settings(carrier_db, task_queue, "no-answer=1")
    config = make_config(f"CAMP-GONE-{uuid.uuid4().hex[:6]}",
                         redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[3]))
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await launch_campaign(dev_env.client, config, make_contacts(2), id=wf_id, task_queue=task_queue)

        async def states():
            return sorted(c.state.value for c in await store_contacts(config))

        await wait_for(states, lambda s: s == ["redial_wait", "redial_wait"], what="both contacts waiting to redial")
        await handle.terminate("operator")
        contacts = [dev_env.client.get_workflow_handle_for(ContactCallWorkflow.run, f"{wf_id}/contact/{key}")
                    for key in range(2)]
        results = [await asyncio.wait_for(c.result(), 30) for c in contacts]
    assert [r.state for r in results] == [ContactState.CANCELED, ContactState.CANCELED]
    assert all("campaign's workflow has ended" in (r.reason or "") for r in results)
    assert [len(r.attempts) for r in results] == [1, 1]
    ledger = CarrierLedger(carrier_db)
    assert len(ledger.calls(config.campaign_id)) == 2  # the first calls only
    ledger.close()

