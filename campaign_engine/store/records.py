"""What the workflows and activities hand the store (they travel through Temporal)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from campaign_engine.models import (
    AttemptRecord,
    AttemptReport,
    CampaignConfig,
    CampaignStatus,
    ContactState,
    Outcome,
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


class ContactChange(BaseModel):
    """A contact's row as it changed: a contact's own report (`report`, the whole summary),
    or a state the campaign gave it (queued, dialing, launched, ended without a report)."""

    key: int
    report: AttemptReport | None = None
    state: ContactState | None = None
    disposition: Outcome | None = None
    reason: str | None = None
    clear_next_call: bool = False

    @property
    def current_state(self) -> ContactState:
        assert self.report is not None or self.state is not None
        return self.state if self.state is not None else self.report.state  # type: ignore[union-attr]

    def then(self, later: ContactChange) -> ContactChange:
        """This change followed by `later`, as one."""
        if later.report is not None:
            return later
        merged = self.model_copy()
        merged.state = later.state
        merged.disposition = later.disposition or self.disposition
        merged.reason = later.reason or self.reason
        merged.clear_next_call = later.clear_next_call or self.clear_next_call
        return merged


class CampaignCounters(BaseModel):
    """The campaign workflow's own figures (the rest of its progress comes from the rows)."""

    name: str
    status: CampaignStatus
    total_contacts: int
    duplicates_merged: int
    calls_placed: int
    live_calls: int
    outcome_counts: dict[str, int] = Field(default_factory=dict)
    answered_calls: int = 0
    answered_talk_seconds: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pause_reason: str | None = None
    run: int = 1


class CampaignChanges(BaseModel):
    """One flush of a campaign: what changed since the last one, written in one transaction,
    answered with the campaign's progress as the store then has it."""

    tenant_id: str
    campaign_id: str
    # The flush's number, growing across the campaign's runs: a flush numbered below the
    # last one written is late (a retried or replayed attempt) and writes nothing.
    flush: int
    counters: CampaignCounters
    config: CampaignConfig
    config_changed: bool = False
    contacts: list[ContactChange] = Field(default_factory=list)
    attempts: list[EndedAttempt] = Field(default_factory=list)
    # Cancel: every contact from this key on that was never launched ends canceled.
    cancel_from_key: int | None = None
    # Count the rows by state again and estimate the completion (each reads every row of
    # the campaign); otherwise the progress keeps the counts of the last recount.
    recount: bool = True
