"""When will a campaign finish? One estimate, used by every endpoint and the progress query.

The model is a fluid queue: calls are served at the campaign's rate (concurrency over call
length, or the pacing cap, whichever is lower) in the order they fall due; the redials that
are still likely (from the answer rate) add their waits and calls at the end.

Extensions (all through optional `EtaInput` fields; without them the result is unchanged):

* **Calling windows and blackout dates** (`window`, `blackout_dates`, per-contact zones in
  `contact_zones` parallel to `due_times`, or `default_zones` for all): calls only start
  while the contact's window is open. Then the estimate is a small simulation instead of the
  closed form: contacts are grouped by zone set and due time into batches of expected calls;
  one fluid server of the campaign's rate serves whichever batch is ready and inside its
  window first (a batch whose window closes mid-way is continued when it reopens); a served
  batch releases its expected redials (its weight times the miss rate) after the redial
  interval, for as long as the campaign still expects at least half a contact at that
  attempt (the same cut-off the closed form uses). The finish is the last call start plus
  one call length. Contacts whose window never opens within the horizon are left out (they
  will never be called). Without a window and without blackout dates the closed form
  below is kept, so existing callers get exactly the results they got before.
* **Rule-based redials** (`redial_rules`): replaced by `RuleBasedRedial.as_simple_policy()`
  (the longest per-status chain and its backoff without jitter) for the estimate.
* **Re-estimation from observations** (`observed_calls`, `observed_answered`,
  `observed_call_seconds`, the total length of the observed calls): the answer rate and the
  call length become the observed values smoothed towards the priors (`answer_rate` or
  `DEFAULT_ANSWER_RATE`, `call_seconds`) with the weight of `OBSERVATION_PRIOR_CALLS`
  calls, so a handful of early calls does not swing the ETA.

Guarantees (property-tested): never before `now`; adding a contact never makes it earlier;
a lower concurrency or pacing never makes it earlier.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from campaign_engine.calls import RedialPolicy
from campaign_engine.policy.redial import interval_before_attempt
from campaign_engine.policy.redial_rules import RuleBasedRedial
from campaign_engine.policy.time_zones import LAST_RESORT_ZONE
from campaign_engine.policy.window_calendar import WindowCalendar
from campaign_engine.policy.window_model import CallingWindow

if TYPE_CHECKING:
    from campaign_engine.models import CampaignConfig

# Before any call has ended, assume this share of calls reaches a person.
DEFAULT_ANSWER_RATE = 0.6
# Without a concurrency cap the carrier's own pacing limits the rate (Twilio: 1 call/s).
DEFAULT_UNCAPPED_CALLS_PER_SECOND = 1.0
# Observations are blended with the priors as if the priors were this many calls.
OBSERVATION_PRIOR_CALLS = 20
# Redial levels expected to concern fewer contacts than this are not waited for.
_MIN_EXPECTED_CONTACTS = 0.5


@dataclass
class EtaInput:
    now: datetime
    # When each contact that still needs a call is due (None: now). One entry per contact.
    due_times: list[datetime | None]
    call_seconds: float
    redial: RedialPolicy
    max_concurrent_calls: int | None = None
    calls_per_second: float | None = None
    answer_rate: float | None = None
    # Attempts already made by each contact in due_times (0 for a fresh contact).
    attempts_made: list[int] = field(default_factory=list)
    live_calls: int = 0
    # --- optional extensions (see the module docstring) ------------------------------------
    window: CallingWindow | None = None
    blackout_dates: Sequence[date | str] = ()
    # Zones of each contact in due_times (from windows.resolve_time_zones); missing or empty
    # entries use default_zones, else the window's timeZone, else UTC.
    contact_zones: list[Sequence[str]] = field(default_factory=list)
    default_zones: Sequence[str] | None = None
    # Rule-based redials; when set they replace `redial` in the estimate.
    redial_rules: RuleBasedRedial | None = None
    # Calls that have ended so far, how many reached a person, and their total length.
    observed_calls: int = 0
    observed_answered: int = 0
    observed_call_seconds: float = 0.0


def effective_answer_rate(inp: EtaInput) -> float:
    """The answer rate the estimate uses: observations smoothed towards the prior."""
    prior = DEFAULT_ANSWER_RATE if inp.answer_rate is None else inp.answer_rate
    rate = prior
    if inp.observed_calls > 0:
        answered = min(max(inp.observed_answered, 0), inp.observed_calls)
        rate = (answered + prior * OBSERVATION_PRIOR_CALLS) / (inp.observed_calls + OBSERVATION_PRIOR_CALLS)
    return min(max(rate, 0.01), 1.0)


def effective_call_seconds(inp: EtaInput) -> float:
    """The call length the estimate uses: the observed mean smoothed towards `call_seconds`."""
    if inp.observed_calls > 0 and inp.observed_call_seconds > 0:
        return (inp.observed_call_seconds + inp.call_seconds * OBSERVATION_PRIOR_CALLS) / (
            inp.observed_calls + OBSERVATION_PRIOR_CALLS
        )
    return inp.call_seconds


def effective_redial_policy(inp: EtaInput) -> RedialPolicy:
    return inp.redial_rules.as_simple_policy() if inp.redial_rules is not None else inp.redial


def calls_rate(inp: EtaInput) -> float:
    """Calls the campaign can start per second."""
    call_seconds = effective_call_seconds(inp)
    rates = []
    if inp.max_concurrent_calls:
        rates.append(inp.max_concurrent_calls / max(call_seconds, 1.0))
    if inp.calls_per_second:
        rates.append(inp.calls_per_second)
    if not rates:
        rates.append(DEFAULT_UNCAPPED_CALLS_PER_SECOND)
    return min(rates)


def expected_calls_per_contact(redial: RedialPolicy, answer_rate: float, attempts_made: int = 0) -> float:
    attempts_left = (redial.max_attempts if redial.enabled else 1) - attempts_made
    miss = 1.0 - answer_rate
    return sum(miss**k for k in range(max(attempts_left, 0)))


def estimate_completion(inp: EtaInput) -> datetime:
    answer_rate = effective_answer_rate(inp)
    call_seconds = effective_call_seconds(inp)
    redial = effective_redial_policy(inp)
    if not inp.due_times:
        return inp.now + timedelta(seconds=call_seconds if inp.live_calls else 0)
    if inp.window is not None or inp.blackout_dates:
        return _simulate(inp, redial, answer_rate, call_seconds, calls_rate(inp))
    rate = calls_rate(inp)
    # First calls, served in due order. Those already due (no time, or one not after now)
    # come first and go back to back from now: k of them take k steps (timedelta arithmetic
    # is exact, so this is the same instant as k single steps).
    step = timedelta(seconds=1.0 / rate)
    later = sorted(d for d in inp.due_times if d is not None and d > inp.now)
    clock = inp.now + step * (len(inp.due_times) - len(later))
    for due in later:
        clock = max(clock, due) + step
    finish = clock + timedelta(seconds=call_seconds)

    # Redials still likely: the longest redial chain some contact will probably need, plus
    # the extra calls all of them make, served at the same rate.
    n = len(inp.due_times)
    made = inp.attempts_made or [0] * n
    max_attempts = redial.max_attempts if redial.enabled else 1
    miss = 1.0 - answer_rate
    chain = 0.0
    first = min(made) + 1
    for attempt in range(first + 1, max_attempts + 1):
        if n * miss ** (attempt - first) < _MIN_EXPECTED_CONTACTS:
            break
        chain += interval_before_attempt(redial, attempt) + call_seconds
    # The same terms summed in the same order as one call per contact, each computed once.
    per_made = {m: expected_calls_per_contact(redial, answer_rate, m) - 1 for m in set(made)}
    extra_calls = sum(per_made[m] for m in made)
    extra = max(chain, extra_calls / rate) if not math.isclose(chain, 0.0) or extra_calls else 0.0
    return finish + timedelta(seconds=extra)


def _first_calls(inp: EtaInput, made: list[int], now_ts: float) -> tuple[list, dict[tuple[str, ...], WindowCalendar]]:
    """The heap of the next call of every contact, grouped by (ready time, zones, attempt
    number), and each group of zones' window calendar. Heap items: (ready, sequence, zones,
    expected calls, attempt number)."""
    fallback = tuple(inp.default_zones or ()) or (
        (inp.window.time_zone,) if inp.window is not None and inp.window.time_zone else (LAST_RESORT_ZONE,)
    )
    calendars: dict[tuple[str, ...], WindowCalendar] = {}
    batches: dict[tuple[float, tuple[str, ...], int], float] = defaultdict(float)
    for i, due in enumerate(inp.due_times):
        zones = tuple(inp.contact_zones[i]) if i < len(inp.contact_zones) and inp.contact_zones[i] else fallback
        if zones not in calendars:
            calendars[zones] = WindowCalendar(inp.window, zones, inp.blackout_dates)
        ready = now_ts if due is None else max(now_ts, due.timestamp())
        batches[(ready, zones, made[i] + 1)] += 1.0
    heap = [(ready, seq, zones, weight, attempt)
            for seq, ((ready, zones, attempt), weight) in enumerate(sorted(batches.items()))]
    heapq.heapify(heap)
    return heap, calendars


def _simulate(inp: EtaInput, redial: RedialPolicy, answer_rate: float, call_seconds: float, rate: float) -> datetime:
    """The windowed estimate (see the module docstring)."""
    now_ts = inp.now.timestamp()
    n = len(inp.due_times)
    made = list(inp.attempts_made[:n]) + [0] * max(0, n - len(inp.attempts_made))
    max_attempts = redial.max_attempts if redial.enabled else 1
    miss = 1.0 - answer_rate

    # Expected number of contacts that will still need call number `a`.
    expected_at: dict[int, float] = defaultdict(float)
    for m in made:
        for a in range(m + 2, max_attempts + 1):
            expected_at[a] += miss ** (a - m - 1)

    heap, calendars = _first_calls(inp, made, now_ts)
    seq = len(heap)

    clock = now_ts
    finish = now_ts + (call_seconds if inp.live_calls else 0.0)
    while heap:
        ready, _, zones, weight, attempt = heapq.heappop(heap)
        calendar = calendars[zones]
        start = max(clock, ready)
        opens = calendar.next_open(start)
        if opens is None:
            continue  # never callable within the horizon: not part of the estimate
        if opens > start:
            heapq.heappush(heap, (opens, seq, zones, weight, attempt))
            seq += 1
            continue
        closes = calendar.next_close(start)
        if start + weight / rate <= closes:
            end, served = start + weight / rate, weight
        else:
            end, served = closes, (closes - start) * rate
            if weight - served > 1e-9:
                heapq.heappush(heap, (closes, seq, zones, weight - served, attempt))
                seq += 1
        clock = end
        finish = max(finish, end + call_seconds)
        following = attempt + 1
        if following <= max_attempts and expected_at[following] >= _MIN_EXPECTED_CONTACTS and served * miss > 0:
            wait = interval_before_attempt(redial, following)
            heapq.heappush(heap, (end + call_seconds + wait, seq, zones, served * miss, following))
            seq += 1
    return inp.now + timedelta(seconds=max(finish - now_ts, 0.0))


def campaign_eta(
    config: CampaignConfig,
    now: datetime,
    due_times: list[datetime | None],
    *,
    contact_zones: list[Sequence[str]] | None = None,
    attempts_made: list[int] | None = None,
    live_calls: int = 0,
    observed_calls: int = 0,
    observed_answered: int = 0,
    observed_call_seconds: float = 0.0,
) -> datetime:
    """The one ETA of a campaign: what the upload, start, statuses and progress all report."""
    return estimate_completion(EtaInput(
        now=now,
        due_times=due_times,
        call_seconds=config.expected_call_seconds,
        redial=config.redial,
        max_concurrent_calls=config.max_concurrent_calls,
        calls_per_second=config.calls_per_second,
        attempts_made=attempts_made or [],
        live_calls=live_calls,
        window=config.calling_window,
        blackout_dates=config.blackout_dates,
        contact_zones=contact_zones or [],
        redial_rules=config.redial_rules,
        observed_calls=observed_calls,
        observed_answered=observed_answered,
        observed_call_seconds=observed_call_seconds,
    ))
