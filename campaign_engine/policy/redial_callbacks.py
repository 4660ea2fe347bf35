"""Callbacks a person asked for: `callback_date` / `callback_time` of a call's analysis, read in
the contact's local time (see "Callbacks" in `campaign_engine.policy.redial_rules`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaign_engine.policy.time_zones import UTC, localize, validate_time_zone
from campaign_engine.policy.window_model import CallingWindow

DEFAULT_CALLBACK_TIME = time(9, 0)  # a callback date without time, and no window

_CLOCK_RE = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?(?::(\d{2}))?\s*([ap]\.?m\.?)?$", re.IGNORECASE)


def _parse_time(value: Any) -> time | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if not isinstance(value, str):
        return None
    match = _CLOCK_RE.match(value.strip())
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2] or 0), int(match[3] or 0)
    meridiem = (match[4] or "").replace(".", "").lower()
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    elif match[2] is None:
        return None  # a bare "15" is too vague
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def has_callback_request(analysis: Mapping[str, Any] | None) -> bool:
    analysis = analysis or {}
    return bool(analysis.get("callback_date") or analysis.get("callback_time"))


def requested_callback(
    analysis: Mapping[str, Any] | None,
    zone_name: str,
    now: datetime,
    window: CallingWindow | None = None,
) -> datetime | None:
    """The instant (UTC) a call's analysis asks to be called back at, or None.

    Reads `callback_date` / `callback_time` in `zone_name`'s local time (a `callback_date`
    holding a full ISO date-time with an offset is taken as is). Not moved into the window.
    """
    analysis = analysis or {}
    raw_date, raw_time = analysis.get("callback_date"), analysis.get("callback_time")
    if not raw_date and not raw_time:
        return None
    if isinstance(raw_date, str) and "T" in raw_date:
        try:
            stamp = datetime.fromisoformat(raw_date.strip())
        except ValueError:
            return None
        if stamp.tzinfo is not None and stamp.utcoffset() is not None:
            return stamp.astimezone(UTC)
        return localize(stamp, zone_name)
    day = _parse_date(raw_date) if raw_date else None
    clock = _parse_time(raw_time) if raw_time else None
    if raw_date and day is None or raw_time and clock is None:
        return None  # unreadable: better no callback than a wrong one
    if day is not None:
        if clock is None:
            clock = window.start_time if window is not None else DEFAULT_CALLBACK_TIME
        return localize(datetime.combine(day, clock), zone_name)
    assert clock is not None
    today = now.astimezone(UTC).astimezone(local_zone(zone_name)).date()
    at = localize(datetime.combine(today, clock), zone_name)
    if at <= now:
        at = localize(datetime.combine(today + timedelta(days=1), clock), zone_name)
    return at


def local_zone(name: str) -> ZoneInfo:
    return ZoneInfo(validate_time_zone(name))
