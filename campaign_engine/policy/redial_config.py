"""The rule-based redial configuration (`RuleBasedRedial`, `RedialRule`) and its backoff.

The rules these models follow are those of `campaign_engine.policy.redial_rules` (caps,
matching, voicemail, backoff and jitter). Pure code, safe in Temporal workflow code: jitter
comes from a hash of a seed string, never from a random generator.
"""

from __future__ import annotations

import hashlib
import math
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campaign_engine.calls import NEVER_REDIAL_REASONS, Outcome, RedialPolicy
from campaign_engine.policy.redial import MAX_ATTEMPTS_LIMIT, MAX_RETRY_INTERVAL_SECONDS

DEFAULT_MAX_CALLBACKS = 2
MAX_INTERVAL_MINUTES = MAX_RETRY_INTERVAL_SECONDS / 60

_OUTCOME_VALUES = {o.value for o in Outcome}
_CAUSE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def normalized_token(value: Any) -> str:
    """Comparison form: lower case, '-' and spaces as '_'."""
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())


def normalize_outcome(value: Outcome | str | None) -> Outcome:
    """'no_answer', 'NO-ANSWER', Outcome.NO_ANSWER -> Outcome.NO_ANSWER; None -> FAILED."""
    if value is None:
        return Outcome.FAILED
    if isinstance(value, Outcome):
        return value
    key = normalized_token(value).replace("_", "-")
    if key not in _OUTCOME_VALUES:
        raise ValueError(f"unknown call outcome {value!r}: use one of {', '.join(sorted(_OUTCOME_VALUES))}")
    return Outcome(key)


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
        key = normalized_token(text).replace("_", "-")
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
    max_interval_minutes: float | None = Field(default=None, alias="maxIntervalMinutes", gt=0, le=MAX_INTERVAL_MINUTES)
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
