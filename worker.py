"""Run one campaign-engine worker against TEMPORAL_ADDRESS: `python worker.py`.

Workflows and activities of every campaign run here; start as many as you like on one task
queue (they share the work). `campaign-engine up` starts one of these for you.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from contextlib import AsyncExitStack, asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from activities.broadcast import Broadcaster
from activities.providers.registry import build_providers
from activities.records import RecordActivities
from activities.telephony import TelephonyActivities
from activities.webhook_settings import WebhookSettings
from activities.webhooks import WebhookActivities
from campaign_engine import metrics
from campaign_engine.settings import Settings, get_settings
from campaign_engine.store.db import StoreNotConfigured, require_database_url, store_engine
from campaign_engine.temporal import connect_or_explain
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow
from workflows.sandbox import WORKFLOW_RUNNER

WORKFLOWS = [CampaignWorkflow, ContactCallWorkflow]


@asynccontextmanager
async def running_worker(client: Client, settings: Settings, **worker_options):
    """A worker polling the task queue until the block exits (tests use this too)."""
    providers = build_providers(settings, client)
    db = store_engine(settings)
    telephony = TelephonyActivities(providers, db)
    records = RecordActivities(db)
    webhooks = WebhookActivities(WebhookSettings(), db)
    broadcaster = Broadcaster(client, db)
    worker = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[telephony.place_call, telephony.fetch_call_status, webhooks.deliver_webhook,
                    broadcaster.signal_open_contacts, records.record_campaign_changes, records.load_launch_page,
                    records.find_silent_contacts],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        **{"workflow_runner": WORKFLOW_RUNNER, **worker_options},
    )
    # place_call runs on one task queue per carrier account, so Temporal's task-queue rate
    # limit caps calls per second across every campaign and every worker on that account.
    # Only a worker with the cap polls that queue: each poll hands the server its worker's
    # rate and the server keeps the latest, none included, so one worker without the cap
    # would lift it for every worker (see tests/test_carrier_rate_limit.py).
    dial_workers = [
        Worker(
            client,
            task_queue=settings.dial_task_queue(name),
            activities=[telephony.place_call],
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            max_task_queue_activities_per_second=settings.carrier_calls_per_second,
        )
        for name in providers
    ] if settings.carrier_calls_per_second else []
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(worker)
        for dial_worker in dial_workers:
            await stack.enter_async_context(dial_worker)
        try:
            yield worker
        finally:
            for provider in providers.values():
                await provider.aclose()
            await webhooks.aclose()
            await db.dispose()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    runtime = server = None
    if settings.metrics_port:  # this worker's metrics and the SDK's (campaign_engine/metrics.py)
        sdk_port = metrics.free_port()
        runtime = metrics.worker_runtime(sdk_port)
        server = metrics.serve_worker_metrics(settings.metrics_host, settings.metrics_port, sdk_port)
    try:
        client = await connect_or_explain(settings, runtime=runtime)
        async with running_worker(client, settings):
            logging.getLogger("worker").info(
                "worker polling task queue %s on %s%s", settings.temporal_task_queue,
                settings.resolved_temporal_address,
                f", metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics" if server else "")
            await stop.wait()
    finally:
        if server is not None:
            server.shutdown()


def main(settings: Settings | None = None) -> int:
    """Run one worker until SIGINT/SIGTERM (`settings`: the environment's, by default)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings or get_settings()
    try:
        require_database_url(settings)  # before anything connects: one line, exit 2
    except StoreNotConfigured as err:
        print(f"worker: {err}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    from activities.environment import check_environment
    from campaign_engine.config_errors import run_reporting

    status = run_reporting(main, "worker", check_environment)  # a configuration error: one line, status 2
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's Rust bridge can abort the interpreter at exit (sdk-python issue 300).
    os._exit(status)
