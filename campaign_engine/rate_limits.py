"""Rate limits as configured ("60/minute"): parsed here, pure, for the settings and api.rate_limit."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d{1,9})\s*(?:/|per\s)\s*(\d{1,6})?\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """At most `limit` requests per window of `window_seconds`."""

    limit: int
    window_seconds: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_seconds}s"


def parse_rate(text: str) -> Rate:
    """'60/minute', '600 per hour', '100/5 minutes', '10/second' -> Rate; ValueError otherwise."""
    match = _RATE.match(text or "")
    if not match:
        raise ValueError(f"{text[:40]!r} is not a rate like '60/minute' (N/second, minute, hour or day, "
                         f"or N/M minutes)")
    limit, multiple, unit = int(match[1]), int(match[2] or 1), match[3].lower()
    if limit < 1:
        raise ValueError(f"{text[:40]!r}: the limit must be at least 1 request")
    if multiple < 1:
        raise ValueError(f"{text[:40]!r}: the window must be at least 1 {unit}")
    return Rate(limit, multiple * UNIT_SECONDS[unit])


def window_start(now: float, window_seconds: int) -> float:
    """The start (unix seconds) of the fixed window `now` falls in."""
    return math.floor(now / window_seconds) * window_seconds


@dataclass(frozen=True)
class Decision:
    """What one counted request gets: allowed or not, and its headers."""

    limit: int
    remaining: int
    reset: int  # unix seconds at which the window ends
    retry_after: int  # seconds until then, at least 1
    allowed: bool

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def decide(rate: Rate, count: int, start: float, now: float) -> Decision:
    """The `count`-th request of the window beginning at `start`, seen at `now`."""
    end = start + rate.window_seconds
    return Decision(limit=rate.limit, remaining=max(rate.limit - count, 0), reset=math.ceil(end),
                    retry_after=max(math.ceil(end - now), 1), allowed=count <= rate.limit)
