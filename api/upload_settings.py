"""A draft upload's campaign settings (the body of /uploadCampaignData, JSON or a file's
fields) as the CampaignIn that /uploadCampaignDataAndRun takes, validated the same way."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.errors import ApiError
from api.lifecycle_schemas import UploadCampaignDataIn
from api.schemas import CampaignIn


# Keys of the upload body that are not campaign settings (or are read under another name).
_UPLOAD_ONLY_KEYS = frozenset({
    "campaign_id", "campaignId", "campaign_name", "campaignName", "agent_id", "agentId", "contacts",
    "schedule_time", "scheduleTime", "isScheduledCall", "is_scheduled_call", "isContextBasedCall",
    "is_context_based_call", "redialConfig", "redial_config", "notificationWebhookUrl",
    "notification_webhook_url", "maxConcurrentCalls", "max_concurrent_calls", "provider",
})


def campaign_settings(body: UploadCampaignDataIn, scheduled: bool) -> CampaignIn:
    """The new campaign's settings as the seed's CampaignIn: every setting that
    /uploadCampaignDataAndRun accepts (pacing, calling window, caller ids, ...) is accepted
    here too and validated the same way; the contacts are validated per row elsewhere. The
    settings this body does not declare are its extra fields (kept as sent)."""
    values: dict[str, Any] = {k: v for k, v in (body.model_extra or {}).items() if k not in _UPLOAD_ONLY_KEYS}
    values.update(campaignName=body.campaignName, agentId=body.agentId, isScheduledCall=scheduled,
                  isContextBasedCall=body.isContextBasedCall, contacts=[{"phone_number": "+0"}])
    for name in ("redialConfig", "notificationWebhookUrl", "maxConcurrentCalls", "provider"):
        value = getattr(body, name)
        if value is not None:
            values[name] = value.model_dump() if isinstance(value, BaseModel) else value
    try:
        return CampaignIn.model_validate(values)
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None


def draft_settings(body: UploadCampaignDataIn) -> tuple[CampaignIn, bool]:
    """A new draft's settings and whether it is scheduled: 400 without its name and agent."""
    missing = [name for name, value in (("campaign_name", body.campaignName), ("agent_id", body.agentId))
               if not value]
    if missing:
        raise ApiError(400, "BAD_REQUEST", f"{', '.join(missing)} required to create a campaign "
                       "(or give campaign_id to append to one)",
                       [{"field": name, "message": "required"} for name in missing])
    scheduled = body.isScheduledCall or body.schedule_time is not None
    return campaign_settings(body, scheduled), scheduled
