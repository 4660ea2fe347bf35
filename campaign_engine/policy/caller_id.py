"""Which of the campaign's `fromNumbers` a call shows as caller ID.

Pure and deterministic (safe in Temporal workflow code): "random" is a hash of the seed, not
a random generator, so a replay picks the same number.

Decisions:

* `round_robin` (alias `sequential`): `from_numbers[counter % n]`; the caller passes a counter
  that grows by one per call (e.g. the campaign's calls placed, or the attempt number).
* `random`: index from SHA-256 of `"{seed}/{counter}"` (seed: the contact workflow id, say):
  the same seed and counter always give the same number; different attempts spread out.
* `local_presence`: prefer numbers sharing the contact's country calling code *and* national
  destination code (the area code in NANP countries); else numbers with the contact's
  country calling code (a domestic number beats a foreign one; +1 counts as one country);
  else every number, round robin as the brief's fallback. Round robin by `counter`
  within the chosen tier. Numbers that do not parse can still be chosen in the last tier.
* No numbers: None (the provider's default caller ID). Strategy names are case-insensitive,
  `-` and `_` alike; an unknown one is a ValueError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache

import phonenumbers

# Imported for its side effect: all phonenumbers metadata loaded up front (sandbox-safe).
import campaign_engine.policy.time_zones  # noqa: F401


class CallerIdStrategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"
    LOCAL_PRESENCE = "local_presence"


_ALIASES = {
    "round_robin": CallerIdStrategy.ROUND_ROBIN,
    "roundrobin": CallerIdStrategy.ROUND_ROBIN,
    "sequential": CallerIdStrategy.ROUND_ROBIN,
    "random": CallerIdStrategy.RANDOM,
    "local_presence": CallerIdStrategy.LOCAL_PRESENCE,
    "localpresence": CallerIdStrategy.LOCAL_PRESENCE,
    "local": CallerIdStrategy.LOCAL_PRESENCE,
}


def parse_strategy(value: CallerIdStrategy | str | None) -> CallerIdStrategy:
    """'round-robin', 'ROUND_ROBIN', 'sequential' -> ROUND_ROBIN; None -> ROUND_ROBIN."""
    if value is None:
        return CallerIdStrategy.ROUND_ROBIN
    if isinstance(value, CallerIdStrategy):
        return value
    key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _ALIASES:
        raise ValueError(f"unknown caller ID strategy {value!r}: use round_robin, random or local_presence")
    return _ALIASES[key]


@lru_cache(maxsize=4096)
def number_region(phone_e164: str) -> tuple[int, str] | None:
    """(country calling code, national destination code) of a number; NDC '' when the
    numbering plan has none for it; None if it does not parse."""
    try:
        number = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code is None:
        return None
    national = phonenumbers.national_significant_number(number)
    ndc_length = phonenumbers.length_of_national_destination_code(number)
    return number.country_code, national[:ndc_length] if ndc_length > 0 else ""


def _hash_index(seed: str, counter: int, n: int) -> int:
    digest = hashlib.sha256(f"{seed}/{counter}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


def choose_caller_id(
    from_numbers: Sequence[str] | None,
    strategy: CallerIdStrategy | str | None,
    contact_phone: str | None,
    counter: int,
    seed: str,
) -> str | None:
    """The caller ID for one call, or None when the campaign has no `fromNumbers`."""
    numbers = [n for n in (from_numbers or []) if n]
    if not numbers:
        return None
    chosen = parse_strategy(strategy)
    counter = max(int(counter), 0)
    if chosen == CallerIdStrategy.RANDOM:
        return numbers[_hash_index(seed, counter, len(numbers))]
    if chosen == CallerIdStrategy.LOCAL_PRESENCE and contact_phone:
        target = number_region(contact_phone)
        if target is not None:
            regions = [number_region(n) for n in numbers]
            same_area = [n for n, r in zip(numbers, regions, strict=True) if r is not None and target[1] and r == target]
            same_country = [n for n, r in zip(numbers, regions, strict=True) if r is not None and r[0] == target[0]]
            tier = same_area or same_country
            if tier:
                return tier[counter % len(tier)]
    return numbers[counter % len(numbers)]


__all__ = ["CallerIdStrategy", "choose_caller_id", "number_region", "parse_strategy"]
