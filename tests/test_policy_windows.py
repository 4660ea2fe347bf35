"""Calling windows in the contact's own time: validation, zones, DST, midnight, blackouts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from campaign_engine.policy.windows import (
    DAY_NAMES,
    CallingWindow,
    WindowCalendar,
    is_open,
    localize,
    next_call_time,
    next_close,
    next_open,
    open_intervals,
    parse_blackout_dates,
    resolve_time_zones,
    validate_time_zone,
    window_state,
)

UTC = timezone.utc
NY = ["America/New_York"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
OFFICE = CallingWindow.model_validate({"startTime": "09:00", "endTime": "20:00", "days": WEEKDAYS})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the model -----------------------------------------------------------------------------


def test_window_accepts_wire_and_field_names():
    wire = CallingWindow.model_validate(
        {"startTime": "09:00", "endTime": "20:00", "days": ["Mon", "TUESDAY"], "timeZone": "Europe/London"}
    )
    named = CallingWindow(start_time=time(9), end_time="20:00:00", days=["tue", "mon"], time_zone="Europe/London")
    assert wire == named
    assert wire.days == ["mon", "tue"]
    assert wire.start_time == time(9) and wire.end_time == time(20)
    # What Temporal's pydantic converter stores comes back the same.
    assert CallingWindow.model_validate(wire.model_dump(mode="json")) == wire


def test_window_defaults_every_day_and_no_zone():
    window = CallingWindow.model_validate({"startTime": "08:00", "endTime": "21:00"})
    assert window.days == list(DAY_NAMES)
    assert window.time_zone is None
    assert not window.crosses_midnight


def test_end_time_24_00_is_midnight():
    window = CallingWindow.model_validate({"startTime": "18:00", "endTime": "24:00"})
    assert window.end_time == time(0) and window.crosses_midnight
    assert is_open(utc(2026, 6, 1, 23, 59), window, ["UTC"])
    assert not is_open(utc(2026, 6, 2, 0, 0), window, ["UTC"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"startTime": "25:00", "endTime": "20:00"}, "startTime '25:00' is not a time: the hour must be 00-23"),
        ({"startTime": "09:00", "endTime": "20:61"}, "endTime '20:61' is not a time: minutes"),
        ({"startTime": "9am", "endTime": "20:00"}, "startTime '9am' is not a time: use HH:MM"),
        ({"startTime": "24:00", "endTime": "20:00"}, "startTime '24:00' is not a time"),
        ({"startTime": "09:00", "endTime": "20:00", "days": ["mon", "fry"]}, "unknown day 'fry'"),
        ({"startTime": "09:00", "endTime": "20:00", "days": []}, "at least one day"),
        ({"startTime": "09:00", "endTime": "20:00", "timeZone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"startTime": "09:00", "endTime": "20:00", "timeZone": "Etc/Unknown"}, "unknown time zone"),
        ({"startTime": "09:00", "endTime": "09:00"}, "startTime and endTime are both 09:00"),
        ({"startTime": "00:00", "endTime": "24:00"}, "startTime and endTime are both 00:00"),
    ],
)
def test_window_validation_messages(payload, message):
    with pytest.raises(ValidationError) as info:
        CallingWindow.model_validate(payload)
    assert message in str(info.value)


def test_validate_time_zone():
    assert validate_time_zone("Asia/Kolkata") == "Asia/Kolkata"
    with pytest.raises(ValueError, match="IANA"):
        validate_time_zone("Nowhere/Town")


def test_parse_blackout_dates():
    assert parse_blackout_dates(["2026-12-25", "2026-01-01", "2026-12-25", date(2026, 7, 4)]) == [
        date(2026, 1, 1),
        date(2026, 7, 4),
        date(2026, 12, 25),
    ]
    assert parse_blackout_dates(None) == []
    with pytest.raises(ValueError) as info:
        parse_blackout_dates(["2026-12-25", "2026-13-01", "25/12/2026", datetime(2026, 1, 1)])
    text = str(info.value)
    assert "blackoutDates[1] '2026-13-01' is not a calendar date" in text
    assert "blackoutDates[2] '25/12/2026' is not a date" in text
    assert "blackoutDates[3]" in text


# --- zones ---------------------------------------------------------------------------------


def test_resolve_time_zones_order():
    assert resolve_time_zones("+12125551234", "Europe/Paris", "Asia/Tokyo") == ["Europe/Paris"]
    assert resolve_time_zones("+12125551234", None, "Asia/Tokyo") == ["America/New_York"]
    assert resolve_time_zones("+12125551234", "Not/AZone", None) == ["America/New_York"]
    assert resolve_time_zones("+14155550100", None, None) == ["America/Los_Angeles"]
    # Unknown to phonenumbers ('Etc/Unknown'): the window's zone, else UTC.
    assert resolve_time_zones("+15555550100", None, "America/Chicago") == ["America/Chicago"]
    assert resolve_time_zones("+15555550100", None, None) == ["UTC"]
    assert resolve_time_zones("garbage", None, None) == ["UTC"]
    assert resolve_time_zones(None, None, "Asia/Kolkata") == ["Asia/Kolkata"]


def test_multi_zone_numbers():
    toll_free = resolve_time_zones("+18005551234", None, None)
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "Pacific/Guam"} <= set(toll_free)
    alaska = resolve_time_zones("+19075550100", None, None)
    assert set(alaska) == {"America/Adak", "America/Anchorage"}
    assert len(resolve_time_zones("+61412345678", None, None)) > 1  # Australian mobile


def test_multi_zone_window_is_the_intersection():
    zones = ["America/New_York", "America/Los_Angeles"]
    # 09:00 in New York is 06:00 in Los Angeles: closed until 09:00 Pacific.
    monday = utc(2026, 11, 30, 14, 0)
    assert is_open(monday, OFFICE, ["America/New_York"])
    assert not is_open(monday, OFFICE, zones)
    assert next_open(monday, OFFICE, zones) == utc(2026, 11, 30, 17, 0)
    # ... and it closes at 20:00 Eastern.
    assert next_close(utc(2026, 11, 30, 17, 0), OFFICE, zones) == utc(2026, 12, 1, 1, 0)


def test_toll_free_number_only_in_northern_winter():
    zones = resolve_time_zones("+18005551234", None, None)
    # Guam (UTC+10) to Newfoundland (UTC-3:30): 30 minutes a day overlap in winter...
    opens = next_open(utc(2026, 7, 1), OFFICE, zones)
    assert opens == utc(2026, 11, 2, 23, 0)
    assert next_close(opens, OFFICE, zones) == utc(2026, 11, 2, 23, 30)


def test_never_opens_returns_none():
    short = CallingWindow(start_time="09:00", end_time="12:00")
    assert next_open(utc(2026, 7, 1), short, ["Asia/Tokyo", "America/New_York"]) is None
    mondays = CallingWindow(start_time="09:00", end_time="17:00", days=["mon"])
    every_monday = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(80)]
    assert next_open(utc(2026, 1, 1), mondays, NY, every_monday) is None
    assert "does not open within 400 days" in window_state(utc(2026, 1, 1), mondays, NY, every_monday)


# --- opening and closing -------------------------------------------------------------------


def test_start_included_end_excluded_weekends_closed():
    assert is_open(utc(2026, 11, 30, 14, 0), OFFICE, NY)  # Mon 09:00 EST
    assert not is_open(utc(2026, 11, 30, 13, 59, 59), OFFICE, NY)
    assert is_open(utc(2026, 12, 1, 0, 59, 59), OFFICE, NY)  # Mon 19:59:59
    assert not is_open(utc(2026, 12, 1, 1, 0), OFFICE, NY)  # Mon 20:00
    assert not is_open(utc(2026, 12, 5, 15, 0), OFFICE, NY)  # Saturday
    # Friday evening -> Monday morning.
    assert next_open(utc(2026, 12, 5, 1, 0), OFFICE, NY) == utc(2026, 12, 7, 14, 0)


def test_next_open_returns_at_itself_when_open():
    at = datetime(2026, 11, 30, 15, 30, 12, 345678, tzinfo=UTC)
    assert next_open(at, OFFICE, NY) is at


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(datetime(2026, 1, 1, 12), OFFICE, NY)


def test_zones_default_to_window_zone_then_utc():
    window = CallingWindow(start_time="09:00", end_time="17:00", time_zone="Asia/Kolkata")
    assert is_open(utc(2026, 6, 1, 4, 0), window, [])  # 09:30 IST
    assert not is_open(utc(2026, 6, 1, 4, 0), window.model_copy(update={"time_zone": None}), [])


def test_no_window_means_only_blackouts():
    assert is_open(utc(2026, 12, 24, 23, 0), None, NY, ["2026-12-25"])  # 18:00 on the 24th
    assert not is_open(utc(2026, 12, 25, 12, 0), None, NY, ["2026-12-25"])
    assert next_open(utc(2026, 12, 25, 12, 0), None, NY, ["2026-12-25"]) == utc(2026, 12, 26, 5, 0)


def test_blackout_is_the_contacts_local_date():
    christmas = ["2026-12-25"]
    # 02:00 UTC on the 25th is still the 24th in New York (21:00): blackout not yet.
    late = CallingWindow(start_time="08:00", end_time="23:00")
    assert is_open(utc(2026, 12, 25, 2, 0), late, NY, christmas)
    assert not is_open(utc(2026, 12, 25, 15, 0), late, NY, christmas)
    assert next_open(utc(2026, 12, 25, 15, 0), late, NY, christmas) == utc(2026, 12, 26, 13, 0)


def test_window_state_texts():
    assert window_state(utc(2026, 11, 30, 3, 0), OFFICE, NY) == "outside calling window until 2026-11-30T09:00:00-05:00"
    assert window_state(utc(2026, 11, 30, 15, 0), OFFICE, NY) == "inside calling window until 2026-11-30T20:00:00-05:00"
    assert window_state(utc(2026, 12, 25, 15, 0), OFFICE, NY, ["2026-12-25"]) == (
        "outside calling window (blackout date 2026-12-25) until 2026-12-28T09:00:00-05:00"
    )
    assert window_state(utc(2026, 12, 24, 15, 0), None, NY) == "inside calling window"


def test_next_call_time_never_before_now():
    now = utc(2026, 11, 30, 15, 0)
    assert next_call_time(None, now, OFFICE, NY) == now
    assert next_call_time(utc(2026, 1, 1), now, OFFICE, NY) == now
    assert next_call_time(utc(2026, 12, 5, 15, 0), now, OFFICE, NY) == utc(2026, 12, 7, 14, 0)


# --- midnight-crossing windows -------------------------------------------------------------

NIGHT = CallingWindow(start_time="22:00", end_time="02:00", days=["fri"], time_zone="UTC")


def test_midnight_window_belongs_to_its_opening_day():
    assert NIGHT.crosses_midnight
    assert is_open(utc(2026, 12, 4, 22, 0), NIGHT, ["UTC"])  # Friday 22:00
    assert is_open(utc(2026, 12, 5, 1, 59), NIGHT, ["UTC"])  # Saturday 01:59: Friday's window
    assert not is_open(utc(2026, 12, 5, 2, 0), NIGHT, ["UTC"])
    assert not is_open(utc(2026, 12, 5, 23, 0), NIGHT, ["UTC"])  # Saturday night
    assert not is_open(utc(2026, 12, 4, 1, 0), NIGHT, ["UTC"])  # Friday 01:00 is Thursday's
    assert next_open(utc(2026, 12, 5, 3, 0), NIGHT, ["UTC"]) == utc(2026, 12, 11, 22, 0)


def test_midnight_window_and_blackouts():
    # The opening day blacked out: no window at all, not even after midnight.
    assert not is_open(utc(2026, 12, 5, 1, 0), NIGHT, ["UTC"], ["2026-12-04"])
    # The next calendar date blacked out: the window stops at midnight.
    assert is_open(utc(2026, 12, 4, 23, 0), NIGHT, ["UTC"], ["2026-12-05"])
    assert not is_open(utc(2026, 12, 5, 1, 0), NIGHT, ["UTC"], ["2026-12-05"])
    assert open_intervals(utc(2026, 12, 4), utc(2026, 12, 6), NIGHT, ["UTC"], ["2026-12-05"]) == [
        (utc(2026, 12, 4, 22, 0), utc(2026, 12, 5, 0, 0))
    ]


# --- DST -----------------------------------------------------------------------------------


def test_localize_gap_and_overlap():
    # New York springs forward 2026-03-08 02:00 -> 03:00 (07:00 UTC).
    assert localize(datetime(2026, 3, 8, 2, 30), "America/New_York") == utc(2026, 3, 8, 7, 0)
    assert localize(datetime(2026, 3, 8, 3, 30), "America/New_York") == utc(2026, 3, 8, 7, 30)
    # Falls back 2026-11-01 02:00 -> 01:00: 01:30 happens twice, the first is EDT.
    assert localize(datetime(2026, 11, 1, 1, 30), "America/New_York") == utc(2026, 11, 1, 5, 30)
    # London springs forward 2026-03-29 01:00 GMT -> 02:00 BST.
    assert localize(datetime(2026, 3, 29, 1, 15), "Europe/London") == utc(2026, 3, 29, 1, 0)


def test_window_starting_in_the_spring_gap_opens_at_the_transition():
    window = CallingWindow(start_time="02:30", end_time="05:00")
    assert next_open(utc(2026, 3, 8, 5, 0), window, NY) == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert not is_open(utc(2026, 3, 8, 6, 59, 59), window, NY)  # 01:59:59 EST
    london = CallingWindow(start_time="01:30", end_time="04:00")
    assert next_open(utc(2026, 3, 29, 0, 0), london, ["Europe/London"]) == utc(2026, 3, 29, 1, 0)


def test_window_in_the_autumn_overlap_opens_twice():
    window = CallingWindow(start_time="01:00", end_time="01:30")
    intervals = open_intervals(utc(2026, 11, 1, 0, 0), utc(2026, 11, 1, 12, 0), window, NY)
    assert intervals == [
        (utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30)),  # 01:00-01:30 EDT
        (utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30)),  # 01:00-01:30 EST
    ]
    london = open_intervals(utc(2026, 10, 25), utc(2026, 10, 26), window, ["Europe/London"])
    assert london == [(utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30)), (utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30))]


def test_office_hours_follow_dst():
    # 09:00 New York is 14:00 UTC in winter, 13:00 UTC in summer.
    assert next_open(utc(2026, 3, 7, 22, 0), OFFICE, NY) == utc(2026, 3, 9, 13, 0)
    assert next_open(utc(2026, 10, 31, 22, 0), OFFICE, NY) == utc(2026, 11, 2, 14, 0)
    assert next_open(utc(2026, 3, 28, 22, 0), OFFICE, ["Europe/London"]) == utc(2026, 3, 30, 8, 0)


# --- properties ----------------------------------------------------------------------------

ZONES = [
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/St_Johns",  # UTC-3:30
    "Asia/Kathmandu",  # UTC+5:45
    "America/Havana",  # DST at midnight
    "Pacific/Chatham",
    "UTC",
]
# Instants near the 2026 DST transitions of the zones above, and a plain one.
ANCHORS = [
    utc(2026, 3, 8, 7),
    utc(2026, 3, 29, 1),
    utc(2026, 11, 1, 6),
    utc(2026, 10, 25, 1),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15),
    utc(2026, 3, 8, 5),
    utc(2026, 11, 1, 5),
    utc(2026, 6, 15, 12),
]

clock_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@st.composite
def windows(draw):
    start = draw(clock_times)
    end = draw(clock_times.filter(lambda t: t != start))
    days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True))
    return CallingWindow(start_time=start, end_time=end, days=days)


@st.composite
def situations(draw):
    window = draw(st.one_of(st.none(), windows(), windows()))
    zones = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True))
    at = draw(st.sampled_from(ANCHORS)) + timedelta(minutes=draw(st.integers(-36 * 60, 36 * 60)))
    at += timedelta(seconds=draw(st.sampled_from([0, 0, 1, 59])))
    blackout = draw(st.lists(st.integers(-2, 3).map(lambda k: (at + timedelta(days=k)).date()), max_size=3))
    return window, zones, at, blackout


SCAN = timedelta(days=2)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situations())
def test_next_open_is_open_and_nothing_earlier_is(case):
    window, zones, at, blackout = case
    found = next_open(at, window, zones, blackout)
    if found is not None:
        assert found >= at
        assert is_open(found, window, zones, blackout)
        if found > at:
            # Just before it, closed (it is the start of an open period).
            assert not is_open(found - timedelta(seconds=1), window, zones, blackout)
    # No open minute between `at` and the result (bounded scan).
    stop = min(found, at + SCAN) if found is not None else at + SCAN
    probe = at
    while probe < stop:
        assert not is_open(probe, window, zones, blackout), probe
        probe += timedelta(minutes=1)


@settings(max_examples=60, deadline=None)
@given(situations())
def test_intervals_agree_with_is_open_minute_by_minute(case):
    window, zones, at, blackout = case
    at = at.replace(second=0, microsecond=0)
    end = at + timedelta(hours=36)
    intervals = open_intervals(at, end, window, zones, blackout)
    for (a, b), (c, _) in zip(intervals, intervals[1:], strict=False):
        assert a < b < c  # ordered, disjoint, never touching
    probe = at
    while probe < end:
        inside = any(a <= probe < b for a, b in intervals)
        assert inside == is_open(probe, window, zones, blackout), probe
        probe += timedelta(minutes=1)


@settings(max_examples=60, deadline=None)
@given(situations(), st.lists(st.integers(0, 20 * 24 * 60), min_size=1, max_size=8))
def test_calendar_matches_functions(case, offsets):
    window, zones, at, blackout = case
    calendar = WindowCalendar(window, zones, blackout)
    for minutes in sorted(offsets):
        probe = at + timedelta(minutes=minutes)
        expected_open = next_open(probe, window, zones, blackout)
        got_open = calendar.next_open(probe.timestamp())
        if expected_open is None:
            assert got_open is None
            continue
        assert got_open == pytest.approx(expected_open.timestamp())
        closes = calendar.next_close(expected_open.timestamp())
        expected_close = next_close(expected_open, window, zones, blackout)
        if expected_close is None:
            assert closes == float("inf")
        else:
            assert closes == pytest.approx(expected_close.timestamp())


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ZONES), windows(), st.integers(0, 364))
def test_every_allowed_day_opens_once_in_a_single_zone(zone, window, day_offset):
    """Over one local week, a non-crossing window opens once on each allowed day."""
    if window.crosses_midnight:
        return
    first = date(2026, 1, 1) + timedelta(days=day_offset)
    start = localize(datetime.combine(first, time(0)), zone)
    end = localize(datetime.combine(first + timedelta(days=7), time(0)), zone)
    intervals = open_intervals(start, end, window, [zone])
    opened_days = [a.astimezone(ZoneInfo(zone)).date() for a, _ in intervals]
    expected = [first + timedelta(days=k) for k in range(7) if DAY_NAMES[(first + timedelta(days=k)).weekday()] in window.days]
    # A window lying entirely in a DST gap may not open that day; one in an autumn overlap
    # may open twice.
    assert set(opened_days) <= set(expected)
    assert len(set(opened_days)) >= len(expected) - 1
