"""The REST wire format: the seed's request and response shapes (camelCase where it uses it).

Where the VoiceGenie docs spell a field two ways, the documented spelling is primary and the
other is accepted on input (`phone_number`/`phoneNumber`, `custom_data`/`custom_fields`, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from campaign_engine.policy.redial import MAX_ATTEMPTS_LIMIT, MAX_RETRY_INTERVAL_SECONDS

MAX_CONTACTS_PER_REQUEST = 1000


class RedialConfigIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

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
    timezone: str | None = None


class CampaignIn(BaseModel):
    """Body of POST /uploadCampaignDataAndRun (the seed), also the preflight's."""

    model_config = ConfigDict(extra="ignore")

    campaignName: str = Field(min_length=1, max_length=200,
                              validation_alias=AliasChoices("campaignName", "campaign_name"))
    agentId: str = Field(min_length=1, max_length=100, validation_alias=AliasChoices("agentId", "agent_id"))
    isScheduledCall: bool = False
    isContextBasedCall: bool = False
    redialConfig: RedialConfigIn | None = None
    contacts: list[ContactIn] = Field(min_length=1)
    notificationWebhookUrl: str | None = None
    maxConcurrentCalls: int | None = Field(None, ge=1, le=1000)
    provider: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _limit(cls, data: Any) -> Any:
        # Checked before any contact is parsed: a huge upload is refused cheaply.
        if isinstance(data, dict) and isinstance(data.get("contacts"), list):
            n = len(data["contacts"])
            if n > MAX_CONTACTS_PER_REQUEST:
                raise PydanticCustomError(
                    "too_many_contacts",
                    "{n} contacts in one request; the limit is {limit} (append the rest with "
                    "POST /campaigns/{{id}}/contacts)", {"n": n, "limit": MAX_CONTACTS_PER_REQUEST})
        return data


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
