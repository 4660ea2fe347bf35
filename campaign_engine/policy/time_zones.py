"""Time zones of the calling windows: which zones a contact is called in, and local wall times.

Pure functions (no I/O, no clock), safe in deterministic Temporal workflow code; the rules of
zone resolution are those of `campaign_engine.policy.windows`. Import inside
`workflow.unsafe.imports_passed_through()`: phonenumbers keeps threading locks that the sandbox
refuses when it re-imports them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone
from phonenumbers.phonemetadata import PhoneMetadata

# phonenumbers imports each region's metadata lazily, under a threading lock, on first use.
# Inside Temporal's workflow sandbox that late import fails ("threading.Lock restricted"),
# even for a module imported through `imports_passed_through`. Loading everything when this
# module is imported (about 50 ms, once per process) keeps the policy functions callable
# from workflow code. (Adding "phonenumbers" to the worker's passthrough modules also works.)
PhoneMetadata.load_all()

UTC = timezone.utc
UNKNOWN_ZONE = "Etc/Unknown"
LAST_RESORT_ZONE = "UTC"


@lru_cache(maxsize=2048)
def zone_info(name: str) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip() or name == UNKNOWN_ZONE:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def validate_time_zone(name: str) -> str:
    """`name` if it is an IANA time zone this Python knows, else ValueError saying so."""
    if zone_info(name) is None:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'America/New_York' or 'Europe/London'")
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
        if name != UNKNOWN_ZONE and zone_info(name) is not None and name not in zones:
            zones.append(name)
    return tuple(zones)


def resolve_time_zones(
    phone_e164: str | None,
    contact_tz: str | None,
    fallback_tz: str | None,
    *,
    number: phonenumbers.PhoneNumber | None = None,
) -> list[str]:
    """The IANA zones a contact's calling window is evaluated in (never empty).

    The contact's own `timezone` if valid; else every zone its number maps to (a window is
    open only when open in all of them); else `fallback_tz` (the window's `timeZone`); else
    "UTC". `number`, when given, is `phone_e164` already parsed (the upload parses every
    number once and passes it on, rather than having it parsed again here).
    """
    if contact_tz and zone_info(contact_tz) is not None:
        return [contact_tz.strip()]
    if number is not None or phone_e164:
        zones = _zones_of_parsed(number) if number is not None else _zones_for_number(phone_e164)
        if zones:
            return list(zones)
    if fallback_tz and zone_info(fallback_tz) is not None:
        return [fallback_tz.strip()]
    return [LAST_RESORT_ZONE]


def localize(naive_local: datetime, zone_name: str) -> datetime:
    """The first instant (UTC) at which the clock in `zone_name` reads `naive_local` or later.

    An ambiguous wall time (DST overlap) gives its earlier instant; a wall time skipped by a
    DST gap gives the transition itself (02:30 on a spring-forward night -> 03:00 new time).
    """
    zone = zone_info(zone_name)
    if zone is None:
        raise ValueError(f"unknown time zone {zone_name!r}")
    naive_local = naive_local.replace(tzinfo=None)
    first = naive_local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive_local:
        return first
    # In a gap: the transition lies between the two readings; find it to the second.
    other = naive_local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(first, other), max(first, other)
    transition = find_offset_change(zone, lo, hi)
    return transition if transition is not None else first


def utc_offset(zone: ZoneInfo, at: datetime) -> timedelta | None:
    return at.astimezone(zone).utcoffset()


def find_offset_change(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime | None:
    """The first whole second in (lo, hi] whose UTC offset differs from lo's (one change assumed)."""
    lo_s = math.floor(lo.timestamp())
    hi_s = math.ceil(hi.timestamp())
    base = utc_offset(zone, datetime.fromtimestamp(lo_s, UTC))
    if utc_offset(zone, datetime.fromtimestamp(hi_s, UTC)) == base:
        return None
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if utc_offset(zone, datetime.fromtimestamp(mid, UTC)) == base:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)
