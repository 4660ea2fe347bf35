"""One httpx.AsyncClient per event loop, shared by the activities that talk HTTP.

A worker runs activities on one loop, but tests and `campaign-engine up` may call the same
provider object from another loop later; an httpx client must not cross loops, so a new one
is made when the running loop changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class LoopBoundClient:
    def __init__(self, **options: Any) -> None:
        self._options = options
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._loop is not loop:
            self._client = httpx.AsyncClient(**self._options)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and not self._client.is_closed:
            try:
                await self._client.aclose()
            except RuntimeError:  # created on another, closed loop
                pass
        self._client = None
