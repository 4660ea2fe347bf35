"""Who may dial now: pause, maxConcurrentCalls, callsPerSecond, and the dial queue's bound.

Pure bookkeeping over the campaign's carried state (workflow time is passed in), so the
campaign workflow only asks it questions and applies its answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from campaign_engine.models import CampaignConfig, CampaignState, CampaignStatus, LaunchRow

# A campaign without maxConcurrentCalls still keeps at most this many calls live (its state
# holds one key per live call).
MAX_LIVE_CALLS = 1_000
# A contact turned away by a full dial queue asks again after about as long as the queue
# takes to drain, within these bounds.
RETRY_MIN = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)


class Admission:
    def __init__(self, state: CampaignState, config: CampaignConfig) -> None:
        self.st = state
        self.cfg = config

    @property
    def cap(self) -> int:
        return min(self.cfg.max_concurrent_calls or MAX_LIVE_CALLS, MAX_LIVE_CALLS)

    def live(self) -> int:
        return len(self.st.dialing)

    def enqueue(self, key: int, attempt: int) -> bool:
        """Queue a contact's request; False when the queue is full (it must ask again later)."""
        if any(k == key for k, _ in self.st.queue):
            return True
        if len(self.st.queue) >= self.cfg.dial_queue_limit:
            return False
        self.st.queue.append([key, attempt])
        return True

    def drop(self, key: int) -> None:
        self.st.queue = [q for q in self.st.queue if q[0] != key]

    def queued(self) -> set[int]:
        return {k for k, _ in self.st.queue}

    def free_slots(self, now: datetime) -> int:
        if self.st.status != CampaignStatus.IN_PROGRESS:
            return 0
        slots = min(len(self.st.queue), max(self.cap - self.live(), 0))
        if self.cfg.calls_per_second:
            slots = min(slots, int(self.tokens(now)))
        return slots

    def may_grant_with_start(self, row: LaunchRow) -> bool:
        """Whether a new contact's first call can go with its start (nothing could hold it)."""
        cfg = self.cfg
        if self.st.status != CampaignStatus.IN_PROGRESS or cfg.calls_per_second or cfg.calling_window \
                or cfg.blackout_dates or (cfg.legal_hours and row.legal_window is not None):
            return False  # pacing, windows and the contact's legal hours are decided when it asks
        return self.cap - self.live() - len(self.st.queue) > 0

    def take(self, now: datetime, limit: int) -> list[list[int]]:
        """The requests granted now ([key, attempt]), first come first served; they are live."""
        n = min(self.free_slots(now), limit)
        granted, self.st.queue = self.st.queue[:n], self.st.queue[n:]
        if granted and self.cfg.calls_per_second:
            self.st.pace_tokens = self.tokens(now) - len(granted)
            self.st.pace_at = now
        self.st.dialing.extend(k for k, _ in granted)
        return granted

    def tokens(self, now: datetime) -> float:
        """Calls the pacing allows now: a token bucket of callsPerSecond, at most one second's worth."""
        cps = self.cfg.calls_per_second
        assert cps
        capacity = max(1.0, cps)
        if self.st.pace_at is None:
            return capacity
        return min(capacity, self.st.pace_tokens + (now - self.st.pace_at).total_seconds() * cps)

    def pacing_wait(self, now: datetime) -> float | None:
        """Seconds until pacing lets the next queued contact dial, when only pacing holds it."""
        cps = self.cfg.calls_per_second
        if not cps or not self.st.queue or self.st.status != CampaignStatus.IN_PROGRESS \
                or self.live() >= self.cap:
            return None
        tokens = self.tokens(now)
        return None if tokens >= 1 else max((1 - tokens) / cps, 0.001)

    def retry_at(self, now: datetime) -> datetime:
        """When a contact turned away by the full queue should ask again."""
        rate = self.cap / max(self.cfg.expected_call_seconds, 1.0)
        if self.cfg.calls_per_second:
            rate = min(rate, self.cfg.calls_per_second)
        wait = timedelta(seconds=len(self.st.queue) / max(rate, 0.001))
        return now + min(max(wait, RETRY_MIN), RETRY_MAX)
