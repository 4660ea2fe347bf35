"""The engine against bare Temporal, side by side, on one dev server: `python -m bench.engine_bench`.

It starts its own Temporal dev server (SQLite file in a temporary directory, WAL pragmas,
the engine's search attributes, free ports, no UI) and the engine's store (an embedded
PostgreSQL under the same directory, migrated; its DATABASE_URL goes to every worker and API
it starts), then for each figure a fresh worker process (`python worker.py`, or the baseline
worker) and the API (`uvicorn api.main:app`, a subprocess), and measures:

1. baseline  a bare parent starting N children, each running one no-op activity
2. engine    a campaign of N contacts through POST /uploadCampaignDataAndRun, simulated
             carrier with zero ring and talk time, no redial, no concurrency cap, until the
             campaign workflow completes; throughput_ratio = engine / baseline, the median
             over the alternated pairs (--repeats)
3. upload    p50/p95 of POST /uploadCampaignDataAndRun with 1000 contacts carrying realistic
             custom_data (validated, written to the store in one transaction, started),
             against a bare client.start_workflow with the same payload (both on a task queue
             no worker polls, alternated request by request); upload_ratio = upload p50 /
             (bare start p50 + validating the numbers alone), the floor docs/benchmarks.md names
4. utilization  maxConcurrentCalls C, every call L seconds long: calls per second achieved
             between the first dial and the last hang-up, over the ideal C / L
5. growth    N = 1,000 / 10,000 / 100,000, and 1,000,000 with --million (built by appends of 1,000 through
             POST /campaigns/{id}/contacts when the API has it, else from several campaigns):
             time, per-contact time against the smallest N, worker and API peak RSS (VmHWM),
             the longest history of any workflow run, the largest history event (a bound on
             every payload: continue-as-new inputs, flush answers, pages of contacts)
6. multi     (--multi K, 2 by default, not in --quick) the engine with 1 and with K workers on one task
             queue, alternated (`workers_speedup`: K workers' rate over one's, median of the pairs);
             then K workers with one of them SIGKILLed mid-campaign: the campaign must still
             complete, every contact once

7. reads     (bench/reads.py) GET /getCampaignStatuses and GET /campaigns/{id} p50/p95 for a
             tenant with 1 campaign of 1,000 contacts and one with 10 campaigns of 10,000,
             seeded straight into the tables, alternated; reads_ratio = p50 at 10x10,000 / p50
             at 1x1,000 per endpoint; the CSV export's rows per second at 100,000 attempt rows

For every phase it also records where the time went: CPU seconds of the server, the
worker(s) (Python thread vs the SDK's Rust threads), the API and the store, the server's frontend
requests and persistence writes per contact (its /metrics), and history events per contact.
`--profile DIR` runs the workers and the API under py-spy (`pip install py-spy`).

It prints a table and, as its last line, one JSON object with the figures.

    python -m bench.engine_bench --quick        # smoke run, under a minute
    python -m bench.engine_bench                # N=1000, growth to 10,000 (about 10 minutes on 2 cores)
    python -m bench.engine_bench --n 500 --growth 1000,2000 --skip multi
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/engine_bench.py` works as well as `-m`
    sys.path.insert(0, str(ROOT))

TENANT = "bench"
API_KEY = "bench-key"
ENGINE_QUEUE = "bench-engine"
BASELINE_QUEUE = "bench-baseline"
IDLE_QUEUE = "bench-idle"  # no worker polls it: uploads are measured alone
CLK_TCK = os.sysconf("SC_CLK_TCK")
PHASES = ("baseline", "engine", "upload", "utilization", "growth", "multi", "reads")


# --- small helpers ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Percentile by linear interpolation (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError):
        return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its children that ended (waited for) and those alive: the
    embedded PostgreSQL's postmaster and its backends."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in fields[11:15]) / CLK_TCK
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError, ValueError):
        return 0.0
    return total + sum(proc_cpu(int(k)) for k in kids)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of one process ('python' is the interpreter's own thread)."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        name = re.sub(r"[-_]?\d+$", "", name) or name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def python_child(pid: int) -> int:
    """The python process a py-spy wrapper runs (or pid itself when not wrapped)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return pid
    if comm != "py-spy":
        return pid
    for _ in range(100):
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                kids = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
        time.sleep(0.05)
    return pid


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return float("nan")


# --- the server's /metrics ------------------------------------------------------------------

_METRIC = re.compile(r'^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$')


def scrape(url: str) -> dict[tuple[str, str, str], float]:
    """{(metric, service, operation): value} for the counters the report uses."""
    import urllib.request

    wanted = {"service_requests", "persistence_requests", "persistence_latency_sum"}
    out: dict[tuple[str, str, str], float] = {}
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m or m.group(1) not in wanted:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = (m.group(1), labels.get("service_name", ""), labels.get("operation", ""))
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


def metric_delta(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


# --- processes --------------------------------------------------------------------------------

@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return python_child(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            # Under py-spy, stop the program itself: py-spy then writes its profile and exits.
            target = self.pid
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in {target, self.popen.pid}:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.popen.wait()


class Stack:
    """Every process the benchmark starts, and how to reach them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="engine-bench-"))
        self.port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.server: Proc | None = None
        self.client = None
        self.procs: list[Proc] = []
        self.cgroups: list[Path] = []
        self.store = None  # the embedded PostgreSQL (campaign_engine.store.embedded)
        self.database_url = ""

    # The engine's store: an embedded PostgreSQL under the temporary directory, migrated ---
    async def start_store(self) -> None:
        import warnings

        from campaign_engine.store.migrate import upgrade_async

        def start():
            with warnings.catch_warnings():  # platformdirs warns at import where XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                from campaign_engine.store.embedded import start_embedded

                return start_embedded(self.tmp / "postgres")

        # As root the server runs as a user of its own, which must traverse the directory.
        if os.geteuid() == 0:
            os.chmod(self.tmp, 0o711)
        self.store = await asyncio.to_thread(start)
        self.database_url = self.store.url
        await upgrade_async(self.database_url)

    @property
    def store_pid(self) -> int | None:
        return self.store.pid if self.store is not None else None

    # The dev server ----------------------------------------------------------------------
    async def start_server(self) -> None:
        from campaign_engine.devserver import temporal_cli, wait_until_serving
        from campaign_engine.search_attributes import dev_server_args

        db = ["--db-filename", str(self.tmp / "temporal.sqlite3"),
              "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        if self.args.in_memory:
            db = []
        cmd = [
            temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(self.port), "--http-port", str(free_port()),
            "--metrics-port", str(self.metrics_port), "--headless", "--log-level", "error",
            *db, *dev_server_args(),
            "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
            *sum((["--dynamic-config-value", kv] for kv in self.args.server_config), []),
        ]
        self.server = self._spawn("server", cmd, env=os.environ.copy(), profile=False)
        try:
            self.client = await wait_until_serving(self.address, "default", self.server.popen)
        except (RuntimeError, TimeoutError) as err:
            raise RuntimeError(f"{err}:\n{self.server.tail()}") from None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    # Workers and the API -----------------------------------------------------------------
    def engine_env(self, queue: str, carrier_db: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TEMPORAL_", "SIMULATED_", "TWILIO_", "HTTP_PROVIDER_", "WORKER_", "DATABASE_URL", "RATE_LIMIT_"))}
        env.update({
            "PYTHONUNBUFFERED": "1",
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_TASK_QUEUE": queue,
            "TELEPHONY_PROVIDER": "simulated",
            "CAMPAIGN_API_KEYS": f"{TENANT}:{API_KEY}",
            "CAMPAIGN_DATA_DIR": str(self.tmp / "data"),
            "SIMULATED_CARRIER_DB": str(carrier_db),
            "SIMULATED_OUTCOMES": "completed=1",
            "SIMULATED_RING_SECONDS": "0",
            "SIMULATED_TALK_SECONDS": "0",
            "EXPECTED_CALL_SECONDS": "1",
            "DATABASE_URL": self.database_url,
            # Rate limits stay on (each request pays its counting upsert, as deployed), set
            # high enough that the benchmark's own bursts are never refused.
            "RATE_LIMIT_UPLOADS": "100000/minute",
            "RATE_LIMIT_CONTROL": "100000/minute",
            "RATE_LIMIT_READS": "100000/minute",
        })
        env.update(self.args.worker_env)
        env.update(extra)
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], profile: bool = True) -> Proc:
        # Whatever happens to the benchmark (even SIGKILL), what it started goes with it.
        from campaign_engine.devserver import _die_with_parent as die_with_parent

        log_path = self.tmp / f"{name}-{len(self.procs)}.log"
        if profile and self.args.profile:
            out = Path(self.args.profile) / f"{name}-{len(self.procs)}.{self.args.profile_format}"
            cmd = [self.args.py_spy, "record", "--nonblocking", "--rate", str(self.args.profile_rate), "--format",
                   self.args.profile_format, "-o", str(out), "--", *cmd]
        fh = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    async def _wait_for_log(self, proc: Proc, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            if needle in proc.log_path.read_text(errors="replace"):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{proc.name} not ready:\n{proc.tail()}")

    async def start_engine_worker(self, env: dict[str, str], name: str = "worker") -> Proc:
        proc = self._spawn(name, [sys.executable, "worker.py"], env)
        await self._wait_for_log(proc, "worker polling task queue")
        self.limit_cpu(proc)
        return proc

    async def start_baseline_worker(self) -> Proc:
        env = self.engine_env(BASELINE_QUEUE, self.tmp / "unused.sqlite3")
        proc = self._spawn("baseline-worker", [sys.executable, "-m", "bench.engine_bench", "--role",
                                               "baseline-worker"], env)
        await self._wait_for_log(proc, "worker polling task queue")
        self.limit_cpu(proc)
        return proc

    def limit_cpu(self, proc: Proc) -> None:
        """--worker-cpu F: the worker process gets at most F of one core (a cgroup of its own
        with a CFS quota), like a worker pod with a CPU limit. On a machine whose cores the
        server takes, this is how workers become the bottleneck, so that adding workers shows
        what they add. Linux, as root: cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us)."""
        fraction = self.args.worker_cpu
        if not fraction:
            return
        period = 100_000
        quota = max(int(fraction * period), 1_000)
        name = f"engine-bench-{os.getpid()}-{len(self.cgroups)}"
        v2 = Path("/sys/fs/cgroup")
        if (v2 / "cgroup.controllers").exists():
            group = v2 / name
            group.mkdir()
            (group / "cpu.max").write_text(f"{quota} {period}")
        else:
            group = Path("/sys/fs/cgroup/cpu") / name
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        self.cgroups.append(group)
        for pid in {proc.popen.pid, proc.pid}:  # py-spy (under --profile) and the worker itself
            (group / "cgroup.procs").write_text(str(pid))

    async def start_api(self, env: dict[str, str], name: str = "api") -> tuple[Proc, str]:
        import httpx

        port = free_port()
        proc = self._spawn(name, [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                                  "--port", str(port), "--log-level", "warning", "--no-access-log"], env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if not proc.alive():
                    raise RuntimeError(f"api exited:\n{proc.tail()}")
                try:
                    if (await http.get(base + "/healthz")).status_code == 200:
                        return proc, base
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"api not ready:\n{proc.tail()}")

    def shutdown(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout=10)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        for group in self.cgroups:
            try:
                group.rmdir()
            except OSError:
                pass
        if self.store is not None:
            try:
                self.store.stop()
            except Exception as err:  # noqa: BLE001 - best effort on the way out
                log(f"stopping the embedded PostgreSQL: {err}")
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")


# --- accounting of one phase --------------------------------------------------------------------

@dataclass
class Usage:
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0
    worker_python_cpu_s: float = 0.0  # the interpreter's thread: workflow code, sandbox, converters
    api_cpu_s: float = 0.0
    store_cpu_s: float = 0.0  # the engine's PostgreSQL (postmaster and backends)
    bench_cpu_s: float = 0.0
    frontend_requests: dict[str, float] = field(default_factory=dict)
    persistence_writes: float = 0.0
    persistence_seconds: float = 0.0
    load_avg: float = 0.0  # 1-minute load average at the end: other work on the machine skews a phase
    persistence_ops: dict[str, float] = field(default_factory=dict)  # "service/operation" -> count
    persistence_op_seconds: dict[str, float] = field(default_factory=dict)


_WRITE_OPS = {("history", "UpdateWorkflowExecution"), ("history", "CreateWorkflowExecution"),
              ("history", "ConflictResolveWorkflowExecution"), ("history", "SetWorkflowExecution"),
              ("matching", "CreateTasks")}


class Meter:
    """CPU and server counters between start() and stop()."""

    def __init__(self, stack: Stack, workers: list[Proc], api: Proc | None = None) -> None:
        self.stack, self.workers, self.api = stack, workers, api

    def _snap(self) -> dict:
        worker_threads = [thread_cpu(w.pid) for w in self.workers]
        return {
            "t": time.monotonic(),
            "server": proc_cpu(self.stack.server.popen.pid),
            "worker": sum(proc_cpu(w.pid) for w in self.workers),
            "worker_py": sum(t.get("python", 0.0) for t in worker_threads),
            "api": proc_cpu(self.api.pid) if self.api else 0.0,
            "store": tree_cpu(self.stack.store_pid) if self.stack.store_pid else 0.0,
            "bench": sum(os.times()[:2]),
            "metrics": scrape(self.stack.metrics_url),
        }

    def start(self) -> Meter:
        self.a = self._snap()
        return self

    def stop(self) -> Usage:
        b = self._snap()
        d = metric_delta(self.a["metrics"], b["metrics"])
        fe = {op: v for (m, svc, op), v in d.items() if m == "service_requests" and svc == "frontend"}
        # Writes of workflow state, and of tasks no poller was waiting for (matching's backlog).
        writes = sum(v for (m, svc, op), v in d.items()
                     if m == "persistence_requests" and (svc, op) in _WRITE_OPS)
        pers_s = sum(v for (m, svc, op), v in d.items() if m == "persistence_latency_sum")
        return Usage(
            wall_s=b["t"] - self.a["t"],
            server_cpu_s=b["server"] - self.a["server"],
            worker_cpu_s=b["worker"] - self.a["worker"],
            worker_python_cpu_s=b["worker_py"] - self.a["worker_py"],
            api_cpu_s=b["api"] - self.a["api"],
            store_cpu_s=b["store"] - self.a["store"],
            bench_cpu_s=b["bench"] - self.a["bench"],
            frontend_requests=fe,
            persistence_writes=writes,
            persistence_seconds=pers_s,
            load_avg=loadavg(),
            persistence_ops={f"{svc}/{op}": v for (m, svc, op), v in d.items() if m == "persistence_requests"},
            persistence_op_seconds={f"{svc}/{op}": v for (m, svc, op), v in d.items() if m == "persistence_latency_sum"},
        )


@dataclass
class Histories:
    runs: int = 0
    max_events: int = 0
    max_events_type: str = ""
    total_events: int = 0
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)


async def histories(client, query: str, expect_closed: int, timeout: float = 60) -> Histories:
    """History lengths of every run matching a visibility query (waits for them to be closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        closed = (await client.count_workflows(f"{query} AND ExecutionStatus != 'Running'")).count
        if closed >= expect_closed:
            break
        await asyncio.sleep(0.5)
    h = Histories()
    per_type: dict[str, list[int]] = {}
    async for wf in client.list_workflows(query, page_size=1000):
        h.runs += 1
        n = wf.history_length or 0
        per_type.setdefault(wf.workflow_type, []).append(n)
        h.total_events += n
        if n > h.max_events:
            h.max_events, h.max_events_type = n, wf.workflow_type
    h.by_type = {t: {"runs": len(v), "max": max(v), "mean": round(statistics.fmean(v), 1), "sum": sum(v)}
                 for t, v in per_type.items()}
    return h


async def largest_event(client, wf_ids: list[str]) -> tuple[int, str]:
    """The largest history event (bytes, and which) of every run of the campaigns and of
    their first contacts: an upper bound on any payload (continue-as-new inputs, the flush's
    answers, pages of contacts, a contact's input)."""
    best = (0, "")
    for wf_id in wf_ids:
        ids = [wf_id] + [f"{wf_id}/contact/{k}" for k in range(3)]
        for one in ids:
            async for execution in client.list_workflows(f"WorkflowId = '{one}'"):
                handle = client.get_workflow_handle(one, run_id=execution.run_id)
                async for event in handle.fetch_history_events():
                    size = event.ByteSize()
                    if size > best[0]:
                        best = (size, f"{one} event {event.event_id} ({event.WhichOneof('attributes')})")
    return best


@dataclass
class PhaseResult:
    name: str
    n: int
    seconds: float
    contacts_per_s: float
    usage: Usage
    hist: Histories | None = None
    worker_peak_rss_mb: float = 0.0
    ok: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_contact_ms(self) -> float:
        return 1000 * self.seconds / self.n if self.n else float("nan")


# --- payloads -----------------------------------------------------------------------------------

CITIES = ["Pune", "Mumbai", "Bengaluru", "Chennai", "Delhi", "Hyderabad", "Kolkata", "Jaipur"]
PLANS = ["silver", "gold", "platinum"]


def contact_row(i: int) -> dict:
    """One contact as a client would upload it: an Indian mobile number and ~300 bytes of custom_data."""
    return {
        "phone_number": f"+9198{i:08d}",
        "name": f"Customer {i}",
        "email": f"customer{i}@example.com",
        "custom_data": {
            "customer_id": f"CUST-{i:08d}",
            "plan": PLANS[i % 3],
            "city": CITIES[i % len(CITIES)],
            "language": "hi" if i % 2 else "en",
            "balance_due": round(1000 + (i * 37) % 9000 + 0.5, 2),
            "due_date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "last_order": {"id": f"ORD-{i * 7:09d}", "amount": 499.0 + i % 500, "items": 1 + i % 5},
            "notes": "Prefers calls after 6 pm; asked about EMI options on the last call.",
        },
    }


def phone_validation_ms(numbers: list[str]) -> float:
    from campaign_engine.phones import parse_phone

    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for number in numbers:
            parse_phone(number)
        best = min(best, time.perf_counter() - t)
    return best * 1000


async def store_write_ms(database_url: str, body: dict, n: int, times: int = 7) -> float:
    """p50 of repo.create_campaign (the upload's transaction: the campaign row and its contacts)
    for the body's contacts, as Contacts the API would have made, under a tenant of its own
    whose campaigns are never launched (so never shown)."""
    from campaign_engine.ids import new_campaign_id, new_object_id
    from campaign_engine.models import CampaignConfig, CampaignStatus, Contact
    from campaign_engine.store import repo
    from campaign_engine.store.db import create_engine

    contacts = [Contact(key=i, phone=row["phone_number"], masked=row["phone_number"][:6] + "xxxx",
                        name=row["name"], email=row["email"], custom_data=row["custom_data"])
                for i, row in enumerate(body["contacts"][:n])]
    engine = create_engine(database_url, pool_size=1)
    ms = []
    try:
        for _ in range(times):
            now = datetime.now(UTC)
            config = CampaignConfig(campaign_id=new_campaign_id(now), object_id=new_object_id(now),
                                    tenant_id="bench-store-probe", name=body["campaignName"],
                                    agent_id=body["agentId"], created_at=now)
            t = time.perf_counter()
            await repo.create_campaign(engine, config, contacts, status=CampaignStatus.IN_PROGRESS,
                                       counts=lambda: (len(contacts), 0))
            ms.append((time.perf_counter() - t) * 1000)
    finally:
        await engine.dispose()
    return pct(ms[1:], 50)


def campaign_body(name: str, start: int, n: int, **extra) -> dict:
    return {
        "campaignName": name,
        "agentId": "507f1f77bcf86cd799439012",
        "isScheduledCall": False,
        "isContextBasedCall": True,
        "contacts": [contact_row(i) for i in range(start, start + n)],
        **extra,
    }


# --- the phases ----------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args = args
        self.stack = stack
        self.results: list[PhaseResult] = []
        self.append_path: str | None = None
        self.upload: dict[str, Any] = {}
        self.util: dict[str, Any] = {}
        self.reads: dict[str, Any] = {}
        self._phone_base = 0

    @property
    def client(self):
        return self.stack.client

    def phones(self, n: int) -> int:
        """First index of n phone numbers never used before in this run."""
        start = self._phone_base
        self._phone_base += n
        return start

    # 1. baseline -----------------------------------------------------------------------
    async def baseline(self, n: int, tag: str) -> PhaseResult:
        from bench import BenchParent

        worker = await self.stack.start_baseline_worker()
        prefix = f"bench-baseline/{tag}-{uuid.uuid4().hex[:6]}"
        meter = Meter(self.stack, [worker]).start()
        t0 = time.time()
        handle = await self.client.start_workflow(
            BenchParent.run, args=[n, prefix], id=prefix, task_queue=BASELINE_QUEUE)
        result = await handle.result()
        usage = meter.stop()
        seconds = (await handle.describe()).close_time.timestamp() - t0
        rss = vm_hwm_mb(worker.pid)
        worker.stop()
        hist = await histories(self.client, f'WorkflowId STARTS_WITH "{prefix}"', n + 1)
        res = PhaseResult(f"baseline {tag}", n, seconds, n / seconds, usage, hist, rss, ok=result == n)
        self.results.append(res)
        log(f"baseline N={n}: {seconds:.1f}s, {n / seconds:.1f} contacts/s")
        return res

    # 2. engine (and growth, and multi-worker) --------------------------------------------
    async def engine(self, n: int, tag: str, *, workers: int = 1, kill_one_at: float | None = None,
                     append_size: int = 1000, **env_extra: str) -> PhaseResult:
        import httpx

        from campaign_engine.ids import campaign_workflow_id

        carrier_db = self.stack.tmp / f"carrier-{tag}.sqlite3"
        env = self.stack.engine_env(ENGINE_QUEUE, carrier_db, **env_extra)
        procs = [await self.stack.start_engine_worker(env, f"worker-{tag}-{i}") for i in range(workers)]
        api, base = await self.stack.start_api(env, f"api-{tag}")
        await self._detect_append(base)
        headers = {"x-api-key": API_KEY, "content-type": "application/json"}
        start = self.phones(n)
        first = min(n, append_size)
        built_by = "one upload"
        campaign_ids: list[str] = []
        meter = Meter(self.stack, procs, api).start()
        t0 = time.time()
        note = ""
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
            body = campaign_body(f"bench {tag}", start, first)
            r = await http.post("/uploadCampaignDataAndRun", content=json.dumps(body))
            r.raise_for_status()
            campaign_ids.append(r.json()["data"]["campaign"]["campaignId"])
            done = first
            if n > first and self.append_path:
                built_by = f"1 upload + {(n - first + append_size - 1) // append_size} appends of {append_size}"
            elif n > first:
                built_by = f"{(n + append_size - 1) // append_size} campaigns of {append_size} (no append endpoint)"
            while done < n:
                size = min(append_size, n - done)
                rows = [contact_row(i) for i in range(start + done, start + done + size)]
                if self.append_path:
                    path = self.append_path.replace("{id}", campaign_ids[0])
                    r = await http.post(path, content=json.dumps({"contacts": rows}))
                    if r.status_code >= 300:
                        note = f"append failed: {r.status_code} {r.text[:200]}"
                        log(note)
                        break
                else:
                    body = campaign_body(f"bench {tag} part {len(campaign_ids)}", start + done, size)
                    r = await http.post("/uploadCampaignDataAndRun", content=json.dumps(body))
                    r.raise_for_status()
                    campaign_ids.append(r.json()["data"]["campaign"]["campaignId"])
                done += size
            upload_s = time.time() - t0
        wf_ids = [campaign_workflow_id(TENANT, c) for c in campaign_ids]
        killer = None
        if kill_one_at is not None and len(procs) > 1:
            killer = asyncio.create_task(self._kill_when(procs[-1], carrier_db, int(n * kill_one_at)))
        ok, stall_note, summaries, end = await self._await_campaigns(wf_ids, carrier_db, n)
        usage = meter.stop()
        seconds = end - t0
        if killer is not None:
            killer.cancel()
        rss = max(vm_hwm_mb(p.pid) for p in procs)
        api_rss = vm_hwm_mb(api.pid)
        calls = carrier_calls(carrier_db)
        for p in procs:
            p.stop()
        api.stop()
        total = sum(s.total_contacts for s in summaries)
        completed = sum(s.by_disposition.get("completed", 0) for s in summaries)
        distinct = len({c["contact_workflow_id"] for c in calls})
        if ok and not (total == n and completed == n and len(calls) == n and distinct == n):
            ok = False
            stall_note = (f"expected {n} contacts completed once each: summary total {total}, "
                          f"completed {completed}, carrier calls {len(calls)} for {distinct} contacts")
        query = " OR ".join(f'WorkflowId STARTS_WITH "{w}"' for w in wf_ids)
        hist = await histories(self.client, f"({query})", n + len(wf_ids), timeout=120 if ok else 5)
        largest = await largest_event(self.client, wf_ids)
        res = PhaseResult(
            f"engine {tag}", n, seconds, n / seconds, usage, hist, rss, ok=ok,
            note="; ".join(x for x in (note, stall_note) if x),
            extra={"built_by": built_by, "upload_s": round(upload_s, 2), "workers": workers,
                   "campaigns": len(wf_ids), "calls": len(calls), "api_peak_rss_mb": round(api_rss, 1),
                   "largest_event_bytes": largest[0], "largest_event": largest[1]},
        )
        self.results.append(res)
        log(f"engine {tag} N={n}: {seconds:.1f}s, {n / seconds:.1f} contacts/s, rss {rss:.0f} MB, "
            f"max history {hist.max_events} ({hist.max_events_type}){'' if ok else ' FAILED: ' + res.note}")
        return res

    async def _detect_append(self, base: str) -> None:
        if self.append_path is not None:
            return
        import httpx

        async with httpx.AsyncClient(base_url=base) as http:
            paths = (await http.get("/openapi.json")).json().get("paths", {})
        for path, ops in paths.items():
            if re.fullmatch(r"/campaigns/\{[^}]+\}/contacts", path) and "post" in ops:
                self.append_path = re.sub(r"\{[^}]+\}", "{id}", path)
                return
        self.append_path = ""

    async def _await_campaigns(self, wf_ids: list[str], carrier_db: Path, n: int):
        """Wait until every campaign is closed; give up when no call was placed for a while.

        Returns (ok, note, summaries, end): end is the last campaign's close time (epoch
        seconds, from the server), so the polling interval does not blur the figure.
        """
        from temporalio.client import WorkflowExecutionStatus

        from campaign_engine.models import CampaignSummary

        handles = [self.client.get_workflow_handle(w, result_type=CampaignSummary) for w in wf_ids]
        closed: dict[str, tuple[WorkflowExecutionStatus, float]] = {}
        last_count, last_change = -1, time.monotonic()
        while len(closed) < len(handles):
            await asyncio.sleep(0.5)
            for h in handles:
                if h.id in closed:
                    continue
                desc = await h.describe()  # the latest run (continue-as-new followed)
                if desc.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW):
                    closed[h.id] = (desc.status, desc.close_time.timestamp())
            count = carrier_count(carrier_db)
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif len(closed) < len(handles) and time.monotonic() - last_change > self.args.stall_seconds:
                why = await self._why_stuck(wf_ids)
                return False, f"stalled at {count}/{n} calls: {why}", [], time.time()
        end = max(t for _, t in closed.values())
        bad = {w: s.name for w, (s, _) in closed.items() if s != WorkflowExecutionStatus.COMPLETED}
        if bad:
            return False, f"campaign closed as {bad}", [], end
        return True, "", [await h.result() for h in handles], end

    async def _why_stuck(self, wf_ids: list[str]) -> str:
        reasons = []
        for w in wf_ids:
            try:
                desc = await self.client.get_workflow_handle(w).describe()
                raw = desc.raw_description
                pending = raw.pending_workflow_task
                why = f"{w}: {desc.status.name if desc.status else '?'}, history {desc.history_length}"
                if pending and pending.attempt > 1:
                    why += f", workflow task attempt {pending.attempt}"
                reasons.append(why)
            except Exception as err:  # noqa: BLE001
                reasons.append(f"{w}: {err}")
        return "; ".join(reasons)

    async def _kill_when(self, proc: Proc, carrier_db: Path, calls: int) -> None:
        while carrier_count(carrier_db) < calls:
            await asyncio.sleep(0.2)
        log(f"SIGKILL {proc.name} (pid {proc.pid}) after {calls} calls")
        os.kill(proc.pid, signal.SIGKILL)
        if proc.popen.pid != proc.pid:
            proc.popen.wait()

    # 3. upload latency -------------------------------------------------------------------
    async def upload_latency(self, n_contacts: int, requests: int) -> dict:
        import httpx

        env = self.stack.engine_env(IDLE_QUEUE, self.stack.tmp / "carrier-idle.sqlite3")
        api, base = await self.stack.start_api(env, "api-upload")
        headers = {"x-api-key": API_KEY, "content-type": "application/json"}
        start = self.phones(n_contacts)
        body = campaign_body("bench upload", start, n_contacts)
        raw = json.dumps(body).encode()
        api_ms: list[float] = []
        bare_ms: list[float] = []
        started: list[str] = []
        warmup = 2
        meter = Meter(self.stack, [], api).start()
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            for i in range(warmup + requests):
                t = time.perf_counter()
                r = await http.post("/uploadCampaignDataAndRun", content=raw)
                a = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                from campaign_engine.ids import campaign_workflow_id

                started.append(campaign_workflow_id(TENANT, r.json()["data"]["campaign"]["campaignId"]))
                wf_id = f"bench-bare-start/{uuid.uuid4().hex}"
                t = time.perf_counter()
                await self.client.start_workflow("BenchUploadSink", body, id=wf_id, task_queue=IDLE_QUEUE)
                b = (time.perf_counter() - t) * 1000
                started.append(wf_id)
                if i >= warmup:
                    api_ms.append(a)
                    bare_ms.append(b)
        usage = meter.stop()
        api_rss = vm_hwm_mb(api.pid)
        api.stop()
        await asyncio.gather(*(self.client.get_workflow_handle(w).terminate("benchmark done")
                               for w in started), return_exceptions=True)
        self.upload = {
            "contacts": n_contacts, "requests": requests, "body_bytes": len(raw),
            "api_p50_ms": pct(api_ms, 50), "api_p95_ms": pct(api_ms, 95),
            "bare_p50_ms": pct(bare_ms, 50), "bare_p95_ms": pct(bare_ms, 95),
            "api_cpu_ms_per_request": 1000 * usage.api_cpu_s / (warmup + requests),
            "api_peak_rss_mb": api_rss,
        }
        # The floor (docs/benchmarks.md): a bare start of the same body plus validating the
        # numbers with phonenumbers (the same call the API makes, here in this process, best
        # of 5), which nothing may skip. upload_ratio is the request's p50 over that.
        u = self.upload
        u["phones_ms"] = phone_validation_ms([row["phone_number"] for row in body["contacts"]])
        u["floor_p50_ms"] = u["bare_p50_ms"] + u["phones_ms"]
        u["ratio_p50"] = u["api_p50_ms"] / u["floor_p50_ms"]
        u["ratio_p95"] = u["api_p95_ms"] / (u["bare_p95_ms"] + u["phones_ms"])
        # The earlier figure, against the bare start alone.
        u["ratio_vs_bare_start_p50"] = u["api_p50_ms"] / u["bare_p50_ms"]
        u["ratio_vs_bare_start_p95"] = u["api_p95_ms"] / u["bare_p95_ms"]
        # What the upload's one transaction costs alone: the campaign row and its contacts,
        # written through the engine's own repo from this process (p50 of a few).
        u["store_write_ms"] = await store_write_ms(self.stack.database_url, body, n_contacts)
        log(f"upload {n_contacts} contacts: API p50 {self.upload['api_p50_ms']:.0f} ms, p95 "
            f"{self.upload['api_p95_ms']:.0f} ms; bare start p50 {self.upload['bare_p50_ms']:.0f} ms")
        return self.upload

    # 4. utilization ------------------------------------------------------------------------
    async def utilization(self, n: int, c: int, length: float) -> dict:
        import httpx

        from campaign_engine.ids import campaign_workflow_id

        tag = f"util-c{c}-l{length:g}"
        carrier_db = self.stack.tmp / f"carrier-{tag}.sqlite3"
        env = self.stack.engine_env(ENGINE_QUEUE, carrier_db, SIMULATED_TALK_SECONDS=str(length),
                                    SIMULATED_RING_SECONDS="0", EXPECTED_CALL_SECONDS=str(length))
        worker = await self.stack.start_engine_worker(env, f"worker-{tag}")
        api, base = await self.stack.start_api(env, f"api-{tag}")
        start = self.phones(n)
        meter = Meter(self.stack, [worker], api).start()
        t0 = time.time()
        async with httpx.AsyncClient(base_url=base, headers={"x-api-key": API_KEY}, timeout=60) as http:
            r = await http.post("/uploadCampaignDataAndRun",
                                json=campaign_body(f"bench {tag}", start, n, maxConcurrentCalls=c))
            r.raise_for_status()
            wf_id = campaign_workflow_id(TENANT, r.json()["data"]["campaign"]["campaignId"])
        ok, why, _, end = await self._await_campaigns([wf_id], carrier_db, n)
        usage = meter.stop()
        seconds = end - t0
        rss = vm_hwm_mb(worker.pid)
        worker.stop()
        api.stop()
        calls = carrier_calls(carrier_db)
        spans = sorted((datetime.fromisoformat(x["placed_at"]).timestamp(),
                        datetime.fromisoformat(x["placed_at"]).timestamp() + x["ring_seconds"] + x["talk_seconds"])
                       for x in calls)
        first, last = spans[0][0], max(e for _, e in spans)
        achieved = len(calls) / (last - first)
        ideal = c / length
        # Most calls live at once, from the carrier's own record (must never exceed C).
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
        live = peak = 0
        for _, d in events:
            live += d
            peak = max(peak, live)
        self.util = {
            "n": n, "c": c, "l": length, "calls": len(calls), "ok": ok and len(calls) == n, "note": why,
            "dial_span_s": last - first, "wall_s": seconds, "achieved_calls_per_s": achieved,
            "ideal_calls_per_s": ideal, "utilization": achieved / ideal, "peak_live_calls": peak,
            "wall_utilization": (n / seconds) / ideal,
            # Time a slot stays empty between one call's end and the next call's start: what
            # the campaign's grant round trip costs; utilization at call length L' is L' / (L' + this).
            "slot_turnaround_s": c / achieved - length,
        }
        self.results.append(PhaseResult(f"utilization C={c} L={length:g}s", n, seconds, n / seconds, usage,
                                        None, rss, ok=self.util["ok"], note=why))
        log(f"utilization C={c} L={length}: {achieved:.2f} calls/s of ideal {ideal:.2f} "
            f"({100 * achieved / ideal:.0f}%), peak live {peak}")
        return self.util


def carrier_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


def carrier_calls(db: Path) -> list[dict]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        rows = con.execute("SELECT contact_workflow_id, placed_at, ring_seconds, talk_seconds FROM calls").fetchall()
    return [dict(zip(("contact_workflow_id", "placed_at", "ring_seconds", "talk_seconds"), r, strict=True))
            for r in rows]


# --- the report -----------------------------------------------------------------------------------

def per_contact(u: Usage, n: int) -> dict[str, float]:
    rpc = {k: v / n for k, v in u.frontend_requests.items()}
    worker_facing = sum(v for k, v in rpc.items() if k.startswith(("Poll", "Respond")))
    return {
        "server_cpu_ms": 1000 * u.server_cpu_s / n,
        "worker_cpu_ms": 1000 * u.worker_cpu_s / n,
        "worker_python_ms": 1000 * u.worker_python_cpu_s / n,
        "api_cpu_ms": 1000 * u.api_cpu_s / n,
        "store_cpu_ms": 1000 * u.store_cpu_s / n,
        "rpcs": sum(rpc.values()),
        "worker_rpcs": worker_facing,
        "wft_completed": rpc.get("RespondWorkflowTaskCompleted", 0.0),
        "db_writes": u.persistence_writes / n,
        "db_ms": 1000 * u.persistence_seconds / n,
    }


def report(bench: Bench, args: argparse.Namespace) -> dict:
    lines = []
    hdr = (f"{'phase':<24}{'N':>7}{'time s':>8}{'contacts/s':>11}{'ms/contact':>11}{'srv cpu':>8}"
           f"{'wkr cpu':>8}{'(py)':>6}{'pg cpu':>7}{'RPC':>6}{'WFT':>5}{'DB wr':>6}{'ev/contact':>11}{'max hist':>9}"
           f"{'RSS MB':>7}{'load':>6}  ok")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in bench.results:
        pc = per_contact(r.usage, r.n)
        ev = (r.hist.total_events / r.n) if r.hist and r.n else float("nan")
        lines.append(
            f"{r.name:<24}{r.n:>7}{r.seconds:>8.1f}{r.contacts_per_s:>11.1f}{r.per_contact_ms:>11.1f}"
            f"{pc['server_cpu_ms']:>8.1f}{pc['worker_cpu_ms']:>8.1f}{pc['worker_python_ms']:>6.1f}{pc['store_cpu_ms']:>7.1f}"
            f"{pc['rpcs']:>6.1f}{pc['wft_completed']:>5.1f}{pc['db_writes']:>6.1f}{ev:>11.1f}"
            f"{(r.hist.max_events if r.hist else 0):>9}{r.worker_peak_rss_mb:>7.0f}{r.usage.load_avg:>6.1f}  "
            f"{'yes' if r.ok else 'NO: ' + r.note}"
        )
    lines.append("srv/wkr cpu: CPU ms per contact of the Temporal server / the worker process(es), (py) the "
                 "worker's Python thread; pg cpu: the engine's PostgreSQL store (all its processes); RPC: frontend requests per contact; WFT: workflow tasks completed per "
                 "contact; DB wr: persistence writes per contact (workflow state, backlogged tasks); ev/contact: history events of every "
                 "run / N; load: 1-minute load average at the end (other work on the machine skews a phase)")
    for r in bench.results:
        if r.hist and r.hist.by_type:
            parts = ", ".join(f"{t}: {v['runs']} runs, max {v['max']}, mean {v['mean']}" for t, v in r.hist.by_type.items())
            lines.append(f"  {r.name}: {parts}" + (f"; {r.extra['built_by']}" if "built_by" in r.extra else ""))
    if bench.upload:
        u = bench.upload
        lines.append("")
        lines.append(f"upload of {u['contacts']} contacts ({u['body_bytes'] / 1024:.0f} KiB), {u['requests']} requests each:")
        lines.append(f"  POST /uploadCampaignDataAndRun  p50 {u['api_p50_ms']:7.1f} ms  p95 {u['api_p95_ms']:7.1f} ms"
                     f"  (API CPU {u['api_cpu_ms_per_request']:.0f} ms/request, API peak RSS {u['api_peak_rss_mb']:.0f} MB)")
        lines.append(f"  bare client.start_workflow     p50 {u['bare_p50_ms']:7.1f} ms  p95 {u['bare_p95_ms']:7.1f} ms")
        lines.append(f"  validating the {u['contacts']} numbers alone (phonenumbers, in this process): "
                     f"{u['phones_ms']:.1f} ms; floor (bare start + that) p50 {u['floor_p50_ms']:.1f} ms")
        lines.append(f"  upload_ratio (API / floor) p50 {u['ratio_p50']:.2f}, p95 {u['ratio_p95']:.2f}; against the "
                     f"bare start alone p50 {u['ratio_vs_bare_start_p50']:.2f}, p95 {u['ratio_vs_bare_start_p95']:.2f}")
        lines.append(f"  writing the campaign and its {u['contacts']} contacts to PostgreSQL alone (one transaction, "
                     f"through the repo): p50 {u['store_write_ms']:.1f} ms")
    if bench.util:
        u = bench.util
        lines.append("")
        lines.append(f"utilization: C={u['c']} L={u['l']:g}s N={u['n']}: {u['achieved_calls_per_s']:.2f} calls/s "
                     f"between first dial and last hang-up ({u['dial_span_s']:.1f}s), ideal {u['ideal_calls_per_s']:.2f}: "
                     f"{100 * u['utilization']:.1f}%; from upload to completion {100 * u['wall_utilization']:.1f}%; "
                     f"peak live calls {u['peak_live_calls']} (cap {u['c']}); a slot stays empty "
                     f"{u['slot_turnaround_s']:.2f}s between calls (at 60 s calls: "
                     f"{100 * 60 / (60 + max(u['slot_turnaround_s'], 0)):.1f}%)")

    if bench.reads:
        from bench.reads import report_lines

        lines.extend(report_lines(bench.reads))

    baselines = [r for r in bench.results if r.name.startswith("baseline")]
    engines = [r for r in bench.results if r.name.startswith("engine main")]
    # Side by side: each engine run against the baseline run just before it.
    pair_ratios = [e.contacts_per_s / b.contacts_per_s for b, e in zip(baselines, engines, strict=False)]
    base_rate = statistics.median(r.contacts_per_s for r in baselines) if baselines else None
    eng_rate = statistics.median(r.contacts_per_s for r in engines) if engines else None

    def cost(rs: list[PhaseResult], what) -> float | None:
        return statistics.median(what(per_contact(r.usage, r.n)) for r in rs) if rs else None

    # The engine's cost includes its store's (the bare fan-out has none).
    cpu_b = cost(baselines, lambda pc: pc["server_cpu_ms"] + pc["worker_cpu_ms"] + pc["store_cpu_ms"])
    cpu_e = cost(engines, lambda pc: pc["server_cpu_ms"] + pc["worker_cpu_ms"] + pc["store_cpu_ms"])
    store_e = cost(engines, lambda pc: pc["store_cpu_ms"])
    db_b = cost(baselines, lambda pc: pc["db_writes"])
    db_e = cost(engines, lambda pc: pc["db_writes"])
    growth_pts: dict[int, PhaseResult] = {}
    for r in bench.results:
        if r.name.startswith(("engine main", "engine growth")):
            growth_pts.setdefault(r.n, r)  # the first measurement of each N
    pts = sorted(growth_pts.values(), key=lambda r: r.n)
    growth_ratio = (pts[-1].per_contact_ms / pts[0].per_contact_ms) if len(pts) > 1 else None
    engine_all = [r for r in bench.results if r.name.startswith("engine")]
    out = {
        "baseline_contacts_per_s": rnd(base_rate),
        "engine_contacts_per_s": rnd(eng_rate),
        "throughput_ratio": rnd(statistics.median(pair_ratios)) if pair_ratios else None,
        "throughput_ratios": [rnd(x) for x in pair_ratios],
        # The same comparison in costs that other work on the machine does not blur (baseline / engine:
        # above 1 means the engine is cheaper per contact).
        "cpu_cost_ratio": rnd(cpu_b / cpu_e) if cpu_b and cpu_e else None,
        "db_write_cost_ratio": rnd(db_b / db_e) if db_b and db_e else None,
        "baseline_cpu_ms_per_contact": rnd(cpu_b, 1),
        "engine_cpu_ms_per_contact": rnd(cpu_e, 1),
        "engine_store_cpu_ms_per_contact": rnd(store_e, 1),
        "baseline_db_writes_per_contact": rnd(db_b),
        "engine_db_writes_per_contact": rnd(db_e),
        "upload_p50_ms": rnd(bench.upload.get("api_p50_ms")),
        "upload_p95_ms": rnd(bench.upload.get("api_p95_ms")),
        # p50 of the upload over a bare start of the same body plus the phone validation alone.
        "upload_ratio": rnd(bench.upload.get("ratio_p50")),
        "upload_ratio_p95": rnd(bench.upload.get("ratio_p95")),
        "upload_floor_p50_ms": rnd(bench.upload.get("floor_p50_ms")),
        "upload_phone_validation_ms": rnd(bench.upload.get("phones_ms")),
        "upload_ratio_vs_bare_start": rnd(bench.upload.get("ratio_vs_bare_start_p50")),
        "upload_store_write_ms": rnd(bench.upload.get("store_write_ms")),
        "bare_start_p50_ms": rnd(bench.upload.get("bare_p50_ms")),
        "bare_start_p95_ms": rnd(bench.upload.get("bare_p95_ms")),
        # p50 at the large tenant (10 campaigns of 10,000) over p50 at the small (1 of 1,000).
        "reads_ratio_statuses": rnd(bench.reads.get("statuses_ratio")),
        "reads_ratio_campaign": rnd(bench.reads.get("campaign_ratio")),
        "reads_statuses_p50_ms": [rnd(bench.reads.get(f"statuses_{s}_p50_ms"), 1) for s in ("small", "large")]
        if bench.reads else None,
        "reads_campaign_p50_ms": [rnd(bench.reads.get(f"campaign_{s}_p50_ms"), 1) for s in ("small", "large")]
        if bench.reads else None,
        "reads_sizes": [bench.reads.get("small"), bench.reads.get("large")] if bench.reads else None,
        "export_rows": bench.reads["export"]["rows"] if bench.reads else None,
        "export_rows_per_s": rnd(bench.reads["export"]["rows_per_s"], 0) if bench.reads else None,
        "utilization": rnd(bench.util.get("utilization")),
        "slot_turnaround_s": rnd(bench.util.get("slot_turnaround_s")),
        "max_history_events": max((r.hist.max_events for r in engine_all if r.hist), default=None),
        "worker_peak_rss_mb": rnd(max((r.worker_peak_rss_mb for r in engine_all), default=None)),
        "baseline_n": baselines[0].n if baselines else None,
        "engine_n": engines[0].n if engines else None,
        "repeats": len(pair_ratios),
        "upload_contacts": bench.upload.get("contacts"),
        "upload_requests": bench.upload.get("requests"),
        "utilization_n": bench.util.get("n"),
        "utilization_c": bench.util.get("c"),
        "utilization_l": bench.util.get("l"),
        "growth_n": [r.n for r in pts],
        "growth_seconds": [rnd(r.seconds) for r in pts],
        "growth_contacts_per_s": [rnd(r.contacts_per_s) for r in pts],
        "growth_worker_peak_rss_mb": [rnd(r.worker_peak_rss_mb) for r in pts],
        "growth_api_peak_rss_mb": [r.extra.get("api_peak_rss_mb") for r in pts],
        "growth_largest_event_bytes": [r.extra.get("largest_event_bytes") for r in pts],
        "growth_max_history_events": [r.hist.max_events if r.hist else None for r in pts],
        "growth_per_contact_time_ratio": rnd(growth_ratio),
        "growth_built_by": [r.extra.get("built_by") for r in pts],
        "all_ok": all(r.ok for r in bench.results) and bench.util.get("ok", True),
        "cpus": os.cpu_count(),
        "server_persistence": "memory" if args.in_memory else "sqlite wal",
        "worker_cpu_limit": args.worker_cpu,
        "max_load_avg": rnd(max((r.usage.load_avg for r in bench.results), default=None), 1),
    }
    multi = [r for r in bench.results if r.name.startswith("engine multi")]
    if multi:
        out["multi_workers"] = multi[0].extra.get("workers")
        out["multi_n"] = multi[0].n
        out["multi_contacts_per_s"] = rnd(multi[0].contacts_per_s)
        out["multi_ok"] = multi[0].ok
    one = [r for r in bench.results if r.name.startswith("engine scale x1 ")]
    many = [r for r in bench.results if r.name.startswith("engine scale x") and not r.name.startswith("engine scale x1 ")]
    if one and many:
        speedups = [m.contacts_per_s / o.contacts_per_s for o, m in zip(one, many, strict=False)]
        out["workers_speedup"] = rnd(statistics.median(speedups))
        out["workers_speedups"] = [rnd(x) for x in speedups]
        lines.append("")
        lines.append(f"workers: {len(many)} pair(s) of 1 against {out.get('multi_workers')} worker(s): "
                     + ", ".join(f"{o.contacts_per_s:.1f} -> {m.contacts_per_s:.1f}" for o, m in zip(one, many, strict=False))
                     + f" contacts/s; speed-up (median) {out['workers_speedup']:.2f}")
    if len(pts) > 1:
        lines.append("")
        lines.append("growth: " + ", ".join(f"N={r.n} {r.per_contact_ms:.1f} ms/contact" for r in pts)
                     + f"; per-contact time at N={pts[-1].n} / N={pts[0].n}: {growth_ratio:.2f}")
    if pair_ratios:
        lines.append("")
        lines.append(f"throughput: engine {eng_rate:.1f} / baseline {base_rate:.1f} contacts/s; ratio per pair "
                     + ", ".join(f"{x:.2f}" for x in pair_ratios) + f" (median {out['throughput_ratio']:.2f})")
        lines.append(f"cost per contact: CPU {cpu_e:.1f} ms (engine, {store_e:.1f} of it its PostgreSQL) "
                     f"vs {cpu_b:.1f} ms (baseline), "
                     f"persistence writes {db_e:.1f} vs {db_b:.1f}")
    print("\n".join(lines), flush=True)
    return out


def rnd(x, nd: int = 2):
    return None if x is None else round(float(x), nd)


# --- main -------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> int:
    stack = Stack(args)
    bench = Bench(args, stack)
    status = 0
    try:
        log(f"starting the dev server in {stack.tmp} ({'in memory' if args.in_memory else 'SQLite, WAL'})")
        await asyncio.gather(stack.start_server(), stack.start_store())
        log(f"store: embedded PostgreSQL in {stack.tmp / 'postgres'}, migrated")
        skip = set(args.skip)
        for rep in range(args.repeats):
            if "baseline" not in skip:
                await bench.baseline(args.n, f"r{rep + 1}")
            if "engine" not in skip:
                await bench.engine(args.n, f"main r{rep + 1}", workers=args.workers)
        if "upload" not in skip:
            await bench.upload_latency(args.upload_contacts, args.upload_requests)
        if "utilization" not in skip:
            await bench.utilization(args.util_n, args.util_c, args.util_l)
        if "growth" not in skip:
            for n in args.growth:
                if n == args.n and "engine" not in skip:
                    continue  # measured above
                await bench.engine(n, f"growth {n}", workers=args.workers, append_size=args.append_size)
        if "multi" not in skip and args.multi > 1:
            # Speed-up: one worker against K, alternated pair by pair on the same server.
            for rep in range(args.repeats):
                await bench.engine(args.multi_n, f"scale x1 r{rep + 1}", workers=1)
                await bench.engine(args.multi_n, f"scale x{args.multi} r{rep + 1}", workers=args.multi)
            await bench.engine(args.multi_n, f"multi x{args.multi}", workers=args.multi, kill_one_at=0.3)
        if "reads" not in skip:  # last: its seeded rows would make the store larger for the phases above
            from bench import reads

            env = stack.engine_env(IDLE_QUEUE, stack.tmp / "carrier-idle.sqlite3", CAMPAIGN_API_KEYS=reads.api_keys())
            bench.reads = await reads.measure(stack, args.reads_small, args.reads_large, args.export_rows,
                                              args.reads_requests, args.export_repeats, env)
    except BaseException as err:  # noqa: BLE001 - report what was measured, then fail
        import traceback

        traceback.print_exc()
        log(f"benchmark aborted: {err!r}")
        status = 2
    finally:
        stack.shutdown()
    out = report(bench, args)
    if args.check and status == 0:
        failed = check_targets(out)
        if failed:
            print("targets missed: " + "; ".join(failed), flush=True)
            status = 1
    if not out["all_ok"] and status == 0:
        status = 1
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"summary": out, "phases": [phase_dict(r) for r in bench.results],
                                                   "upload": bench.upload, "utilization": bench.util,
                                                   "reads": bench.reads}, indent=2,
                                                  default=str))
    print(json.dumps(out), flush=True)
    return status


def phase_dict(r: PhaseResult) -> dict:
    d = asdict(r)
    d["per_contact"] = per_contact(r.usage, r.n)
    return d


def check_targets(out: dict) -> list[str]:
    failed = []
    if out["throughput_ratio"] is not None and out["throughput_ratio"] < 1.0:
        failed.append(f"throughput_ratio {out['throughput_ratio']} < 1.0")
    if out["upload_ratio"] is not None and out["upload_ratio"] > 1.5:
        failed.append(f"upload_ratio {out['upload_ratio']} > 1.5 (upload p50 over bare start + phone validation)")
    for endpoint in ("statuses", "campaign"):
        ratio = out[f"reads_ratio_{endpoint}"]
        if ratio is not None and ratio >= 2.0:
            failed.append(f"reads_ratio_{endpoint} {ratio} >= 2 (p50 at {out['reads_sizes'][1]} / at {out['reads_sizes'][0]})")
    if out["utilization"] is not None and out["utilization"] < 0.95:
        failed.append(f"utilization {out['utilization']} < 0.95")
    if out["max_history_events"] is not None and out["max_history_events"] > 10_000:
        failed.append(f"max_history_events {out['max_history_events']} > 10000")
    if out["worker_peak_rss_mb"] is not None and out["worker_peak_rss_mb"] >= 500:
        failed.append(f"worker_peak_rss_mb {out['worker_peak_rss_mb']} >= 500")
    ratio = out.get("growth_per_contact_time_ratio")
    if ratio is not None and ratio > 1.3:
        failed.append(f"growth_per_contact_time_ratio {ratio} > 1.3")
    if any(b is not None and b >= 256 * 1024 for b in out.get("growth_largest_event_bytes", [])):
        failed.append(f"a history event of {max(out['growth_largest_event_bytes'])} bytes >= 256 KB")
    if any(m is not None and m >= 300 for m in out.get("growth_api_peak_rss_mb", [])):
        failed.append(f"API peak RSS {max(out['growth_api_peak_rss_mb'])} MB >= 300")
    return failed


def engine_worker_tuning(settings) -> dict:
    """The engine worker's tuning options (worker.py), so that the baseline runs as well tuned."""
    import worker

    tuning = getattr(worker, "worker_tuning", None)
    if tuning is not None:
        return tuning(settings)
    return {"max_concurrent_activities": settings.worker_max_concurrent_activities,
            "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks}


def baseline_worker() -> int:
    """--role baseline-worker: a worker for the bare fan-out, tuned like the engine's."""
    from temporalio.worker import Worker

    from bench import BASELINE_ACTIVITIES, BASELINE_WORKFLOWS
    from campaign_engine.settings import get_settings
    from campaign_engine.temporal import connect

    settings = get_settings()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = await connect(settings)
        async with Worker(
            client, task_queue=settings.temporal_task_queue, workflows=BASELINE_WORKFLOWS,
            activities=BASELINE_ACTIVITIES, **engine_worker_tuning(settings),
        ):
            print(f"worker polling task queue {settings.temporal_task_queue}", file=sys.stderr, flush=True)
            await stop.wait()

    asyncio.run(main())
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    p.add_argument("--n", type=int, help="contacts for baseline and engine (default 1000; quick 100)")
    p.add_argument("--repeats", type=int, help="baseline/engine pairs, alternated (default 2; quick 1)")
    p.add_argument("--growth", type=lambda s: [int(x) for x in s.split(",") if x],
                   help="N of the growth runs (default 1000,5000,10000; quick 100,250)")
    p.add_argument("--million", action="store_true", help="growth also at N=1,000,000 (hours on 2 cores)")
    p.add_argument("--append-size", type=int, help="contacts per upload/append (default 1000; quick 100)")
    p.add_argument("--upload-contacts", type=int, default=1000)
    p.add_argument("--upload-requests", type=int, help="measured requests of each kind (default 20; quick 5)")
    p.add_argument("--util-c", type=int, help="maxConcurrentCalls (default 20; quick 5)")
    p.add_argument("--util-l", type=float, help="seconds per call (default 10; quick 1)")
    p.add_argument("--util-n", type=int, help="contacts of the utilization run (default 200; quick 20)")
    p.add_argument("--workers", type=int, default=1, help="engine workers on the task queue (default 1)")
    p.add_argument("--multi", type=int, help="also run the engine with this many workers, killing one "
                   "mid-campaign (default 2; quick: skipped); 0 or 1 to skip")
    p.add_argument("--multi-n", type=int, help="contacts of that run (default --n)")
    p.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                   help=f"phases to skip, comma separated: {','.join(PHASES)}")
    def size(text: str) -> tuple[int, int]:  # "10x10000": 10 campaigns of 10,000 contacts
        campaigns, contacts = (int(x) for x in text.lower().split("x", 1))
        return campaigns, contacts

    p.add_argument("--reads-small", type=size, default=(1, 1000), metavar="CxN",
                   help="reads: the small tenant's C campaigns of N contacts (default 1x1000)")
    p.add_argument("--reads-large", type=size, metavar="CxN",
                   help="reads: the large tenant's (default 10x10000; quick 10x2000)")
    p.add_argument("--export-rows", type=int, help="reads: attempt rows of the exported campaign "
                   "(default 100000; quick 20000)")
    p.add_argument("--reads-requests", type=int, help="reads: measured requests of each kind (default 100; quick 20)")
    p.add_argument("--export-repeats", type=int, help="reads: exports measured (default 3; quick 1)")
    p.add_argument("--in-memory", action="store_true", help="dev server without a database file")
    p.add_argument("--server-config", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --dynamic-config-value for the dev server")
    p.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the engine worker and API (e.g. WORKER_MAX_CONCURRENT_ACTIVITIES=50)")
    p.add_argument("--stall-seconds", type=float, default=90.0,
                   help="give a campaign up when no call was placed for this long")
    p.add_argument("--worker-cpu", type=float, metavar="F",
                   help="limit each worker process to F of one core (own cgroup, CFS quota; Linux, root): "
                   "workers then are the bottleneck, as pods with a CPU limit are, and --multi shows what more add")
    p.add_argument("--profile", metavar="DIR", help="run workers and API under py-spy, write profiles here")
    p.add_argument("--profile-format", default="speedscope", choices=["speedscope", "flamegraph", "raw"])
    p.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second")
    venv_py_spy = Path(sys.executable).parent / "py-spy"  # the venv's, also when it is not activated
    p.add_argument("--py-spy", default=str(venv_py_spy) if venv_py_spy.exists() else shutil.which("py-spy") or "py-spy")
    p.add_argument("--json-out", help="also write every measurement to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    p.add_argument("--check", action="store_true", help="exit 1 when a target (issues 6 and 12) is missed")
    p.add_argument("--role", choices=["bench", "baseline-worker"], default="bench", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    q = a.quick
    a.n = a.n or (100 if q else 1000)
    a.repeats = a.repeats or (1 if q else 2)
    a.growth = a.growth or ([100, 250] if q else [1000, 10000, 100000] + ([1_000_000] if a.million else []))
    a.append_size = a.append_size or (100 if q else 1000)
    a.upload_requests = a.upload_requests or (5 if q else 20)
    a.util_c = a.util_c or (5 if q else 20)
    # 10 s calls: shorter than real ones (a no-answer alone rings 20-30 s), long enough that
    # the figure is about keeping slots full rather than about one round trip; the table
    # also gives the slot turnaround, from which any other length follows.
    a.util_l = a.util_l or (1.0 if q else 10.0)
    a.util_n = a.util_n or (20 if q else 200)
    a.reads_large = a.reads_large or ((10, 2000) if q else (10, 10_000))
    a.export_rows = a.export_rows or (20_000 if q else 100_000)
    a.reads_requests = a.reads_requests or (20 if q else 100)
    a.export_repeats = a.export_repeats or (1 if q else 3)
    a.multi = (0 if q else 2) if a.multi is None else a.multi
    a.multi_n = a.multi_n or a.n
    a.worker_env = dict(kv.split("=", 1) for kv in a.worker_env)
    if a.profile:
        Path(a.profile).mkdir(parents=True, exist_ok=True)
    unknown = set(a.skip) - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s) in --skip: {', '.join(sorted(unknown))}")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "baseline-worker":
        return baseline_worker()
    return asyncio.run(run(args))


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's Rust bridge can abort the interpreter at exit (sdk-python issue 300).
    os._exit(code)
