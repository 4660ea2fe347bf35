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
  (Its metadata is loaded when this module is imported, see below.)
* `next_open` searches up to `DEFAULT_HORIZON_DAYS` (400) days ahead; "never" means "not
  within the horizon". Results are exact to the second (no minute stepping): the search
  jumps between the instants where some zone's status can change (its local midnight,
  start and end times, both readings of an ambiguous time, and its UTC-offset changes).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone
from phonenumbers.phonemetadata import PhoneMetadata
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# phonenumbers imports each region's metadata lazily, under a threading lock, on first use.
# Inside Temporal's workflow sandbox that late import fails ("threading.Lock restricted"),
# even for a module imported through `imports_passed_through`. Loading everything when this
# module is imported (about 50 ms, once per process) keeps the policy functions callable
# from workflow code. (Adding "phonenumbers" to the worker's passthrough modules also works.)
PhoneMetadata.load_all()

UTC = timezone.utc
DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HORIZON_DAYS = 400
UNKNOWN_ZONE = "Etc/Unknown"
LAST_RESORT_ZONE = "UTC"

_DAY_ALIASES = {
    **{name: name for name in DAY_NAMES},
    "monday": "mon",
    "tuesday": "tue",
    "tues": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "thur": "thu",
    "thurs": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)


# --- time zones ----------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _zone(name: str) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip() or name == UNKNOWN_ZONE:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def validate_time_zone(name: str) -> str:
    """`name` if it is an IANA time zone this Python knows, else ValueError saying so."""
    if _zone(name) is None:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'America/New_York' or 'Europe/London'"
        )
    return name.strip()


@lru_cache(maxsize=8192)
def _zones_for_number(phone_e164: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return _zones_of_parsed(number)


def _zones_of_parsed(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    zones: list[str] = []
    for name in phone_timezone.time_zones_for_number(number):
        if name != UNKNOWN_ZONE and _zone(name) is not None and name not in zones:
            zones.append(name)
    return tuple(zones)


def resolve_time_zones(phone_e164: str | None, contact_tz: str | None, fallback_tz: str | None,
                       *, number: phonenumbers.PhoneNumber | None = None) -> list[str]:
    """The IANA zones a contact's calling window is evaluated in (never empty).

    The contact's own `timezone` if valid; else every zone its number maps to (a window is
    open only when open in all of them); else `fallback_tz` (the window's `timeZone`); else
    "UTC". `number`, when given, is `phone_e164` already parsed (the upload parses every
    number once and passes it on, rather than having it parsed again here).
    """
    if contact_tz and _zone(contact_tz) is not None:
        return [contact_tz.strip()]
    if number is not None or phone_e164:
        zones = _zones_of_parsed(number) if number is not None else _zones_for_number(phone_e164)
        if zones:
            return list(zones)
    if fallback_tz and _zone(fallback_tz) is not None:
        return [fallback_tz.strip()]
    return [LAST_RESORT_ZONE]


def localize(naive_local: datetime, zone_name: str) -> datetime:
    """The first instant (UTC) at which the clock in `zone_name` reads `naive_local` or later.

    An ambiguous wall time (DST overlap) gives its earlier instant; a wall time skipped by a
    DST gap gives the transition itself (02:30 on a spring-forward night -> 03:00 new time).
    """
    zone = _zone(zone_name)
    if zone is None:
        raise ValueError(f"unknown time zone {zone_name!r}")
    naive_local = naive_local.replace(tzinfo=None)
    first = naive_local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive_local:
        return first
    # In a gap: the transition lies between the two readings; find it to the second.
    other = naive_local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(first, other), max(first, other)
    transition = _find_offset_change(zone, lo, hi)
    return transition if transition is not None else first


# --- the window model ----------------------------------------------------------------------


def _parse_clock(value: Any, field_name: str, *, allow_24: bool) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be a time such as '09:00' (HH:MM, 24-hour clock), not {value!r}")
    text = value.strip()
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError(f"{field_name} {value!r} is not a time: use HH:MM on the 24-hour clock, such as '09:00'")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if allow_24 and hour == 24 and minute == 0 and second == 0:
        return time(0, 0)
    if hour > 23:
        raise ValueError(f"{field_name} {value!r} is not a time: the hour must be 00-23")
    if minute > 59 or second > 59:
        raise ValueError(f"{field_name} {value!r} is not a time: minutes and seconds must be 00-59")
    return time(hour, minute, second)


class CallingWindow(BaseModel):
    """When contacts may be called, in their own local time (see the module's rules).

    Accepts the wire names (`startTime`, `endTime`, `timeZone`) and the field names.
    `days` defaults to every day; names are case-insensitive, full names allowed, stored as
    'mon'..'sun' in week order.
    """

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, frozen=True)

    start_time: time = Field(alias="startTime")
    end_time: time = Field(alias="endTime")
    days: list[str] = Field(default_factory=lambda: list(DAY_NAMES))
    time_zone: str | None = Field(default=None, alias="timeZone")

    @field_validator("start_time", mode="before")
    @classmethod
    def _start(cls, value: Any) -> time:
        return _parse_clock(value, "startTime", allow_24=False)

    @field_validator("end_time", mode="before")
    @classmethod
    def _end(cls, value: Any) -> time:
        return _parse_clock(value, "endTime", allow_24=True)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise ValueError("days must be a list of week days such as ['mon', 'tue', 'wed', 'thu', 'fri']")
        found: set[str] = set()
        for item in value:
            key = item.strip().lower() if isinstance(item, str) else None
            if key not in _DAY_ALIASES:
                raise ValueError(f"unknown day {item!r}: use {', '.join(DAY_NAMES)}")
            found.add(_DAY_ALIASES[key])
        if not found:
            raise ValueError("days must list at least one day (mon..sun)")
        return [name for name in DAY_NAMES if name in found]

    @field_validator("time_zone", mode="before")
    @classmethod
    def _tz(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError(f"timeZone must be an IANA time zone name, not {value!r}")
        return validate_time_zone(value)

    @model_validator(mode="after")
    def _length(self) -> CallingWindow:
        if self.start_time == self.end_time:
            raise ValueError(
                f"startTime and endTime are both {self.start_time.strftime('%H:%M')}: a window needs a length "
                "(for a window past midnight use a later start, e.g. 22:00-02:00)"
            )
        return self

    @property
    def crosses_midnight(self) -> bool:
        return self.start_time > self.end_time

    def describe(self) -> str:
        days = ",".join(self.days)
        return f"{self.start_time.strftime('%H:%M')}-{self.end_time.strftime('%H:%M')} {days}"


def parse_blackout_dates(values: Iterable[date | str] | None) -> list[date]:
    """`["2026-12-25", ...]` -> sorted, de-duplicated dates; ValueError naming every bad entry."""
    if values is None:
        return []
    if isinstance(values, (str, date)):
        values = [values]
    found: set[date] = set()
    errors: list[str] = []
    for index, value in enumerate(values):
        if isinstance(value, datetime):
            errors.append(f"blackoutDates[{index}] {value.isoformat()!r} is a date-time: give the date only (YYYY-MM-DD)")
        elif isinstance(value, date):
            found.add(value)
        elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            try:
                found.add(date.fromisoformat(value.strip()))
            except ValueError:
                errors.append(f"blackoutDates[{index}] {value!r} is not a calendar date (use YYYY-MM-DD)")
        else:
            errors.append(f"blackoutDates[{index}] {value!r} is not a date (use YYYY-MM-DD, e.g. '2026-12-25')")
    if errors:
        raise ValueError("; ".join(errors))
    return sorted(found)


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    window: CallingWindow | None
    start: time
    end: time
    crossing: bool
    weekdays: frozenset[int]
    blackout: frozenset[date]
    walls: tuple[time, ...]

    @classmethod
    def build(cls, window: CallingWindow | None, blackout_dates: Iterable[date | str] | None) -> _Spec:
        blackout = frozenset(parse_blackout_dates(blackout_dates))
        if window is None:
            return cls(None, time(0), time(0), False, frozenset(range(7)), blackout, (time(0),))
        weekdays = frozenset(DAY_NAMES.index(d) for d in window.days)
        walls = tuple(sorted({time(0), window.start_time, window.end_time}))
        return cls(window, window.start_time, window.end_time, window.crosses_midnight, weekdays, blackout, walls)


def _zone_infos(zones: Sequence[str] | None, window: CallingWindow | None) -> list[ZoneInfo]:
    names = list(zones or [])
    if not names:
        names = [window.time_zone if window and window.time_zone else LAST_RESORT_ZONE]
    infos: list[ZoneInfo] = []
    for name in names:
        zone = _zone(name)
        if zone is None:
            raise ValueError(f"unknown time zone {name!r}")
        if zone not in infos:
            infos.append(zone)
    return infos


def _aware(at: datetime, name: str = "at_utc") -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (got {at!r})")
    return at.astimezone(UTC)


def _open_in_zone(at: datetime, zone: ZoneInfo, spec: _Spec) -> bool:
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


def _offset(zone: ZoneInfo, at: datetime) -> timedelta | None:
    return at.astimezone(zone).utcoffset()


def _find_offset_change(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime | None:
    """The first whole second in (lo, hi] whose UTC offset differs from lo's (one change assumed)."""
    lo_s = math.floor(lo.timestamp())
    hi_s = math.ceil(hi.timestamp())
    base = _offset(zone, datetime.fromtimestamp(lo_s, UTC))
    if _offset(zone, datetime.fromtimestamp(hi_s, UTC)) == base:
        return None
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(zone, datetime.fromtimestamp(mid, UTC)) == base:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def _zone_events(zone: ZoneInfo, lo: datetime, hi: datetime, spec: _Spec) -> set[datetime]:
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
    offset_lo = _offset(zone, lo)
    while step_lo < hi:
        step_hi = min(step_lo + _ONE_DAY, hi)
        offset_hi = _offset(zone, step_hi)
        if offset_hi != offset_lo:
            change = _find_offset_change(zone, step_lo, step_hi)
            if change is not None and lo < change < hi:
                events.add(change)
        step_lo, offset_lo = step_hi, offset_hi
    return events


def _changes(
    start: datetime, end: datetime, spec: _Spec, zones: list[ZoneInfo]
) -> Iterator[tuple[datetime, bool]]:
    """(start, open?) and then every instant in (start, end) where the combined status flips."""
    status = [_open_in_zone(start, zone, spec) for zone in zones]
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
                now_open = _open_in_zone(at, zones[index], spec)
                if now_open != status[index]:
                    status[index] = now_open
                    closed += -1 if now_open else 1
                i += 1
            if (closed == 0) != current:
                current = closed == 0
                yield at, current
        chunk_lo = chunk_hi
        chunk_days = min(chunk_days * 4, 120)


def is_open(
    at_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
) -> bool:
    """Whether `at_utc` is inside the window in every one of `zones` and on no blackout date.

    `zones` empty means the window's `timeZone`, else UTC.
    """
    at = _aware(at_utc)
    spec = _Spec.build(window, blackout_dates)
    return all(_open_in_zone(at, zone, spec) for zone in _zone_infos(zones, window))


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
    at = _aware(at_utc)
    spec = _Spec.build(window, blackout_dates)
    infos = _zone_infos(zones, window)
    for instant, open_now in _changes(at, at + timedelta(days=horizon_days), spec, infos):
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
    at = _aware(at_utc)
    spec = _Spec.build(window, blackout_dates)
    infos = _zone_infos(zones, window)
    for instant, open_now in _changes(at, at + timedelta(days=horizon_days), spec, infos):
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
    now = _aware(now, "now")
    start = now if due_utc is None else max(_aware(due_utc, "due_utc"), now)
    return next_open(start, window, zones, blackout_dates)


def open_intervals(
    start_utc: datetime,
    end_utc: datetime,
    window: CallingWindow | None,
    zones: Sequence[str] | None,
    blackout_dates: Iterable[date | str] | None = (),
) -> list[tuple[datetime, datetime]]:
    """The open periods `[a, b)` within `[start_utc, end_utc)`, in order, clipped to it."""
    start, end = _aware(start_utc, "start_utc"), _aware(end_utc, "end_utc")
    if end <= start:
        return []
    spec = _Spec.build(window, blackout_dates)
    infos = _zone_infos(zones, window)
    intervals: list[tuple[datetime, datetime]] = []
    opened: datetime | None = None
    for instant, open_now in _changes(start, end, spec, infos):
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
    at = _aware(at_utc)
    spec = _Spec.build(window, blackout_dates)
    infos = _zone_infos(zones, window)
    shown = infos[0]
    names = ", ".join(str(zone.key) for zone in infos)
    if all(_open_in_zone(at, zone, spec) for zone in infos):
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
        self._spec = _Spec.build(window, blackout_dates)
        self._zones = _zone_infos(zones, window)
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
            for instant, open_now in _changes(start, end, self._spec, self._zones):
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
