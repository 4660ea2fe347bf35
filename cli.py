"""`campaign-engine`: run the embedded stack, or follow campaigns straight from Temporal.

    campaign-engine up                      # Temporal dev server + PostgreSQL + worker + API, Ctrl-C stops all
    campaign-engine worker                  # one worker against TEMPORAL_ADDRESS and DATABASE_URL
    campaign-engine migrate                 # the store's schema to the newest revision (DATABASE_URL)
    campaign-engine status CAMPAIGN_ID [--watch] [--json]
    campaign-engine list [--status in_progress] [--json]
    campaign-engine upload FILE.csv --name NAME --agent ID [--run] [--config FILE.json]   # REST API

`status` and `list` use Temporal queries and visibility, not the REST API. Every command
takes `--address host:port` and `--namespace`; the default is the Temporal `up` uses
(TEMPORAL_ADDRESS, else 127.0.0.1:$TEMPORAL_PORT) and TEMPORAL_NAMESPACE. A Temporal that
cannot be reached is one line naming its address, and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import cli_status
from campaign_engine import upload_cli
from campaign_engine.config_errors import ServerDied, run_reporting
from campaign_engine.policy import legal_hours, tenant_policies
from campaign_engine.policy.tenant_policies import parse_tenant_policies
from campaign_engine.private_files import make_tree_private, private_dir, reclose_data_dir
from campaign_engine.settings import Settings, get_settings
from campaign_engine.store.db import StoreNotConfigured, StoreUnreachable
from campaign_engine.temporal import TemporalUnreachable, unreachable_reason

log = logging.getLogger("campaign-engine")

# Exit status when Temporal cannot be reached (or refuses the namespace).
UNREACHABLE = 2
# Exit status when the store (DATABASE_URL) is not set or cannot be reached.
STORE_UNAVAILABLE = 2


def with_temporal_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--address", metavar="HOST:PORT",
                        help="Temporal frontend (default: TEMPORAL_ADDRESS, else 127.0.0.1:$TEMPORAL_PORT, "
                        "the server `up` starts)")
    parser.add_argument("--namespace", help="Temporal namespace (default: TEMPORAL_NAMESPACE, else default)")
    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's --address and --namespace."""
    overrides: dict = {}
    if getattr(args, "address", None):
        overrides["temporal_address"] = args.address
    if getattr(args, "namespace", None):
        overrides["temporal_namespace"] = args.namespace
    return get_settings().model_copy(update=overrides)


# --- up ------------------------------------------------------------------------------------


def ensure_api_key(settings: Settings) -> tuple[Settings, str]:
    """Keys from CAMPAIGN_API_KEYS, or one generated once and kept in the data dir."""
    if settings.api_key_digests():
        return settings, "(the keys in CAMPAIGN_API_KEYS; not printed)"
    key_file = settings.data_dir / "api-key"
    if key_file.exists():
        key = key_file.read_text().strip()
    else:
        key = "ce_" + secrets.token_urlsafe(24)
        private_dir(key_file.parent)
        key_file.touch(mode=0o600)
        key_file.write_text(key + "\n")
    return settings.model_copy(update={"campaign_api_keys": type(settings.campaign_api_keys)(f"default:{key}")}), key


async def _connect(settings: Settings, address: str, server: Any, runtime: Any) -> Any:
    """The Temporal client, once the server answers. A cluster of one's own (TEMPORAL_ADDRESS,
    --address) either answers or is unreachable (one line)."""
    from campaign_engine import devserver, tracing

    try:
        return await devserver.wait_until_serving(address, settings.temporal_namespace, server,
                                                  timeout=60 if server is not None else 10,
                                                  runtime=runtime, interceptors=tracing.interceptors(settings))
    except TimeoutError as err:
        if server is not None:
            raise
        raise TemporalUnreachable(settings, unreachable_reason(err)) from None


async def _start_api(settings: Settings) -> tuple[Any, asyncio.Task]:
    """The API served in this process, once it listens."""
    import uvicorn

    from api.main import create_app

    config = uvicorn.Config(create_app(settings), host=settings.api_host, port=settings.api_port,
                            log_level="warning", lifespan="on")
    api = uvicorn.Server(config)
    api.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # ours stop everything
    api_task = asyncio.create_task(api.serve())
    while not api.started:
        if api_task.done():
            await api_task
            raise RuntimeError("the API could not start")
        await asyncio.sleep(0.05)
    return api, api_task


async def run_up(settings: Settings, stop: asyncio.Event) -> None:
    from campaign_engine import devserver, metrics
    from campaign_engine.store.startup import start_store
    from worker import running_worker

    devserver.require_free_ports({"API_PORT": settings.api_port}, settings.api_host)  # one line, not uvicorn's exit
    make_tree_private(settings.data_dir)  # personal data and keys: owner only (0700, files 0600)
    os.umask(0o077)  # and so is what the servers started here create
    settings, api_key = ensure_api_key(settings)
    server = None
    store = None
    runtime = metrics_server = None
    if settings.metrics_port:  # the in-process worker's metrics and the SDK's (campaign_engine/metrics.py)
        sdk_port = metrics.free_port()
        runtime = metrics.worker_runtime(sdk_port)
        metrics_server = metrics.serve_worker_metrics(settings.metrics_host, settings.metrics_port, sdk_port)
    if settings.temporal_address:
        address = settings.temporal_address
    else:
        address = f"127.0.0.1:{settings.temporal_port}"
        server = devserver.start_dev_server(
            settings.data_dir, settings.temporal_port, settings.temporal_ui_port,
            settings.temporal_namespace, settings.data_dir / "temporal.log",
        )
        settings = settings.model_copy(update={"temporal_address": address})
    try:
        # The store (embedded unless DATABASE_URL is set) starts while Temporal boots.
        settings, store = await start_store(settings)
        reclose_data_dir(settings.data_dir)  # the embedded PostgreSQL opens it to its own user
        client = await _connect(settings, address, server, runtime)
        async with running_worker(client, settings):
            api, api_task = await _start_api(settings)
            print(_banner(settings, address, store.describe(), api_key, dev_server=server is not None,
                          metrics=metrics_server is not None), flush=True)
            # A dev server of ours that dies stops everything, with one line (exit status 1).
            died = await devserver.watch(server, stop) if server is not None else None
            if server is None:
                await stop.wait()
            api.should_exit = True
            await api_task
            if died:
                raise ServerDied(died)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        if store is not None:
            await store.stop()
        if server is not None:
            devserver.stop(server)


def _banner(settings: Settings, address: str, store: str, api_key: str, *, dev_server: bool, metrics: bool) -> str:
    """What `up` prints once everything answers: where each part is, the rules in force, the key."""
    base = f"http://{settings.api_host}:{settings.api_port}"
    lines = [
        "campaign engine is up",
        f"  API            {base}",
        f"  OpenAPI docs   {base}/docs",
        f"  Temporal       {address} (namespace {settings.temporal_namespace})",
        f"  store          {store}",
    ]
    if dev_server:
        lines.append(f"  Temporal UI    http://127.0.0.1:{settings.temporal_ui_port}")
        lines.append(f"  data           {settings.data_dir.resolve()}")
    lines.append(f"  {legal_hours.summary(settings.legal_hours)}")
    overrides = tenant_policies.summary(parse_tenant_policies(settings.tenant_policies))
    if overrides:
        lines.append(f"  {overrides}")
    if metrics:
        lines.append(f"  worker metrics http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    lines.append(f"  API key        {api_key}   (header x-api-key)")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    overrides = {}
    if args.api_port:
        overrides["api_port"] = args.api_port
    if args.temporal_port:
        overrides["temporal_port"] = args.temporal_port
    if args.ui_port:
        overrides["temporal_ui_port"] = args.ui_port
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    settings = settings.model_copy(update=overrides)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_up(settings, stop)

    try:
        asyncio.run(main())
    except StoreUnreachable as err:  # DATABASE_URL set, but that server does not answer
        print(f"campaign-engine up: {err}", file=sys.stderr)
        return STORE_UNAVAILABLE
    return 0


# --- migrate ---------------------------------------------------------------------------------


async def run_migrate(settings: Settings) -> int:
    """The store at DATABASE_URL to the newest revision; prints the revision reached."""
    from campaign_engine.store.db import describe_url, require_database_url
    from campaign_engine.store.migrate import current_revision, upgrade_async

    url = require_database_url(settings)
    before = await current_revision(url)  # reachable, or one line saying why not
    await upgrade_async(url)
    after = await current_revision(url)
    where = describe_url(url)
    if after == before:
        print(f"store {where}: at revision {after} (head), nothing to do")
    else:
        print(f"store {where}: migrated from {before or 'an empty database'} to revision {after} (head)")
    return 0


def cmd_migrate(settings: Settings) -> int:
    try:
        return asyncio.run(run_migrate(settings))
    except (StoreNotConfigured, StoreUnreachable) as err:  # DATABASE_URL unset or unreachable
        print(f"campaign-engine migrate: {err}", file=sys.stderr)
        return STORE_UNAVAILABLE


# --- status and list -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="campaign-engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = with_temporal_options(sub.add_parser(
        "up", help="start Temporal (unless TEMPORAL_ADDRESS or --address is set), a worker and the API"))
    up.add_argument("--api-port", type=int)
    up.add_argument("--temporal-port", type=int)
    up.add_argument("--ui-port", type=int)
    up.add_argument("--data-dir")
    sub.add_parser("migrate", help="migrate the store at DATABASE_URL to the newest schema revision")
    with_temporal_options(sub.add_parser("worker", help="run one worker against TEMPORAL_ADDRESS (or --address)"))
    st = with_temporal_options(sub.add_parser("status", help="a campaign's progress, from Temporal"))
    st.add_argument("campaign_id", help="campaign id (CAMP-...) or its workflow id")
    st.add_argument("--watch", action="store_true", help="live progress bar until the campaign ends")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    ls = with_temporal_options(sub.add_parser("list", help="campaigns known to Temporal"))
    ls.add_argument("--status", help="in_progress, paused, completed, canceled, draft")
    ls.add_argument("--json", action="store_true")
    upload_cli.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from temporalio.service import RPCError

    settings = settings_for(args)
    try:
        if args.command == "up":
            status = cmd_up(args)
        elif args.command == "worker":
            import worker

            status = worker.main(settings)
        elif args.command == "migrate":
            status = cmd_migrate(settings)
        elif args.command == "upload":
            status = upload_cli.run_upload(args, settings)
        elif args.command == "status":
            status = asyncio.run(cli_status.run_status(settings, args.campaign_id, args.watch, args.json))
        else:
            status = asyncio.run(cli_status.run_list(settings, args.status, args.json))
    except TemporalUnreachable as err:
        print(err, file=sys.stderr)
        return UNREACHABLE
    except RPCError as err:  # reached, but it refuses (an unknown namespace, for one)
        print(TemporalUnreachable(settings, unreachable_reason(err)), file=sys.stderr)
        return UNREACHABLE
    return status


def _check_environment() -> None:
    from activities.environment import check_environment  # the providers' packages load only here

    check_environment()


def entrypoint() -> None:
    status = run_reporting(main, preflight=_check_environment)  # a configuration error: one line, status 2
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's Rust bridge can abort the interpreter at exit (sdk-python issue 300).
    os._exit(status)


if __name__ == "__main__":
    entrypoint()
