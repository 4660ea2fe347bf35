"""Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in a background thread.

The server runs its own event loop in its own thread, so a test (or code under test) that
blocks its loop, or calls the server synchronously, cannot deadlock it. The port is bound
before uvicorn starts (no race for a "free" port).

    async with serve_asgi(app) as base_url:      # "http://127.0.0.1:54321"
        ...
    with serve_asgi_sync(app) as base_url:       # same, from synchronous code
        ...

When the URL must be known before the app exists (a PUBLIC_BASE_URL the app's own settings
name), bind first: ``sock = bind_loopback()``, ``base_url_of(sock)``, then
``serve_asgi(app, sock=sock)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


def bind_loopback(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port of `host`, for `serve_asgi(..., sock=...)`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class ServedApp:
    """One uvicorn server for one ASGI app; `start()` returns its base URL."""

    def __init__(self, app: Any, host: str = "127.0.0.1", log_level: str = "warning",
                 lifespan: str = "off", sock: socket.socket | None = None) -> None:
        self._given_sock = sock
        self.app = app
        self.lifespan = lifespan
        self.host = host
        self.log_level = log_level
        self.base_url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> str:
        sock = self._given_sock or bind_loopback(self.host)
        self._sock = sock
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self.log_level,
            lifespan=self.lifespan,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[sock]))
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn exited before it started: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"uvicorn did not start within {timeout} s")
            time.sleep(0.005)
        self.base_url = f"http://{self.host}:{port}"
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"uvicorn did not stop within {timeout} s")
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None


@contextlib.contextmanager
def serve_asgi_sync(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    served = ServedApp(app, host)
    base_url = served.start()
    try:
        yield base_url
    finally:
        served.stop()


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, host: str = "127.0.0.1", lifespan: str = "off",
                     sock: socket.socket | None = None) -> AsyncIterator[str]:
    served = ServedApp(app, host, lifespan=lifespan, sock=sock)
    base_url = await asyncio.to_thread(served.start)
    try:
        yield base_url
    finally:
        await asyncio.to_thread(served.stop)
