"""How contacts' final reports reach the campaign across its runs (dev server).

A contact dialled with its start reports its end as its workflow result, which only the
campaign run that started it sees; before that run continues as new it hands the contacts
still open over to report by signal. Nothing may be lost or counted twice on either path.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from activities.providers.simulated import CarrierLedger
from campaign_engine.models import (
    CampaignInput,
    CampaignStatus,
    ContactCallInput,
    ContactState,
    Outcome,
    RedialPolicy,
)
from campaign_engine.packing import pack_contacts
from tests.helpers import campaign_input, incompressible_text, make_config, make_contacts, wait_for
from tests.test_contact_timers import sim_settings
from worker import running_worker
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow


async def signal_names(handle) -> list[str]:
    names = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            names.append(event.workflow_execution_signaled_event_attributes.signal_name)
    return names


async def signals_sent(handle) -> int:
    n = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            n += 1
    return n


async def test_final_reports_reach_the_campaign_across_continue_as_new(dev_env, task_queue, carrier_db):
    # 60 contacts, 15 children per run: four runs, each continuing as new while most of its
    # contacts are still on a call (0.5-1.5 s), so they are handed over.
    settings = sim_settings(carrier_db, task_queue, "completed=3,busy=1").model_copy(
        update={"simulated_talk_seconds": "0.5-1.5"})
    n = 60
    config = make_config(f"CAMP-RUNS-{uuid.uuid4().hex[:6]}", children_per_run=15)
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, make_contacts(n)), id=wf_id, task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 120)
        progress = await handle.query(CampaignWorkflow.progress)

    assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == n
    assert progress.run >= 4
    ledger = CarrierLedger(carrier_db)
    calls = ledger.calls(config.campaign_id)
    ledger.close()
    assert len(calls) == n and len({c["idempotency_key"] for c in calls}) == n
    # Every call counted once, by the outcome the carrier gave it.
    assert summary.calls_placed == n and sum(summary.outcome_counts.values()) == n
    by_key = {int(c["idempotency_key"].split("/contact/")[1].split("/")[0]): c["outcome"] for c in calls}
    assert all(c.state == ContactState.DONE for c in progress.contacts)
    assert {c.key: c.disposition.value for c in progress.contacts} == by_key
    # Both paths were taken: contacts handed over reported their end by signal, the others
    # (the last run's, at least) only by their result, without a signal.
    handed_over = by_result = 0
    for key in range(n):
        child = dev_env.client.get_workflow_handle(f"{wf_id}/contact/{key}")
        signalled = await signals_sent(child)
        if "report_by_signal" in await signal_names(child):
            handed_over += 1
            assert signalled == 1, key
        else:
            by_result += 1
            assert signalled == 0, key
    assert handed_over > 0 and by_result >= 15, (handed_over, by_result)


async def terminate_contacts_on_a_call(dev_env, task_queue, carrier_db, config, n: int, *, before_terminating=None):
    """Run a campaign of n contacts on 10-minute calls; once all n are on a call, terminate
    every contact workflow (as an operator would in the Web UI). Returns the campaign's
    summary, its progress and its handle."""
    settings = sim_settings(carrier_db, task_queue, "completed=1").model_copy(
        update={"simulated_talk_seconds": "600"})
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, make_contacts(n)), id=wf_id, task_queue=task_queue)
        ledger = CarrierLedger(carrier_db)

        async def calls_placed() -> int:
            return len(ledger.calls(config.campaign_id))

        await wait_for(calls_placed, lambda placed: placed == n, what=f"all {n} contacts on a call")
        ledger.close()
        contacts = [dev_env.client.get_workflow_handle(f"{wf_id}/contact/{key}") for key in range(n)]
        if before_terminating:
            await before_terminating(contacts)
        for contact in contacts:
            await contact.terminate("operator")
        summary = await asyncio.wait_for(handle.result(), 30)
        progress = await handle.query(CampaignWorkflow.progress)
    return summary, progress, handle


async def test_a_terminated_contact_workflow_ends_its_contact(dev_env, task_queue, carrier_db):
    config = make_config(f"CAMP-TERM-{uuid.uuid4().hex[:6]}")
    summary, progress, handle = await terminate_contacts_on_a_call(dev_env, task_queue, carrier_db, config, 2)
    assert summary.status == CampaignStatus.COMPLETED
    assert summary.by_disposition == {Outcome.FAILED.value: 2}
    assert summary.calls_placed == 2  # both calls went out (the carrier has them): still counted
    assert all("ended without a result" in (c.reason or "") for c in progress.contacts)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_terminated_contact_of_an_earlier_run_ends_its_contact(dev_env, task_queue, carrier_db):
    # 4 contacts, 2 children per run: the first run's two are on a call when it continues as
    # new, so they are handed over and report by signal only. All four are then terminated:
    # the second run sees its own children's end as their result, and must find the other two
    # by looking (without that, it waited for ever).
    config = make_config(f"CAMP-TERM2-{uuid.uuid4().hex[:6]}", children_per_run=2,
                         ended_contacts_check_seconds=0.5)

    async def two_handed_over(contacts) -> None:
        assert ["report_by_signal" in await signal_names(c) for c in contacts] == [True, True, False, False]

    summary, progress, _ = await terminate_contacts_on_a_call(
        dev_env, task_queue, carrier_db, config, 4, before_terminating=two_handed_over)
    assert summary.status == CampaignStatus.COMPLETED and progress.run == 2
    assert summary.by_disposition == {Outcome.FAILED.value: 4} and summary.calls_placed == 4
    reasons = {c.key: c.reason for c in progress.contacts}
    assert all("was terminated without reporting its end" in reasons[k] for k in (0, 1)), reasons
    assert all("ended without a result" in reasons[k] for k in (2, 3)), reasons


async def test_batches_that_never_come_are_counted_missing_not_waited_for(ts_env, carrier_db, task_queue):
    # An upload of 5 whose request broke off after the start (3 contacts) and was not retried.
    settings = sim_settings(carrier_db, task_queue, "completed=1")
    config = make_config(f"CAMP-MISS-{uuid.uuid4().hex[:6]}")
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(ts_env.client, settings):
        handle = await ts_env.client.start_workflow(
            CampaignWorkflow.run,
            CampaignInput(config=config, contacts=make_contacts(3), expected_contacts=5),
            id=wf_id, task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 60)
        progress = await handle.query(CampaignWorkflow.progress)
    assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == 3
    assert summary.calls_placed == 3
    assert progress.missing_contacts == 2 and progress.expected_contacts == 3
    assert progress.finished_at - progress.started_at >= timedelta(minutes=15)


async def test_waiting_contacts_that_do_not_fit_in_continue_as_new_are_started_on_their_own(
        dev_env, task_queue, carrier_db):
    """Contacts waiting for a later run travel in the continue-as-new input with their
    custom_data, which Temporal refuses over 2 MB. Here every contact carries 2 KB that does
    not compress and the carry limit is lowered to 40 KB: the run starts the waiting contacts
    that do not fit as workflows of their own. Every contact is called once, with its data."""
    settings = sim_settings(carrier_db, task_queue, "completed=1")
    n = 60
    contacts = [c.model_copy(update={"custom_data": {"notes": incompressible_text(2000, c.key)}})
                for c in make_contacts(n)]
    config = make_config(f"CAMP-CARRY-{uuid.uuid4().hex[:6]}", children_per_run=10, carry_limit_bytes=40_000,
                         is_context_based=True)
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, contacts), id=wf_id, task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 120)
        progress = await handle.query(CampaignWorkflow.progress)

    assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == n
    assert progress.run >= 2 and all(c.state == ContactState.DONE for c in progress.contacts)
    ledger = CarrierLedger(carrier_db)
    calls = ledger.calls(config.campaign_id)
    ledger.close()
    assert len(calls) == n and len({c["to"] for c in calls}) == n
    by_phone = {c.phone: c.custom_data["notes"] for c in contacts}
    assert all(call["variables"]["notes"] == by_phone[call["to"]] for call in calls)
    # Both ways were taken: children of a campaign run, and workflows started on their own.
    children = on_their_own = 0
    for key in range(n):
        desc = await dev_env.client.get_workflow_handle(f"{wf_id}/contact/{key}").describe()
        if desc.parent_id:
            children += 1
        else:
            on_their_own += 1
    assert children >= 10 and on_their_own > 0, (children, on_their_own)


async def test_child_starts_go_in_batches_small_enough_for_one_workflow_task(dev_env, task_queue, carrier_db):
    """Each child's input holds its contact and the campaign's configuration, and a batch of
    child starts travels in one workflow task completion, which Temporal refuses over 4 MB
    (it then terminates the run). 200 contacts at 15 KB, with 500 caller ids in the
    configuration, are about 5 MB: the batch must be split by size."""
    import workflows.campaign as campaign_module

    settings = sim_settings(carrier_db, task_queue, "completed=1")
    n = 220
    contacts = [c.model_copy(update={"custom_data": {"notes": "x" * 15_000}}) for c in make_contacts(n)]
    from_numbers = [f"+1415555{i:04d}" for i in range(500)]
    config = make_config(f"CAMP-BATCH-{uuid.uuid4().hex[:6]}", from_numbers=from_numbers)
    assert len(ContactCallInput(campaign_workflow_id="x", config=config, contact=contacts[0])
               .model_dump_json()) * campaign_module.START_BATCH > 4_500_000
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            CampaignWorkflow.run,
            CampaignInput(config=config, packed_contacts=pack_contacts(contacts), expected_contacts=n),
            id=wf_id, task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 120)
    assert summary.status == CampaignStatus.COMPLETED and summary.calls_placed == n


async def test_a_server_that_cannot_list_workflows_does_not_hold_a_campaign_up(ts_env, carrier_db, task_queue):
    # The time-skipping test server has no visibility: every check for ended contact
    # workflows fails. Contacts handed over to a second run wait 4 hours for their redials
    # (24 checks): the campaign still completes, every call made once.
    settings = sim_settings(carrier_db, task_queue, "no-answer=1")
    config = make_config(f"CAMP-NOVIS-{uuid.uuid4().hex[:6]}", children_per_run=2,
                         redial=RedialPolicy(enabled=True, max_attempts=2, retry_intervals=[4 * 3600]))
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(ts_env.client, settings):
        handle = await ts_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, make_contacts(3)), id=wf_id, task_queue=task_queue)
        summary = await asyncio.wait_for(handle.result(), 120)
    assert summary.status == CampaignStatus.COMPLETED
    assert summary.by_disposition == {Outcome.NO_ANSWER.value: 3} and summary.calls_placed == 6
    ledger = CarrierLedger(carrier_db)
    assert len({c["idempotency_key"] for c in ledger.calls(config.campaign_id)}) == 6
    ledger.close()
    failed_checks = 0
    async for event in ts_env.client.get_workflow_handle(wf_id).fetch_history_events():  # the last run
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failed_checks += 1
    assert failed_checks >= 1  # the checks did run, and failed


async def test_contacts_of_a_terminated_campaign_end_instead_of_waiting_for_ever(dev_env, carrier_db, task_queue):
    # An operator terminates the campaign's workflow while its contacts wait to redial. When
    # the wait is over each asks the campaign for the call, finds it gone, and ends (canceled)
    # without dialling: no call without the campaign's go-ahead, and no workflow left open.
    settings = sim_settings(carrier_db, task_queue, "no-answer=1")
    config = make_config(f"CAMP-GONE-{uuid.uuid4().hex[:6]}",
                         redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[3]))
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, make_contacts(2)), id=wf_id, task_queue=task_queue)

        async def states():
            return sorted(c.state.value for c in (await handle.query(CampaignWorkflow.progress)).contacts)

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
