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

Where things are: this module holds the decision (`decide_next_call`, in named steps) and is
the public face of the rule-based redials: every name of `__all__` is importable from here.
The configuration models and the backoff are `redial_config`, the facts of a call and the
tests on them (opt-out, terminal conditions, rule matching) `redial_facts`, the callbacks a
person asks for `redial_callbacks`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from campaign_engine.calls import Outcome, RedialPolicy
from campaign_engine.policy.redial import RedialDecision, decide_after_attempt, describe_wait
from campaign_engine.policy.redial_callbacks import has_callback_request, local_zone, requested_callback
from campaign_engine.policy.redial_config import (
    DEFAULT_MAX_CALLBACKS,
    MAX_INTERVAL_MINUTES,
    Backoff,
    RedialRule,
    RuleBasedRedial,
    backoff_seconds,
    base_backoff_seconds,
    jitter_fraction,
    normalize_outcome,
)
from campaign_engine.policy.redial_facts import (
    CallFact,
    HistoryItem,
    call_fact,
    is_invalid_number,
    is_opt_out,
    match_rule,
    matches_terminal,
)
from campaign_engine.policy.time_zones import LAST_RESORT_ZONE, UTC
from campaign_engine.policy.window_changes import DEFAULT_HORIZON_DAYS
from campaign_engine.policy.window_model import CallingWindow
from campaign_engine.policy.windows import next_open


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


@dataclass(frozen=True)
class _Context:
    """What every step of `decide_next_call` reads about the contact and its latest call."""

    now: datetime
    seed: str
    facts: list[CallFact]
    last: CallFact
    calls_made: int
    cap: int
    zones: list[str]
    window: CallingWindow | None
    blackout: list[date | str]


def _schedule(ctx: _Context, *, earliest: datetime, reason: str, rule: str | None, backoff: int) -> NextCall:
    """The next call (number ``calls_made + 1``) at `earliest`, moved into the calling window."""
    now = ctx.now
    at = next_open(max(earliest, now), ctx.window, ctx.zones, ctx.blackout)
    if at is None:
        return _stop(f"{reason}, but the calling window does not open within {DEFAULT_HORIZON_DAYS} days")
    at = at.astimezone(UTC)
    if at > max(earliest, now):
        local = at.astimezone(local_zone(ctx.zones[0]))
        reason = f"{reason}; outside calling window, moved to {local.isoformat(timespec='seconds')}"
    wait = max(0, math.ceil((at - now).total_seconds()))
    return NextCall(
        True,
        wait_seconds=wait,
        reason=reason,
        at=at,
        next_attempt=ctx.calls_made + 1,
        rule=rule,
        backoff_seconds=backoff,
    )


def _never_redial_reason(policy: RuleBasedRedial | RedialPolicy, last: CallFact) -> str | None:
    """Why no configuration can redial after `last` (opt-out, invalid number, a terminal
    condition, a canceled call), or None."""
    if is_opt_out(last.hangup_cause, last.analysis):
        return "opted out: never redialled"
    if is_invalid_number(last.hangup_cause):
        return "invalid number: never redialled"
    if isinstance(policy, RuleBasedRedial):
        for condition in policy.terminal_conditions:
            if matches_terminal(condition, last):
                return f"terminal condition {condition!r} met"
    if last.outcome == Outcome.CANCELED:
        return "call canceled"
    return None


def _limits(policy: RuleBasedRedial | RedialPolicy) -> tuple[int, bool, int]:
    """(overall cap on calls, whether callbacks are honoured, how many at most)."""
    if isinstance(policy, RedialPolicy):
        return (policy.max_attempts if policy.enabled else 1), True, DEFAULT_MAX_CALLBACKS
    return policy.effective_max_attempts, policy.honor_callbacks, policy.max_callbacks


def _callback(ctx: _Context, max_callbacks: int) -> NextCall | None:
    """The call back the person asked for in the latest call, or None (none asked, too many
    asked already, or unreadable)."""
    earlier_callbacks = sum(1 for fact in ctx.facts[:-1] if has_callback_request(fact.analysis))
    if earlier_callbacks >= max_callbacks or not has_callback_request(ctx.last.analysis):
        return None
    zone = ctx.zones[0]
    wanted = requested_callback(ctx.last.analysis, zone, ctx.now, ctx.window)
    if wanted is None:
        return None
    local = wanted.astimezone(local_zone(zone))
    reason = f"callback requested for {local.strftime('%Y-%m-%d %H:%M')} {zone}: call {ctx.calls_made + 1} of {ctx.cap}"
    return _schedule(ctx, earliest=wanted, reason=reason, rule="callback", backoff=0)


def _simple_redial(policy: RedialPolicy, ctx: _Context) -> NextCall:
    """The simple form's redial (`redial.decide_after_attempt`), moved into the window."""
    last, calls_made = ctx.last, ctx.calls_made
    decision = decide_after_attempt(policy, calls_made, last.outcome, last.hangup_cause)
    if not decision.redial:
        return _stop(decision.reason)
    wait = decision.wait_seconds
    reason = f"redial {calls_made} of {ctx.cap - 1} in {describe_wait(wait)} after {last.outcome.value}"
    return _schedule(
        ctx, earliest=ctx.now + timedelta(seconds=wait), reason=reason, rule=last.outcome.value, backoff=wait
    )


def _rule_redial(policy: RuleBasedRedial, ctx: _Context) -> NextCall:
    """The redial of the rule the latest call ended under, within the rule's and the overall cap."""
    last, calls_made = ctx.last, ctx.calls_made
    rule = match_rule(policy, last.outcome, last.hangup_cause)
    if rule is None:
        if last.outcome == Outcome.VOICEMAIL:
            return _stop("voicemail is not redialled")
        label = last.outcome.value + (f" ({last.hangup_cause})" if last.hangup_cause else "")
        return _stop(f"no redial rule for {label}")
    nth = sum(1 for fact in ctx.facts if match_rule(policy, fact.outcome, fact.hangup_cause) == rule)
    rule_cap = policy.rule_cap(rule)
    if nth >= rule_cap:
        return _stop(f"all {rule_cap} calls allowed after {rule.match} used")
    wait = backoff_seconds(policy, rule, nth, f"{ctx.seed}/attempt-{calls_made}")
    redial_no = calls_made  # the next call is redial number `calls_made`
    last_possible = min(ctx.cap - 1, redial_no + rule_cap - 1 - nth)
    status = last.hangup_cause.strip().upper() if rule.is_cause and last.hangup_cause else last.outcome.value
    reason = f"redial {redial_no} of {last_possible} in {describe_wait(wait)} after {status}"
    return _schedule(ctx, earliest=ctx.now + timedelta(seconds=wait), reason=reason, rule=rule.match, backoff=wait)


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

    The steps, in order: what no configuration can override; the caps; a callback the person
    asked for; a completed call; then the simple form's or the rules' redial.
    """
    if not history:
        raise ValueError("history is empty: decide_next_call decides after a call (use windows.next_call_time first)")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    now = now.astimezone(UTC)
    facts = [call_fact(item) for item in history]
    last = facts[-1]
    calls_made = max(last.attempt, len(facts))
    zones = list(contact_zones or []) or [window.time_zone if window and window.time_zone else LAST_RESORT_ZONE]

    never = _never_redial_reason(policy, last)
    if never is not None:
        return _stop(never)
    cap, honor, max_callbacks = _limits(policy)
    if not policy.enabled:
        return _stop("reached" if last.outcome == Outcome.COMPLETED else "redial disabled")
    if calls_made >= cap:
        return _stop(f"all {cap} attempts used")

    ctx = _Context(now, seed, facts, last, calls_made, cap, zones, window, list(blackout or []))
    if honor:
        callback = _callback(ctx, max_callbacks)
        if callback is not None:
            return callback
    if last.outcome == Outcome.COMPLETED:
        return _stop("reached")
    if isinstance(policy, RedialPolicy):
        return _simple_redial(policy, ctx)
    return _rule_redial(policy, ctx)


__all__ = [
    "MAX_INTERVAL_MINUTES",
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
