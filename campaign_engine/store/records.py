"""What the workflows and activities hand the store (they travel through Temporal)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from campaign_engine.models import (
    AttemptRecord,
    CampaignConfig,
    CampaignProgress,
    CampaignStatus,
    Contact,
    ContactSummary,
)


class PlacedAttempt(BaseModel):
    """An attempt the provider has accepted: written by the dial's own activity."""

    idempotency_key: str
    tenant_id: str
    campaign_id: str
    contact_key: int
    attempt: int
    provider: str
    call_id: str
    from_number: str | None = None
    placed_at: datetime


class EndedAttempt(BaseModel):
    key: int
    idempotency_key: str
    record: AttemptRecord


class CampaignChanges(BaseModel):
    """One campaign-level flush: what changed since the last one, written in one transaction."""

    tenant_id: str
    campaign_id: str
    status: CampaignStatus
    progress: CampaignProgress  # without its `contacts` list
    talk_seconds: float = 0.0
    config: CampaignConfig | None = None  # set when it changed (a redial update)
    # Contacts appended after the start (the upload's own rows were written by the API).
    new_contacts: list[Contact] = Field(default_factory=list)
    contacts: list[ContactSummary] = Field(default_factory=list)
    attempts: list[EndedAttempt] = Field(default_factory=list)
