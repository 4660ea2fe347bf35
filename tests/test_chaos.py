"""Chaos: a seeded random schedule SIGKILLs the worker, the Temporal server and PostgreSQL
during a campaign of 300 contacts with redials; each is started again, and at the end the
carrier's ledger and the engine's records agree exactly (issue 16, "Found by machines").

The Temporal server is this test's own `temporal server start-dev` on a SQLite file (as
`campaign-engine up` runs it, campaign_engine/devserver.py), so it can be killed and started
again with its state kept. Kills happen when the ledger has grown by a random number of calls
since the last restart, never after a guessed sleep.

Replay a failure with CHAOS_SEED=<the printed seed>.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from types import SimpleNamespace

import httpx
import pytest
from temporalio.client import Client

from activities.providers.simulated import CarrierLedger
from api.main import create_app
from campaign_engine import devserver
from campaign_engine.models import CampaignStatus, ContactState
from tests.conftest import API_KEY, engine_settings
from tests.fakes.serve import serve_asgi
from tests.helpers import wait_for
from tests.test_crash_safety import campaign_body, free_port, kill
from tests.test_store_crash import STORE_DOWN_SIGNS, Store, assert_store_agrees_with_carrier, start_worker
from workflows.campaign import CampaignWorkflow

pytestmark = pytest.mark.slow

N_CONTACTS = 300
DEFAULT_SEED = 16
NAMESPACE = "default"
CARRIER_ENV = {
    "SIMULATED_OUTCOMES": "completed=0.4,no-answer=0.35,busy=0.25",
    "SIMULATED_RING_SECONDS": "0.05-0.2",
    "SIMULATED_TALK_SECONDS": "0.05-0.2",
}
KINDS = ("worker", "temporal", "postgres")


def chaos_schedule(rng: random.Random) -> list[str]:
    """Six kills: each kind at least once, the rest drawn, in a shuffled order."""
    kills = list(KINDS) + [rng.choice(KINDS) for _ in range(3)]
    rng.shuffle(kills)
    return kills


class TemporalServer:
    """`temporal server start-dev` on a SQLite file: SIGKILLed, it starts again with its state."""

    def __init__(self, data_dir, log_file) -> None:
        self.data_dir, self.log_file = data_dir, log_file
        self.port, self.ui_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    async def start(self) -> Client:
        self.proc = devserver.start_dev_server(self.data_dir, self.port, self.ui_port, NAMESPACE, self.log_file)
        return await devserver.wait_until_serving(self.address, NAMESPACE, self.proc, timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            devserver.stop(self.proc)


async def test_chaos_worker_temporal_and_postgres_killed_records_agree_with_carrier(
        task_queue, tmp_path, postgres, module_database):
    seed = int(os.environ.get("CHAOS_SEED") or DEFAULT_SEED)
    print(f"\nCHAOS_SEED={seed}")
    rng = random.Random(seed)
    schedule = chaos_schedule(rng)
    began = time.monotonic()
    timeline: list[str] = [f"seed {seed}, schedule {schedule}"]

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic() - began:5.1f}s {what}")

    n = N_CONTACTS
    carrier_db = tmp_path / "carrier.sqlite3"
    temporal = TemporalServer(tmp_path / "temporal", tmp_path / "temporal.log")
    client = await temporal.start()
    settings = engine_settings(SimpleNamespace(client=client), task_queue, carrier_db, **CARRIER_ENV,
                               TEMPORAL_ADDRESS=temporal.address, DATABASE_URL=module_database)
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal.address, "TEMPORAL_NAMESPACE": NAMESPACE,
           "TEMPORAL_TASK_QUEUE": task_queue, "SIMULATED_CARRIER_DB": str(carrier_db),
           "DATABASE_URL": module_database, **CARRIER_ENV}
    ledger = CarrierLedger(carrier_db)
    worker_log = tmp_path / "worker.log"
    worker = start_worker(env, worker_log)
    campaign_id = ""

    def calls() -> int:
        return len(ledger.calls(campaign_id))

    async def ledger_count() -> int:
        # A worker that died by itself (not by our SIGKILL) fails the test at once.
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        return await asyncio.to_thread(calls)

    try:
        async with (serve_asgi(create_app(settings), lifespan="on") as base_url,
                    httpx.AsyncClient(base_url=base_url, timeout=30, headers={"x-api-key": API_KEY}) as http):
            b = campaign_body(n, "chaos")
            b["redialConfig"] = {"enabled": True, "maxAttempts": 3, "retryIntervals": [1]}
            b["maxConcurrentCalls"] = 30  # calls spread over the campaign, so the kills land mid-way
            resp = await http.post("/uploadCampaignDataAndRun", json=b)
            assert resp.status_code == 200, resp.text
            campaign_id = resp.json()["data"]["campaign"]["campaignId"]
            wf_id = f"campaign/acme/{campaign_id}"
            store = Store(module_database, campaign_id)

            for i, what in enumerate(schedule):
                # The moment: the ledger has grown by a random number of calls since the last restart.
                threshold = await ledger_count() + rng.randint(20, 60)
                await wait_for(ledger_count, lambda c, threshold=threshold: c >= threshold, timeout=60,
                               what=f"kill {i + 1} ({what}) at {threshold} calls")
                at = await ledger_count()
                if what == "worker":
                    kill(worker)
                    mark(f"kill {i + 1}: worker at {at} calls")
                    worker = start_worker(env, worker_log)
                elif what == "temporal":
                    temporal.kill()
                    mark(f"kill {i + 1}: temporal at {at} calls")
                    client = await temporal.start()
                    mark(f"temporal restarted at {calls()} calls")
                else:
                    killed_pid = postgres.pid
                    log_mark = len(worker_log.read_text(errors="replace"))
                    postgres.kill()
                    assert not postgres.running
                    mark(f"kill {i + 1}: postgres at {at} calls")

                    # Down until the worker has met it down (a dial or a flush refused): dials
                    # read the store first, so nobody is dialled meanwhile.
                    def refused(since: int = log_mark) -> bool:
                        text = worker_log.read_text(errors="replace")[since:]
                        return any(sign in text for sign in STORE_DOWN_SIGNS)

                    await wait_for(lambda: asyncio.to_thread(refused), bool, timeout=30,
                                   what="the worker meeting the stopped store")
                    postgres.ensure_running()
                    assert postgres.running and postgres.pid != killed_pid
                    mark(f"postgres restarted at {calls()} calls")

            handle = client.get_workflow_handle_for(CampaignWorkflow.run, wf_id)
            summary = await asyncio.wait_for(handle.result(), timeout=120)
            mark("campaign workflow completed")
            assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == n
            campaign = await wait_for(lambda: http.get(f"/campaigns/{campaign_id}"),
                                      lambda r: r.status_code == 200 and r.json()["status"] == "completed",
                                      timeout=30, what="GET /campaigns/{id} to say completed")
            campaign = campaign.json()

        ledger_calls = await assert_store_agrees_with_carrier(client, store, ledger, wf_id, n)
        assert campaign["calls_placed"] == summary.calls_placed == len(ledger_calls)
        assert campaign["by_state"] == {ContactState.DONE.value: n}
        redials = sum(1 for c in ledger_calls.values() if c["attempt"] > 1)
        assert redials > 0
        mark(f"checked: {len(ledger_calls)} calls ({redials} redials), runs {campaign['run']}")
    except (AssertionError, TimeoutError) as err:
        # Every failure names the seed, so it can be replayed.
        log = worker_log.read_text(errors="replace") if worker_log.exists() else ""
        print(f"worker log (last lines):\n{log[-4000:]}")
        raise AssertionError(f"[CHAOS_SEED={seed}, replay with CHAOS_SEED={seed}] {err!r}") from err
    except BaseException:
        log = worker_log.read_text(errors="replace") if worker_log.exists() else ""
        print(f"CHAOS_SEED={seed}\nworker log (last lines):\n{log[-4000:]}")
        raise
    finally:
        print("\n".join(timeline))
        if worker.poll() is None:
            worker.terminate()
            worker.wait(10)
        temporal.stop()
        if not postgres.running:
            postgres.ensure_running()
        ledger.close()
