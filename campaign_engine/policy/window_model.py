"""The calling window model (`CallingWindow`) and the blackout dates, as the API accepts them.

Validation only: what the window means at a given instant is `campaign_engine.policy.windows`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campaign_engine.policy.time_zones import validate_time_zone

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

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
            errors.append(
                f"blackoutDates[{index}] {value.isoformat()!r} is a date-time: give the date only (YYYY-MM-DD)"
            )
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
