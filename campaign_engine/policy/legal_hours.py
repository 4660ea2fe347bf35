"""Legal calling hours by country and, for the US, by state (issue 14): pure functions.

Every campaign that dials through a real provider (Twilio, the HTTP agent) calls a contact only
inside the hours below, in the contact's own local time (its zones, as for `callingWindow`),
whether or not it sets a `callingWindow`; a campaign's own window narrows them
(`narrowed`). The simulated carrier calls nobody, so it follows them only with
`LEGAL_HOURS=on`; `LEGAL_HOURS=off` lifts them for every campaign (written to the audit
trail). The US state comes from the number's area code (`phonenumbers`' geocoder data).

The table and its sources (checked 2026-12; this is engineering, not legal advice: a
deployment with its own counsel's rules sets a narrower `callingWindow`):

| rule | hours (local) | calls per 24 h | source |
|---|---|---|---|
| US (federal) | 08:00-21:00 | - | TCPA, 47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after 9 p.m. at the called party's location |
| US-FL | 08:00-20:00 | 3 | Florida Telephone Solicitation Act, Fla. Stat. 501.616(6) (as amended 2021, SB 1120): 8 a.m.-8 p.m.; at most 3 calls from the same person on the same subject in 24 h |
| US-OK | 08:00-20:00 | 3 | Oklahoma Telephone Solicitation Act of 2022 (HB 3168), 15 O.S. 775C.4 |
| US-MD | 08:00-20:00 | 3 | Maryland Stop the Spam Calls Act of 2023 (SB 90/HB 37), Md. Code Com. Law 14-4503 |
| IN | 09:00-21:00 | - | TRAI Telecom Commercial Communications Customer Preference Regulations 2018: no commercial calls between 9 p.m. and 9 a.m. |
| any other country | 09:00-20:00 | - | a safe default: inside the hours every country above allows |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import phonenumbers
from phonenumbers import geocoder

from campaign_engine.policy.window_model import DAY_NAMES, CallingWindow


@dataclass(frozen=True)
class LegalRule:
    name: str  # "US", "US-FL", "IN", "default"
    start: time
    end: time
    max_calls_per_24h: int | None = None

    def window(self) -> CallingWindow:
        """Every day, these hours, in the contact's zones (no time zone of its own)."""
        return CallingWindow.model_validate({"startTime": self.start.strftime("%H:%M"),
                                             "endTime": self.end.strftime("%H:%M"), "days": list(DAY_NAMES)})

    def describe(self) -> str:
        cap = f", at most {self.max_calls_per_24h} calls per 24 h" if self.max_calls_per_24h else ""
        return f"{self.name} {self.start:%H:%M}-{self.end:%H:%M} local{cap}"


US = LegalRule("US", time(8), time(21))
_STATE_8_TO_8 = {"FL", "OK", "MD"}
US_STATES = {code: LegalRule(f"US-{code}", time(8), time(20), 3) for code in _STATE_8_TO_8}
COUNTRIES = {"US": US, "IN": LegalRule("IN", time(9), time(21))}
DEFAULT = LegalRule("default", time(9), time(20))

_STATE_CODES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC", "Florida": "FL",
    "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX",
    "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
}
_CODES = set(_STATE_CODES.values())


def us_state(number: phonenumbers.PhoneNumber) -> str | None:
    """The US state of a number's area code ("FL"), from phonenumbers' geocoder: it answers
    a state's name ("Florida") or a place and the state's code ("San Francisco, CA")."""
    where = geocoder.description_for_number(number, "en").strip()
    if not where:
        return None
    if where in _STATE_CODES:
        return _STATE_CODES[where]
    _, _, tail = where.rpartition(",")
    tail = tail.strip()
    return tail if tail in _CODES else None


def rule_for(phone_e164: str) -> LegalRule:
    """The hours the law allows calling this number (DEFAULT when the number says nothing)."""
    try:
        number = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return DEFAULT
    region = phonenumbers.region_code_for_number(number)
    if region == "US":
        state = us_state(number)
        return US_STATES.get(state or "", US)
    return COUNTRIES.get(region or "", DEFAULT)


def narrowed(campaign: CallingWindow | None, legal: CallingWindow | None) -> CallingWindow | None:
    """The campaign's window within the legal hours: the later start, the earlier end, the
    campaign's days and time zone (the fallback for a contact whose number gives no zone).
    A campaign window crossing midnight keeps the part of its evening (or, if that lies
    outside, its morning) inside legal hours. No overlap: a window that never opens (the
    contact is never called)."""
    if legal is None:
        return campaign
    if campaign is None:
        return legal
    ls, le = legal.start_time, legal.end_time
    pieces = [(campaign.start_time, campaign.end_time)] if campaign.start_time < campaign.end_time else \
        [(campaign.start_time, time(23, 59)), (time(0), campaign.end_time)]
    start, end = ls, ls  # empty unless a piece overlaps
    for a, b in pieces:
        s, e = max(a, ls), min(b, le)
        if s < e:
            start, end = s, e
            break
    if start >= end:
        # Nothing overlaps: a window with no day, which never opens (the contact is never
        # called). Built without validation: a window a client sends needs a day.
        return CallingWindow.model_construct(start_time=ls, end_time=le, days=[], time_zone=campaign.time_zone)
    return CallingWindow.model_validate({"startTime": start.strftime("%H:%M"), "endTime": end.strftime("%H:%M"),
                                         "days": campaign.days, "timeZone": campaign.time_zone})


def summary(mode: str) -> str:
    """The one line `campaign-engine up` prints about the rules in force."""
    rules = "US 08:00-21:00 (FL/OK/MD 08:00-20:00, 3 calls/24 h), IN 09:00-21:00, elsewhere 09:00-20:00"
    if mode == "off":
        return "legal hours    OFF (LEGAL_HOURS=off): campaigns call whenever their own window allows"
    if mode == "on":
        return f"legal hours    every provider, the simulated one included: {rules}"
    return f"legal hours    twilio and http campaigns: {rules}"
