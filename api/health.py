"""Health that tells the truth, and a dependency that is down answered as such.

- `GET /healthz`: liveness, the process answers (no dependency is asked).
- `GET /readyz`: readiness, Temporal answers its health check, the store a `SELECT 1`, and a
  worker polls the engine's task queue (Temporal's DescribeTaskQueue lists a poller of its
  workflow or activity tasks seen within `POLLER_RECENT_SECONDS`; with CARRIER_CALLS_PER_SECOND
  each carrier account's dial task queue too), each within `READY_TIMEOUT_SECONDS`; else 503
  `SERVICE_UNAVAILABLE` naming what is down (`details[].field`: Temporal, store, worker).
- Any request that meets Temporal or the store down (an RPC error UNAVAILABLE or
  DEADLINE_EXCEEDED, a refused or dropped connection) is answered 503 `SERVICE_UNAVAILABLE`
  in the error envelope with `Retry-After`, and anything else unexpected 500
  `INTERNAL_ERROR` in the envelope, never a plain-text 500.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError, RPCStatusCode

from api.errors import envelope

log = logging.getLogger("api.health")

READY_TIMEOUT_SECONDS = 3.0
RETRY_AFTER_SECONDS = 5
# CANCELLED: our own rpc_timeout expired (the SDK reports it so), a Temporal that hangs.
_DOWN = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}
# A worker re-polls at least once a long poll (about a minute) while it has a free slot; the
# server remembers a poller for five minutes. A poller seen more recently than this is a worker.
POLLER_RECENT_SECONDS = 90.0


def unavailable(what: str) -> JSONResponse:
    return envelope(503, "SERVICE_UNAVAILABLE", f"{what} is unavailable; try again shortly",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _temporal_ready(request: Request) -> str | None:
    client = getattr(request.app.state, "temporal_client", None)
    if client is None:
        return "Temporal: not connected"
    try:
        ok = await client.service_client.check_health(timeout=timedelta(seconds=READY_TIMEOUT_SECONDS))
    except (RPCError, RuntimeError, OSError) as err:
        return f"Temporal: {type(err).__name__}: {err}"
    return None if ok else "Temporal: not serving"


async def _recent_pollers(client, queue: str, kind: TaskQueueType.ValueType) -> int:
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind),
        timeout=timedelta(seconds=READY_TIMEOUT_SECONDS))
    now = time.time()
    return sum(1 for poller in answer.pollers
               if poller.HasField("last_access_time")
               and now - poller.last_access_time.ToMicroseconds() / 1e6 <= POLLER_RECENT_SECONDS)


def _queues_to_poll(settings) -> list[tuple[str, list[TaskQueueType.ValueType]]]:
    """(task queue, the task types of which one recent poller is enough)."""
    either = [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]
    queues = [(settings.temporal_task_queue, either)]
    if settings.carrier_calls_per_second:
        from api.campaigns import configured_providers

        queues += [(settings.dial_task_queue(name), [TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY])
                   for name in configured_providers(settings)]
    return queues


async def _worker_ready(request: Request) -> str | None:
    """None when a worker polls each of the engine's task queues (Temporal's own problems are
    _temporal_ready's to report)."""
    client = getattr(request.app.state, "temporal_client", None)
    if client is None:
        return None
    missing = []
    try:
        for queue, kinds in _queues_to_poll(request.app.state.settings):
            counts = await asyncio.gather(*(_recent_pollers(client, queue, kind) for kind in kinds))
            if not any(counts):
                missing.append(queue)
    except (RPCError, RuntimeError, OSError):
        return None  # Temporal itself does not answer: reported as Temporal
    if missing:
        return (f"worker: no worker has polled task queue {', '.join(missing)} "
                f"in the last {POLLER_RECENT_SECONDS:.0f} s")
    return None


async def _store_ready(request: Request) -> str | None:
    db = getattr(request.app.state, "db", None)
    if db is None:
        return None  # an API without a store
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with db.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any failure means not ready
        return f"store: {type(err).__name__}"
    return None


def install_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["meta"], include_in_schema=False)
    async def healthz() -> dict:
        return {"ok": True}

    @app.get("/readyz", tags=["meta"], include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        found = await asyncio.gather(_temporal_ready(request), _store_ready(request), _worker_ready(request))
        problems = [p for p in found if p]
        if problems:
            response = envelope(503, "SERVICE_UNAVAILABLE", "not ready: " + "; ".join(problems),
                                [{"field": p.split(":", 1)[0], "message": p} for p in problems],
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            return response
        return JSONResponse({"ok": True, "temporal": "serving", "store": "serving", "worker": "polling"})

    @app.exception_handler(RPCError)
    async def _rpc_error(request: Request, exc: RPCError):
        if exc.status in _DOWN:
            log.warning("%s %s: Temporal unavailable: %s", request.method, request.url.path, exc.message)
            return unavailable("Temporal")
        log.error("%s %s: Temporal answered %s: %s", request.method, request.url.path,
                  exc.status.name if exc.status else "?", exc.message)
        return envelope(500, "INTERNAL_ERROR", "Temporal refused the request")

    async def _store_down(request: Request, exc: Exception):
        log.warning("%s %s: store unavailable: %s", request.method, request.url.path, type(exc).__name__)
        return unavailable("the store")

    app.add_exception_handler(OperationalError, _store_down)
    app.add_exception_handler(InterfaceError, _store_down)

    async def _connection(request: Request, exc: Exception):
        log.warning("%s %s: a dependency is unreachable: %s", request.method, request.url.path, exc)
        return unavailable("a service the engine depends on")

    for error in (ConnectionError, TimeoutError, socket.gaierror):  # not every OSError (files)
        app.add_exception_handler(error, _connection)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Starlette logs the traceback after this answer: a bug deserves it.
        return envelope(500, "INTERNAL_ERROR", "internal error")
