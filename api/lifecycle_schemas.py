"""Wire format of the lifecycle and monitoring endpoints (the Dialer API's related endpoints
and our own resource-style ones). The seed's upload-and-run shapes stay in `api/schemas.py`.

Spelling: the documented snake_case names are primary; camelCase is accepted on input.
Percentages are 0-100 with one decimal. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from api.schemas import MAX_CONTACTS_PER_REQUEST, CampaignIn, RedialConfigIn


def _limit_contacts(data: Any) -> Any:
    # Checked before any row is parsed: a huge upload is refused cheaply (413).
    if isinstance(data, dict) and isinstance(data.get("contacts"), list):
        n = len(data["contacts"])
        if n > MAX_CONTACTS_PER_REQUEST:
            raise PydanticCustomError(
                "too_many_contacts",
                "{n} contacts in one request; the limit is {limit} (send the rest in further "
                "requests with campaign_id)", {"n": n, "limit": MAX_CONTACTS_PER_REQUEST})
    return data


# --- requests ----------------------------------------------------------------------------------


class UploadCampaignDataIn(BaseModel):
    """Body of POST /uploadCampaignData.

    Without `campaign_id` it creates a campaign that does not call anyone until it is started
    (`GET /startCampaignv2/{id}`); `campaign_name` and `agent_id` are then required. With
    `campaign_id` it appends the contacts to that campaign (draft, running or paused) and the
    campaign settings in the body are ignored.

    Rows are validated one by one: valid rows are kept, invalid ones are reported in `errors`,
    numbers already in the campaign (or earlier in the same request) are skipped and counted.
    """

    # Settings of the new campaign beyond the fields below (callingWindow, callsPerSecond,
    # fromNumbers, ...) are kept as extra fields and validated as CampaignIn's; a key that
    # is no setting at all is refused.
    model_config = ConfigDict(extra="allow")

    campaign_id: str | None = Field(None, validation_alias=AliasChoices("campaign_id", "campaignId"))
    campaignName: str | None = Field(
        None, min_length=1, max_length=200, validation_alias=AliasChoices("campaign_name", "campaignName"))
    agentId: str | None = Field(
        None, min_length=1, max_length=100, validation_alias=AliasChoices("agent_id", "agentId"))
    contacts: list[Any] = Field(
        min_length=1, description="Up to 1000 rows {phone_number, name, email, custom_fields, "
        "scheduledCallDateTime}; each row is validated on its own.")
    schedule_time: AwareDatetime | None = Field(
        None, validation_alias=AliasChoices("schedule_time", "scheduleTime"),
        description="When to call the contacts that have no scheduledCallDateTime of their own "
        "(ISO 8601 with a time zone). Giving it makes the campaign a scheduled one.")
    isScheduledCall: bool = Field(False, validation_alias=AliasChoices("isScheduledCall", "is_scheduled_call"))
    isContextBasedCall: bool = Field(
        False, validation_alias=AliasChoices("isContextBasedCall", "is_context_based_call"))
    redialConfig: RedialConfigIn | None = Field(None, validation_alias=AliasChoices("redialConfig", "redial_config"))
    notificationWebhookUrl: str | None = Field(
        None, validation_alias=AliasChoices("notificationWebhookUrl", "notification_webhook_url"))
    maxConcurrentCalls: int | None = Field(
        None, ge=1, le=1000, validation_alias=AliasChoices("maxConcurrentCalls", "max_concurrent_calls"))
    provider: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _limit(cls, data: Any) -> Any:
        return _limit_contacts(data)

    @model_validator(mode="after")
    def _known_settings(self) -> UploadCampaignDataIn:
        # The extra fields are campaign settings; anything else is refused, not ignored.
        unknown = [key for key in self.model_extra or {} if key not in _CAMPAIGN_SETTING_KEYS]
        if unknown:
            raise ValidationError.from_exception_data("UploadCampaignDataIn", [
                InitErrorDetails(type="extra_forbidden", loc=(key,), input=(self.model_extra or {})[key])
                for key in unknown])
        return self


def _accepted_keys(model: type[BaseModel]) -> frozenset[str]:
    """Every key `model` reads: field names, aliases and each alias choice."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.update([name, *([field.alias] if field.alias else [])])
        if isinstance(field.validation_alias, AliasChoices):
            keys.update(c for c in field.validation_alias.choices if isinstance(c, str))
        elif isinstance(field.validation_alias, str):
            keys.add(field.validation_alias)
    return frozenset(keys)


_CAMPAIGN_SETTING_KEYS = _accepted_keys(CampaignIn)


class UploadTarget(BaseModel):
    """Only the campaign an /uploadCampaignData body names (the same field as
    UploadCampaignDataIn.campaign_id): whether the upload creates or appends, read from the
    JSON without parsing the rest of it into Python."""

    model_config = ConfigDict(extra="ignore")

    campaign_id: str | None = Field(None, validation_alias=AliasChoices("campaign_id", "campaignId"))


class AppendContactsIn(BaseModel):
    """Body of POST /campaigns/{id}/contacts. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    contacts: list[Any] = Field(min_length=1, description="Up to 1000 rows, validated one by one.")
    schedule_time: AwareDatetime | None = Field(
        None, validation_alias=AliasChoices("schedule_time", "scheduleTime"),
        description="Scheduled campaigns: the time for rows without their own scheduledCallDateTime.")

    @model_validator(mode="before")
    @classmethod
    def _limit(cls, data: Any) -> Any:
        return _limit_contacts(data)


# --- uploads -----------------------------------------------------------------------------------


class RowError(BaseModel):
    row: int = Field(description="0-based index of the row in this request's `contacts`")
    field: str
    message: str


class UploadCampaignDataOut(BaseModel):
    success: bool = True
    message: str
    campaign_id: str
    campaign_name: str
    status: str
    uploaded_count: int = Field(description="Contacts added to the campaign by this request")
    failed_count: int = Field(description="Rows refused (see `errors`)")
    duplicate_count: int = Field(
        description="Valid rows skipped because the number is already in the campaign or earlier in the request")
    total_contacts: int = Field(description="Contacts in the campaign after this request")
    errors: list[RowError]
    replayed: bool = Field(False, description="True when an earlier request with the same Idempotency-Key "
                           "and body already did this; nothing was added twice")
    suppressed_count: int = Field(0, description="Contacts of the campaign whose number is on the tenant's "
                                  "suppression list now: never dialled, they end with disposition `suppressed`")


# --- start, pause, resume, cancel, remove ------------------------------------------------------


class ConfigurationOut(BaseModel):
    agent_id: str
    is_scheduled_call: bool
    is_context_based_call: bool
    redial_config: dict[str, Any]
    max_concurrent_calls: int | None
    provider: str
    notification_webhook_url: str | None


class StartCampaignOut(BaseModel):
    success: bool = True
    message: str = "Campaign started"
    campaign_id: str
    campaign_name: str
    status: str
    started_at: datetime | None
    total_contacts: int
    scheduled_calls: int = Field(description="Contacts waiting for a scheduled time still in the future")
    immediate_calls: int = Field(description="Contacts called as soon as a dial slot is free")
    estimated_completion: datetime | None
    configuration: ConfigurationOut


class PauseOut(BaseModel):
    success: bool = True
    message: str = "Campaign paused: no new call is placed; calls already ringing finish"
    campaign_id: str
    status: str
    paused_at: datetime
    active_calls: int


class ResumeOut(BaseModel):
    success: bool = True
    message: str = "Campaign resumed"
    campaign_id: str
    status: str
    resumed_at: datetime
    active_calls: int
    queued_calls: int = Field(description="Contacts due now (their time came while paused), dialled first")


class CampaignTotals(BaseModel):
    total_contacts: int
    by_state: dict[str, int]
    by_disposition: dict[str, int]
    calls_placed: int


class CancelOut(BaseModel):
    success: bool = True
    message: str
    campaign_id: str
    status: str
    canceled_at: datetime | None
    active_calls: int = Field(description="Calls still live: they finish and are recorded")
    summary: CampaignTotals


class RemoveContactOut(BaseModel):
    success: bool = True
    message: str
    campaign_id: str
    phone_number: str
    state: str = Field(description="The contact's state now: `removed`, or the state it leaves once "
                       "its workflow has taken the stop (its pending timers end, it is never called)")
    removal: str = Field(description="`done` or `pending` (the contact's workflow is being stopped)")


# --- monitoring --------------------------------------------------------------------------------


class CallStatistics(BaseModel):
    total_calls: int = Field(description="Calls placed (every attempt, redials included)")
    completed: int = Field(description="Calls answered by a person")
    in_progress: int = Field(description="Calls placed and not finished yet")
    failed: int
    no_answer: int
    busy: int
    voicemail: int
    canceled: int
    queued: int = Field(description="Contacts waiting for a call: not started, scheduled, due, or "
                        "waiting for a redial")


class SuccessMetrics(BaseModel):
    connection_rate: float = Field(description="% of finished calls that were answered (person or machine)")
    success_rate: float = Field(description="% of finished calls answered by a person")
    average_call_duration: float = Field(description="Seconds, over calls answered by a person")


class ProgressOut(BaseModel):
    percentage: float = Field(description="% of contacts that are final (done, removed, canceled)")
    estimated_completion: datetime | None
    contacts_final: int
    total_contacts: int


class RedialInfo(BaseModel):
    total_redials: int = Field(description="Redials made so far (calls after each contact's first)")
    pending_redials: int = Field(description="Contacts waiting for a redial timer")
    next_redial_at: datetime | None


class CampaignStatusOut(BaseModel):
    campaign_id: str
    campaign_name: str
    status: str
    agent_id: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    total_contacts: int
    call_statistics: CallStatistics
    success_metrics: SuccessMetrics
    progress: ProgressOut
    redial_info: RedialInfo
    pause_reason: str | None = None


class StatusesSummary(BaseModel):
    total_campaigns: int
    active_campaigns: int = Field(description="Campaigns in_progress or paused")
    completed_campaigns: int
    total_calls_today: int = Field(description="Calls placed since 00:00 UTC today")
    success_rate_overall: float = Field(description="% of finished calls answered by a person, all campaigns")


class CampaignStatusesOut(BaseModel):
    success: bool = True
    campaigns: list[CampaignStatusOut]
    summary: StatusesSummary


class CampaignStatsOut(BaseModel):
    success: bool = True
    campaign_id: str
    campaign_name: str
    status: str
    total_contacts: int
    answered: int = Field(description="Calls answered by a person (outcome `completed`)")
    busy: int
    no_answer: int
    failed: int
    voicemail: int
    canceled: int
    calls_completed: int = Field(description="Calls that have ended, whatever their outcome")
    calls_failed: int = Field(description="Ended calls that did not reach anyone: busy, no-answer, failed")
    calls_in_progress: int
    calls_pending: int = Field(description="Contacts still waiting for a call")
    by_disposition: dict[str, int] = Field(description="Contacts by final result (last call's outcome, "
                                           "or removed / canceled)")
    by_state: dict[str, int]


class HeldOut(BaseModel):
    """Contacts one rule holds now: a calling window (the campaign's, narrowed by legal hours)
    or a frequency cap."""

    state: str = Field(description="outside_window or capped")
    reason: str | None = Field(description="the rule, as the contacts' rows name it")
    contacts: int
    opens_at: datetime | None = Field(description="when the first of them is next called")


class CampaignOutFull(BaseModel):
    """GET /campaigns/{id}."""

    success: bool = True
    campaign_id: str
    object_id: str
    campaign_name: str
    status: str
    agent_id: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total_contacts: int
    expected_contacts: int
    duplicates_merged: int
    by_state: dict[str, int]
    by_disposition: dict[str, int]
    outcome_counts: dict[str, int]
    calls_placed: int
    live_calls: int
    redials_made: int
    pending_redials: int
    next_redial_at: datetime | None
    percentage: float
    estimated_completion: datetime | None
    pause_reason: str | None
    run: int = Field(description="Run of the campaign workflow (it continues as new as it grows)")
    configuration: ConfigurationOut
    held: list[HeldOut] = Field(default_factory=list, description=(
        "Contacts a rule holds now, by rule (the 20 largest groups): which rule, how many, when it opens"))


class ContactOut(BaseModel):
    index: int = Field(description="Position of the contact in the campaign (upload order)")
    phone_number: str
    state: str
    attempts: int
    disposition: str | None
    last_outcome: str | None
    next_action: str | None
    next_action_at: datetime | None
    talk_seconds: float
    reason: str | None
    consent: dict[str, Any] | None = Field(
        None, description="The contact's consent as uploaded (source, obtained_at, text, reference), or null")


class ContactPageOut(BaseModel):
    success: bool = True
    campaign_id: str
    contacts: list[ContactOut]
    total: int = Field(description="Contacts matching the filter")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
