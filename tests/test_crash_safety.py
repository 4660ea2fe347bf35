"""Crash-safety, proven: SIGKILL the worker (twice), and the whole embedded stack.

The carrier's own record (the simulated carrier's SQLite ledger, outside every killed
process) must show every contact called, no (contact, attempt) dialled twice, and
attempts numbered without gaps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.providers.simulated import CarrierLedger
from api.main import create_app
from campaign_engine.models import CampaignStatus, ContactState
from tests.conftest import API_KEY, engine_settings
from tests.fakes.serve import serve_asgi
from tests.helpers import free_port, launch_campaign, make_config, make_contacts, wait_for
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

CARRIER_ENV = {
    "SIMULATED_OUTCOMES": "completed=0.4,no-answer=0.3,busy=0.2,failed=0.1",
    "SIMULATED_RING_SECONDS": "0.2-1",
    "SIMULATED_TALK_SECONDS": "0.2-1",
}


def campaign_body(n: int, name: str) -> dict:
    return {
        "campaignName": name,
        "agentId": "agent-crash",
        "isContextBasedCall": True,
        "redialConfig": {"enabled": True, "maxAttempts": 3, "retryIntervals": [1, 2]},
        "contacts": [
            {"phone_number": f"+9198{i:08d}", "name": f"Contact {i}", "custom_data": {"row": i}}
            for i in range(n)
        ],
    }


def assert_carrier_record_is_clean(ledger: CarrierLedger, campaign_id: str, n_contacts: int) -> dict:
    calls = ledger.calls(campaign_id)
    by_contact: dict[str, list[int]] = defaultdict(list)
    keys = set()
    for call in calls:
        assert call["idempotency_key"] not in keys, f"dialled twice: {call['idempotency_key']}"
        keys.add(call["idempotency_key"])
        by_contact[call["contact_workflow_id"]].append(call["attempt"])
    # Nobody skipped, nobody's attempt dialled twice, attempts without gaps.
    assert len(by_contact) == n_contacts
    for wf_id, attempts in by_contact.items():
        assert sorted(attempts) == list(range(1, len(attempts) + 1)), (wf_id, attempts)
    return {c["idempotency_key"]: c for c in calls}


async def assert_workflows_agree_with_carrier(client: Client, campaign_wf_id: str, calls: dict, n: int) -> None:
    handle = client.get_workflow_handle_for(CampaignWorkflow.run, campaign_wf_id)
    progress = await handle.query(CampaignWorkflow.progress)
    assert progress.status == CampaignStatus.COMPLETED
    assert progress.by_state == {ContactState.DONE.value: n}
    assert progress.calls_placed == len(calls)
    for key in range(n):
        status = await client.get_workflow_handle(f"{campaign_wf_id}/contact/{key}").query(ContactCallWorkflow.status)
        for attempt in status.attempts:
            carrier_call = calls[f"{campaign_wf_id}/contact/{key}/attempt-{attempt.attempt}"]
            assert attempt.call_id == carrier_call["call_id"]
            assert attempt.outcome.value == carrier_call["outcome"]
        assert len(status.attempts) == sum(1 for k in calls if k.startswith(f"{campaign_wf_id}/contact/{key}/"))


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


async def test_worker_killed_twice_campaign_completes_without_double_dial(dev_env, task_queue, tmp_path):
    n = 100
    carrier_db = tmp_path / "carrier.sqlite3"
    settings = engine_settings(dev_env, task_queue, carrier_db, **CARRIER_ENV)
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "TEMPORAL_TASK_QUEUE": task_queue,
           "SIMULATED_CARRIER_DB": str(carrier_db), **CARRIER_ENV}
    ledger = CarrierLedger(carrier_db)
    worker = start_worker(env)
    try:
        async with serve_asgi(create_app(settings), lifespan="on") as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                resp = await http.post("/uploadCampaignDataAndRun", json=campaign_body(n, "crash"),
                                       headers={"x-api-key": API_KEY})
        assert resp.status_code == 200, resp.text
        campaign_id = resp.json()["data"]["campaign"]["campaignId"]
        wf_id = f"campaign/acme/{campaign_id}"

        # Kill while first calls are in the air, then again while redials are under way.
        await wait_for(lambda: asyncio.to_thread(lambda: len(ledger.calls(campaign_id))), lambda c: c >= 30,
                       timeout=120, what="30 calls placed")
        kill(worker)
        worker = start_worker(env)
        await wait_for(lambda: asyncio.to_thread(lambda: len([c for c in ledger.calls(campaign_id) if c["attempt"] > 1])),
                       lambda c: c >= 10, timeout=120, what="10 redials placed")
        kill(worker)
        worker = start_worker(env)

        handle = dev_env.client.get_workflow_handle_for(CampaignWorkflow.run, wf_id)
        summary = await asyncio.wait_for(handle.result(), timeout=240)
        assert summary.status == CampaignStatus.COMPLETED
        assert summary.total_contacts == n
        calls = assert_carrier_record_is_clean(ledger, campaign_id, n)
        await assert_workflows_agree_with_carrier(dev_env.client, wf_id, calls, n)
        # Retries really happened (the ledger saw requests it did not turn into calls) or the
        # kills landed between dials; either way no key became two calls.
        assert ledger.request_count() >= len(calls)
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(10)
        ledger.close()


async def test_worker_killed_while_final_reports_cross_continue_as_new(dev_env, task_queue, tmp_path):
    """No redial, no cap: every contact reports its end as its result, and the campaign hands
    the open ones over at each continue-as-new (25 children a run). A SIGKILL in the middle
    must lose no report and dial nobody twice."""
    n = 100
    carrier_db = tmp_path / "carrier.sqlite3"
    carrier_env = {**CARRIER_ENV, "SIMULATED_OUTCOMES": "completed=0.5,busy=0.5"}
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_TASK_QUEUE": task_queue, "SIMULATED_CARRIER_DB": str(carrier_db), **carrier_env}
    config = make_config(f"CAMP-CAN-{task_queue}", children_per_run=25)
    wf_id = f"campaign/acme/{config.campaign_id}"
    ledger = CarrierLedger(carrier_db)
    worker = start_worker(env)
    try:
        handle = await launch_campaign(dev_env.client, config, make_contacts(n), id=wf_id, task_queue=task_queue)
        await wait_for(lambda: asyncio.to_thread(lambda: len(ledger.calls(config.campaign_id))), lambda c: c >= 40,
                       timeout=120, what="40 calls placed (past the first continue-as-new)")
        kill(worker)
        worker = start_worker(env)
        summary = await asyncio.wait_for(handle.result(), timeout=240)
        progress = await handle.query(CampaignWorkflow.progress)
        assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == n
        assert progress.run >= 4
        calls = assert_carrier_record_is_clean(ledger, config.campaign_id, n)
        assert len(calls) == n  # one call each: no redial
        assert summary.calls_placed == n and sum(summary.outcome_counts.values()) == n
        await assert_workflows_agree_with_carrier(dev_env.client, wf_id, calls, n)
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(10)
        ledger.close()


async def _start_stack(env: dict, cwd: Path, api_port: int) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "campaign-engine"
    proc = subprocess.Popen([str(exe), "up"], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    async def ready() -> bool:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"campaign-engine up exited {proc.returncode}: {out[-2000:]}")
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"http://127.0.0.1:{api_port}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_for(ready, bool, timeout=90, what="campaign-engine up to serve")
    return proc


async def test_whole_stack_killed_and_restarted_on_same_data(tmp_path):
    n = 20
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    carrier_db = tmp_path / "carrier.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"},
        "API_PORT": str(api_port), "TEMPORAL_PORT": str(temporal_port), "TEMPORAL_UI_PORT": str(ui_port),
        "CAMPAIGN_DATA_DIR": str(tmp_path / ".data"), "CAMPAIGN_API_KEYS": f"acme:{API_KEY}",
        "SIMULATED_CARRIER_DB": str(carrier_db), **CARRIER_ENV,
    }
    ledger = CarrierLedger(carrier_db)
    stack = await _start_stack(env, tmp_path, api_port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as http:
            resp = await http.post("/uploadCampaignDataAndRun", json=campaign_body(n, "stack-crash"),
                                   headers={"x-api-key": API_KEY})
        assert resp.status_code == 200, resp.text
        campaign_id = resp.json()["data"]["campaign"]["campaignId"]
        await wait_for(lambda: asyncio.to_thread(lambda: len(ledger.calls(campaign_id))), lambda c: c >= 8,
                       timeout=60, what="8 calls placed")
        # Everything at once: the API, the worker and the Temporal server.
        os.killpg(stack.pid, signal.SIGKILL)
        stack.wait(10)

        stack = await _start_stack(env, tmp_path, api_port)
        client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=pydantic_data_converter)
        wf_id = f"campaign/acme/{campaign_id}"
        handle = client.get_workflow_handle_for(CampaignWorkflow.run, wf_id)
        summary = await asyncio.wait_for(handle.result(), timeout=180)
        assert summary.status == CampaignStatus.COMPLETED
        calls = assert_carrier_record_is_clean(ledger, campaign_id, n)
        await assert_workflows_agree_with_carrier(client, wf_id, calls, n)

        # Ctrl-C stops everything cleanly, the Temporal server included.
        stack.send_signal(signal.SIGINT)
        assert stack.wait(30) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", temporal_port), timeout=1).close()
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
        ledger.close()
