"""start_contact_workflows: contacts a campaign starts outside its children are started once,
however often the activity runs (a retry after a worker crash runs it again)."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.contact_starter import ContactStarter
from campaign_engine.models import ContactCallInput, ContactStartRequest
from campaign_engine.packing import pack_contacts
from tests.helpers import make_config, make_contacts


async def test_a_retried_start_starts_nobody_twice_even_after_a_contact_finished(dev_env, task_queue):
    config = make_config(f"CAMP-START-{uuid.uuid4().hex[:6]}")
    campaign_wf_id = f"campaign/acme/{config.campaign_id}"
    contacts = make_contacts(5)
    request = ContactStartRequest(campaign_workflow_id=campaign_wf_id, task_queue=task_queue, config=config,
                                  packed_contacts=pack_contacts(contacts))
    starter = ContactStarter(dev_env.client)
    heartbeats: list = []
    env = ActivityEnvironment()
    env.on_heartbeat = heartbeats.append

    assert await env.run(starter.start_contact_workflows, request) == 5
    handles = [dev_env.client.get_workflow_handle(f"{campaign_wf_id}/contact/{c.key}") for c in contacts]
    first_runs = [(await h.describe()).run_id for h in handles]
    # One contact's workflow has ended (here: terminated) before the retry.
    await handles[0].terminate("done before the retry")

    assert await env.run(starter.start_contact_workflows, request) == 0
    assert [(await h.describe()).run_id for h in handles] == first_runs
    assert (await handles[0].describe()).status == WorkflowExecutionStatus.TERMINATED
    described = await handles[1].describe()
    assert described.status == WorkflowExecutionStatus.RUNNING and described.parent_id is None
    # Each started with its own contact, and not granted its first call (it asks the campaign).
    history = await handles[3].fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    payload = ContactCallInput.model_validate_json(started.input.payloads[0].data)
    assert payload.contact == contacts[3] and payload.first_call_granted is False
    assert payload.campaign_workflow_id == campaign_wf_id
    assert heartbeats  # progress is reported while it runs
    for h in handles[1:]:
        await h.terminate("test over")
