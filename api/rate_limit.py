"""Rate limits per API key and route class, shared by every API process through the store.

- A dependency (`RateLimit(route_class)`), given to the routers in api.main, counts each
  authenticated request (after `require_tenant`: a request without a valid key is a 401 and
  counts nowhere) in the store (campaign_engine.store.rate_limits), keyed by the SHA-256 of the
  key (never the key) and the route class, in a sliding window (campaign_engine.rate_limits): no
  span of the window's length admits more than the limit.
- Over the limit: 429 `RATE_LIMIT_EXCEEDED` in the error envelope with `Retry-After`.
- `RateLimitHeaders`, a pure-ASGI middleware, puts `X-RateLimit-Limit`, `X-RateLimit-Remaining`
  and `X-RateLimit-Reset` (unix seconds) on every answer to a counted request, error answers
  included.
- The store down: closed. The count fails, and the request is answered 503
  `SERVICE_UNAVAILABLE` with `Retry-After` (api.health), as everything needing the store is.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import require_tenant
from campaign_engine.rate_limits import Decision, Rate, parse_rate
from campaign_engine.settings import Settings
from campaign_engine.store.rate_limits import count_request

ROUTE_CLASSES = ("uploads", "control", "reads")
# Routes of a router whose class is not the router's own (api.main).
CLASS_OF_PATH = {"/uploadCampaignData": "uploads", "/campaigns/preflight": "uploads"}
# Buckets no window counts any more are deleted by each process at most this often.
SWEEP_SECONDS = 60.0
# A count the store does not answer within this long is a store that is down.
COUNT_TIMEOUT_SECONDS = 5.0
_STATE = "rate_limit"
# In the OpenAPI of every counted operation.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {429: {"description": "RATE_LIMIT_EXCEEDED: this API key's limit for the route class is used up "
                                     "until X-RateLimit-Reset (Retry-After: seconds)"}}


def rates_of(settings: Settings) -> dict[str, Rate]:
    return {"uploads": parse_rate(settings.rate_limit_uploads), "control": parse_rate(settings.rate_limit_control),
            "reads": parse_rate(settings.rate_limit_reads)}


def route_class(default: str, path: str | None) -> str:
    return CLASS_OF_PATH.get(path or "", default)


class _Sweeper:
    def __init__(self) -> None:
        self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < SWEEP_SECONDS:
            return False
        self.last = now
        return True


def RateLimit(default_class: str):  # noqa: N802 - reads as a dependency in the router list
    """The dependency counting a request of the router's class (or its route's, CLASS_OF_PATH)."""
    assert default_class in ROUTE_CLASSES

    async def rate_limited(request: Request, _tenant=Depends(require_tenant)) -> None:
        app_state = request.app.state
        settings: Settings = app_state.settings
        if not settings.rate_limit_enabled:
            return
        rates: dict[str, Rate] = app_state.rate_limits
        route = request.scope.get("route")
        cls = route_class(default_class, getattr(route, "path", None))
        rate = rates[cls]
        key_hash = hashlib.sha256(request.headers["x-api-key"].encode()).digest()
        sweeper: _Sweeper = app_state.rate_limit_sweeper
        async with asyncio.timeout(COUNT_TIMEOUT_SECONDS):
            decision = await count_request(app_state.db, key_hash, cls, rate, sweep=sweeper.due())
        request.state.rate_limit = decision
        if not decision.allowed:
            raise HTTPException(429, f"rate limit of {rate.limit} {cls} requests per {rate.window_seconds} s "
                                     f"exceeded for this API key; retry in {decision.retry_after} s",
                                headers=decision.headers())

    return Depends(rate_limited)


def install_rate_limits(app, settings: Settings) -> None:
    app.state.rate_limits = rates_of(settings)
    app.state.rate_limit_sweeper = _Sweeper()
    app.add_middleware(RateLimitHeaders)


class RateLimitHeaders:
    """Adds the X-RateLimit-* headers of the request's count (if it was counted) to its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict request.state writes to

        async def send_with_headers(message: Message) -> None:
            decision: Decision | None = state.get(_STATE)
            if message["type"] == "http.response.start" and decision is not None:
                out = list(message.get("headers", []))
                names = {name.lower() for name, _ in out}
                for name, value in decision.headers().items():
                    if name.lower().encode() not in names:
                        out.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": out}
            await send(message)

        await self.app(scope, receive, send_with_headers)
