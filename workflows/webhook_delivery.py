"""Customer webhooks from a workflow: started and not awaited, awaited only at the end.

A delivery that gave up (24 h of retries) is logged, never raised: webhooks never block or
fail a contact or a campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import (
        CALL_ENDED,
        CAMPAIGN_COMPLETED,
        WebhookDelivery,
        call_delivery_id,
        call_ended_document,
        campaign_completed_document,
        campaign_delivery_id,
    )
    from campaign_engine.contract import Activity
    from campaign_engine.ids import idempotency_key
    from campaign_engine.models import AttemptRecord, CampaignConfig, CampaignState, CampaignSummary
    from workflows import auto_pause

# Customer webhooks (notificationWebhookUrl): retried with backoff up to hourly, for a day.
WEBHOOK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    non_retryable_error_types=["WebhookSecretMissing", "WebhookBadUrl"],
)
WEBHOOK_TIMEOUT = timedelta(seconds=30)
WEBHOOK_GIVE_UP = timedelta(hours=24)


def start_webhook_delivery(delivery: WebhookDelivery) -> workflow.ActivityHandle:
    """Start one customer webhook delivery; the caller does not wait for it (see
    `await_webhook_deliveries`)."""
    return workflow.start_activity(
        Activity.DELIVER_WEBHOOK,
        delivery,
        start_to_close_timeout=WEBHOOK_TIMEOUT,
        schedule_to_close_timeout=WEBHOOK_GIVE_UP,
        retry_policy=WEBHOOK_RETRY,
        summary=f"webhook {delivery.event}",
    )


async def await_webhook_deliveries(handles: Sequence[workflow.ActivityHandle]) -> None:
    """Wait for deliveries still running; one that gave up is logged, never raised."""
    for handle in handles:
        try:
            await handle
        except ActivityError as err:
            workflow.logger.warning("customer webhook not delivered: %s", err.cause or err)


def start_call_ended(cfg: CampaignConfig, contact_wf_id: str, key: int, record: AttemptRecord, *,
                     max_attempts: int, next_call_at) -> workflow.ActivityHandle | None:
    """The `call.ended` webhook of an ended attempt, started (None: the campaign has no
    notificationWebhookUrl). The activity adds the contact's number and data, from the store."""
    if not cfg.notification_webhook_url:
        return None
    delivery_id = call_delivery_id(contact_wf_id, record.attempt)
    return start_webhook_delivery(WebhookDelivery(
        url=cfg.notification_webhook_url, tenant_id=cfg.tenant_id, delivery_id=delivery_id, event=CALL_ENDED,
        contact_key=key,
        payload=call_ended_document(cfg, record, delivery_id=delivery_id,
                                    reference_id=idempotency_key(contact_wf_id, record.attempt),
                                    max_attempts=max_attempts, next_call_at=next_call_at),
    ))


def start_campaign_paused(cfg: CampaignConfig, st: CampaignState) -> workflow.ActivityHandle | None:
    """The campaign.paused webhook of a campaign that paused itself (workflows/auto_pause.py)."""
    if not cfg.notification_webhook_url or st.paused_at is None:
        return None
    delivery_id = f"{workflow.info().workflow_id}/paused-{st.auto_pauses}"
    return start_webhook_delivery(WebhookDelivery(
        url=cfg.notification_webhook_url, tenant_id=cfg.tenant_id, delivery_id=delivery_id,
        event=auto_pause.CAMPAIGN_PAUSED,
        payload=auto_pause.paused_document(cfg, st, delivery_id=delivery_id, paused_at=st.paused_at)))


def start_campaign_completed(cfg: CampaignConfig, summary: CampaignSummary) -> workflow.ActivityHandle | None:
    """The campaign-completed webhook (its delivery id is the campaign's: sent once)."""
    if not cfg.notification_webhook_url:
        return None
    delivery_id = campaign_delivery_id(workflow.info().workflow_id)
    return start_webhook_delivery(WebhookDelivery(
        url=cfg.notification_webhook_url, tenant_id=cfg.tenant_id, delivery_id=delivery_id,
        event=CAMPAIGN_COMPLETED, payload=campaign_completed_document(cfg, summary, delivery_id=delivery_id)))
