"""The REST wire format: the seed's request and response shapes (camelCase where it uses it).

Where the VoiceGenie docs spell a field two ways, the documented spelling is primary and the
other is accepted on input (`phone_number`/`phoneNumber`, `custom_data`/`custom_fields`, ...).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError, to_json

from api.redial_schemas import RedialConfigIn, reject_unknown_keys
from campaign_engine.models import Consent
from campaign_engine.phones import InvalidPhoneNumber, normalize_e164
from campaign_engine.policy.caller_id import parse_strategy
from campaign_engine.policy.outbound_urls import OutboundUrlError, check_url
from campaign_engine.policy.windows import CallingWindow, parse_blackout_dates, validate_time_zone

__all__ = ["CampaignIn", "ContactIn", "RedialConfigIn", "no_control_characters", "too_many_contacts_message"]

MAX_CONTACTS_PER_REQUEST = 1000
# A contact's custom_data is read from the store by every dial and webhook, and travels with
# every call to the carrier and agent and in every webhook (never in Temporal): 16 KiB keeps
# those requests and the contact's row small.
MAX_CUSTOM_DATA_BYTES = 16 * 1024


def too_many_contacts_message(n: int | None) -> str:
    """The 413 message of an upload-and-run (or preflight) body with too many contacts."""
    return (f"{n if n is not None else 'more than ' + str(MAX_CONTACTS_PER_REQUEST)} contacts in one request; "
            f"the limit is {MAX_CONTACTS_PER_REQUEST} (append the rest with POST /campaigns/{{id}}/contacts)")


# Text that carries no control characters (NUL, escapes, line breaks): names are shown in
# the UI, logs, exports and the agent's prompt.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# An address: one @, something before it, a dotted domain after it, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


# A NUL in a JSON text's keys or strings: its escape, after an even run of backslashes (an odd
# one makes it the literal text "\\u0000").
_NUL_IN_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def no_control_characters(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters (such as NUL)")
    return value


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
    consent: Consent | None = Field(
        None, description="The contact's consent to be called: `source`, `obtained_at` (ISO 8601 with a time "
        "zone) and `text` or `reference`. Stored with the contact and exported; required for every contact "
        "when the deployment sets CONSENT_REQUIRED (422 CONSENT_REQUIRED otherwise). A malformed one refuses "
        "the request: 422 INVALID_CONSENT naming the row and field.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return validate_time_zone(value) if value else None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return no_control_characters(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not _EMAIL.fullmatch(value) or _CONTROL.search(value):
            raise PydanticCustomError("bad_email", "{v} is not an email address", {"v": repr(value[:64])})
        return value

    @field_validator("custom_data")
    @classmethod
    def _custom_data_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        text = to_json(value)  # (one serialisation for both checks)
        if _NUL_IN_JSON.search(text):  # PostgreSQL's jsonb cannot hold it: it was a 500 (found by schemathesis)
            raise PydanticCustomError("nul_character", "must not contain the NUL character (\\u0000) "
                                      "in any key or string")
        size = len(text)
        if size > MAX_CUSTOM_DATA_BYTES:
            raise PydanticCustomError(
                "custom_data_too_large", "is {size} bytes as JSON; the limit is {limit} per contact",
                {"size": size, "limit": MAX_CUSTOM_DATA_BYTES})
        return value


class AutoPauseIn(BaseModel):
    """The upload's autoPause: pause the campaign when calls keep failing for carrier reasons."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false: the campaign never pauses itself")
    window: int = Field(20, ge=2, le=1000, description="How many of the last ended calls are judged")
    threshold: float = Field(0.5, gt=0, lt=1, description="Pause when more than this share of them failed "
                             "for carrier reasons (outcome failed)")


class CampaignIn(BaseModel):
    """Body of POST /uploadCampaignDataAndRun (the seed), also the preflight's. Unknown
    fields are refused (a misspelt setting would otherwise be silently ignored)."""

    model_config = ConfigDict(extra="forbid")

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
    # At least one call per 1000 s: a pacing wait is 1 / callsPerSecond, and a rate of 5e-324
    # (schema-valid for `> 0`, found by schemathesis) made it infinite (a 500, a stuck timer).
    callsPerSecond: float | None = Field(None, ge=0.001, le=100, description="Pacing: new calls per second at "
                                         "most (0.001, one call per 1000 s, to 100).")
    expectedCallSeconds: float | None = Field(
        None, ge=1, le=14400, description="How long a call of this campaign usually lasts, in seconds: the ETA "
        "assumes it until calls have been observed (default EXPECTED_CALL_SECONDS, 90).")
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
    frequencyCap: str | None = Field(
        None, max_length=8, pattern=r"^[1-9][0-9]{0,2}/[1-9][0-9]?[hd]$",
        description="At most N calls to one number in a rolling window, across all the tenant's campaigns, "
        "e.g. `3/24h` or `5/7d`; it holds besides the deployment's FREQUENCY_CAP. A contact held by it waits "
        "(state `capped`) until the window allows its next call, without using an attempt.",
    )

    @field_validator("campaignName", "agentId")
    @classmethod
    def _campaign_name(cls, value: str) -> str:
        # agentId too: a NUL in it reached the store and was a 500 (found by schemathesis).
        no_control_characters(value)
        return value

    autoPause: AutoPauseIn | None = Field(
        None, description="Pause by itself when, over the last `window` ended calls (20), more than `threshold` "
        "(0.5) failed for carrier reasons; pause_reason says why, a campaign.paused webhook goes out, resume as "
        'after a manual pause. {"enabled": false} turns it off.')

    @field_validator("callingWindow", mode="before")
    @classmethod
    def _window_keys(cls, value: Any) -> Any:
        return reject_unknown_keys(value, CallingWindow)

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
    # Accepted contacts whose number is on the tenant's suppression list: they are never dialled
    # and end with disposition `suppressed` (issue 14).
    suppressed: int = 0


class UploadAndRunData(BaseModel):
    campaign: CampaignOut
    execution_status: ExecutionStatusOut
    redial_config: RedialConfigOut
    contacts: ContactsReportOut


class UploadAndRunResponse(BaseModel):
    success: bool = True
    message: str = "Campaign created and started successfully"
    data: UploadAndRunData
