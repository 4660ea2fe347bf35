"""Customer webhooks: the documents we POST to a campaign's ``notificationWebhookUrl``.

Two events, each one JSON document per delivery:

``call.ended`` — after every call attempt, once its outcome is known::

    {
      "event": "call.ended",
      "webhookId": "campaign/acme/CAMP-2026-7K3QX9TA/contact/3/attempt-1",
      "callId": "CA0123...",                # the provider's call id
      "referenceId": "campaign/acme/CAMP-2026-7K3QX9TA/contact/3/attempt-1",
      "callStatus": "completed",            # completed | no-answer | busy | failed | voicemail | canceled
      "callDuration": 42,                   # seconds (0 when never answered)
      "callRecordingUrl": null,
      "customerSpecificdetails": {
        "name": "John Doe", "phoneNumber": "+919876543210", "email": "john@example.com",
        "customData": {"company": "Acme Corp"}, "campaignId": "CAMP-2026-7K3QX9TA"
      },
      "postCallAnalysisResults": {},        # what the provider reported, {} when nothing
      "conversationLogs": [],               # [] when the provider gives none
      "attempt": 1, "maxAttempts": 3,
      "isFinalAttempt": false,              # false: a redial follows at nextCallAt
      "nextCallAt": "2026-03-02T10:00:00+00:00",
      "hangupCause": "NORMAL_CLEARING", "reason": "...",
      "placedAt": "...", "endedAt": "...",
      "campaignId": "CAMP-2026-7K3QX9TA", "campaignName": "...", "agentId": "..."
    }

``campaign.completed`` — once, when the campaign has finished (``status`` is ``completed``, or
``canceled`` for a canceled campaign)::

    {"event": "campaign.completed", "webhookId": "campaign/acme/CAMP-.../completed",
     "campaignId", "campaignName", "agentId", "status", "totalContacts",
     "byDisposition": {"completed": 7, "busy": 2, ...},   # every contact's final disposition
     "outcomeCounts": {"completed": 7, "busy": 5, ...},   # every attempt's outcome
     "callsPlaced", "startedAt", "finishedAt"}

Each request carries:

- ``Content-Type: application/json``; the body is exactly the bytes that were signed;
- ``X-Signature-Timestamp`` / ``X-Signature: v1=<hex>``: HMAC-SHA256 with the tenant's secret
  (``WEBHOOK_SECRETS``) over ``f"{timestamp}."`` + the body (`campaign_engine.signing`; verify
  with ``verify_signature``; every retry is signed afresh, so the timestamp is recent);
- ``X-Webhook-Id``: the delivery's id, the same on every retry (``{contact workflow id}/attempt-{n}``
  or ``{campaign workflow id}/completed``): receivers drop an id they have already processed;
- ``X-Webhook-Event``: ``call.ended`` or ``campaign.completed``; ``X-Webhook-Attempt``: 1, 2, ...

Where a delivery may go is `campaign_engine.policy.outbound_urls` (https, public addresses, plus
WEBHOOK_ALLOW_HTTP and WEBHOOK_ALLOWED_NETWORKS): the name is resolved, every address checked,
and the request sent to the checked address (`activities.outbound`); a forbidden URL or address
fails the delivery for good. Any answer but 2xx (redirects included: they are not followed), a
timeout or a network error fails the activity; Temporal retries it with backoff for at least a day (the retry policy lives
in `workflows.contact_call`). The documents are built by pure functions in workflow code, so
every retry sends the same document.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http_client import LoopBoundClient
from activities.outbound import post_checked
from activities.webhook_settings import WebhookSettings
from campaign_engine import metrics, signing
from campaign_engine.models import AttemptRecord, CampaignConfig, CampaignSummary
from campaign_engine.policy.outbound_urls import OutboundUrlError, check_url
from campaign_engine.store import roster

logger = logging.getLogger(__name__)

CALL_ENDED = "call.ended"
CAMPAIGN_COMPLETED = "campaign.completed"
ID_HEADER = "X-Webhook-Id"
EVENT_HEADER = "X-Webhook-Event"
ATTEMPT_HEADER = "X-Webhook-Attempt"


class WebhookDelivery(BaseModel):
    """Input of the `deliver_webhook` activity: one document for one URL."""

    url: str
    tenant_id: str
    delivery_id: str  # X-Webhook-Id: the same for every retry of this delivery
    event: str
    payload: dict[str, Any] = Field(default_factory=dict)
    # A call's document names its contact: the activity reads the number, name, email and
    # custom data from the store (they never travel through Temporal).
    contact_key: int | None = None


# --- the documents (pure) ----------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def call_delivery_id(contact_workflow_id: str, attempt: int) -> str:
    return f"{contact_workflow_id}/attempt-{attempt}"


def campaign_delivery_id(campaign_workflow_id: str) -> str:
    return f"{campaign_workflow_id}/completed"


def call_ended_document(
    config: CampaignConfig,
    record: AttemptRecord,
    *,
    delivery_id: str,
    reference_id: str,
    max_attempts: int,
    next_call_at: datetime | None = None,
) -> dict[str, Any]:
    """The per-call document for one ended attempt (see the module docstring)."""
    duration = record.duration_seconds
    if duration is not None and float(duration).is_integer():
        duration = int(duration)
    return {
        "event": CALL_ENDED,
        "webhookId": delivery_id,
        "callId": record.call_id,
        "referenceId": reference_id,
        "callStatus": record.outcome.value if record.outcome is not None else None,
        "callDuration": duration if duration is not None else 0,
        "callRecordingUrl": record.recording_url,
        # name, phoneNumber, email and customData are added by the activity (with_contact).
        "customerSpecificdetails": {"campaignId": config.campaign_id},
        "postCallAnalysisResults": dict(record.analysis or {}),
        "conversationLogs": [],
        "attempt": record.attempt,
        "maxAttempts": max_attempts,
        "isFinalAttempt": next_call_at is None,
        "nextCallAt": _iso(next_call_at),
        "hangupCause": record.hangup_cause,
        "reason": record.reason,
        "placedAt": _iso(record.placed_at),
        "endedAt": _iso(record.ended_at),
        "campaignId": config.campaign_id,
        "campaignName": config.name,
        "agentId": config.agent_id,
    }


def with_contact(payload: dict[str, Any], row: Any) -> dict[str, Any]:
    """The call document with its contact's details from the store's row."""
    details = {"name": row.name, "phoneNumber": row.phone, "email": row.email,
               "customData": dict(row.custom_data or {}), **payload.get("customerSpecificdetails", {})}
    return {**payload, "customerSpecificdetails": details}


def campaign_completed_document(
    config: CampaignConfig, summary: CampaignSummary, *, delivery_id: str
) -> dict[str, Any]:
    """The campaign-completed document: the campaign's final summary."""
    return {
        "event": CAMPAIGN_COMPLETED,
        "webhookId": delivery_id,
        "campaignId": config.campaign_id,
        "campaignName": config.name,
        "agentId": config.agent_id,
        "status": summary.status.value,
        "totalContacts": summary.total_contacts,
        "byDisposition": dict(summary.by_disposition),
        "outcomeCounts": dict(summary.outcome_counts),
        "callsPlaced": summary.calls_placed,
        "startedAt": _iso(summary.started_at),
        "finishedAt": _iso(summary.finished_at),
    }


def encode_document(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


# --- the activity ------------------------------------------------------------------------------


def _where(url: str) -> str:
    """Scheme and host of a URL, for logs (paths and queries may hold customer tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


class WebhookActivities:
    def __init__(self, settings: WebhookSettings | None = None, db: AsyncEngine | None = None) -> None:
        self.settings = settings or WebhookSettings()
        self.db = db
        self._client = LoopBoundClient(timeout=self.settings.timeout_seconds, follow_redirects=False)

    def _http(self) -> httpx.AsyncClient:
        return self._client.get()

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery: WebhookDelivery) -> int:
        """POST one signed document; returns the receiver's status. Non-2xx raises (retried).
        Each try is counted in campaign_engine_webhook_deliveries_total by result."""
        try:
            status = await self._deliver(delivery)
        except Exception:
            metrics.webhook_result(False)
            raise
        metrics.webhook_result(True)
        return status

    async def _deliver(self, delivery: WebhookDelivery) -> int:
        policy = self.settings.url_policy()
        try:
            check_url(delivery.url, policy)
        except OutboundUrlError as err:
            raise ApplicationError(f"webhook URL refused: {err}", type="WebhookBadUrl", non_retryable=True) from None
        secret = self.settings.secret_for(delivery.tenant_id)
        if not secret:
            raise ApplicationError(
                f"no webhook secret for tenant {delivery.tenant_id!r} (WEBHOOK_SECRETS): not sent unsigned",
                type="WebhookSecretMissing", non_retryable=True,
            )
        payload = delivery.payload
        if delivery.contact_key is not None and self.db is not None:
            row = await roster.contact_by_key(self.db, delivery.tenant_id, payload["campaignId"], delivery.contact_key)
            if row is not None:
                payload = with_contact(payload, row)
        body = encode_document(payload)
        info = activity.info()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.settings.user_agent,
            ID_HEADER: delivery.delivery_id,
            EVENT_HEADER: delivery.event,
            ATTEMPT_HEADER: str(info.attempt),
            **signing.signature_headers(secret, body),
        }
        where = _where(delivery.url)
        try:
            response = await post_checked(self._http(), delivery.url, policy, content=body, headers=headers)
        except OutboundUrlError as err:  # the name resolves to an address webhooks may not reach
            logger.warning("webhook %s to %s refused: %s", delivery.delivery_id, where, err)
            raise ApplicationError(f"webhook to {where} refused: {err}", type="WebhookForbiddenAddress",
                                   non_retryable=True) from None
        except (httpx.HTTPError, ConnectionError) as err:
            logger.info("webhook %s to %s: try %d failed: %s", delivery.delivery_id, where, info.attempt,
                        type(err).__name__)
            raise ApplicationError(f"webhook to {where}: {type(err).__name__}: {err}", type="WebhookNetworkError") from None
        if not 200 <= response.status_code < 300:
            logger.info("webhook %s to %s: try %d answered %d", delivery.delivery_id, where, info.attempt,
                        response.status_code)
            what = " (a redirect: not followed)" if 300 <= response.status_code < 400 else ""
            raise ApplicationError(f"webhook to {where} answered HTTP {response.status_code}{what}",
                                   type="WebhookRejected")
        logger.info("webhook %s delivered to %s (try %d)", delivery.delivery_id, where, info.attempt)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
