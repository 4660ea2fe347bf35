"""The `campaign-engine` command line against the dev server."""

from __future__ import annotations

import asyncio
import json
import uuid

from activities.providers.simulated import CarrierLedger
from campaign_engine.cli import run_status
from tests.conftest import engine_settings
from tests.helpers import campaign_input, make_config, make_contacts, wait_for
from worker import running_worker
from workflows.campaign import CampaignWorkflow


async def test_cli_status_of_a_campaign_that_does_not_answer_says_so_in_one_line(dev_env, task_queue, carrier_db):
    settings = engine_settings(dev_env, task_queue, carrier_db)
    try:
        await run_status(settings, "campaign/acme/CAMP-2026-NOSUCH", watch=False, as_json=False)
    except SystemExit as exit_:
        message = str(exit_.code)
    else:
        raise AssertionError("run_status answered for a campaign that does not exist")
    assert "campaign/acme/CAMP-2026-NOSUCH does not answer queries" in message and "\n" not in message


async def test_cli_status_of_a_terminated_campaign_is_failed_and_watching_it_ends(
        dev_env, task_queue, carrier_db, capsys):
    # Terminated while its contacts are on 10-minute calls: its last recorded status is
    # in_progress, but the workflow has ended. `status` says failed, as the API does, and
    # `status --watch` returns instead of watching for ever.
    settings = engine_settings(dev_env, task_queue, carrier_db).model_copy(
        update={"simulated_talk_seconds": "600", "simulated_ring_seconds": "0"})
    config = make_config(f"CAMP-CLI-{uuid.uuid4().hex[:6]}")
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            CampaignWorkflow.run, campaign_input(config, make_contacts(2)), id=wf_id, task_queue=task_queue)

        ledger = CarrierLedger(carrier_db)

        async def calls_placed() -> int:
            return len(ledger.calls(config.campaign_id))

        await wait_for(calls_placed, lambda n: n == 2, what="both contacts on a call")
        ledger.close()
        await handle.terminate("operator")
        capsys.readouterr()
        assert await run_status(settings, wf_id, watch=False, as_json=True) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "failed"
        assert await asyncio.wait_for(run_status(settings, wf_id, watch=True, as_json=True), 30) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "failed"
    for key in range(2):
        await dev_env.client.get_workflow_handle(f"{wf_id}/contact/{key}").terminate("test over")
