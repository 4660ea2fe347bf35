"""Determinism: the workflows replay the histories of real runs (temporalio's Replayer).

Golden histories of the current design are committed under tests/histories/ (plain,
paused and resumed, redialled, appended, continued-as-new, canceled): every later change to
a workflow is replayed against them, so a change that would break running campaigns fails
here (roll it out with workflow.patched or Worker Deployment Versioning, see README). The
same runs are recorded afresh on each test run and replayed too; RECORD_HISTORIES=1 writes
them over the committed ones (after a deliberate, rolled-out change of workflow shape).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from campaign_engine.models import AppendNotice, CampaignStatus, RedialPolicy
from campaign_engine.settings import Settings
from campaign_engine.store import roster
from campaign_engine.store.db import store_engine
from tests.helpers import launch_campaign, make_config, make_contacts, wait_for
from tests.test_contact_timers import sim_settings
from worker import WORKFLOWS, running_worker
from workflows.campaign import CampaignWorkflow
from workflows.sandbox import WORKFLOW_RUNNER

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER)


async def assert_replays(histories: list[WorkflowHistory]) -> None:
    for history in histories:
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (history.workflow_id, result.replay_failure)


async def histories_of(client, wf_id: str, contacts: int) -> list[WorkflowHistory]:
    """Every run of the campaign, and each contact's workflow."""
    out = []
    async for execution in client.list_workflows(f"WorkflowId = '{wf_id}'"):
        out.append(await client.get_workflow_handle(wf_id, run_id=execution.run_id).fetch_history())
    for key in range(contacts):
        out.append(await client.get_workflow_handle(f"{wf_id}/contact/{key}").fetch_history())
    return out


async def test_recorded_campaign_histories_replay_cleanly(dev_env, carrier_db, task_queue):
    # Every call busy: each contact is redialled once, so the campaign cannot end before the
    # pause that follows its launch (with answered calls it sometimes did).
    settings = sim_settings(carrier_db, task_queue, "busy=1")
    runs: dict[str, list[WorkflowHistory]] = {}
    async with running_worker(dev_env.client, settings):
        # Redialled, appended, continued as new (2 contacts per run), paused and resumed.
        config = make_config(f"CAMP-RP-{uuid.uuid4().hex[:6]}", children_per_run=2,
                             redial=RedialPolicy(enabled=True, max_attempts=2, retry_intervals=[2]))
        contacts = make_contacts(6)
        handle = await launch_campaign(dev_env.client, config, contacts[:4], task_queue=task_queue)
        await handle.execute_update(CampaignWorkflow.pause)
        db = store_engine(Settings())
        appended = await roster.append_contacts(db, config.tenant_id, config.campaign_id, contacts[4:])
        await db.dispose()
        await handle.execute_update(CampaignWorkflow.contacts_appended, AppendNotice(total_contacts=appended.total))
        await handle.execute_update(CampaignWorkflow.resume)
        summary = await handle.result()
        assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == 6
        assert summary.calls_placed == 12  # every busy call was redialled once
        runs["redialled_appended_paused_continued"] = await histories_of(dev_env.client, handle.id, 6)
        assert len(runs["redialled_appended_paused_continued"]) >= 6 + 3

        # Canceled while its contacts wait to redial.
        config = make_config(f"CAMP-RPC-{uuid.uuid4().hex[:6]}",
                             redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[3600]))
        handle = await launch_campaign(dev_env.client, config, make_contacts(2), task_queue=task_queue)
        await wait_for(lambda: handle.query(CampaignWorkflow.progress),
                       lambda p: p.pending_redials + p.by_state.get("done", 0) == 2, what="contacts waiting to redial")
        await handle.execute_update(CampaignWorkflow.cancel)
        assert (await handle.result()).status == CampaignStatus.CANCELED
        runs["canceled"] = await histories_of(dev_env.client, handle.id, 2)

    for histories in runs.values():
        await assert_replays(histories)
    if os.environ.get("RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        for name, histories in runs.items():
            (HISTORIES / f"{name}.json").write_text(json.dumps(
                [{"workflow_id": h.workflow_id, "history": json.loads(h.to_json())} for h in histories]))


async def test_committed_golden_histories_replay():
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "tests/histories/ holds the golden histories (RECORD_HISTORIES=1 writes them)"
    for path in files:
        histories = [WorkflowHistory.from_json(h["workflow_id"], h["history"]) for h in json.loads(path.read_text())]
        await assert_replays(histories)
