"""Rule-based redials (the `PUT /updateCampaignData/{id}` form), callbacks and opt-outs.

Pure functions, safe in Temporal workflow code: `now` is a parameter, jitter comes from a
hash of a seed string, never from a random generator.

Wire form (camelCase and snake_case both accepted, `no-answer` and `no_answer` both)::

    {"enabled": true, "maxAttempts": 5,
     "callStatus": [{"match": "busy", "intervalMinutes": 10, "maxAttempts": 3},
                    {"match": "no-answer", "intervalMinutes": 20, "maxAttempts": 4}],
     "terminalConditions": ["not_interested", "CALL_REJECTED"],
     "backoff": "exponential", "backoffMultiplier": 2, "maxIntervalMinutes": 240,
     "jitterRatio": 0.2, "redialVoicemail": true}

Decisions:

* **Caps.** The overall `maxAttempts` caps every call to the contact, the first one and
  callbacks included (as in the simple form); without it the engine's limit
  (`MAX_ATTEMPTS_LIMIT`, 20) applies. A rule's `maxAttempts` caps the calls that ended
  under that rule: with `{match: busy, maxAttempts: 3}` the contact is redialled after its
  first and second busy call, not after the third. Both caps apply; the first one reached
  stops the redials. A rule without `maxAttempts` has only the overall cap.
* **Matching.** `match` is an outcome (`no-answer`, `busy`, `failed`, `voicemail`, any case,
  `-` or `_`) or a provider hang-up cause in capitals (`CALL_REJECTED`, `NETWORK_ERROR`).
  A cause rule wins over an outcome rule. `completed`, `canceled`, `INVALID_NUMBER` and
  `OPT_OUT` cannot be matched (never redialled). An outcome with no rule is not redialled.
  An attempt with no outcome recorded counts as `failed`.
* **Voicemail.** `redialVoicemail` unset: voicemail is redialled iff there is a voicemail
  rule. `true`: it uses the voicemail rule, else the no-answer rule (a machine answering is
  "not reached"; such calls then count towards the no-answer rule's cap). `false` together
  with a voicemail rule is a validation error.
* **Backoff.** `fixed`: every redial of a rule waits `intervalMinutes`. `exponential`: the
  n-th call ending under a rule is followed by `intervalMinutes * backoffMultiplier**(n-1)`.
  Both are capped at `maxIntervalMinutes` (default and upper limit 30 days). Jitter is
  subtractive: the wait is multiplied by `1 - jitterRatio * u`, `u` in [0, 1) from SHA-256
  of `"{seed}/attempt-{n}"` (pass the contact workflow id as seed), so it never exceeds the
  cap and the same contact and attempt always get the same wait (replay-safe).
* **Never redialled**, whatever the rules say: an opt-out (hang-up cause `OPT_OUT`; analysis
  with a truthy `opt_out`/`optout`/`opted_out`/`do_not_call`/`dnc` key, or any string value
  `OPT_OUT`/`DO_NOT_CALL`), an invalid number (hang-up cause `INVALID_NUMBER`), a canceled
  call, a call matching a `terminalConditions` entry. A terminal condition matches the last
  call's outcome, its hang-up cause, an analysis key with a truthy value or an analysis
  string value (compared case-insensitively, `-`, `_` and spaces alike).
* **Callbacks.** An analysis with `callback_date` ("2026-12-03") and/or `callback_time`
  ("15:00", "3:30 pm") asks for a call at that time in the contact's local time (its first
  zone). Date only: the window's start that day (09:00 without a window). Time only: its
  next occurrence. A callback overrides "completed" (the person asked to be called again)
  and the status rules, but not the overall cap, the never-redial reasons or a disabled
  redial config; at most `maxCallbacks` (default 2) are honoured per contact, later requests
  fall back to the rules. A time already past means "as soon as the window allows".
* Every redial time is moved into the calling window (`windows.next_open`). When the window
  never opens again, the contact is not redialled and the reason says so.
* `decide_next_call` also takes the simple `RedialPolicy` (delegating to
  `redial.decide_after_attempt`), so workflow code has one entry point for both forms.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campaign_engine.calls import NEVER_REDIAL_REASONS, AttemptRecord, Outcome, RedialPolicy
from campaign_engine.policy.redial import (
    MAX_ATTEMPTS_LIMIT,
    MAX_RETRY_INTERVAL_SECONDS,
    RedialDecision,
    decide_after_attempt,
    describe_wait,
)
from campaign_engine.policy.time_zones import LAST_RESORT_ZONE, UTC, localize, validate_time_zone
from campaign_engine.policy.window_changes import DEFAULT_HORIZON_DAYS
from campaign_engine.policy.window_model import CallingWindow
from campaign_engine.policy.windows import next_open

DEFAULT_MAX_CALLBACKS = 2
DEFAULT_CALLBACK_TIME = time(9, 0)  # a callback date without time, and no window
MAX_INTERVAL_MINUTES = MAX_RETRY_INTERVAL_SECONDS / 60

_OUTCOME_VALUES = {o.value for o in Outcome}
_CAUSE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_OPT_OUT_KEYS = frozenset({"opt_out", "optout", "opted_out", "do_not_call", "dnc"})
_OPT_OUT_VALUES = frozenset({"opt_out", "optout", "opted_out", "do_not_call"})
_TRUE_STRINGS = frozenset({"true", "yes", "y", "1"})


def _token(value: Any) -> str:
    """Comparison form: lower case, '-' and spaces as '_'."""
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return False


def normalize_outcome(value: Outcome | str | None) -> Outcome:
    """'no_answer', 'NO-ANSWER', Outcome.NO_ANSWER -> Outcome.NO_ANSWER; None -> FAILED."""
    if value is None:
        return Outcome.FAILED
    if isinstance(value, Outcome):
        return value
    key = _token(value).replace("_", "-")
    if key not in _OUTCOME_VALUES:
        raise ValueError(f"unknown call outcome {value!r}: use one of {', '.join(sorted(_OUTCOME_VALUES))}")
    return Outcome(key)


# --- models --------------------------------------------------------------------------------


class Backoff(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"


class RedialRule(BaseModel):
    """`{match: "busy", intervalMinutes: 10, maxAttempts: 3}`: redial busy calls after 10
    minutes, until three calls have ended busy. Without `maxAttempts`, until the overall cap."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, frozen=True)

    match: str
    interval_minutes: float = Field(alias="intervalMinutes", gt=0, le=MAX_INTERVAL_MINUTES)
    max_attempts: int | None = Field(default=None, alias="maxAttempts", ge=1, le=MAX_ATTEMPTS_LIMIT)

    @field_validator("match", mode="before")
    @classmethod
    def _match(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("match must name a call status such as 'busy' or 'no-answer'")
        text = value.strip()
        key = _token(text).replace("_", "-")
        if key in _OUTCOME_VALUES:
            if key in (Outcome.COMPLETED.value, Outcome.CANCELED.value):
                raise ValueError(f"match {value!r}: {key} calls are never redialled")
            return key
        if _CAUSE_RE.match(text):
            if text in NEVER_REDIAL_REASONS:
                raise ValueError(f"match {value!r}: {text} is never redialled")
            return text
        raise ValueError(
            f"unknown match {value!r}: use no-answer, busy, failed or voicemail, "
            "or a provider hang-up cause in capitals such as CALL_REJECTED"
        )

    @property
    def is_cause(self) -> bool:
        """True for a hang-up cause rule, False for an outcome rule."""
        return self.match not in _OUTCOME_VALUES


class RuleBasedRedial(BaseModel):
    """The rule-based redial configuration (see the module's rules)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, frozen=True)

    enabled: bool = False
    # Overall cap on calls to one contact, the first call included; None: MAX_ATTEMPTS_LIMIT.
    max_attempts: int | None = Field(default=None, alias="maxAttempts", ge=1, le=MAX_ATTEMPTS_LIMIT)
    call_status: list[RedialRule] = Field(default_factory=list, alias="callStatus")
    terminal_conditions: list[str] = Field(default_factory=list, alias="terminalConditions")
    backoff: Backoff = Backoff.FIXED
    backoff_multiplier: float = Field(default=2.0, alias="backoffMultiplier", ge=1.0, le=10.0)
    max_interval_minutes: float | None = Field(
        default=None, alias="maxIntervalMinutes", gt=0, le=MAX_INTERVAL_MINUTES
    )
    jitter_ratio: float = Field(default=0.0, alias="jitterRatio", ge=0.0, le=0.9)
    redial_voicemail: bool | None = Field(default=None, alias="redialVoicemail")
    honor_callbacks: bool = Field(default=True, alias="honorCallbacks")
    max_callbacks: int = Field(default=DEFAULT_MAX_CALLBACKS, alias="maxCallbacks", ge=0, le=MAX_ATTEMPTS_LIMIT)

    @field_validator("backoff", mode="before")
    @classmethod
    def _backoff(cls, value: Any) -> Any:
        if isinstance(value, str):
            key = value.strip().lower()
            if key not in {b.value for b in Backoff}:
                raise ValueError(f"unknown backoff {value!r}: use 'fixed' or 'exponential'")
            return key
        return value

    @field_validator("terminal_conditions", mode="before")
    @classmethod
    def _terminal(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError("terminalConditions must be a list of strings")
        out: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"terminalConditions[{index}] must be a non-empty string, not {item!r}")
            if "\x00" in item:  # the store's jsonb cannot hold it (a 500, found by schemathesis)
                raise ValueError(f"terminalConditions[{index}] must not contain the NUL character")
            out.append(item.strip())
        return out

    @model_validator(mode="after")
    def _consistent(self) -> RuleBasedRedial:
        seen: set[str] = set()
        for rule in self.call_status:
            if rule.match in seen:
                raise ValueError(f"callStatus has two rules for {rule.match!r}: keep one")
            seen.add(rule.match)
        if self.redial_voicemail is False and Outcome.VOICEMAIL.value in seen:
            raise ValueError("callStatus has a voicemail rule but redialVoicemail is false: drop one of them")
        return self

    @property
    def effective_max_attempts(self) -> int:
        """The overall cap on calls (the first call included); 1 when disabled."""
        if not self.enabled:
            return 1
        return self.max_attempts if self.max_attempts is not None else MAX_ATTEMPTS_LIMIT

    def rule_cap(self, rule: RedialRule) -> int:
        """Calls ending under `rule` after which it no longer redials: its own maxAttempts,
        else the overall cap."""
        return rule.max_attempts if rule.max_attempts is not None else self.effective_max_attempts

    def rule_for(self, match: str) -> RedialRule | None:
        return next((rule for rule in self.call_status if rule.match == match), None)

    def as_simple_policy(self) -> RedialPolicy:
        """An approximation in the simple form, for estimates (the ETA): the chain of the
        rule allowing the most calls (no-answer on ties), intervals without jitter."""
        outcome_rules = [r for r in self.call_status if not r.is_cause] or list(self.call_status)
        if not self.enabled or not outcome_rules:
            return RedialPolicy(enabled=False, max_attempts=1)
        rep = max(outcome_rules, key=lambda r: (self.rule_cap(r), r.match == Outcome.NO_ANSWER.value))
        max_attempts = max(1, min(self.effective_max_attempts, self.rule_cap(rep)))
        intervals = [base_backoff_seconds(self, rep, n) for n in range(1, max(max_attempts, 2))]
        outcomes = [Outcome(r.match) for r in self.call_status if not r.is_cause]
        if self.redial_voicemail and Outcome.VOICEMAIL not in outcomes:
            outcomes.append(Outcome.VOICEMAIL)
        return RedialPolicy(
            enabled=True, max_attempts=max_attempts, retry_intervals=intervals, redial_outcomes=outcomes
        )


# --- facts about one call ------------------------------------------------------------------


@dataclass(frozen=True)
class CallFact:
    """One finished attempt, as `decide_next_call` reads it."""

    attempt: int
    outcome: Outcome
    hangup_cause: str | None
    analysis: Mapping[str, Any]


HistoryItem = AttemptRecord | CallFact | tuple


def _fact(item: HistoryItem) -> CallFact:
    if isinstance(item, CallFact):
        return item
    if isinstance(item, AttemptRecord):
        return CallFact(item.attempt, normalize_outcome(item.outcome), item.hangup_cause, item.analysis or {})
    attempt, outcome, cause, *rest = item
    analysis = rest[0] if rest else None
    return CallFact(int(attempt), normalize_outcome(outcome), cause, analysis or {})


def is_opt_out(hangup_cause: str | None, analysis: Mapping[str, Any] | None) -> bool:
    """The person asked not to be called again (see the module's rules)."""
    if hangup_cause and _token(hangup_cause) in _OPT_OUT_VALUES:
        return True
    for key, value in (analysis or {}).items():
        if _token(key) in _OPT_OUT_KEYS and _truthy(value):
            return True
        if isinstance(value, str) and _token(value) in _OPT_OUT_VALUES:
            return True
    return False


def is_invalid_number(hangup_cause: str | None) -> bool:
    return bool(hangup_cause) and _token(hangup_cause) == "invalid_number"


def matches_terminal(condition: str, fact: CallFact) -> bool:
    """Whether one `terminalConditions` entry matches a call."""
    want = _token(condition)
    if want == _token(fact.outcome.value):
        return True
    if fact.hangup_cause and want == _token(fact.hangup_cause):
        return True
    for key, value in fact.analysis.items():
        if _token(key) == want and _truthy(value):
            return True
        if isinstance(value, str) and _token(value) == want:
            return True
    return False


def match_rule(policy: RuleBasedRedial, outcome: Outcome | str | None, hangup_cause: str | None = None) -> RedialRule | None:
    """The rule that redials a call that ended so, or None (not redialled by the rules)."""
    outcome = normalize_outcome(outcome)
    if outcome in (Outcome.COMPLETED, Outcome.CANCELED):
        return None
    if hangup_cause:
        rule = policy.rule_for(hangup_cause.strip().upper())
        if rule is not None:
            return rule
    if outcome == Outcome.VOICEMAIL:
        if policy.redial_voicemail is False:
            return None
        rule = policy.rule_for(Outcome.VOICEMAIL.value)
        if rule is None and policy.redial_voicemail:
            rule = policy.rule_for(Outcome.NO_ANSWER.value)
        return rule
    return policy.rule_for(outcome.value)


# --- callbacks -----------------------------------------------------------------------------

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
    today = now.astimezone(UTC).astimezone(_zone_info(zone_name)).date()
    at = localize(datetime.combine(today, clock), zone_name)
    if at <= now:
        at = localize(datetime.combine(today + timedelta(days=1), clock), zone_name)
    return at


def _zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(validate_time_zone(name))


# --- backoff -------------------------------------------------------------------------------


def jitter_fraction(seed: str) -> float:
    """A number in [0, 1) from SHA-256 of `seed`: the same seed, the same number."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _cap_seconds(policy: RuleBasedRedial) -> float:
    if policy.max_interval_minutes is not None:
        return min(policy.max_interval_minutes * 60.0, float(MAX_RETRY_INTERVAL_SECONDS))
    return float(MAX_RETRY_INTERVAL_SECONDS)


def base_backoff_seconds(policy: RuleBasedRedial, rule: RedialRule, nth: int) -> int:
    """The wait after the `nth` call (1-based) that ended under `rule`, before jitter."""
    nth = max(int(nth), 1)
    seconds = rule.interval_minutes * 60.0
    if policy.backoff == Backoff.EXPONENTIAL:
        exponent = nth - 1
        # Past the cap the exact power no longer matters; avoid float overflow.
        growth = policy.backoff_multiplier**exponent if exponent < 200 else math.inf
        seconds = seconds * growth
    return max(1, int(round(min(seconds, _cap_seconds(policy)))))


def backoff_seconds(policy: RuleBasedRedial, rule: RedialRule, nth: int, seed: str) -> int:
    """`base_backoff_seconds` with the policy's subtractive jitter drawn from `seed`."""
    base = base_backoff_seconds(policy, rule, nth)
    if policy.jitter_ratio <= 0:
        return base
    return max(1, int(round(base * (1.0 - policy.jitter_ratio * jitter_fraction(seed)))))


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class NextCall(RedialDecision):
    """A `RedialDecision` that knows its time: `at` is already inside the calling window.

    `wait_seconds` is the whole wait from `now` to `at` (rounded up), `backoff_seconds` the
    rule's wait before the window moved it, `rule` the matched rule's `match` or "callback".
    """

    at: datetime | None = None
    next_attempt: int | None = None
    rule: str | None = None
    backoff_seconds: int = 0

    def next_call_at(self, now: datetime) -> datetime | None:
        return self.at if self.redial else None


def _stop(reason: str) -> NextCall:
    return NextCall(False, reason=reason)


def _schedule(
    *,
    now: datetime,
    earliest: datetime,
    window: CallingWindow | None,
    zones: Sequence[str],
    blackout: Iterable[date | str] | None,
    reason: str,
    next_attempt: int,
    rule: str | None,
    backoff: int,
) -> NextCall:
    at = next_open(max(earliest, now), window, zones, blackout)
    if at is None:
        return _stop(
            f"{reason}, but the calling window does not open within {DEFAULT_HORIZON_DAYS} days"
        )
    at = at.astimezone(UTC)
    if at > max(earliest, now):
        local = at.astimezone(_zone_info(zones[0]))
        reason = f"{reason}; outside calling window, moved to {local.isoformat(timespec='seconds')}"
    wait = max(0, math.ceil((at - now).total_seconds()))
    return NextCall(
        True, wait_seconds=wait, reason=reason, at=at, next_attempt=next_attempt, rule=rule, backoff_seconds=backoff
    )


def decide_next_call(
    policy: RuleBasedRedial | RedialPolicy,
    history: Sequence[HistoryItem],
    now: datetime,
    seed: str,
    contact_zones: Sequence[str] | None = None,
    window: CallingWindow | None = None,
    blackout: Iterable[date | str] | None = (),
) -> NextCall:
    """Whether and when to call a contact again after its latest call (`history[-1]`).

    `history` lists every finished attempt in order, as `AttemptRecord`s, `CallFact`s or
    `(attempt, outcome, hangup_cause, analysis)` tuples. `seed` is stable per contact (its
    workflow id); the attempt number is mixed in. `contact_zones` come from
    `windows.resolve_time_zones`; empty means the window's zone, else UTC.
    """
    if not history:
        raise ValueError("history is empty: decide_next_call decides after a call (use windows.next_call_time first)")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    now = now.astimezone(UTC)
    facts = [_fact(item) for item in history]
    last = facts[-1]
    calls_made = max(last.attempt, len(facts))
    zones = list(contact_zones or []) or [window.time_zone if window and window.time_zone else LAST_RESORT_ZONE]
    blackout = list(blackout or [])

    # What no configuration can override.
    if is_opt_out(last.hangup_cause, last.analysis):
        return _stop("opted out: never redialled")
    if is_invalid_number(last.hangup_cause):
        return _stop("invalid number: never redialled")
    if isinstance(policy, RuleBasedRedial):
        for condition in policy.terminal_conditions:
            if matches_terminal(condition, last):
                return _stop(f"terminal condition {condition!r} met")
    if last.outcome == Outcome.CANCELED:
        return _stop("call canceled")

    enabled = policy.enabled
    cap: int
    if isinstance(policy, RedialPolicy):
        cap = policy.max_attempts if policy.enabled else 1
        honor, max_callbacks = True, DEFAULT_MAX_CALLBACKS
    else:
        cap = policy.effective_max_attempts
        honor, max_callbacks = policy.honor_callbacks, policy.max_callbacks
    if not enabled:
        return _stop("reached" if last.outcome == Outcome.COMPLETED else "redial disabled")
    if calls_made >= cap:
        return _stop(f"all {cap} attempts used")

    # A callback the person asked for.
    earlier_callbacks = sum(1 for fact in facts[:-1] if has_callback_request(fact.analysis))
    if honor and earlier_callbacks < max_callbacks and has_callback_request(last.analysis):
        wanted = requested_callback(last.analysis, zones[0], now, window)
        if wanted is not None:
            local = wanted.astimezone(_zone_info(zones[0]))
            reason = (
                f"callback requested for {local.strftime('%Y-%m-%d %H:%M')} {zones[0]}: "
                f"call {calls_made + 1} of {cap}"
            )
            return _schedule(
                now=now, earliest=wanted, window=window, zones=zones, blackout=blackout,
                reason=reason, next_attempt=calls_made + 1, rule="callback", backoff=0,
            )

    if last.outcome == Outcome.COMPLETED:
        return _stop("reached")

    if isinstance(policy, RedialPolicy):
        decision = decide_after_attempt(policy, calls_made, last.outcome, last.hangup_cause)
        if not decision.redial:
            return _stop(decision.reason)
        wait = decision.wait_seconds
        reason = f"redial {calls_made} of {cap - 1} in {describe_wait(wait)} after {last.outcome.value}"
        return _schedule(
            now=now, earliest=now + timedelta(seconds=wait), window=window, zones=zones, blackout=blackout,
            reason=reason, next_attempt=calls_made + 1, rule=last.outcome.value, backoff=wait,
        )

    rule = match_rule(policy, last.outcome, last.hangup_cause)
    if rule is None:
        if last.outcome == Outcome.VOICEMAIL:
            return _stop("voicemail is not redialled")
        label = last.outcome.value + (f" ({last.hangup_cause})" if last.hangup_cause else "")
        return _stop(f"no redial rule for {label}")
    nth = sum(1 for fact in facts if match_rule(policy, fact.outcome, fact.hangup_cause) == rule)
    rule_cap = policy.rule_cap(rule)
    if nth >= rule_cap:
        return _stop(f"all {rule_cap} calls allowed after {rule.match} used")
    wait = backoff_seconds(policy, rule, nth, f"{seed}/attempt-{calls_made}")
    redial_no = calls_made  # the next call is redial number `calls_made`
    last_possible = min(cap - 1, redial_no + rule_cap - 1 - nth)
    status = last.hangup_cause.strip().upper() if rule.is_cause and last.hangup_cause else last.outcome.value
    reason = f"redial {redial_no} of {last_possible} in {describe_wait(wait)} after {status}"
    return _schedule(
        now=now, earliest=now + timedelta(seconds=wait), window=window, zones=zones, blackout=blackout,
        reason=reason, next_attempt=calls_made + 1, rule=rule.match, backoff=wait,
    )


__all__ = [
    "Backoff",
    "CallFact",
    "NextCall",
    "RedialRule",
    "RuleBasedRedial",
    "backoff_seconds",
    "base_backoff_seconds",
    "decide_next_call",
    "has_callback_request",
    "is_invalid_number",
    "is_opt_out",
    "jitter_fraction",
    "match_rule",
    "matches_terminal",
    "normalize_outcome",
    "requested_callback",
]
