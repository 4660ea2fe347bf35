"""The facts of one finished call that the redial decision reads, and the tests on them:
opt-outs, invalid numbers, terminal conditions, and which redial rule a call ended under."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from campaign_engine.calls import AttemptRecord, Outcome
from campaign_engine.policy.redial_config import RedialRule, RuleBasedRedial, normalize_outcome, normalized_token

_OPT_OUT_KEYS = frozenset({"opt_out", "optout", "opted_out", "do_not_call", "dnc"})
_OPT_OUT_VALUES = frozenset({"opt_out", "optout", "opted_out", "do_not_call"})
_TRUE_STRINGS = frozenset({"true", "yes", "y", "1"})


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return False


@dataclass(frozen=True)
class CallFact:
    """One finished attempt, as `decide_next_call` reads it."""

    attempt: int
    outcome: Outcome
    hangup_cause: str | None
    analysis: Mapping[str, Any]


HistoryItem = AttemptRecord | CallFact | tuple


def call_fact(item: HistoryItem) -> CallFact:
    if isinstance(item, CallFact):
        return item
    if isinstance(item, AttemptRecord):
        return CallFact(item.attempt, normalize_outcome(item.outcome), item.hangup_cause, item.analysis or {})
    attempt, outcome, cause, *rest = item
    analysis = rest[0] if rest else None
    return CallFact(int(attempt), normalize_outcome(outcome), cause, analysis or {})


def is_opt_out(hangup_cause: str | None, analysis: Mapping[str, Any] | None) -> bool:
    """The person asked not to be called again (see the module's rules)."""
    if hangup_cause and normalized_token(hangup_cause) in _OPT_OUT_VALUES:
        return True
    for key, value in (analysis or {}).items():
        if normalized_token(key) in _OPT_OUT_KEYS and _truthy(value):
            return True
        if isinstance(value, str) and normalized_token(value) in _OPT_OUT_VALUES:
            return True
    return False


def is_invalid_number(hangup_cause: str | None) -> bool:
    return bool(hangup_cause) and normalized_token(hangup_cause) == "invalid_number"


def matches_terminal(condition: str, fact: CallFact) -> bool:
    """Whether one `terminalConditions` entry matches a call."""
    want = normalized_token(condition)
    if want == normalized_token(fact.outcome.value):
        return True
    if fact.hangup_cause and want == normalized_token(fact.hangup_cause):
        return True
    for key, value in fact.analysis.items():
        if normalized_token(key) == want and _truthy(value):
            return True
        if isinstance(value, str) and normalized_token(value) == want:
            return True
    return False


def match_rule(
    policy: RuleBasedRedial, outcome: Outcome | str | None, hangup_cause: str | None = None
) -> RedialRule | None:
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
