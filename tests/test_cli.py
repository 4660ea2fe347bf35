"""The `campaign-engine` command line against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from activities.providers.simulated import CarrierLedger
from cli_status import run_status
from tests.conftest import engine_settings
from tests.helpers import launch_campaign, make_config, make_contacts, wait_for
from worker import running_worker


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
        handle = await launch_campaign(dev_env.client, config, make_contacts(2), id=wf_id, task_queue=task_queue)

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


async def _cli(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    """`.venv/bin/campaign-engine ARGS`, as the README runs it."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "campaign-engine"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in (env or os.environ).items() if not k.startswith("TEMPORAL_")})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_every_temporal_command_names_an_unreachable_address_in_one_line_and_exits_2():
    for command in (["list"], ["status", "CAMP-2026-NOSUCH"], ["worker"]):
        status, out, err = await _cli(*command, "--address", "127.0.0.1:1", "--namespace", "elsewhere")
        assert status == 2, (command, status, out, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (command, err)
        assert "cannot reach Temporal at 127.0.0.1:1 (namespace elsewhere)" in err, (command, err)


def test_without_address_the_commands_use_the_temporal_up_uses(monkeypatch):
    import argparse

    import cli
    from campaign_engine.settings import Settings

    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    monkeypatch.setenv("TEMPORAL_PORT", "7999")
    monkeypatch.setattr(cli, "get_settings", Settings)  # (the process's own are cached)
    settings_for = cli.settings_for
    plain = settings_for(argparse.Namespace())
    assert (plain.resolved_temporal_address, plain.temporal_namespace) == ("127.0.0.1:7999", "default")
    given = settings_for(argparse.Namespace(address="temporal.internal:7233", namespace="campaigns"))
    assert (given.resolved_temporal_address, given.temporal_namespace) == ("temporal.internal:7233", "campaigns")


async def test_list_and_status_take_the_address_and_namespace_on_the_command_line(dev_env, task_queue, carrier_db):
    settings = engine_settings(dev_env, task_queue, carrier_db)
    address = dev_env.client.service_client.config.target_host
    config = make_config(f"CAMP-CLI-{uuid.uuid4().hex[:6]}")
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(dev_env.client, settings):
        handle = await launch_campaign(dev_env.client, config, make_contacts(1), id=wf_id, task_queue=task_queue)
        await handle.result()
        status, out, err = await _cli("status", wf_id, "--json", "--address", address, "--namespace", "default")
        assert status == 0, err
        assert json.loads(out)["campaign_id"] == config.campaign_id
        status, out, err = await _cli("list", "--json", "--address", address)
        assert status == 0, err
        assert wf_id in {row["workflow_id"] for row in json.loads(out)}
        # A namespace the server does not have: one line, exit 2.
        status, _, err = await _cli("list", "--address", address, "--namespace", "no-such-namespace")
        assert status == 2 and err.count("\n") == 1 and address in err, err
