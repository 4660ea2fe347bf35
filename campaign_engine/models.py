"""The engine's domain models, shared by the API, the workflows and the activities.

These travel through Temporal (pydantic data converter), so they are plain data: no I/O,
no clock. The REST wire format (camelCase, the seed's field names) lives in `api/schemas.py`
and is translated into these.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from campaign_engine.calls import NEVER_REDIAL_REASONS, AttemptRecord, CallProgress, Outcome, RedialPolicy
from campaign_engine.dialing import CallOutcome, CallRequest, PlacedCall


class ContactState(StrEnum):
    """Where a contact is in the campaign, as the campaign workflow tracks it."""

    PENDING = "pending"  # accepted, its workflow not started yet
    SCHEDULED = "scheduled"  # waiting for its scheduledCallDateTime
    QUEUED = "queued"  # due, waiting for the campaign to let it dial (pause, concurrency)
    OUTSIDE_WINDOW = "outside_window"  # due, waiting for its calling window to open
    DIALING = "dialing"  # a call is placed or ringing, outcome not known yet
    REDIAL_WAIT = "redial_wait"  # an attempt failed, waiting for the redial timer
    CAPPED = "capped"  # due, held by a frequency cap on its number until the window allows a call
    DONE = "done"  # final: see the disposition
    REMOVED = "removed"  # final: skipped through the API before it was reached
    CANCELED = "canceled"  # final: the campaign was canceled before it was reached

    @property
    def is_final(self) -> bool:
        return self in (ContactState.DONE, ContactState.REMOVED, ContactState.CANCELED)


def reported_disposition(state: ContactState | str, disposition: Outcome | str | None) -> str | None:
    """A contact's disposition as every view reports it (by_disposition, the export, the
    contacts pages): a contact stopped before it was done (removed, canceled) reads its state,
    whatever its last call's outcome was (that stays in its attempts and `last_outcome`); a
    contact done reads its outcome; one not final has none yet."""
    state = ContactState(state)
    if state in (ContactState.REMOVED, ContactState.CANCELED):
        return state.value
    if state == ContactState.DONE and disposition is not None:
        return Outcome(disposition).value
    return None


class CampaignStatus(StrEnum):
    """Values of the CampaignStatus search attribute and the API's campaign status."""

    DRAFT = "draft"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"



# Consent's bounds: a source names where it came from, the text is the wording the person agreed
# to (a form's or a script's), the reference points at a record kept elsewhere.
CONSENT_SOURCE_MAX = 200
CONSENT_TEXT_MAX = 4000
CONSENT_REFERENCE_MAX = 500


class Consent(BaseModel):
    """A contact's consent to be called (issue 14): where it came from, when it was obtained, and
    what was agreed (its `text`) or where the record is (`reference`), at least one of them.
    Stored with the contact and exported; never sent to Temporal (the workflows carry keys)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=CONSENT_SOURCE_MAX,
                        description="Where the consent came from, e.g. `web_form`, `ivr`, `paper`")
    obtained_at: AwareDatetime = Field(description="When it was obtained: ISO 8601 with a time zone")
    text: str | None = Field(None, max_length=CONSENT_TEXT_MAX, description="The wording agreed to")
    reference: str | None = Field(None, max_length=CONSENT_REFERENCE_MAX,
                                  description="Where the record of it is kept (an id, a URL)")

    @model_validator(mode="after")
    def _checked(self) -> Consent:
        self.source = self.source.strip()
        self.text = (self.text or "").strip() or None
        self.reference = (self.reference or "").strip() or None
        if not self.source:
            raise PydanticCustomError("consent_source", "source must not be blank")
        for name in ("source", "text", "reference"):
            value = getattr(self, name)
            if value is not None and "\x00" in value:  # PostgreSQL's jsonb cannot hold it
                raise PydanticCustomError("nul_character", "{name} must not contain the NUL character",
                                          {"name": name})
        if self.text is None and self.reference is None:
            raise PydanticCustomError("consent_evidence", "needs `text` (what was agreed to) or `reference` "
                                      "(where its record is), or both")
        return self

    def stored(self) -> dict[str, Any]:
        """As the contacts row's `consent` column holds it (JSON)."""
        return self.model_dump(mode="json", exclude_none=True)


class Contact(BaseModel):
    """One contact of a campaign, validated and normalised."""

    key: int  # position in the campaign (0-based, in upload order); ids use it, never the phone
    phone: str  # E.164
    masked: str = ""  # '+91 98xxxxxx10': what summaries and logs show (set by `mask_phone`)
    name: str | None = None
    email: str | None = None
    custom_data: dict[str, Any] = Field(default_factory=dict)
    scheduled_at: datetime | None = None  # aware, UTC
    timezone: str | None = None
    # The IANA zones the calling window applies in (the contact's own zone, else those of
    # its number, else the window's): resolved once at upload, outside the workflows.
    zones: list[str] = Field(default_factory=list)
    # Stored with the row, never in a workflow's input (LaunchRow carries no personal data).
    consent: Consent | None = None

    @property
    def label(self) -> str:
        """How summaries name the contact: its masked number, else its position."""
        return self.masked or f"contact {self.key}"

    def workflow_summary(self, campaign_name: str) -> str:
        """The Web UI summary of this contact's workflow, however it was started."""
        return f"{self.label} · campaign {campaign_name}"


class AutoPausePolicy(BaseModel):
    """A campaign pauses itself when, over its last `window` ended calls, more than `threshold`
    of them failed for carrier reasons (workflows/auto_pause.py). The upload's `autoPause`."""

    enabled: bool = True
    window: int = Field(20, ge=2, le=1000)
    threshold: float = Field(0.5, gt=0, lt=1)


class CampaignConfig(BaseModel):
    """Everything about a campaign except its contacts."""

    campaign_id: str
    object_id: str  # the seed's `_id`
    tenant_id: str
    name: str
    agent_id: str
    is_scheduled: bool = False
    is_context_based: bool = False
    redial: RedialPolicy = Field(default_factory=RedialPolicy)
    provider: str = "simulated"
    created_at: datetime
    expected_call_seconds: float = 90.0
    call_outcome_timeout_seconds: float = 900.0
    call_max_seconds: float = 4 * 3600.0
    max_concurrent_calls: int | None = None
    calls_per_second: float | None = None
    notification_webhook_url: str | None = None
    # Dialing policy (see campaign_engine/policy/): when calls may happen, the rule-based
    # redial form (when set it decides instead of `redial`), and caller ID.
    calling_window: CallingWindow | None = None
    # Calls only inside each contact's legal hours (narrowing calling_window): set at creation
    # from LEGAL_HOURS and the provider (Settings.legal_hours_apply).
    legal_hours: bool = False
    # At most N calls to one number in a rolling window, across the tenant's campaigns
    # (FREQUENCY_CAP and the campaign's frequencyCap: each holds), checked at dial time.
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    blackout_dates: list[date] = Field(default_factory=list)
    redial_rules: RuleBasedRedial | None = None
    from_numbers: list[str] = Field(default_factory=list)
    caller_id_strategy: str = "round_robin"
    # Task queue of the place_call activity: one per carrier account, rate-limited by the
    # server across all workers (see worker.py).
    dial_task_queue: str | None = None
    # Children one campaign run starts before it continues as new (tests lower it): Temporal
    # allows a run 2,000 pending children and advises about 1,000.
    children_per_run: int = Field(1_000, ge=1, le=1_000)
    # Contacts launched ahead of the dial queue (started, due, not yet asking), and the most
    # requests the dial queue holds; a contact asking when it is full is told to ask again
    # later. Together they bound the campaign's state whatever its size.
    launch_ahead: int = Field(500, ge=1, le=1_000)
    dial_queue_limit: int = Field(1_000, ge=1, le=2_000)
    # How often a campaign with contacts in flight asks the ones silent past their next
    # expected word whether their workflow still runs (tests lower it).
    silent_contact_check_seconds: float = Field(600.0, gt=0)
    # Pause when calls keep failing for carrier reasons (the upload's autoPause).
    auto_pause: AutoPausePolicy = Field(default_factory=AutoPausePolicy)


class CampaignInput(BaseModel):
    """Input of CampaignWorkflow: the campaign's contacts are rows in the store, never here."""

    config: CampaignConfig
    total_contacts: int = 0  # rows in the store (keys 0..total-1)
    start_paused: bool = False  # a draft: accepted, not started until `resume`
    duplicates_merged: int = 0  # rows of the upload the API merged as duplicates
    carried: CampaignState | None = None  # what continue-as-new carries (bounded)


class LaunchRow(BaseModel):
    """One contact as the campaign launches it: what its workflow needs, no personal data."""

    key: int
    label: str  # the masked number, for summaries
    scheduled_at: datetime | None = None
    zones: list[str] = Field(default_factory=list)
    # The hours the law allows calling its number (campaign_engine/policy/legal_hours.py),
    # applied when the campaign's `legal_hours` is set.
    legal_rule: str | None = None
    legal_window: CallingWindow | None = None


class LaunchPageRequest(BaseModel):
    tenant_id: str
    campaign_id: str
    after_key: int  # keyset cursor: rows with a larger key
    below_key: int  # ... and smaller than this (the contacts the campaign knows of)
    limit: int


class ContactCallInput(BaseModel):
    """Input of ContactCallWorkflow. The number, name and custom data stay in the store: the
    dial and webhook activities read them there."""

    campaign_workflow_id: str
    config: CampaignConfig
    contact: LaunchRow
    # The campaign was running and ungated when it started this contact: the first call
    # needs no grant. Every later call asks the campaign first. Such a contact's final
    # report is its result (ContactStatus.final_report) unless it has spoken to the
    # campaign since, or the run that started it handed it over (report_by_signal).
    first_call_granted: bool = False


# --- what the workflows report ---------------------------------------------------------------


class AttemptReport(BaseModel):
    """The one way a contact tells its campaign how it stands: a signal after every attempt,
    on every wait it begins, and at its end (`state` final). It carries the contact's whole
    summary, so the store's row is overwritten with it and nothing is kept per contact."""

    key: int
    attempt: AttemptRecord | None = None  # the attempt that just ended, if one did
    state: ContactState
    attempts: int = 0  # calls made so far
    last_outcome: Outcome | None = None
    talk_seconds: float = 0.0
    disposition: Outcome | None = None
    next_call_at: datetime | None = None
    reason: str | None = None


class DialRequest(BaseModel):
    """Signal from a contact workflow: it is due for a call and asks to dial."""

    key: int
    attempt: int
    blocked_reason: str | None = None  # set on `provider_blocked`: why no call can be placed


class RedialUpdate(BaseModel):
    """Signal to contact workflows: the campaign's redial configuration changed."""

    redial: RedialPolicy
    redial_rules: RuleBasedRedial | None = None


class DialGrant(BaseModel):
    """Signal from the campaign to a contact workflow: dial now, stop, or ask again later."""

    attempt: int
    stop: ContactState | None = None  # REMOVED or CANCELED: do not dial, end
    reason: str | None = None
    granted_at: datetime | None = None  # campaign time of the grant: when the dial was decided
    retry_at: datetime | None = None  # the dial queue is full: ask again at this time


class ContactStatus(BaseModel):
    """Answer of ContactCallWorkflow's `status` query, and its result."""

    key: int
    label: str  # the masked number
    state: ContactState
    attempts: list[AttemptRecord]
    max_attempts: int
    disposition: Outcome | None = None
    next_action: str | None = None
    next_action_at: datetime | None = None
    reason: str | None = None
    # As the result: the final report the campaign did not get by signal.
    final_report: AttemptReport | None = None


class ContactSummary(BaseModel):
    """One contact as the store has it (GET /campaigns/{id}/contacts, exports)."""

    key: int
    phone: str
    state: ContactState = ContactState.PENDING
    attempts: int = 0
    disposition: Outcome | None = None
    next_call_at: datetime | None = None
    last_outcome: Outcome | None = None
    talk_seconds: float = 0.0
    reason: str | None = None


class CampaignState(BaseModel):
    """What the campaign workflow keeps and carries across continue-as-new: counters, the
    cursor into the store's contacts and what is in flight, never a list of every contact
    (see CampaignConfig.launch_ahead and dial_queue_limit for the bounds)."""

    status: CampaignStatus = CampaignStatus.IN_PROGRESS
    started_at: datetime | None = None
    paused_at: datetime | None = None
    finished_at: datetime | None = None
    pause_reason: str | None = None
    total: int = 0  # contacts in the store: keys 0..total-1
    duplicates_merged: int = 0
    next_key: int = 0  # the cursor: every contact with a smaller key was launched or ended
    final: int = 0  # contacts that reached a final state
    calls_placed: int = 0
    outcome_counts: dict[str, int] = Field(default_factory=dict)
    answered_calls: int = 0
    answered_talk_seconds: float = 0.0
    runs: int = 1
    flushes: int = 0  # flushes to the store so far (workflows/recorder.py numbers them)
    # In flight: [key, attempt] asking to dial, in arrival order; keys on a call; keys
    # launched as due that have not asked yet; keys removed before their launch.
    queue: list[list[int]] = Field(default_factory=list)
    dialing: list[int] = Field(default_factory=list)
    fresh: list[int] = Field(default_factory=list)
    skip: list[int] = Field(default_factory=list)
    # Signals to every open contact still to send ("stop", "policy"), by activity.
    broadcasts: list[str] = Field(default_factory=list)
    # Pacing (callsPerSecond): the token bucket's level and when it was last computed.
    pace_tokens: float = 0.0
    pace_at: datetime | None = None
    # The last ended calls (auto_pause.window at most): 1 failed for carrier reasons, else 0;
    # cleared on resume. And how many times the campaign paused itself.
    recent_failures: list[int] = Field(default_factory=list)
    auto_pauses: int = 0


class AppendNotice(BaseModel):
    """Update to a campaign: the API wrote appended rows; the campaign's contacts now go to
    `total_contacts` (keys below it)."""

    total_contacts: int
    duplicates: int = 0


class ContactRemoval(BaseModel):
    """Answer of the remove_contact update: REMOVED when done, else the stop is on its way
    to the contact's workflow (DIALING: its live call finishes first)."""

    key: int
    state: ContactState


class AppendResult(BaseModel):
    added: int
    duplicates: int
    total_contacts: int


class ControlResult(BaseModel):
    """Answer of the pause, resume, cancel and remove updates."""

    campaign_id: str
    status: CampaignStatus
    at: datetime
    active_calls: int
    detail: str | None = None


class CampaignProgress(BaseModel):
    """Answer of CampaignWorkflow's `progress` query."""

    campaign_id: str
    name: str
    status: CampaignStatus
    total_contacts: int
    expected_contacts: int
    duplicates_merged: int
    by_state: dict[str, int]
    by_disposition: dict[str, int]
    outcome_counts: dict[str, int]  # every attempt's outcome, redials included
    calls_placed: int  # attempts handed to the provider
    live_calls: int
    redials_made: int
    pending_redials: int
    next_redial_at: datetime | None
    percentage: float
    estimated_completion: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    run: int
    pause_reason: str | None = None


class CampaignSummary(BaseModel):
    """Result of a finished CampaignWorkflow."""

    campaign_id: str
    status: CampaignStatus
    total_contacts: int
    by_disposition: dict[str, int]
    outcome_counts: dict[str, int]
    calls_placed: int
    started_at: datetime | None
    finished_at: datetime | None


# The policies' own models (they build on campaign_engine.calls only).
from campaign_engine.policy.redial_rules import RuleBasedRedial  # noqa: E402
from campaign_engine.policy.frequency_cap import FrequencyCap  # noqa: E402
from campaign_engine.policy.windows import CallingWindow  # noqa: E402

__all__ = ["NEVER_REDIAL_REASONS", "AttemptRecord", "CallOutcome", "CallProgress", "CallRequest", "Outcome", "PlacedCall",
           "RedialPolicy"]

CampaignConfig.model_rebuild()
LaunchRow.model_rebuild()
ContactCallInput.model_rebuild()
RedialUpdate.model_rebuild()
CampaignInput.model_rebuild()
