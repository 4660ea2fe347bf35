"""`WindowCalendar`: one contact group's open periods, cached, for the ETA simulation's many look-ups."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from campaign_engine.policy.time_zones import UTC
from campaign_engine.policy.window_changes import DEFAULT_HORIZON_DAYS, WindowSpec, status_changes, zone_infos
from campaign_engine.policy.window_model import CallingWindow


class WindowCalendar:
    """One contact group's open periods, computed lazily and cached, for many look-ups.

    Works on POSIX timestamps (float seconds) for speed; used by the ETA simulation. The
    answers equal `next_open` / `next_close` of the same inputs (look-ups are expected to
    move forward in time; an earlier one recomputes from there).
    """

    _SLICE = 14 * 86400.0

    def __init__(
        self,
        window: CallingWindow | None,
        zones: Sequence[str] | None,
        blackout_dates: Iterable[date | str] | None = (),
        *,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
    ) -> None:
        self._spec = WindowSpec.build(window, blackout_dates)
        self._zones = zone_infos(zones, window)
        self._horizon = horizon_days * 86400.0
        self._origin = math.inf
        self._covered = math.inf
        self._starts: list[float] = []
        self._ends: list[float] = []  # math.inf: still open at the covered end

    @property
    def always_open(self) -> bool:
        return self._spec.window is None and not self._spec.blackout

    def _extend(self, until: float) -> None:
        """Cover [origin, until) at least."""
        while self._covered < until:
            lo = self._covered
            hi = max(until, lo + self._SLICE)
            start, end = datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
            for instant, open_now in status_changes(start, end, self._spec, self._zones):
                ts = instant.timestamp()
                still_open = bool(self._ends) and self._ends[-1] == math.inf
                if open_now and not still_open:
                    self._starts.append(ts)
                    self._ends.append(math.inf)
                elif not open_now and still_open:
                    self._ends[-1] = ts
            self._covered = hi

    def _reset(self, ts: float) -> None:
        self._origin = self._covered = ts
        self._starts.clear()
        self._ends.clear()

    def _ensure(self, ts: float) -> None:
        if ts < self._origin:
            self._reset(ts)
        self._extend(ts + 86400.0)

    def next_open(self, ts: float) -> float | None:
        """`ts` if open, else the next open instant, else None (not within the horizon)."""
        if self.always_open:
            return ts
        self._ensure(ts)
        limit = ts + self._horizon
        while True:
            i = bisect.bisect_right(self._starts, ts) - 1
            if i >= 0 and ts < self._ends[i]:
                return ts
            if i + 1 < len(self._starts):
                start = self._starts[i + 1]
                return start if start <= limit else None
            if self._covered >= limit:
                return None
            self._extend(min(self._covered + 4 * self._SLICE, limit))

    def next_close(self, ts: float) -> float:
        """`ts` if closed, else the end of the open period holding it (math.inf: not within
        the horizon)."""
        if self.always_open:
            return math.inf
        if self.next_open(ts) != ts:
            return ts
        limit = ts + self._horizon
        while True:
            end = self._ends[bisect.bisect_right(self._starts, ts) - 1]
            if end != math.inf:
                return end
            if self._covered >= limit:
                return math.inf
            self._extend(min(self._covered + 4 * self._SLICE, limit))
