"""What to do after a call attempt: the simple redial form of the seed, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from campaign_engine.calls import NEVER_REDIAL_REASONS, Outcome, RedialPolicy

# The documented rule for a missing `retryIntervals`: one hour before every redial (the
# seed's own first interval). A list shorter than the redials repeats its last value.
DEFAULT_RETRY_INTERVAL_SECONDS = 3600
MAX_ATTEMPTS_LIMIT = 20
MAX_RETRY_INTERVAL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class RedialDecision:
    redial: bool
    wait_seconds: int = 0
    reason: str = ""

    def next_call_at(self, now: datetime) -> datetime | None:
        return now + timedelta(seconds=self.wait_seconds) if self.redial else None


def interval_before_attempt(policy: RedialPolicy, next_attempt: int) -> int:
    """Seconds to wait before call number `next_attempt` (2 is the first redial)."""
    intervals = policy.retry_intervals or [DEFAULT_RETRY_INTERVAL_SECONDS]
    index = next_attempt - 2
    return intervals[min(index, len(intervals) - 1)]


def decide_after_attempt(
    policy: RedialPolicy, attempt: int, outcome: Outcome, hangup_cause: str | None = None
) -> RedialDecision:
    """Redial or stop after call number `attempt` ended with `outcome`."""
    if outcome == Outcome.COMPLETED:
        return RedialDecision(False, reason="reached")
    if hangup_cause in NEVER_REDIAL_REASONS:
        return RedialDecision(False, reason=f"never redialled after {hangup_cause}")
    if outcome == Outcome.CANCELED:
        return RedialDecision(False, reason="call canceled")
    if not policy.enabled:
        return RedialDecision(False, reason="redial disabled")
    if outcome not in policy.redial_outcomes:
        return RedialDecision(False, reason=f"{outcome.value} is not redialled")
    if attempt >= policy.max_attempts:
        return RedialDecision(False, reason=f"all {policy.max_attempts} attempts used")
    wait = interval_before_attempt(policy, attempt + 1)
    return RedialDecision(True, wait_seconds=wait, reason=f"redial after {outcome.value}")


def describe_wait(seconds: float) -> str:
    """'2h', '90s', '1h30m': short, for timer summaries in the Temporal UI."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours}h{minutes:02d}m"
    return f"{hours}h" if hours else f"{minutes}m"
