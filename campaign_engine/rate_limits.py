"""Rate limits as configured ("60/minute") and the sliding-window policy that enforces them:
pure, for the settings, api.rate_limit and the store's counter (campaign_engine.store.rate_limits)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
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


# The sliding window: each key's requests are counted in buckets of 1/BUCKETS_PER_WINDOW of the
# window; a request at `now` is admitted when fewer than `limit` admitted requests lie in the
# buckets that overlap (now - window, now]. The oldest of those buckets is counted whole, so the
# count never misses a request of the window: no span of `window_seconds` ever admits more than
# `limit` (a fixed window admits up to twice that across its boundary). The price: a client may
# be refused up to one bucket (1/60 of the window) earlier than an exact log would refuse it.
BUCKETS_PER_WINDOW = 60
# Buckets within this much of the window's edge are counted too (clocks and stored timestamps
# are microseconds; counting more is the safe side).
EDGE_SECONDS = 1e-3


def bucket_seconds(rate: Rate) -> float:
    return rate.window_seconds / BUCKETS_PER_WINDOW


def bucket_start(now: float, rate: Rate) -> float:
    """The start (unix seconds) of the bucket `now` falls in (the row a request is counted in)."""
    width = bucket_seconds(rate)
    return math.floor(now / width) * width


def horizon(rate: Rate) -> float:
    """How far back (seconds) a bucket can still count at some instant: older rows can go."""
    return rate.window_seconds + bucket_seconds(rate) + 1


@dataclass(frozen=True)
class Decision:
    """What one request gets: admitted or not, and its headers."""

    limit: int
    remaining: int
    reset: int  # unix seconds at which every request counted now has left the window
    retry_after: int  # refused: seconds until a request would be admitted (at least 1)
    allowed: bool

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def counted(rate: Rate, buckets: Iterable[tuple[float, int]], now: float) -> list[tuple[float, int]]:
    """The buckets (start, admitted) that overlap the window ending at `now`, oldest first."""
    width, edge = bucket_seconds(rate), now - rate.window_seconds - EDGE_SECONDS
    return sorted((start, n) for start, n in buckets if n > 0 and start + width > edge)


def decide(rate: Rate, buckets: Iterable[tuple[float, int]], now: float) -> Decision:
    """A request at `now`, given the key's buckets (start, requests admitted in it); an
    admitted request is then counted in `bucket_start(now)` by the caller."""
    live = counted(rate, buckets, now)
    width = bucket_seconds(rate)
    total = sum(n for _, n in live)
    if total < rate.limit:
        reset = bucket_start(now, rate) + width + rate.window_seconds
        return Decision(limit=rate.limit, remaining=rate.limit - total - 1, reset=math.ceil(reset),
                        retry_after=0, allowed=True)
    # Refused: admitted again once enough of the oldest buckets have left the window.
    excess, left = total - rate.limit + 1, 0
    free_at = live[-1][0] + width + rate.window_seconds
    for start, n in live:
        left += n
        if left >= excess:
            free_at = start + width + rate.window_seconds + 2 * EDGE_SECONDS
            break
    reset = live[-1][0] + width + rate.window_seconds
    return Decision(limit=rate.limit, remaining=0, reset=math.ceil(reset),
                    retry_after=max(math.ceil(free_at - now), 1), allowed=False)
