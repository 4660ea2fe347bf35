"""Prometheus metrics and OpenTelemetry traces (issue 15): a scrape of the API's /metrics after
a campaign matches the store; a worker's METRICS_PORT serves its own and the SDK's metrics;
traces only with OTEL_EXPORTER_OTLP_ENDPOINT."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from campaign_engine import metrics, tracing
from campaign_engine.settings import Settings
from campaign_engine.store.db import store_engine
from campaign_engine.temporal import connect
from tests.conftest import OTHER_TENANT_KEY, running_engine
from tests.helpers import wait_for


def _samples(body: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


async def _store(sql: str):
    db = store_engine(Settings())
    try:
        async with db.connect() as conn:
            return (await conn.execute(text(sql))).all()
    finally:
        await db.dispose()


async def test_metrics_after_a_campaign_match_the_store(dev_env, task_queue, carrier_db):
    token = f"scrape-{uuid.uuid4().hex}"
    placed_before = metrics.WORKER.get_sample_value("campaign_engine_worker_calls_placed_total",
                                                    {"provider": "simulated"}) or 0
    async with running_engine(dev_env, task_queue, carrier_db, METRICS_TOKEN=token,
                              SIMULATED_OUTCOMES="completed=2,no-answer=1,busy=1,failed=1") as eng:
        body = {"campaignName": "Metrics", "agentId": "a", "redialConfig": {"enabled": False},
                "contacts": [{"phone_number": f"+1415555{i:04d}"} for i in range(20)]}
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers=eng.headers(), json=body)
        assert resp.status_code == 200, resp.text
        campaign_id = resp.json()["data"]["campaign"]["campaignId"]

        async def probe():
            return (await eng.http.get(f"/campaigns/{campaign_id}", headers=eng.headers())).json()
        await wait_for(probe, lambda d: d.get("status") == "completed", timeout=90, what="completed")

        scrape = await eng.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
        assert "+1415" not in scrape.text and campaign_id not in scrape.text  # no numbers, no campaign labels
        got = _samples(scrape.text)
        rows = await _store("SELECT provider, outcome, count(*) AS n FROM attempts GROUP BY provider, outcome")
        assert sum(r.n for r in rows) == 20
        for r in rows:
            assert got[("campaign_engine_calls_ended_total", (("outcome", r.outcome), ("provider", r.provider)))] == r.n
        assert got[("campaign_engine_calls_placed_total", (("provider", "simulated"),))] == 20
        assert got[("campaign_engine_live_calls", (("provider", "simulated"),))] == 0
        assert got[("campaign_engine_campaigns", (("status", "completed"),))] == 1
        assert len({r.outcome for r in rows}) > 1  # the outcomes are really broken down

        # a tenant's key sees its own figures; another tenant's sees none of these calls
        own = _samples((await eng.http.get("/metrics", headers=eng.headers())).text)
        assert own[("campaign_engine_calls_placed_total", (("provider", "simulated"),))] == 20
        other = _samples((await eng.http.get("/metrics", headers=eng.headers(OTHER_TENANT_KEY))).text)
        assert ("campaign_engine_calls_placed_total", (("provider", "simulated"),)) not in other
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"}):
            refused = await eng.http.get("/metrics", headers=headers)
            assert refused.status_code == 401 and refused.json()["error"] == "UNAUTHORIZED"
    # the in-process worker counted the dials it placed
    placed_after = metrics.WORKER.get_sample_value("campaign_engine_worker_calls_placed_total",
                                                   {"provider": "simulated"})
    assert placed_after - placed_before == 20
    latency = metrics.WORKER.get_sample_value("campaign_engine_dial_latency_seconds_count", {"provider": "simulated"})
    assert latency >= 20


async def test_a_worker_serves_its_metrics_and_the_sdks_on_metrics_port(dev_env, task_queue, carrier_db):
    port = metrics.free_port()
    async with running_engine(dev_env, task_queue, carrier_db):  # a migrated store in DATABASE_URL
        env = {**os.environ, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
               "TEMPORAL_TASK_QUEUE": f"{task_queue}-metrics", "METRICS_PORT": str(port),
               "CAMPAIGN_API_KEYS": "acme:k", "SIMULATED_CARRIER_DB": str(carrier_db)}
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "campaign-engine"), "worker", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            async with httpx.AsyncClient() as http:
                async def scrape() -> str:
                    try:
                        return (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                    except httpx.HTTPError:
                        return ""
                body = await wait_for(scrape, lambda b: "temporal_" in b, timeout=60, what="SDK metrics")
            names = {f.name for f in text_string_to_metric_families(body)}
            assert {"campaign_engine_worker_calls_placed", "campaign_engine_dial_latency_seconds",
                    "campaign_engine_webhook_deliveries"} <= names
            assert any(n.startswith("temporal_") for n in names)
            # durations in seconds, not milliseconds
            assert not any(n.endswith("_latency") and "_ms" in n for n in names)
        finally:
            proc.terminate()
            await proc.wait()


class _Collector(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("content-length", 0))
        type(self).bodies.append(self.path.encode() + b" " + self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_traces_only_with_an_otlp_endpoint(dev_env):
    assert tracing.interceptors(Settings()) == []  # off: nothing installed
    off = await connect(Settings(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host))
    assert off.config()["interceptors"] == []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = Settings(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
                            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}")
        client = await connect(settings)
        assert type(client.config()["interceptors"][0]).__name__ == "TracingInterceptor"
        await client.start_workflow("NoSuchWorkflow", id=f"traced-{uuid.uuid4().hex}", task_queue="tq-traced")
        await asyncio.to_thread(tracing.flush)
        assert any(b.startswith(b"/v1/traces ") and b"StartWorkflow:NoSuchWorkflow" in b for b in _Collector.bodies)
    finally:
        server.shutdown()


async def test_up_serves_its_workers_metrics_with_the_sdks(tmp_path):
    import signal
    import subprocess

    from tests.conftest import API_KEY

    api_port, temporal_port, ui_port, port = (metrics.free_port() for _ in range(4))
    env = {**{k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"},
           "API_PORT": str(api_port), "TEMPORAL_PORT": str(temporal_port), "TEMPORAL_UI_PORT": str(ui_port),
           "CAMPAIGN_DATA_DIR": str(tmp_path / ".data"), "CAMPAIGN_API_KEYS": f"acme:{API_KEY}",
           "METRICS_PORT": str(port), "SIMULATED_CARRIER_DB": str(tmp_path / "carrier.sqlite3")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "campaign-engine"), "up"], cwd=tmp_path, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            async def scrape() -> str:
                assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-2000:]
                try:
                    return (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.HTTPError:
                    return ""
            body = await wait_for(scrape, lambda b: "temporal_" in b, timeout=90, what="up's worker metrics")
            assert "campaign_engine_dial_latency_seconds" in body

            async def api_metrics() -> int:
                try:
                    return (await http.get(f"http://127.0.0.1:{api_port}/metrics",
                                           headers={"x-api-key": API_KEY})).status_code
                except httpx.HTTPError:
                    return 0
            assert await wait_for(api_metrics, lambda s: s == 200, timeout=60, what="the API's /metrics") == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
