"""The store survives crashes: SIGKILL the worker twice and the embedded PostgreSQL once during
a campaign of 200 contacts with redials, start them again, and the records agree.

The simulated carrier's ledger (a SQLite file outside every killed process) is the truth of
what was dialled. After the campaign completes, the attempts table must hold exactly the
ledger's calls (same idempotency keys, same call ids, each with its outcome), every contact
row must be final and match its contact workflow's `status` query, and the campaign row
must say completed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio import activity
from temporalio.client import Client

import worker as worker_module
from activities.providers.simulated import CarrierLedger
from activities.records import RecordActivities
from api.main import create_app
from campaign_engine.models import CampaignStatus, ContactState
from campaign_engine.store import repo
from campaign_engine.store.db import create_engine
from campaign_engine.store.records import CampaignChanges
from tests.conftest import API_KEY, engine_settings
from tests.fakes.serve import serve_asgi
from tests.helpers import launch_campaign, make_config, make_contacts, wait_for
from tests.test_crash_safety import (
    ROOT,
    assert_carrier_record_is_clean,
    campaign_body,
    kill,
)
from worker import running_worker
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow

pytestmark = pytest.mark.slow

N_CONTACTS = 200
CARRIER_ENV = {
    # Two in five answer; the rest are redialled (maxAttempts 3), so most contacts get
    # two or three calls.
    "SIMULATED_OUTCOMES": "completed=0.4,no-answer=0.35,busy=0.25",
    "SIMULATED_RING_SECONDS": "0.05-0.2",
    "SIMULATED_TALK_SECONDS": "0.05-0.2",
}


def body(n: int) -> dict:
    b = campaign_body(n, "store-crash")
    b["redialConfig"] = {"enabled": True, "maxAttempts": 3, "retryIntervals": [1]}
    # Calls spread over the campaign rather than all at once, so the kills land mid-way.
    b["maxConcurrentCalls"] = 30
    return b


# What the worker logs when a dial or a flush finds the store gone.
STORE_DOWN_SIGNS = ("ConnectionRefusedError", "Connect call failed", "Connection refused", "CannotConnectNowError",
                    "ConnectionDoesNotExistError", "connection was closed")
# Dials that may have read their contact's row just before the store went down.
DIALS_IN_FLIGHT = 30  # maxConcurrentCalls


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:  # stuck on a store that is gone
            worker.kill()
            worker.wait(10)


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    """test_crash_safety's worker, with its output kept (appended) for a failure's report."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


class Store:
    """Reads of the module's database, one connection per read (the server gets killed)."""

    def __init__(self, url: str, campaign_id: str) -> None:
        self.url, self.campaign_id = url, campaign_id

    async def fetch(self, sql: str, *args):
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def attempt_rows(self) -> int:
        rows = await self.fetch("SELECT count(*) AS n FROM attempts WHERE campaign_id = $1", self.campaign_id)
        return rows[0]["n"]


async def assert_store_agrees_with_carrier(client: Client, store: Store, ledger: CarrierLedger, wf_id: str,
                                           n: int) -> dict:
    """The attempts table is exactly the carrier's ledger, every contact row is final and what
    its workflow's `status` query says, and the campaign row is completed. Returns the
    ledger's calls by idempotency key."""
    campaign_id = store.campaign_id
    # The carrier's record is clean (every contact called, no key dialled twice, no gaps)...
    ledger_calls = assert_carrier_record_is_clean(ledger, campaign_id, n)
    # ... and the attempts table is exactly that record.
    rows = await store.fetch("SELECT * FROM attempts WHERE campaign_id = $1", campaign_id)
    by_key = {r["idempotency_key"]: r for r in rows}
    assert len(by_key) == len(rows)
    missing, extra = set(ledger_calls) - set(by_key), set(by_key) - set(ledger_calls)
    assert not missing and not extra, f"missing rows: {sorted(missing)[:10]}, rows never dialled: {sorted(extra)[:10]}"
    for key, row in by_key.items():
        call = ledger_calls[key]
        assert row["call_id"] == call["call_id"], key
        assert row["tenant_id"] == "acme"
        assert f"{wf_id}/contact/{row['contact_key']}/attempt-{row['attempt']}" == key
        assert row["attempt"] == call["attempt"]
        assert row["outcome"] == call["outcome"], (key, row["outcome"], call["outcome"])
        assert row["ended_at"] is not None and row["placed_at"] is not None, key
        assert row["provider"] == "simulated", key

    # Every contact row is final and is what its workflow says.
    contact_rows = {r["key"]: r for r in await store.fetch(
        "SELECT * FROM contacts WHERE campaign_id = $1", campaign_id)}
    assert sorted(contact_rows) == list(range(n))
    calls_per_contact = Counter(c["contact_workflow_id"] for c in ledger_calls.values())
    gate = asyncio.Semaphore(32)

    async def status_of(key: int):
        # A finished contact workflow's result is its final `status` (ContactCallWorkflow._end
        # returns it), read from its completion event; a `status` query of a closed workflow
        # replays its whole history on the worker (300 of them were 12 s of the chaos test).
        handle = client.get_workflow_handle_for(ContactCallWorkflow.run, f"{wf_id}/contact/{key}")
        async with gate:
            try:
                return await asyncio.wait_for(handle.result(), timeout=30)
            except TimeoutError:
                raise AssertionError(f"contact {key}'s workflow has not finished") from None

    statuses = await asyncio.gather(*(status_of(key) for key in range(n)))
    for key, status in enumerate(statuses):
        row = contact_rows[key]
        assert ContactState(row["state"]).is_final, (key, row["state"])
        assert row["state"] == status.state.value, (key, row["state"], status.state)
        assert row["disposition"] == (status.disposition.value if status.disposition else None), key
        assert row["attempts"] == len(status.attempts) == calls_per_contact[f"{wf_id}/contact/{key}"], key
        assert row["last_outcome"] == status.attempts[-1].outcome.value, key
        for attempt in status.attempts:
            assert by_key[f"{wf_id}/contact/{key}/attempt-{attempt.attempt}"]["call_id"] == attempt.call_id

    # The campaign row: completed, with the carrier's count of calls.
    [campaign_row] = await store.fetch("SELECT * FROM campaigns WHERE campaign_id = $1", campaign_id)
    assert campaign_row["status"] == CampaignStatus.COMPLETED.value
    assert campaign_row["finished_at"] is not None
    progress = json.loads(campaign_row["progress"])  # asyncpg hands jsonb over as text
    assert progress["calls_placed"] == len(ledger_calls)
    assert progress["by_state"] == {ContactState.DONE.value: n}
    return ledger_calls


async def test_worker_and_postgres_killed_store_agrees_with_carrier(dev_env, task_queue, tmp_path, postgres,
                                                                     module_database):
    began = time.monotonic()
    n = N_CONTACTS
    carrier_db = tmp_path / "carrier.sqlite3"
    settings = engine_settings(dev_env, task_queue, carrier_db, **CARRIER_ENV)
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "TEMPORAL_TASK_QUEUE": task_queue,
           "SIMULATED_CARRIER_DB": str(carrier_db), "DATABASE_URL": module_database, **CARRIER_ENV}
    ledger = CarrierLedger(carrier_db)
    url_before = postgres.url
    worker_log = tmp_path / "worker.log"
    worker = start_worker(env, worker_log)
    timeline: list[str] = []

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic() - began:5.1f}s {what}")

    def calls(attempt_at_least: int = 1) -> int:
        return sum(1 for c in ledger.calls(campaign_id) if c["attempt"] >= attempt_at_least)

    def worker_alive() -> None:
        # A worker that died by itself (not by our SIGKILL) fails the test at once, with its log.
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"

    async def ledger_count(attempt_at_least: int = 1) -> int:
        worker_alive()
        return await asyncio.to_thread(calls, attempt_at_least)

    async def attempt_rows() -> int:
        worker_alive()
        return await store.attempt_rows()

    try:
        async with (serve_asgi(create_app(settings), lifespan="on") as base_url,
                    httpx.AsyncClient(base_url=base_url, timeout=30, headers={"x-api-key": API_KEY}) as http):
            resp = await http.post("/uploadCampaignDataAndRun", json=body(n))
            assert resp.status_code == 200, resp.text
            campaign_id = resp.json()["data"]["campaign"]["campaignId"]
            wf_id = f"campaign/acme/{campaign_id}"
            store = Store(module_database, campaign_id)
            # 1. The worker, while the first calls are in the air.
            await wait_for(ledger_count, lambda c: c >= 50, timeout=60, what="50 calls placed")
            at = await ledger_count()
            kill(worker)
            mark(f"worker killed at {at} calls")
            worker = start_worker(env, worker_log)

            # 2. PostgreSQL, once the store holds a good part of the campaign and redials
            # run. It stays down until calls were placed that it could not record: their
            # rows must be written after the restart, once and with the carrier's call id.
            await wait_for(attempt_rows, lambda c: c >= 150, timeout=90, what="150 attempt rows")
            await wait_for(lambda: ledger_count(2), lambda c: c >= 10, timeout=60, what="10 redials placed")
            rows_before = await store.attempt_rows()
            placed_before = await ledger_count()
            killed_pid = postgres.pid
            log_mark = len(worker_log.read_text(errors="replace"))
            postgres.kill()
            assert not postgres.running
            mark(f"postgres killed at {placed_before} calls, {rows_before} attempt rows")
            # The dial reads the contact's number from the store: with it down nobody is
            # dialled (fail closed), the dials are retried until it is back.
            def refused() -> bool:
                text = worker_log.read_text(errors="replace")[log_mark:]
                return any(sign in text for sign in STORE_DOWN_SIGNS)

            await wait_for(lambda: asyncio.to_thread(refused), bool, timeout=30,
                           what="a dial or flush refused by the stopped store")
            placed_while_down = await ledger_count() - placed_before
            postgres.ensure_running()  # a new postmaster on the same data and socket
            assert postgres.running and postgres.pid != killed_pid and postgres.url == url_before
            mark(f"postgres restarted after {placed_while_down} calls placed while it was down")

            # 3. The worker again, while the third calls are under way.
            await wait_for(attempt_rows, lambda c: c >= rows_before + 80, timeout=90,
                           what="80 more attempt rows after the restart")
            await wait_for(lambda: ledger_count(3), lambda c: c >= 5, timeout=60, what="5 third calls placed")
            at = await ledger_count()
            kill(worker)
            mark(f"worker killed again at {at} calls")
            worker = start_worker(env, worker_log)

            handle = dev_env.client.get_workflow_handle_for(CampaignWorkflow.run, wf_id)
            summary = await asyncio.wait_for(handle.result(), timeout=120)
            mark("campaign workflow completed")
            assert summary.status == CampaignStatus.COMPLETED and summary.total_contacts == n
            campaign = await wait_for(lambda: http.get(f"/campaigns/{campaign_id}"),
                                      lambda r: r.status_code == 200 and r.json()["status"] == "completed",
                                      timeout=20, what="GET /campaigns/{id} to say completed")
            campaign = campaign.json()

        ledger_calls = await assert_store_agrees_with_carrier(dev_env.client, store, ledger, wf_id, n)
        assert placed_while_down <= DIALS_IN_FLIGHT  # only dials that had read the store before the kill
        assert campaign["calls_placed"] == summary.calls_placed == len(ledger_calls)
        assert campaign["by_state"] == {ContactState.DONE.value: n}
        redials = sum(1 for c in ledger_calls.values() if c["attempt"] > 1)
        mark(f"checked: {len(ledger_calls)} calls ({redials} redials), runs {campaign['run']}")
    except BaseException:
        log = worker_log.read_text(errors="replace") if worker_log.exists() else ""
        print(f"worker log (last lines):\n{log[-4000:]}")
        raise
    finally:
        print("\n".join(timeline))
        if not postgres.running:
            postgres.ensure_running()
        stop_worker(worker)
        ledger.close()


class SlowStore(RecordActivities):
    """A store that takes its time over every flush (a slow or briefly unreachable database):
    the flush outlasts a workflow task, so the campaign receives reports while it awaits it."""

    FLUSH_SECONDS = 1.5

    @activity.defn(name="record_campaign_changes")
    async def record_campaign_changes(self, changes: CampaignChanges) -> None:
        await asyncio.sleep(self.FLUSH_SECONDS)
        await super().record_campaign_changes(changes)


async def test_reports_received_during_the_flush_before_continue_as_new_are_recorded(
        dev_env, task_queue, carrier_db, module_database, monkeypatch):
    """Each run hands its open contacts over before continuing as new, and they report their
    ends by signal; those that arrive while the run's last flush is being written must reach
    the store too (the next run starts with nothing left to write)."""
    n, per_run = 15, 5
    # Each run starts 5 contacts and flushes (1.5 s) while their calls ring (about 2 s), then
    # hands them over and flushes before continuing as new: their ends come during that flush.
    monkeypatch.setattr(worker_module, "RecordActivities", SlowStore)
    settings = engine_settings(dev_env, task_queue, carrier_db, SIMULATED_RING_SECONDS="1.8-2.4",
                               SIMULATED_TALK_SECONDS="0.1-0.3", SIMULATED_OUTCOMES="completed=0.5,busy=0.5")
    config = make_config(f"CAMP-CANREC-{task_queue}", children_per_run=per_run)
    contacts = make_contacts(n)
    wf_id = f"campaign/acme/{config.campaign_id}"
    db = create_engine(module_database, pool_size=2)
    ledger = CarrierLedger(carrier_db)
    try:
        await repo.create_campaign(db, config, contacts, status=CampaignStatus.IN_PROGRESS, counts=lambda: (n, 0))
        async with running_worker(dev_env.client, settings):
            # A short workflow task timeout, so a 1.5 s flush spans workflow tasks (the SDK
            # heartbeats the task and hands the workflow the signals that came meanwhile).
            handle = await launch_campaign(dev_env.client, config, contacts, id=wf_id, task_queue=task_queue,
                task_timeout=timedelta(seconds=1))
            await repo.mark_launched(db, config.tenant_id, config.campaign_id)
            summary = await asyncio.wait_for(handle.result(), timeout=120)
            assert summary.status == CampaignStatus.COMPLETED
            assert (await handle.query(CampaignWorkflow.progress)).run >= n // per_run
            await assert_store_agrees_with_carrier(dev_env.client, Store(module_database, config.campaign_id),
                                                   ledger, wf_id, n)
    finally:
        ledger.close()
        await db.dispose()

