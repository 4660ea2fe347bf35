"""Prometheus metrics (issue 15): the store's figures on the API's /metrics, each worker's own on
METRICS_PORT together with the Temporal SDK's.

No label carries a phone number, a campaign or a tenant: labels are the provider, the outcome,
a campaign status and a webhook result, a few values each.

- **The API's `GET /metrics`** (api/routes/metrics.py) reads the store at each scrape: calls
  placed (`campaign_engine_calls_placed_total{provider}`) and ended
  (`campaign_engine_calls_ended_total{provider,outcome}`) are counts of the attempt rows,
  which are only ever added, so they are counters that every API process answers alike and
  that a retried activity or a replay never inflates; live calls
  (`campaign_engine_live_calls{provider}`: placed, no outcome yet), campaigns by status
  (`campaign_engine_campaigns{status}`) and contacts held back by the suppression list
  (`campaign_engine_suppressed_contacts_total`).
- **Each worker's METRICS_PORT** (`serve_worker_metrics`): what happens in that process, as
  prometheus-client counters: dials placed (`campaign_engine_worker_calls_placed_total{provider}`),
  the dial latency (`campaign_engine_dial_latency_seconds{provider}`, a histogram: from the
  moment the contact was due and asked to dial, `CallRequest.due_at`, through the campaign's
  queue, pacing and concurrency, to the provider's acceptance),
  webhook deliveries (`campaign_engine_webhook_deliveries_total{result}`: delivered, failed),
  and the Temporal SDK's own metrics (`temporal_*`, Runtime with PrometheusConfig, durations in
  seconds), served from the same port.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger("campaign_engine.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# --- the worker's process metrics -----------------------------------------------------------

WORKER = CollectorRegistry(auto_describe=True)
CALLS_PLACED = Counter("campaign_engine_worker_calls_placed", "Calls the provider accepted, placed by this worker",
                       ["provider"], registry=WORKER)
DIAL_LATENCY = Histogram(
    "campaign_engine_dial_latency_seconds",
    "From the contact being due (asking to dial) to the provider accepting the call",
    ["provider"], registry=WORKER, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
WEBHOOKS = Counter("campaign_engine_webhook_deliveries", "Webhook delivery attempts by result (delivered, failed)",
                   ["result"], registry=WORKER)


def call_placed(provider: str, due_at: datetime) -> None:
    CALLS_PLACED.labels(provider).inc()
    DIAL_LATENCY.labels(provider).observe(max((datetime.now(UTC) - due_at).total_seconds(), 0.0))


def webhook_result(delivered: bool) -> None:
    WEBHOOKS.labels("delivered" if delivered else "failed").inc()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def worker_runtime(sdk_port: int):
    """The Temporal Runtime whose SDK metrics are served (as Prometheus text) on `sdk_port`."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"127.0.0.1:{sdk_port}", durations_as_seconds=True)))


class _Handler(BaseHTTPRequestHandler):
    sdk_url: str | None = None

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        body = generate_latest(WORKER)
        if self.sdk_url:
            try:
                with urllib.request.urlopen(self.sdk_url, timeout=5) as resp:
                    body += resp.read()
            except OSError as err:
                log.warning("the Temporal SDK's metrics at %s cannot be read: %s", self.sdk_url, err)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # scrapes are not logged
        pass


def serve_worker_metrics(host: str, port: int, sdk_port: int | None) -> ThreadingHTTPServer:
    """The worker's metrics (and the SDK's, read from `sdk_port`) on http://host:port/metrics,
    in a daemon thread; `.shutdown()` stops it."""
    handler = type("Handler", (_Handler,), {"sdk_url": f"http://127.0.0.1:{sdk_port}/metrics" if sdk_port else None})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


# --- the store's figures (the API's /metrics) -----------------------------------------------------


class StoreFigures:
    """One scrape's figures read from the store (campaign_engine.store.metrics), as metric families."""

    def __init__(self, attempts: Iterable[tuple[str | None, str | None, int]],
                 campaigns: Iterable[tuple[str, int]], suppressed: int) -> None:
        self.attempts = list(attempts)
        self.campaigns = list(campaigns)
        self.suppressed = suppressed

    def collect(self) -> Iterable[Metric]:
        placed = CounterMetricFamily("campaign_engine_calls_placed", "Calls placed (attempt rows), by provider",
                                     labels=["provider"])
        ended = CounterMetricFamily("campaign_engine_calls_ended", "Calls ended, by provider and outcome",
                                    labels=["provider", "outcome"])
        live = GaugeMetricFamily("campaign_engine_live_calls", "Calls placed whose outcome is not known yet",
                                 labels=["provider"])
        by_provider: dict[str, list[int]] = {}
        for provider, outcome, n in self.attempts:
            name = provider or "unknown"
            totals = by_provider.setdefault(name, [0, 0])
            totals[0] += n
            if outcome is None:
                totals[1] += n
            else:
                ended.add_metric([name, outcome], n)
        for name, (n_placed, n_live) in sorted(by_provider.items()):
            placed.add_metric([name], n_placed)
            live.add_metric([name], n_live)
        statuses = GaugeMetricFamily("campaign_engine_campaigns", "Campaigns by status", labels=["status"])
        for status, n in self.campaigns:
            statuses.add_metric([status], n)
        suppressed = CounterMetricFamily("campaign_engine_suppressed_contacts",
                                         "Contacts not dialled because their number is on the suppression list")
        suppressed.add_metric([], self.suppressed)
        yield from (placed, ended, live, statuses, suppressed)


def store_exposition(figures: StoreFigures) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(figures)
    return generate_latest(registry)
