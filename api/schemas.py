"""The REST wire format: the seed's request and response shapes (camelCase where it uses it).

Where the VoiceGenie docs spell a field two ways, the documented spelling is primary and the
other is accepted on input (`phone_number`/`phoneNumber`, `custom_data`/`custom_fields`, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError, to_json

from campaign_engine.phones import InvalidPhoneNumber, normalize_e164
from campaign_engine.policy.caller_id import parse_strategy
from campaign_engine.policy.outbound_urls import OutboundUrlError, check_url
from campaign_engine.policy.redial import MAX_ATTEMPTS_LIMIT, MAX_RETRY_INTERVAL_SECONDS
from campaign_engine.policy.redial_rules import RuleBasedRedial
from campaign_engine.policy.windows import CallingWindow, parse_blackout_dates, validate_time_zone

MAX_CONTACTS_PER_REQUEST = 1000
# A contact's custom_data travels in its workflow's input, with every call to the carrier and
# agent, and in every webhook; it is in the campaign's history twice (upload and child start),
# which Temporal ends at 50 MB: 1,000 contacts at 16 KiB stay well within one run's share.
MAX_CUSTOM_DATA_BYTES = 16 * 1024


def too_many_contacts_message(n: int | None) -> str:
    """The 413 message of an upload-and-run (or preflight) body with too many contacts."""
    return (f"{n if n is not None else 'more than ' + str(MAX_CONTACTS_PER_REQUEST)} contacts in one request; "
            f"the limit is {MAX_CONTACTS_PER_REQUEST} (append the rest with POST /campaigns/{{{{id}}}}/contacts)")


# Fields of the rule-based form (PUT /updateCampaignData), accepted on create too.
RULE_BASED_KEYS = frozenset({
    "callStatus", "terminalConditions", "backoff", "backoffMultiplier", "maxIntervalMinutes",
    "jitterRatio", "redialVoicemail", "honorCallbacks", "maxCallbacks",
    "call_status", "terminal_conditions", "backoff_multiplier", "max_interval_minutes",
    "jitter_ratio", "redial_voicemail", "honor_callbacks", "max_callbacks",
})


class RedialConfigIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    enabled: bool = False
    maxAttempts: int | None = Field(
        None, ge=1, le=MAX_ATTEMPTS_LIMIT, validation_alias=AliasChoices("maxAttempts", "max_attempts"),
        description="Calls per contact, the first one included (3 = one call and two redials).",
    )
    retryIntervals: list[int] | None = Field(
        None, validation_alias=AliasChoices("retryIntervals", "retry_intervals"),
        description="Seconds to wait before each redial; a short list repeats its last value; "
        "missing means 3600 before every redial.",
    )

    @model_validator(mode="after")
    def _intervals(self) -> RedialConfigIn:
        for i, value in enumerate(self.retryIntervals or []):
            if value <= 0:
                raise PydanticCustomError(
                    "bad_interval", "retryIntervals[{i}] must be a positive number of seconds, got {v}",
                    {"i": i, "v": value})
            if value > MAX_RETRY_INTERVAL_SECONDS:
                raise PydanticCustomError(
                    "bad_interval", "retryIntervals[{i}] is longer than 30 days ({v} s)", {"i": i, "v": value})
        return self

    def rules(self) -> RuleBasedRedial | None:
        """The rule-based form (`callStatus` rules, backoff, ...) when the body uses it."""
        extra = self.model_extra or {}
        if not any(k in extra for k in RULE_BASED_KEYS):
            return None
        data = {k: v for k, v in extra.items() if k in RULE_BASED_KEYS}
        data["enabled"] = self.enabled
        if self.maxAttempts is not None:
            data["maxAttempts"] = self.maxAttempts
        return RuleBasedRedial.model_validate(data)

    @model_validator(mode="after")
    def _rules_valid(self) -> RedialConfigIn:
        self.rules()  # a bad rule is a validation error of redialConfig
        return self


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    phone_number: str = Field(validation_alias=AliasChoices("phone_number", "phoneNumber", "phone"))
    name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    custom_data: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("custom_data", "customData", "custom_fields"))
    scheduledCallDateTime: AwareDatetime | None = Field(
        None, validation_alias=AliasChoices("scheduledCallDateTime", "scheduled_call_date_time"),
        description="ISO 8601 with a time zone (Z or an offset); required when isScheduledCall is true.",
    )
    timezone: str | None = Field(None, description="IANA zone of the contact (else derived from the number)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return validate_time_zone(value) if value else None

    @field_validator("custom_data")
    @classmethod
    def _custom_data_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(to_json(value))
        if size > MAX_CUSTOM_DATA_BYTES:
            raise PydanticCustomError(
                "custom_data_too_large", "is {size} bytes as JSON; the limit is {limit} per contact",
                {"size": size, "limit": MAX_CUSTOM_DATA_BYTES})
        return value


class CampaignIn(BaseModel):
    """Body of POST /uploadCampaignDataAndRun (the seed), also the preflight's."""

    model_config = ConfigDict(extra="ignore")

    campaignName: str = Field(min_length=1, max_length=200,
                              validation_alias=AliasChoices("campaignName", "campaign_name"))
    agentId: str = Field(min_length=1, max_length=100, validation_alias=AliasChoices("agentId", "agent_id"))
    isScheduledCall: bool = False
    isContextBasedCall: bool = False
    redialConfig: RedialConfigIn | None = None
    # The limit is checked by the list validator before any contact is parsed (a huge upload
    # is refused cheaply); api.errors answers its `too_long` error with 413 PAYLOAD_TOO_LARGE.
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_CONTACTS_PER_REQUEST)
    notificationWebhookUrl: str | None = Field(
        None, max_length=2048,
        description="http(s) URL that receives a signed JSON document after every call attempt "
        "and when the campaign completes.",
    )
    maxConcurrentCalls: int | None = Field(
        None, ge=1, le=1000, description="Never more live calls than this (a call is live from dial to outcome).")
    callsPerSecond: float | None = Field(None, gt=0, le=100, description="Pacing: new calls per second at most.")
    callingWindow: CallingWindow | None = Field(
        None, description="Daily window in each contact's own local time: "
        '{"startTime": "09:00", "endTime": "20:00", "days": ["mon",...], "timeZone": fallback zone}.')
    blackoutDates: list[str] = Field(default_factory=list, description="Local dates with no calls, YYYY-MM-DD.")
    fromNumbers: list[str] = Field(default_factory=list, max_length=500, description="Caller IDs to use (E.164).")
    callerIdStrategy: str = Field("round_robin", description="round_robin, random or local_presence")
    provider: str | None = Field(
        None, max_length=40,
        description="Telephony provider for this campaign (simulated, twilio, http); it must be "
        "configured on the deployment. Missing: the deployment's TELEPHONY_PROVIDER.",
    )

    @field_validator("blackoutDates")
    @classmethod
    def _blackout(cls, value: list[str]) -> list[str]:
        return [d.isoformat() for d in parse_blackout_dates(value)]

    @field_validator("fromNumbers")
    @classmethod
    def _from_numbers(cls, value: list[str]) -> list[str]:
        out = []
        for i, number in enumerate(value):
            try:
                out.append(normalize_e164(number))
            except InvalidPhoneNumber as err:
                raise PydanticCustomError("bad_number", "fromNumbers[{i}]: {err}", {"i": i, "err": str(err)}) from None
        return out

    @field_validator("callerIdStrategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        return parse_strategy(value).value

    @field_validator("notificationWebhookUrl")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # Where the deployment lets webhooks go (https, public addresses: no SSRF); the
        # delivery checks again the addresses the name resolves to (activities.outbound).
        from activities.webhook_settings import WebhookSettings

        try:
            check_url(value, WebhookSettings().url_policy())
        except OutboundUrlError as err:
            raise PydanticCustomError("bad_url", "{reason}", {"reason": str(err)}) from None
        return value

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        return (value.strip().lower() or None) if value is not None else None



class CampaignOut(BaseModel):
    id: str = Field(serialization_alias="_id")
    campaignName: str
    campaignId: str
    status: str
    agentId: str
    totalContacts: int
    isScheduledCall: bool
    isContextBasedCall: bool
    createdAt: datetime
    campaignStartTime: datetime | None


class ExecutionStatusOut(BaseModel):
    calls_queued: int
    calls_initiated: int
    estimated_completion: datetime | None


class RedialConfigOut(BaseModel):
    enabled: bool
    maxAttempts: int
    retryIntervals: list[int]


class ContactsReportOut(BaseModel):
    received: int
    accepted: int
    duplicates_merged: int


class UploadAndRunData(BaseModel):
    campaign: CampaignOut
    execution_status: ExecutionStatusOut
    redial_config: RedialConfigOut
    contacts: ContactsReportOut


class UploadAndRunResponse(BaseModel):
    success: bool = True
    message: str = "Campaign created and started successfully"
    data: UploadAndRunData
