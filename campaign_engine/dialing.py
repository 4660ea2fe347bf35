"""A call as the dial activity and the providers see it: the request, the provider's report,
its answer to a placed call. Plain data (they travel through Temporal); the number and the
agent's variables are filled in by the dial activity from the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from campaign_engine.calls import CallProgress, Outcome
from campaign_engine.policy.frequency_cap import FrequencyCap

class CallRequest(BaseModel):
    """What an activity asks a provider to do: place one call for one attempt."""

    idempotency_key: str  # "{contact_workflow_id}/attempt-{n}": the same for every retry
    contact_workflow_id: str
    attempt: int
    campaign_id: str
    tenant_id: str
    agent_id: str
    contact_key: int
    # The number, the caller id and the agent's variables are filled in by the dial activity
    # from the store: personal data never travels through Temporal.
    to: str = ""  # E.164
    from_number: str | None = None
    from_numbers: list[str] = Field(default_factory=list)
    caller_id_strategy: str = "round_robin"
    context_based: bool = False
    # Sent to the agent with the call when the campaign is context based.
    variables: dict[str, Any] = Field(default_factory=dict)
    detect_voicemail: bool = False
    # When the workflow decided to place this attempt (deterministic workflow time): a
    # provider without idempotency keys looks for calls created since then to adopt.
    attempt_started_at: datetime
    # When the contact became due for this attempt and asked to dial (its scheduled time, redial
    # or window opening): the dial latency metric runs from here to the provider's acceptance.
    due_at: datetime | None = None
    # Compliance checked by the dial activity (issue 14): the caps on calls to the number,
    # and whether the legal cap of the number's state applies too.
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    legal_hours: bool = False
    provider: str = "simulated"
    call_id: str | None = None  # set when asking for the status of a placed call
    # Calls of this contact's earlier attempts: never to be adopted as this attempt's call.
    exclude_call_ids: list[str] = Field(default_factory=list)


class CallOutcome(BaseModel):
    """A provider's report on a call: final (`outcome` set) or still going (`progress`)."""

    call_id: str
    attempt: int = 0
    outcome: Outcome | None = None
    progress: CallProgress | None = None
    duration_seconds: float | None = None
    hangup_cause: str | None = None  # NORMAL_CLEARING, USER_BUSY, NO_ANSWER, INVALID_NUMBER, ...
    reason: str | None = None
    answered_by: str | None = None
    recording_url: str | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)
    ended_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.outcome is not None


class PlacedCall(BaseModel):
    """A provider's answer to a placed call."""

    call_id: str
    provider: str
    adopted: bool = False  # an earlier request of this attempt had already created the call
    # Some providers know the end at once (a rejected number): then no wait is needed.
    outcome: CallOutcome | None = None
    # How long to wait for the provider's callback before asking for the status.
    poll_after_seconds: float = 900.0
    # Not dialled: a frequency cap holds the number until then (no call, no attempt).
    capped_until: datetime | None = None
    capped_reason: str | None = None
