"""Turning an upload into a running campaign: validation, normalisation, the workflow start."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.providers.http_agent_settings import HttpAgentSettings
from activities.providers.twilio_settings import TwilioSettings
from api.contact_validation import ValidatedContacts, stream_contacts, zone_resolver
from api.errors import ApiError
from api.idempotency import campaign_id_for_key
from api.schemas import (
    CampaignIn,
    CampaignOut,
    ContactsReportOut,
    ExecutionStatusOut,
    RedialConfigOut,
    UploadAndRunData,
)
from campaign_engine import search_attributes as sa
from campaign_engine.ids import campaign_workflow_id, new_campaign_id, new_object_id
from campaign_engine.models import (
    AutoPausePolicy,
    CampaignConfig,
    CampaignInput,
    CampaignProgress,
    CampaignStatus,
    Contact,
    RedialPolicy,
)
from campaign_engine.policy.eta import campaign_eta
from campaign_engine.policy.redial import DEFAULT_RETRY_INTERVAL_SECONDS
from campaign_engine.policy.frequency_cap import parse_cap
from campaign_engine.policy.windows import parse_blackout_dates
from campaign_engine.settings import Settings
from campaign_engine.store import repo
from workflows.campaign import CampaignWorkflow

# With redial enabled and no maxAttempts: three calls per contact (one call, two redials).
DEFAULT_MAX_ATTEMPTS_WHEN_ENABLED = 3


def redial_policy(body: CampaignIn) -> RedialPolicy:
    cfg = body.redialConfig
    if cfg is None or not cfg.enabled:
        return RedialPolicy(enabled=False, max_attempts=1,
                            retry_intervals=(cfg.retryIntervals if cfg and cfg.retryIntervals else
                                             [DEFAULT_RETRY_INTERVAL_SECONDS]))
    return RedialPolicy(
        enabled=True,
        max_attempts=cfg.maxAttempts or DEFAULT_MAX_ATTEMPTS_WHEN_ENABLED,
        retry_intervals=cfg.retryIntervals or [DEFAULT_RETRY_INTERVAL_SECONDS],
    )


def eta_for(config: CampaignConfig, contacts: list[Contact], now: datetime) -> datetime:
    return campaign_eta(config, now, [c.scheduled_at for c in contacts],
                        contact_zones=[c.zones for c in contacts])


def configured_providers(settings: Settings) -> list[str]:
    """Providers a campaign may name: the deployment's own (TELEPHONY_PROVIDER) and the real
    carriers whose settings are present (the worker's registry builds the same ones)."""
    names = {settings.telephony_provider}
    if TwilioSettings().account_sid:
        names.add("twilio")
    if HttpAgentSettings().url:
        names.add("http")
    return sorted(names)


def build_config(body: CampaignIn, tenant_id: str, settings: Settings, now: datetime,
                 campaign_id: str | None = None) -> CampaignConfig:
    provider = body.provider or settings.telephony_provider
    if body.provider and provider not in (allowed := configured_providers(settings)):
        message = f"provider '{provider}' is not configured on this deployment (configured: {', '.join(allowed)})"
        raise ApiError(400, "BAD_REQUEST", f"provider: {message}", [{"field": "provider", "message": message}])
    return CampaignConfig(
        campaign_id=campaign_id or new_campaign_id(now),
        object_id=new_object_id(now),
        tenant_id=tenant_id,
        name=body.campaignName,
        agent_id=body.agentId,
        is_scheduled=body.isScheduledCall,
        is_context_based=body.isContextBasedCall,
        redial=redial_policy(body),
        provider=provider,
        created_at=now,
        expected_call_seconds=body.expectedCallSeconds or settings.expected_call_seconds,
        call_outcome_timeout_seconds=settings.call_outcome_timeout_seconds,
        call_max_seconds=settings.call_max_seconds,
        max_concurrent_calls=body.maxConcurrentCalls,
        calls_per_second=body.callsPerSecond,
        notification_webhook_url=body.notificationWebhookUrl,
        calling_window=body.callingWindow,
        # The deployment's rules, or the tenant's overrides of them (TENANT_POLICIES); the
        # campaign's own cap only adds to them.
        legal_hours=settings.legal_hours_apply(provider, tenant_id),
        frequency_caps=[parse_cap(c) for c in (settings.frequency_cap_for(tenant_id), body.frequencyCap) if c],
        blackout_dates=parse_blackout_dates(body.blackoutDates),
        redial_rules=body.redialConfig.rules() if body.redialConfig else None,
        from_numbers=body.fromNumbers,
        caller_id_strategy=body.callerIdStrategy,
        auto_pause=AutoPausePolicy(**body.autoPause.model_dump()) if body.autoPause else AutoPausePolicy(),
        # Only a capped carrier account needs the shared, rate-limited dial task queue.
        dial_task_queue=settings.dial_task_queue(provider) if settings.carrier_calls_per_second else None,
    )


# How long the API waits for Temporal to take a campaign's start.
START_TIMEOUT = timedelta(seconds=5)


async def start_campaign_workflow(
    client: Client, settings: Settings, config: CampaignConfig, total_contacts: int,
    *, start_paused: bool = False, fingerprint: str | None = None, duplicates: int = 0,
) -> WorkflowHandle:
    """Durably start the campaign; its contacts are the store's rows (none in the input)."""
    wf_id = campaign_workflow_id(config.tenant_id, config.campaign_id)
    status = CampaignStatus.DRAFT if start_paused else CampaignStatus.IN_PROGRESS
    return await client.start_workflow(
        CampaignWorkflow.run,
        CampaignInput(config=config, total_contacts=total_contacts, start_paused=start_paused,
                      duplicates_merged=duplicates),
        id=wf_id,
        # A Temporal that hangs (rather than refuses) answers a 503 in seconds, not after the
        # connection's keepalive gives up; a retry with the Idempotency-Key completes the start.
        rpc_timeout=START_TIMEOUT,
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa.CAMPAIGN_STATUS, status.value),
            SearchAttributePair(sa.CAMPAIGN_ID, config.campaign_id),
            SearchAttributePair(sa.AGENT_ID, config.agent_id),
            SearchAttributePair(sa.TENANT_ID, config.tenant_id),
        ]),
        memo={"fingerprint": fingerprint or "", "objectId": config.object_id},
        # What never changes; the contact count and the redial configuration change (appends,
        # PUT /updateCampaignData) and are in the workflow's current details (_publish).
        static_summary=f"Campaign {config.name}, agent {config.agent_id}",
        static_details=(
            f"**{config.name}** ({config.campaign_id})\n\n"
            f"- agent: {config.agent_id}\n- provider: {config.provider}"
        ),
    )


async def upload_and_run(
    client: Client, db: AsyncEngine, settings: Settings, tenant_id: str, body: CampaignIn,
    fingerprint: str | None, idempotency_key: str | None,
) -> UploadAndRunData:
    """Validate, record, start. `body.contacts` is consumed (it becomes the Contacts);
    `fingerprint` is `body_fingerprint` of the request, needed only with an Idempotency-Key."""
    now = datetime.now(UTC)
    campaign_id = campaign_id_for_key(tenant_id, idempotency_key, now) if idempotency_key else None
    config = build_config(body, tenant_id, settings, now, campaign_id)
    # Validated as they are written: each page is checked while the one before is stored, and
    # one bad row rolls the whole write back.
    validated, stream = stream_contacts(body.contacts, scheduled=body.isScheduledCall, zones_for=zone_resolver(body),
                                        consent_required=settings.consent_required)
    existing = await create_and_launch(client, db, settings, config, validated, stream=stream, start_paused=False,
                                       idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing is None:
        return response_data(config, validated, now)
    config = CampaignConfig.model_validate(existing.config)
    data = response_data(config, validated, config.created_at)
    data.campaign.status = existing.status
    if existing.progress:
        progress = CampaignProgress.model_validate(existing.progress)
        data.execution_status.calls_initiated = progress.calls_placed
        data.execution_status.estimated_completion = progress.estimated_completion
    return data


async def create_and_launch(
    client: Client, db: AsyncEngine, settings: Settings, config: CampaignConfig, validated: ValidatedContacts,
    *, stream: Iterator[Contact] | None = None, start_paused: bool, idempotency_key: str | None,
    fingerprint: str | None,
) -> Row | None:
    """Write the campaign and its contacts (one transaction), then start its workflow.

    The contacts are `validated.contacts`, or with `stream` (stream_contacts) the contacts as
    they are validated: then one invalid row refuses the upload and nothing is written.

    With an Idempotency-Key used before, nothing new is written or started: the existing row
    comes back (409 for another body). A campaign whose first request broke off between the
    commit and the start is started by this retry; one whose workflow Temporal has since
    deleted (retention) is not started again.
    """
    status = CampaignStatus.DRAFT if start_paused else CampaignStatus.IN_PROGRESS
    existing = await repo.create_campaign(
        db, config, validated.contacts if stream is None else stream, status=status,
        counts=validated.totals if stream is None else validated.totals_if_valid,
        idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing is not None:
        if stream is not None:  # not written: validated for the answer (and its errors) only
            deque(stream, maxlen=0)
            validated.refuse_invalid()
        if existing.fingerprint != fingerprint:
            raise ApiError(409, "IDEMPOTENCY_KEY_REUSED",
                           "this Idempotency-Key was used with a different request body",
                           [{"field": "Idempotency-Key", "message": "already used with another body for campaign "
                             f"{existing.campaign_id}"}])
        config = CampaignConfig.model_validate(existing.config)
        if existing.launched_at is not None:
            return existing
    try:
        await start_campaign_workflow(client, settings, config, len(validated.contacts), start_paused=start_paused,
                                      fingerprint=fingerprint, duplicates=len(validated.duplicates))
    except WorkflowAlreadyStartedError:  # started by the request that broke off
        pass
    await repo.mark_launched(db, config.tenant_id, config.campaign_id)
    return existing


def workflow_handle(client: Client, config: CampaignConfig) -> WorkflowHandle:
    return client.get_workflow_handle(campaign_workflow_id(config.tenant_id, config.campaign_id))


def response_data(config: CampaignConfig, validated: ValidatedContacts, now: datetime) -> UploadAndRunData:
    contacts = validated.contacts
    return UploadAndRunData(
        campaign=CampaignOut(
            id=config.object_id,
            campaignName=config.name,
            campaignId=config.campaign_id,
            status=CampaignStatus.IN_PROGRESS.value,
            agentId=config.agent_id,
            totalContacts=len(contacts),
            isScheduledCall=config.is_scheduled,
            isContextBasedCall=config.is_context_based,
            createdAt=config.created_at,
            campaignStartTime=now,
        ),
        execution_status=ExecutionStatusOut(
            calls_queued=len(contacts), calls_initiated=0, estimated_completion=eta_for(config, contacts, now),
        ),
        redial_config=RedialConfigOut(
            enabled=config.redial.enabled,
            maxAttempts=config.redial.max_attempts,
            retryIntervals=config.redial.retry_intervals,
        ),
        contacts=ContactsReportOut(
            received=validated.received, accepted=len(contacts), duplicates_merged=len(validated.duplicates),
        ),
    )
