"""The store as the commands run it: `up` with an embedded PostgreSQL (no DATABASE_URL) or
against DATABASE_URL, `campaign-engine migrate`, and the worker without DATABASE_URL.

Every process here is a real `campaign-engine` (or `python worker.py`) started from the
venv; the session's embedded PostgreSQL (tests/conftest.py) hosts the fresh databases.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from sqlalchemy.engine import make_url

from campaign_engine.store.migrate import head_revision
from tests.conftest import API_KEY, database_url, in_thread, run_sql
from tests.test_crash_safety import ROOT, campaign_body, free_port

EXE = Path(sys.executable).parent / "campaign-engine"
READY = "Ctrl-C stops everything."
pytestmark = pytest.mark.slow


def env_without_store(**extra: str) -> dict[str, str]:
    """The test process's environment without DATABASE_URL (the session sets it per module)
    and without TEMPORAL_ADDRESS, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(extra)
    return env


def fresh_database(postgres) -> str:
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    run_sql(postgres.url, f"CREATE DATABASE {name}")
    return database_url(postgres, name)


def revision_of(url: str) -> str | None:
    async def read() -> str | None:
        conn = await asyncpg.connect(url)
        try:
            if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
                return None
            return await conn.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()

    box: list = []
    in_thread(lambda: box.append(asyncio.run(read())))
    return box[0]


def run(cmd: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def servers_on(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(data_dir) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


class Up:
    """`campaign-engine up` in a subprocess of its own, its output in a file."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.api_port = free_port()
        self.out = tmp_path / f"up-{uuid.uuid4().hex[:6]}.out"
        self.env = {**env, "API_PORT": str(self.api_port), "TEMPORAL_PORT": str(free_port()),
                    "TEMPORAL_UI_PORT": str(free_port()), "CAMPAIGN_DATA_DIR": str(tmp_path / ".data"),
                    "CAMPAIGN_API_KEYS": f"acme:{API_KEY}", "SIMULATED_CARRIER_DB": str(tmp_path / "carrier.sqlite3"),
                    "SIMULATED_RING_SECONDS": "0.05-0.1", "SIMULATED_TALK_SECONDS": "0.05-0.1",
                    "SIMULATED_OUTCOMES": "completed=1"}
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen([str(EXE), "up"], cwd=tmp_path, env=self.env, start_new_session=True,
                                         stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while READY not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"campaign-engine up exited {self.proc.returncode}: {self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"campaign-engine up not ready in {timeout} s: {self.output()[-3000:]}")
            time.sleep(0.1)
        return self.output()

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def store_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("  store ")]
    assert len(lines) == 1, output
    return lines[0]


async def upload_and_read_back(api_port: int) -> str:
    """The API writes to and reads from the store `up` gave it: the campaign's id."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30,
                                 headers={"x-api-key": API_KEY}) as http:
        resp = await http.post("/uploadCampaignDataAndRun", json=campaign_body(2, "store-up"))
        assert resp.status_code == 200, resp.text
        campaign_id = resp.json()["data"]["campaign"]["campaignId"]
        await read_back(api_port, campaign_id)
        return campaign_id


async def read_back(api_port: int, campaign_id: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30,
                                 headers={"x-api-key": API_KEY}) as http:
        read = await http.get(f"/campaigns/{campaign_id}")
        assert read.status_code == 200, read.text
        assert campaign_id in read.text, read.text


async def test_up_without_database_url_runs_an_embedded_store_and_stops_it(tmp_path):
    data_dir = (tmp_path / ".data" / "postgres").resolve()
    ups: list[Up] = []

    async def start() -> Up:
        ups.append(Up(tmp_path, env_without_store()))
        output = await asyncio.to_thread(ups[-1].wait_ready)
        assert store_line(output) == f"  store          PostgreSQL (embedded) {data_dir}"
        assert servers_on(data_dir), "no embedded PostgreSQL runs on the data dir"
        return ups[-1]

    try:
        up = await start()
        assert (data_dir / "PG_VERSION").is_file()
        campaign_id = await upload_and_read_back(up.api_port)
        # Ctrl-C stops the embedded server with the rest.
        assert await asyncio.to_thread(up.interrupt) == 0, up.output()[-3000:]
        assert not (data_dir / "postmaster.pid").exists()
        assert not servers_on(data_dir)

        # Started again on the same data dir: the records are there.
        up = await start()
        await read_back(up.api_port, campaign_id)
        # Killed outright (no clean stop), and started again: still there, and Ctrl-C stops
        # whichever server it runs on (a surviving one is reused).
        up.kill()
        up = await start()
        await read_back(up.api_port, campaign_id)
        assert await asyncio.to_thread(up.interrupt) == 0, up.output()[-3000:]
        assert not servers_on(data_dir)
    finally:
        for up in ups:
            up.kill()
        for proc in servers_on(data_dir):  # a failed run must not leave its server behind
            proc.kill()


async def test_up_with_database_url_migrates_it_and_starts_no_server(tmp_path, postgres):
    url = fresh_database(postgres)
    assert revision_of(url) is None
    up = Up(tmp_path, env_without_store(DATABASE_URL=url))
    try:
        output = await asyncio.to_thread(up.wait_ready)
        line = store_line(output)
        assert line.startswith("  store          PostgreSQL ") and "(embedded)" not in line
        assert line.endswith(f"/{make_url(url).database}"), line
        assert revision_of(url) == head_revision()
        assert not (tmp_path / ".data" / "postgres").exists()
        await upload_and_read_back(up.api_port)
        assert await asyncio.to_thread(up.interrupt) == 0, up.output()[-3000:]
    finally:
        up.kill()


def test_up_with_an_unreachable_database_url_is_one_line_and_exit_2(tmp_path):
    env = env_without_store(DATABASE_URL=f"postgresql://engine:s3cret-pw@127.0.0.1:{free_port()}/engine",
                            CAMPAIGN_DATA_DIR=str(tmp_path / ".data"), TEMPORAL_ADDRESS="127.0.0.1:1")
    result = run([str(EXE), "up"], env)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0], result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_migrate_reaches_head_on_a_fresh_database_and_again_does_nothing(postgres):
    url = fresh_database(postgres)
    first = run([str(EXE), "migrate"], env_without_store(DATABASE_URL=url))
    assert first.returncode == 0, first
    head = head_revision()
    assert revision_of(url) == head
    assert f"to revision {head} (head)" in first.stdout, first.stdout
    again = run([str(EXE), "migrate"], env_without_store(DATABASE_URL=url))
    assert again.returncode == 0, again
    assert f"at revision {head} (head), nothing to do" in again.stdout, again.stdout


@pytest.mark.parametrize("database_url", ["", "postgresql://engine:s3cret-pw@127.0.0.1:{port}/engine"])
def test_migrate_without_a_reachable_database_is_one_line_and_exit_2(database_url):
    env = env_without_store()
    if database_url:
        env["DATABASE_URL"] = database_url.format(port=free_port())
    result = run([str(EXE), "migrate"], env)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0], result.stderr
    assert "s3cret-pw" not in result.stderr


@pytest.mark.parametrize("cmd", [[sys.executable, str(ROOT / "worker.py")], [str(EXE), "worker"]],
                         ids=["python worker.py", "campaign-engine worker"])
def test_worker_without_database_url_is_one_line_naming_it_and_exit_2(cmd):
    result = run(cmd, env_without_store(TEMPORAL_ADDRESS="127.0.0.1:1"))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
