"""Histories recorded from real runs replay without non-determinism (Replayer)."""

from __future__ import annotations

import uuid

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from campaign_engine.models import CampaignInput, CampaignStatus, ContactBatch, RedialPolicy
from campaign_engine.packing import pack_contacts
from tests.helpers import make_config, make_contacts
from tests.test_contact_timers import sim_settings
from worker import WORKFLOWS, running_worker
from workflows.campaign import CampaignWorkflow
from workflows.sandbox import WORKFLOW_RUNNER


async def test_recorded_campaign_histories_replay_cleanly(ts_env, carrier_db, task_queue):
    settings = sim_settings(carrier_db, task_queue, "busy=1")
    config = make_config(f"CAMP-RP-{uuid.uuid4().hex[:6]}",
                         redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[600, 3600]))
    wf_id = f"campaign/acme/{config.campaign_id}"
    contacts = make_contacts(6)
    async with running_worker(ts_env.client, settings):
        # As the API starts one: compressed contacts in the start, the rest by signal.
        handle = await ts_env.client.start_workflow(
            CampaignWorkflow.run,
            CampaignInput(config=config, packed_contacts=pack_contacts(contacts[:4]), expected_contacts=6),
            id=wf_id, task_queue=task_queue)
        await handle.signal(CampaignWorkflow.add_contacts,
                            ContactBatch(chunk_id="upload-1", packed=pack_contacts(contacts[4:])))
        summary = await handle.result()
    assert summary.status == CampaignStatus.COMPLETED
    histories = [await handle.fetch_history()]
    for key in range(6):
        histories.append(await ts_env.client.get_workflow_handle(f"{wf_id}/contact/{key}").fetch_history())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER)
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (history.workflow_id, result.replay_failure)
    # Every contact was redialled twice, so timers and signals are in what was replayed.
    assert summary.calls_placed == 18
