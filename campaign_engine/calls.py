"""What a call is, independent of campaigns: its outcomes, its record, the simple redial form.

The pure policy functions (campaign_engine/policy/) build on these and nothing else of the
domain, so the models (which use the policies' own models for their fields) and the policies
import each other in one direction only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Outcome(StrEnum):
    """How one call attempt ended (the provider's final status, normalised)."""

    COMPLETED = "completed"  # answered by a person: the contact is reached
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"  # could not be established
    VOICEMAIL = "voicemail"  # answered by a machine
    CANCELED = "canceled"
    # Never dialled: the number is on the tenant's suppression list (checked by the dial
    # activity right before the call). A contact's disposition, never a call's outcome.
    SUPPRESSED = "suppressed"


class CallProgress(StrEnum):
    """A call's provider status while it is not final yet."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"


# Outcomes that end a contact without a redial whatever the configuration says.
NEVER_REDIAL_REASONS = frozenset({"INVALID_NUMBER", "OPT_OUT"})

class RedialPolicy(BaseModel):
    """The seed's simple redial form, normalised.

    `max_attempts` counts every call to a contact, the first one included: with
    `max_attempts=3` a contact is called at most three times (one call and two redials).
    `retry_intervals[i]` is the wait in seconds before redial i+1 (so before call i+2);
    when the list is shorter than the redials it allows, its last value repeats.
    """

    enabled: bool = False
    max_attempts: int = 1
    retry_intervals: list[int] = Field(default_factory=lambda: [3600])
    redial_outcomes: list[Outcome] = Field(
        default_factory=lambda: [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED]
    )


class AttemptRecord(BaseModel):
    attempt: int
    call_id: str | None = None
    placed_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    duration_seconds: float | None = None
    hangup_cause: str | None = None
    reason: str | None = None
    recording_url: str | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)
