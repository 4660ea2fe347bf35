"""Attempt caps per number across every campaign of a tenant (issue 14): "at most N calls to
one number in a rolling window", `FREQUENCY_CAP` for the deployment (e.g. `3/24h`) and a
campaign's own `frequencyCap`. Both hold (a campaign's cap only adds to the deployment's), and
so does the legal cap of the number's state when the campaign follows legal hours (FL, OK, MD:
3 in 24 h, campaign_engine/policy/legal_hours.py).

Enforced by the dial activity right before each call, against the store, under an advisory
lock on the tenant and number (campaign_engine/store/compliance.py: reserve_attempt), so two
campaigns dialling one number at the same moment are decided in turn. A contact held by a cap
waits on a durable timer, in state `capped`, until the window allows its next call; the held
dial is not an attempt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_CAP = re.compile(r"\s*(\d+)\s*/\s*(\d+)?\s*(s|min|m|h|d)\s*", re.IGNORECASE)


class FrequencyCap(BaseModel):
    max_calls: int = Field(ge=1, le=1000)
    window_seconds: int = Field(ge=60, le=99 * 86400)

    def describe(self) -> str:
        hours = self.window_seconds / 3600
        span = f"{hours:g}h" if hours >= 1 else f"{self.window_seconds // 60}m"
        return f"{self.max_calls}/{span}"


def parse_cap(text: str) -> FrequencyCap:
    """'3/24h' -> 3 calls in 24 hours; also '5/7d', '2/90m', '1/h'. ValueError saying why."""
    match = _CAP.fullmatch(text or "")
    if not match:
        raise ValueError(f"{text!r} is not N/<duration> such as 3/24h, 5/7d or 2/90m")
    n, amount, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3).lower()
    try:
        return FrequencyCap(max_calls=n, window_seconds=amount * _UNITS[unit])
    except ValueError:
        raise ValueError(f"{text!r}: at least one call, in a window of 1 minute to 99 days") from None


def held_until(at: datetime, placed: Sequence[datetime], caps: Sequence[FrequencyCap]) -> datetime | None:
    """When the caps next allow a call to a number that had calls at `placed`, if they do not
    allow one at `at` (None: they do). A cap of N in W allows a call at T while fewer than N
    calls fall in (T - W, T]; calls placed after `at` (another campaign's, a moment later)
    count too."""
    times = sorted(placed)
    until: datetime | None = None
    for cap in caps:
        window = timedelta(seconds=cap.window_seconds)
        inside = [t for t in times if t > at - window]
        if len(inside) >= cap.max_calls:
            free_at = inside[len(inside) - cap.max_calls] + window
            until = free_at if until is None else max(until, free_at)
    return until
