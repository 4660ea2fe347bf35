"""Calling windows and blackout dates, evaluated in each contact's own local time.

Pure functions: no I/O, no clock (every instant is a parameter), only the standard library's
`zoneinfo` and `phonenumbers`, so they are safe in deterministic Temporal workflow code.

Decisions (the rules every function below follows):

* **Wall-clock semantics.** A window `startTime`-`endTime` is open while the contact's local
  clock reads a time `t` with `start <= t < end` (start included, end excluded). DST needs no
  special case under this rule:
  - spring forward (a gap): if `startTime` falls inside the skipped hour, the window opens
    at the transition itself (the first instant whose local clock reads `startTime` or
    later, e.g. 03:00 EDT for a 02:30 start in America/New_York);
  - fall back (an overlap): an hour that the clock reads twice is inside the window both
    times if its wall time is, so an 01:00-01:30 window is open twice that night.
* **Midnight-crossing windows** (`startTime > endTime`, e.g. 22:00-02:00) belong to the
  day they open on: the Friday window runs from Friday 22:00 to Saturday 02:00, and `days`
  is checked against Friday. An `endTime` of "24:00" is read as midnight (end of the day).
* **Blackout dates** are holidays in the contact's local calendar: nothing is open at any
  local time of a blacked-out date, and the window that opens on a blacked-out date does not
  open at all (no spill-over past midnight either).
* **Several zones** (a number that maps to several zones): an instant is open only if it is
  open in every one of them (and not blacked out in any). Wide spreads shrink the window a
  lot: a NANP toll-free number maps to every zone from Guam to Newfoundland, which leaves
  09:00-20:00 open 30 minutes a day in northern winter and never in summer. When no instant
  is open within the horizon, `next_open` returns None and the caller decides (give the
  contact a `timezone`, or end it with the `window_state` text as its reason).
* **Zone resolution order** (`resolve_time_zones`): the contact's own valid `timezone`; else
  the zones `phonenumbers` gives for the number (minus 'Etc/Unknown' and names this Python's
  tz database lacks); else the window's `timeZone`; else "UTC". An invalid contact time zone
  is skipped rather than raised (workflow code must not crash on data): validate it at the
  API with `validate_time_zone`.
* **No window** (`window=None`): every instant is open except blacked-out local dates.
* **Workflow use.** Import these modules inside `workflow.unsafe.imports_passed_through()`:
  phonenumbers keeps threading locks that the sandbox refuses when it re-imports them.
  (Its metadata is loaded when `time_zones` is imported.)
* `next_open` searches up to `DEFAULT_HORIZON_DAYS` (400) days ahead; "never" means "not
  within the horizon". Results are exact to the second (no minute stepping): the search
  jumps between the instants where some zone's status can change (its local midnight,
  start and end times, both readings of an ambiguous time, and its UTC-offset changes).

Where things are: this module holds the queries (`is_open`, `next_open`, `next_close`,
`next_call_time`, `open_intervals`, `window_state`) and is the public face of the calling
windows: every name of `__all__` is importable from here. The window model and blackout
dates are `window_model`, zone resolution and `localize` are `time_zones`, the search for the
instants where the status changes is `window_changes`, and `WindowCalendar` (for the ETA) is
`window_calendar`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from campaign_engine.policy.time_zones import localize, resolve_time_zones, validate_time_zone
from campaign_engine.policy.window_calendar import WindowCalendar
from campaign_engine.policy.window_changes import (
    DEFAULT_HORIZON_DAYS,
    WindowSpec,
    aware_utc,
    open_in_zone,
    status_changes,
    zone_infos,
)
from campaign_engine.policy.window_model import DAY_NAMES, CallingWindow, parse_blackout_dates


def is_open(
    at_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
) -> bool:
    """Whether `at_utc` is inside the window in every one of `zones` and on no blackout date.

    `zones` empty means the window's `timeZone`, else UTC.
    """
    at = aware_utc(at_utc)
    spec = WindowSpec.build(window, blackout_dates)
    return all(open_in_zone(at, zone, spec) for zone in zone_infos(zones, window))


def next_open(
    at_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> datetime | None:
    """`at_utc` itself if open now, else the first open instant after it (UTC), else None.

    None means the window does not open within `horizon_days` (all allowed days blacked
    out, or zones whose windows never overlap).
    """
    at = aware_utc(at_utc)
    spec = WindowSpec.build(window, blackout_dates)
    infos = zone_infos(zones, window)
    for instant, open_now in status_changes(at, at + timedelta(days=horizon_days), spec, infos):
        if open_now:
            return at_utc if instant == at else instant
    return None


def next_close(
    at_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> datetime | None:
    """The first closed instant at or after `at_utc` (UTC); None if open for the whole horizon."""
    at = aware_utc(at_utc)
    spec = WindowSpec.build(window, blackout_dates)
    infos = zone_infos(zones, window)
    for instant, open_now in status_changes(at, at + timedelta(days=horizon_days), spec, infos):
        if not open_now:
            return instant
    return None


def next_call_time(
    due_utc: datetime | None,
    now: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
) -> datetime | None:
    """When a contact due at `due_utc` (None: now) may be called: the due time (never before
    `now`) moved into the window. None if the window never opens."""
    now = aware_utc(now, "now")
    start = now if due_utc is None else max(aware_utc(due_utc, "due_utc"), now)
    return next_open(start, window, zones, blackout_dates)


def open_intervals(
    start_utc: datetime,
    end_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
) -> list[tuple[datetime, datetime]]:
    """The open periods `[a, b)` within `[start_utc, end_utc)`, in order, clipped to it."""
    start, end = aware_utc(start_utc, "start_utc"), aware_utc(end_utc, "end_utc")
    if end <= start:
        return []
    spec = WindowSpec.build(window, blackout_dates)
    infos = zone_infos(zones, window)
    intervals: list[tuple[datetime, datetime]] = []
    opened: datetime | None = None
    for instant, open_now in status_changes(start, end, spec, infos):
        if open_now:
            opened = instant
        elif opened is not None:
            intervals.append((opened, instant))
            opened = None
    if opened is not None:
        intervals.append((opened, end))
    return intervals


def window_state(
    at_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
) -> str:
    """A line for status displays, times in the contact's (first) zone:

    "inside calling window until 2026-12-01T20:00:00-05:00",
    "outside calling window until 2026-12-01T09:00:00-05:00",
    "outside calling window (blackout date 2026-12-25) until 2026-12-28T09:00:00-05:00",
    "outside calling window: it does not open within 400 days in all of Pacific/Guam, ...".
    """
    at = aware_utc(at_utc)
    spec = WindowSpec.build(window, blackout_dates)
    infos = zone_infos(zones, window)
    shown = infos[0]
    names = ", ".join(str(zone.key) for zone in infos)
    if all(open_in_zone(at, zone, spec) for zone in infos):
        closes = next_close(at, window, [z.key for z in infos], spec.blackout)
        if closes is None:
            return "inside calling window"
        return f"inside calling window until {closes.astimezone(shown).isoformat(timespec='seconds')}"
    blacked = sorted({at.astimezone(zone).date() for zone in infos} & spec.blackout)
    note = f" (blackout date {blacked[0].isoformat()})" if blacked else ""
    opens = next_open(at, window, [z.key for z in infos], spec.blackout)
    if opens is None:
        return (
            f"outside calling window{note}: it does not open within {DEFAULT_HORIZON_DAYS} days "
            f"in all of {names}"
        )
    return f"outside calling window{note} until {opens.astimezone(shown).isoformat(timespec='seconds')}"


__all__ = [
    "DAY_NAMES",
    "DEFAULT_HORIZON_DAYS",
    "CallingWindow",
    "WindowCalendar",
    "is_open",
    "localize",
    "next_call_time",
    "next_close",
    "next_open",
    "open_intervals",
    "parse_blackout_dates",
    "resolve_time_zones",
    "validate_time_zone",
    "window_state",
]
