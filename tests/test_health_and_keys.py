"""Health that tells the truth (api.health), API keys (api.deps, campaign_engine.api_keys) and
private files (campaign_engine.private_files), over the real stack."""

from __future__ import annotations

import hashlib
import stat
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from activities.providers.simulated import CarrierLedger
from api.main import create_app
from campaign_engine import devserver
from campaign_engine.private_files import make_tree_private
from campaign_engine.settings import Settings
from campaign_engine.temporal import API_RETRY
from tests.conftest import (
    API_KEY,
    engine_settings,
    fresh_database,
    running_engine,
    wait_until_ready,
)
from tests.fakes.serve import serve_asgi
from tests.helpers import free_port
from worker import running_worker

BODY = {"campaignName": "Down", "agentId": "agent-1", "contacts": [{"phone_number": "+14155550101"}]}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_readyz_answers_when_everything_is_up(engine):
    resp = await engine.http.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ok": True, "temporal": "serving", "store": "serving", "worker": "polling"}
    assert (await engine.http.get("/healthz")).status_code == 200


async def test_readyz_is_503_until_a_worker_polls_the_task_queue(dev_env, task_queue, carrier_db):
    """An API connected to Temporal and its store, and no worker on its task queue, is not
    ready (uploads would start campaigns nobody runs): 503 naming the worker and the queue;
    once a worker polls, 200. /healthz (liveness) is 200 throughout."""
    settings = engine_settings(dev_env, task_queue, carrier_db)
    async with serve_asgi(create_app(settings), lifespan="on") as base_url, \
            httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        resp = await http.get("/readyz")
        assert resp.status_code == 503, resp.text
        body = resp.json()
        assert body["success"] is False and body["error"] == "SERVICE_UNAVAILABLE"
        assert body["details"] == [{"field": "worker", "message": body["details"][0]["message"]}], body
        assert task_queue in body["message"] and "worker" in body["message"]
        assert int(resp.headers["retry-after"]) > 0
        assert (await http.get("/healthz")).status_code == 200
        async with running_worker(dev_env.client, settings):
            ready = await wait_until_ready(http)
            assert ready.json()["worker"] == "polling"
        # With a carrier cap, the dial task queue needs its own (capped) worker too.
        capped = engine_settings(dev_env, task_queue, carrier_db, CARRIER_CALLS_PER_SECOND="5")
        async with serve_asgi(create_app(capped), lifespan="on") as capped_url, \
                httpx.AsyncClient(base_url=capped_url, timeout=30) as capped_http:
            # The main queue's poller (seen moments ago) is recent; the dial queue never had one.
            resp = await capped_http.get("/readyz")
            assert resp.status_code == 503, resp.text
            assert capped.dial_task_queue("simulated") in resp.json()["message"], resp.text
            assert capped.temporal_task_queue + "," not in resp.json()["message"]
            async with running_worker(dev_env.client, capped):
                await wait_until_ready(capped_http)


async def test_temporal_down_is_503_in_the_envelope_with_retry_after(tmp_path, task_queue, carrier_db):
    """A real dev server (SQLite), SIGKILLed under a ready API: /readyz names Temporal, and an
    upload is answered 503 SERVICE_UNAVAILABLE in the envelope with Retry-After after the API's
    bounded retries (API_RETRY, about a second), not the SDK's ten seconds; it leaves nothing
    behind: no campaign is listed, and once Temporal is back the same request with the same
    Idempotency-Key starts the campaign as if it were the first."""
    ports = [free_port() for _ in range(2)]
    data, address = tmp_path / "temporal", f"127.0.0.1:{ports[0]}"

    def start_server():
        return devserver.start_dev_server(data, ports[0], ports[1], "default", tmp_path / "temporal.log")

    proc = start_server()
    try:
        client = await devserver.wait_until_serving(address, "default", proc)
        settings = engine_settings(SimpleNamespace(client=client), task_queue, carrier_db,
                                   DATABASE_URL=fresh_database())
        app = create_app(settings)
        async with serve_asgi(app, lifespan="on") as base_url, \
                httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            assert app.state.temporal_client.service_client.config.retry_config == API_RETRY
            assert API_RETRY.max_elapsed_time_millis <= 2000 and API_RETRY.max_retries <= 5
            async with running_worker(client, settings):
                await wait_until_ready(http)
            proc.kill()  # SIGKILL: no goodbye to its clients
            proc.wait()
            resp = await http.get("/readyz")
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "SERVICE_UNAVAILABLE" and "Temporal" in resp.json()["message"]
            assert int(resp.headers["retry-after"]) > 0
            assert (await http.get("/healthz")).status_code == 200  # alive all the same

            headers = {"x-api-key": API_KEY, "Idempotency-Key": "down-1"}
            began = time.monotonic()
            resp = await http.post("/uploadCampaignDataAndRun", json=BODY, headers=headers)
            print(f"upload with Temporal killed answered {resp.status_code} in {time.monotonic() - began:.2f} s")
            assert resp.status_code == 503, resp.text
            assert resp.headers["content-type"].startswith("application/json")
            assert resp.json()["success"] is False and resp.json()["error"] == "SERVICE_UNAVAILABLE"
            assert "Temporal" in resp.json()["message"]
            assert int(resp.headers["retry-after"]) > 0
            listed = await http.get("/getCampaignStatuses", headers={"x-api-key": API_KEY})
            assert listed.status_code == 200, listed.text
            assert listed.json()["summary"]["total_campaigns"] == 0, listed.text

            proc = start_server()  # Temporal back, on its own data
            await devserver.wait_until_serving(address, "default", proc)
            again = await http.post("/uploadCampaignDataAndRun", json=BODY, headers=headers)
            assert again.status_code == 200, again.text
            cid = again.json()["data"]["campaign"]["campaignId"]
            listed = await http.get("/getCampaignStatuses", headers={"x-api-key": API_KEY})
            assert [c["campaign_id"] for c in listed.json()["campaigns"]] == [cid], listed.text
    finally:
        devserver.stop(proc)


async def test_a_hung_temporal_is_503_within_the_start_timeout(tmp_path, task_queue, carrier_db):
    """A dev server stopped (SIGSTOP: it holds its connections and answers nothing) under a
    ready API: an upload is a 503 envelope once the start's rpc_timeout passes, well before the
    connection's keepalive would give up (the client here waits 30 s at most); once Temporal
    runs again the same request with the same Idempotency-Key starts the campaign."""
    ports = [free_port() for _ in range(2)]
    data, address = tmp_path / "temporal", f"127.0.0.1:{ports[0]}"
    proc = devserver.start_dev_server(data, ports[0], ports[1], "default", tmp_path / "temporal.log")
    try:
        client = await devserver.wait_until_serving(address, "default", proc)
        settings = engine_settings(SimpleNamespace(client=client), task_queue, carrier_db,
                                   DATABASE_URL=fresh_database())
        app = create_app(settings)
        async with serve_asgi(app, lifespan="on") as base_url, \
                httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            async with running_worker(client, settings):
                await wait_until_ready(http)
            headers = {"x-api-key": API_KEY, "Idempotency-Key": "hung-1"}
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                resp = await http.post("/uploadCampaignDataAndRun", json=BODY, headers=headers)
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "SERVICE_UNAVAILABLE"
            again = await http.post("/uploadCampaignDataAndRun", json=BODY, headers=headers)
            assert again.status_code == 200, again.text
            listed = await http.get("/getCampaignStatuses", headers={"x-api-key": API_KEY})
            assert [c["campaign_id"] for c in listed.json()["campaigns"]] == [
                again.json()["data"]["campaign"]["campaignId"]], listed.text
    finally:
        devserver.stop(proc)


async def test_two_api_key_headers_are_refused(engine):
    resp = await engine.http.get("/campaigns/CAMP-2026-AAAAAAAA", headers=[("x-api-key", API_KEY),
                                                                         ("x-api-key", API_KEY)])
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "UNAUTHORIZED"
    resp = await engine.http.get("/campaigns/CAMP-2026-AAAAAAAA", headers=engine.headers())
    assert resp.status_code == 404  # one header: authenticated, the campaign does not exist


async def test_keys_may_be_given_as_sha256_hashes(dev_env, task_queue, carrier_db):
    key = "ce_only-the-hash-is-configured"
    hashed = f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    async with running_engine(dev_env, task_queue, carrier_db, CAMPAIGN_API_KEYS=f"acme:{hashed}") as eng:
        ok = await eng.http.post("/uploadCampaignData", headers={"x-api-key": key}, json=BODY)
        assert ok.status_code == 200, ok.text
        for wrong in (hashed, hashed.removeprefix("sha256:"), key + "x"):
            resp = await eng.http.get("/campaigns/CAMP-2026-AAAAAAAA", headers={"x-api-key": wrong})
            assert resp.status_code == 401, wrong


def test_key_entries_parse_and_never_leak():
    hashed = "a" * 64
    settings = Settings(CAMPAIGN_API_KEYS=f"acme:k1, k2 ,globex:sha256:{hashed},sha256:{'b' * 64}")
    assert settings.api_keys() == {"k1": "acme", "k2": "default"}
    digests = settings.api_key_digests()
    assert digests[bytes.fromhex(hashed)] == "globex" and digests[bytes.fromhex("b" * 64)] == "default"
    assert digests[hashlib.sha256(b"k1").digest()] == "acme"
    for bad in ("acme:", ":k", ",,, ;;", "a:s3cr3t,b:s3cr3t", "my tenant/x:k", "t" * 65 + ":k"):
        with pytest.raises(ValueError) as caught:
            Settings(CAMPAIGN_API_KEYS=bad)
        assert "s3cr3t" not in str(caught.value).split("input_value")[0]
    Settings(CAMPAIGN_API_KEYS="a:same,a:same")  # the same key twice for one tenant is harmless


def test_the_simulated_carriers_record_is_private(tmp_path):
    path = tmp_path / "new-dir" / "carrier.sqlite3"
    ledger = CarrierLedger(path)
    try:
        assert mode(path.parent) == 0o700
        for file in path.parent.iterdir():
            assert mode(file) == 0o600, file
    finally:
        ledger.close()


def test_make_tree_private(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "a.sqlite3").write_text("x")
    (root / "sub" / "b").write_text("y")
    for p in (root, root / "sub"):
        p.chmod(0o755)
    for p in (root / "a.sqlite3", root / "sub" / "b"):
        p.chmod(0o644)
    make_tree_private(root)
    assert [mode(p) for p in (root, root / "sub", root / "a.sqlite3", root / "sub" / "b")] == \
        [0o700, 0o700, 0o600, 0o600]


async def test_the_dev_servers_files_are_private(tmp_path):
    data = tmp_path / "data"
    ports = [free_port() for _ in range(2)]
    proc = devserver.start_dev_server(data, ports[0], ports[1], "default", data / "temporal.log")
    try:
        client = await devserver.wait_until_serving(f"127.0.0.1:{ports[0]}", "default", proc)
        assert client is not None
        assert mode(data) == 0o700
        files = list(data.iterdir())
        assert any(f.name.startswith("temporal.sqlite3") for f in files)
        for file in files:
            assert mode(file) == 0o600, file
    finally:
        devserver.stop(proc)


async def test_store_down_is_503_in_the_envelope_with_retry_after(dev_env, task_queue, carrier_db):
    port = free_port()  # nothing listens there
    settings = engine_settings(dev_env, task_queue, carrier_db,
                               DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/none")
    async with serve_asgi(create_app(settings), lifespan="on") as base_url, \
            httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        resp = await http.get("/readyz")
        assert resp.status_code == 503, resp.text
        assert "store" in resp.json()["message"] and int(resp.headers["retry-after"]) > 0
        resp = await http.get("/campaigns/CAMP-2026-AAAAAAAA", headers={"x-api-key": API_KEY})
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"] == "SERVICE_UNAVAILABLE" and int(resp.headers["retry-after"]) > 0
