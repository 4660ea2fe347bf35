"""Where a calling window's status changes: the engine under `campaign_engine.policy.windows`.

`status_changes` walks forward from an instant and yields every instant where the window
(in all of a contact's zones, blackout dates included) opens or closes, exact to the second:
it jumps between the instants where some zone's status can change (its local midnight, start
and end times, both readings of an ambiguous time, and its UTC-offset changes). The public
queries (`is_open`, `next_open`, ...) and `WindowCalendar` are built on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaign_engine.policy.time_zones import LAST_RESORT_ZONE, UTC, find_offset_change, utc_offset, zone_info
from campaign_engine.policy.window_model import DAY_NAMES, CallingWindow, parse_blackout_dates

DEFAULT_HORIZON_DAYS = 400

_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class WindowSpec:
    """A window and its blackout dates, prepared for evaluation (no window: every day, all day)."""

    window: CallingWindow | None
    start: time
    end: time
    crossing: bool
    weekdays: frozenset[int]
    blackout: frozenset[date]
    walls: tuple[time, ...]

    @classmethod
    def build(cls, window: CallingWindow | None, blackout_dates: Iterable[date | str] | None) -> WindowSpec:
        blackout = frozenset(parse_blackout_dates(blackout_dates))
        if window is None:
            return cls(None, time(0), time(0), False, frozenset(range(7)), blackout, (time(0),))
        weekdays = frozenset(DAY_NAMES.index(d) for d in window.days)
        walls = tuple(sorted({time(0), window.start_time, window.end_time}))
        return cls(window, window.start_time, window.end_time, window.crosses_midnight, weekdays, blackout, walls)


def zone_infos(zones: Sequence[str] | None, window: CallingWindow | None) -> list[ZoneInfo]:
    names = list(zones or [])
    if not names:
        names = [window.time_zone if window and window.time_zone else LAST_RESORT_ZONE]
    infos: list[ZoneInfo] = []
    for name in names:
        zone = zone_info(name)
        if zone is None:
            raise ValueError(f"unknown time zone {name!r}")
        if zone not in infos:
            infos.append(zone)
    return infos


def aware_utc(at: datetime, name: str = "at_utc") -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (got {at!r})")
    return at.astimezone(UTC)


def open_in_zone(at: datetime, zone: ZoneInfo, spec: WindowSpec) -> bool:
    local = at.astimezone(zone)
    day = local.date()
    if day in spec.blackout:
        return False
    if spec.window is None:
        return True
    clock = local.time()
    if not spec.crossing:
        return spec.start <= clock < spec.end and day.weekday() in spec.weekdays
    if clock >= spec.start:
        return day.weekday() in spec.weekdays
    if clock < spec.end:
        previous = day - _ONE_DAY
        return previous.weekday() in spec.weekdays and previous not in spec.blackout
    return False


def _zone_events(zone: ZoneInfo, lo: datetime, hi: datetime, spec: WindowSpec) -> set[datetime]:
    """Instants in (lo, hi) where this zone's open status may change (a superset is fine)."""
    events: set[datetime] = set()
    day = lo.astimezone(zone).date() - _ONE_DAY
    last = hi.astimezone(zone).date() + _ONE_DAY
    while day <= last:
        for wall in spec.walls:
            naive = datetime.combine(day, wall)
            for fold in (0, 1):
                at = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
                if lo < at < hi:
                    events.add(at)
        day += _ONE_DAY
    # UTC-offset changes (DST and rule changes): the wall clock jumps there.
    step_lo = lo
    offset_lo = utc_offset(zone, lo)
    while step_lo < hi:
        step_hi = min(step_lo + _ONE_DAY, hi)
        offset_hi = utc_offset(zone, step_hi)
        if offset_hi != offset_lo:
            change = find_offset_change(zone, step_lo, step_hi)
            if change is not None and lo < change < hi:
                events.add(change)
        step_lo, offset_lo = step_hi, offset_hi
    return events


def status_changes(
    start: datetime, end: datetime, spec: WindowSpec, zones: list[ZoneInfo]
) -> Iterator[tuple[datetime, bool]]:
    """(start, open?) and then every instant in (start, end) where the combined status flips."""
    status = [open_in_zone(start, zone, spec) for zone in zones]
    closed = status.count(False)
    current = closed == 0
    yield start, current
    chunk_lo = start
    chunk_days = 3
    while chunk_lo < end:
        chunk_hi = min(chunk_lo + timedelta(days=chunk_days), end)
        # Events in [chunk_lo, chunk_hi): chunk_lo itself was an event of the previous chunk's
        # boundary only if it is one here too, so include it explicitly (harmless re-check).
        events: list[tuple[datetime, int]] = []
        for index, zone in enumerate(zones):
            evs = _zone_events(zone, chunk_lo - _ONE_SECOND, chunk_hi, spec)
            events.extend((at, index) for at in evs if at >= chunk_lo and at > start)
        events.sort()
        i = 0
        while i < len(events):
            at = events[i][0]
            while i < len(events) and events[i][0] == at:
                index = events[i][1]
                now_open = open_in_zone(at, zones[index], spec)
                if now_open != status[index]:
                    status[index] = now_open
                    closed += -1 if now_open else 1
                i += 1
            if (closed == 0) != current:
                current = closed == 0
                yield at, current
        chunk_lo = chunk_hi
        chunk_days = min(chunk_days * 4, 120)
