"""Turning an upload into a running campaign: validation, normalisation, the workflow start."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.providers.http_agent_settings import HttpAgentSettings
from activities.providers.twilio_settings import TwilioSettings
from api.errors import ApiError, is_consent_error
from api.schemas import (
    CampaignIn,
    CampaignOut,
    ContactIn,
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
from campaign_engine.phones import InvalidPhoneNumber, ParsedPhone, parse_phone
from campaign_engine.policy.eta import campaign_eta
from campaign_engine.policy.redial import DEFAULT_RETRY_INTERVAL_SECONDS
from campaign_engine.policy.frequency_cap import parse_cap
from campaign_engine.policy.windows import parse_blackout_dates, resolve_time_zones
from campaign_engine.settings import Settings
from campaign_engine.store import repo
from workflows.campaign import CampaignWorkflow

# With redial enabled and no maxAttempts: three calls per contact (one call, two redials).
DEFAULT_MAX_ATTEMPTS_WHEN_ENABLED = 3


# A contact's zones from its parsed number and its own `timezone`.
ZoneResolver = Callable[[ParsedPhone, str | None], list[str]]


def _resolver(fallback: str | None) -> ZoneResolver:
    return lambda phone, own: resolve_time_zones(phone.e164, own, fallback, number=phone.number)


def zone_resolver(body: CampaignIn) -> ZoneResolver | None:
    """How contacts get their zones, when the campaign has a calling window or blackout dates."""
    if body.callingWindow is None and not body.blackoutDates:
        return None
    return _resolver(body.callingWindow.time_zone if body.callingWindow else None)


@dataclass
class ValidatedContacts:
    contacts: list[Contact] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    received: int = 0
    # Rows whose consent is malformed, or missing under CONSENT_REQUIRED: they refuse the whole
    # request (refuse_consent), whatever the upload does with other invalid rows.
    consent_errors: list[dict] = field(default_factory=list)


# --- consent (issue 14) ----------------------------------------------------------------------

CONSENT_MISSING = ("required: this deployment requires consent for every contact (CONSENT_REQUIRED): "
                   "source, obtained_at and text or reference")


def consent_missing(row: int, field_name: str) -> dict:
    return {"row": row, "field": field_name, "message": CONSENT_MISSING}


def refuse_consent(errors: list[dict], *, file: bool = False) -> None:
    """422 when any contact's consent is missing (CONSENT_REQUIRED) or malformed
    (INVALID_CONSENT): the request is refused as a whole and nothing is written. The message
    names the first row and field; `details` lists each."""
    if not errors:
        return
    first = errors[0]
    code = "CONSENT_REQUIRED" if first["message"] == CONSENT_MISSING else "INVALID_CONSENT"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"row {first['row']}, " if file else ""
    raise ApiError(422, code, f"{where}{first['field']}: {first['message']}{more}", errors)


def _drain(rows: list) -> Iterator:
    """The rows in order, each one let go of by the list as it is handed out (the list ends empty)."""
    for i in range(len(rows)):
        row, rows[i] = rows[i], None
        yield row
    rows.clear()


def validate_contacts(rows: list[ContactIn], *, scheduled: bool, start_row: int = 0,
                      zones_for: ZoneResolver | None = None, consent_required: bool = False) -> ValidatedContacts:
    """Every row checked: valid E.164 number, a scheduled time when the campaign needs one.

    Duplicate numbers keep their first row; the others are reported, not dialled. The rows
    are consumed: `rows` is empty afterwards, and each input row is released as soon as its
    Contact exists, so the two never both hold a whole contact list. Every number is parsed
    once (`parse_phone`: E.164, mask and zones from the same parse). A contact without consent
    under `consent_required` refuses the request (422, refuse_consent).
    """
    out = ValidatedContacts(received=len(rows))
    _to_contacts(out, enumerate(_drain(rows), start=start_row), scheduled=scheduled, zones_for=zones_for,
                 consent_required=consent_required)
    refuse_consent(out.consent_errors)
    return out


def _to_contacts(out: ValidatedContacts, rows: Iterable[tuple[int, ContactIn | None]], *, scheduled: bool,
                 zones_for: ZoneResolver | None, consent_required: bool = False) -> None:
    """`validate_contacts` of numbered rows, one at a time, into `out`; a None row was refused
    (and reported) before."""
    seen: dict[str, int] = {}
    for i, row in rows:
        if row is None:
            continue
        if consent_required and row.consent is None:
            out.consent_errors.append(consent_missing(i, f"contacts[{i}].consent"))
            continue
        try:
            parsed = parse_phone(row.phone_number)
        except InvalidPhoneNumber as err:
            out.errors.append({"row": i, "field": f"contacts[{i}].phone_number", "message": str(err)})
            continue
        if scheduled and row.scheduledCallDateTime is None:
            out.errors.append({
                "row": i, "field": f"contacts[{i}].scheduledCallDateTime",
                "message": "required when isScheduledCall is true (ISO 8601 with a time zone)",
            })
            continue
        phone = parsed.e164
        if phone in seen:
            out.duplicates.append({"row": i, "duplicate_of_row": seen[phone]})
            continue
        seen[phone] = i
        # Every field is validated already (the row, the parsed number): constructing the
        # model without validating it again saves about a sixth of the upload's own work.
        out.contacts.append(Contact.model_construct(
            key=len(out.contacts), phone=phone, masked=parsed.masked, name=row.name, email=row.email,
            custom_data=row.custom_data,
            scheduled_at=row.scheduledCallDateTime.astimezone(UTC) if scheduled and row.scheduledCallDateTime else None,
            timezone=row.timezone,
            zones=zones_for(parsed, row.timezone) if zones_for else [],
            consent=row.consent,
        ))


def config_zone_resolver(config: CampaignConfig) -> ZoneResolver | None:
    """`zone_resolver` for contacts appended to an existing campaign (from its configuration)."""
    if config.calling_window is None and not config.blackout_dates:
        return None
    return _resolver(config.calling_window.time_zone if config.calling_window else None)


def _row_parse_error(i: int, err: ValidationError) -> dict:
    # (A function of its own: the error's details hold the row, which must not outlive it.)
    return _row_error(i, err.errors()[0])


def _row_error(i: int, first: Any) -> dict:
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return {"row": i, "field": f"contacts[{i}]" + (f".{loc}" if loc else ""), "message": first.get("msg", "invalid")}


def validate_rows(raw_rows: list, *, scheduled: bool, default_time: datetime | None = None,
                  zones_for: ZoneResolver | None = None, consent_required: bool = False) -> ValidatedContacts:
    """Per-row validation of raw JSON rows, for uploads that keep the valid rows.

    A row that does not even parse (not an object, no phone number, a bad date) is reported
    with its index like any other invalid row; `default_time` is the time of the rows that
    have none of their own (the upload's `schedule_time`).

    The rows are consumed like `validate_contacts` consumes its own: `raw_rows` is empty
    afterwards, and each row goes from JSON to ContactIn to Contact before the next one is
    read, so a row exists in one form at a time and the list in one form at most (the rows
    not read yet, and the Contacts made so far). `received` is the number of rows. A row whose
    consent is malformed, or missing under `consent_required`, refuses the whole request (422).
    """
    out = ValidatedContacts(received=len(raw_rows))

    def parsed() -> Iterator[tuple[int, ContactIn | None]]:
        for i, raw in enumerate(_drain(raw_rows)):
            try:
                row = ContactIn.model_validate(raw)
            except ValidationError as err:
                consent = [e for e in err.errors() if is_consent_error(e.get("loc", ()))]
                if consent:
                    out.consent_errors.append(_row_error(i, consent[0]))
                else:
                    out.errors.append(_row_parse_error(i, err))
                yield i, None
                continue
            if default_time is not None and row.scheduledCallDateTime is None:
                row = row.model_copy(update={"scheduledCallDateTime": default_time})
            yield i, row

    _to_contacts(out, parsed(), scheduled=scheduled, zones_for=zones_for, consent_required=consent_required)
    # (Rows are read in order, so the errors are in row order already.)
    out.consent_errors.sort(key=lambda e: e["row"])
    refuse_consent(out.consent_errors)
    return out


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


def body_fingerprint(raw: bytes) -> str:
    """sha256 of the body as canonical JSON (sorted keys, no spaces), so a keyed retry that
    spells the same body differently matches; of the bytes when they are not JSON.

    Hashed piece by piece: the canonical text of a whole contact list is never built (json.dumps
    of 1,000 contacts peaks at about 6 times the body's size; each row's text is a few
    hundred bytes). The digest is the same as hashing `json.dumps(..., sort_keys=True)`."""
    try:
        tree = json.loads(raw)
    except ValueError:
        return hashlib.sha256(raw).hexdigest()
    digest = hashlib.sha256()
    _hash_canonical(digest, tree, depth=2)
    return digest.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _hash_canonical(digest: Any, value: Any, depth: int) -> None:
    """Feed `_canonical(value)` to `digest`, splitting objects and arrays `depth` levels down
    (the body, then its fields: the contact list row by row)."""
    if depth == 0 or not isinstance(value, dict | list) or not value:
        digest.update(_canonical(value))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            digest.update(b"," if i else b"[")
            _hash_canonical(digest, item, depth - 1)
        digest.update(b"]")
    else:
        for i, key in enumerate(sorted(value)):
            digest.update((b"," if i else b"{") + _canonical(key) + b":")
            _hash_canonical(digest, value[key], depth - 1)
        digest.update(b"}")


def campaign_id_for_key(tenant_id: str, idem_key: str, now: datetime) -> str:
    digest = hashlib.sha256(f"{tenant_id}\0{idem_key}".encode()).digest()
    return f"CAMP-{now.year}-" + base64.b32encode(digest).decode()[:10]


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
    validated = validate_contacts(body.contacts, scheduled=body.isScheduledCall, zones_for=zone_resolver(body),
                                  consent_required=settings.consent_required)
    if validated.errors:
        first = validated.errors[0]
        more = f" (and {len(validated.errors) - 1} more)" if len(validated.errors) > 1 else ""
        raise ApiError(400, "BAD_REQUEST", f"{first['field']}: {first['message']}{more}", validated.errors)
    now = datetime.now(UTC)
    campaign_id = campaign_id_for_key(tenant_id, idempotency_key, now) if idempotency_key else None
    config = build_config(body, tenant_id, settings, now, campaign_id)
    existing = await create_and_launch(client, db, settings, config, validated, start_paused=False,
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
    *, start_paused: bool, idempotency_key: str | None, fingerprint: str | None,
) -> Row | None:
    """Write the campaign and its contacts (one transaction), then start its workflow.

    With an Idempotency-Key used before, nothing new is written or started: the existing row
    comes back (409 for another body). A campaign whose first request broke off between the
    commit and the start is started by this retry; one whose workflow Temporal has since
    deleted (retention) is not started again.
    """
    status = CampaignStatus.DRAFT if start_paused else CampaignStatus.IN_PROGRESS
    existing = await repo.create_campaign(
        db, config, validated.contacts, status=status, received=validated.received,
        duplicates=len(validated.duplicates), idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing is not None:
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
