"""Campaign lifecycle: upload (create or append), start, pause, resume, cancel, append, remove.

Every call addresses the campaign workflow `campaign/{tenant}/{campaignId}`: another tenant's
campaign simply does not exist (404). Control goes through the workflow's updates, whose
ApplicationError types are the API's error codes. A finished campaign's workflow is closed and
takes no update, but still answers queries: the answers below say what a closed campaign is.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from pydantic import ValidationError
from temporalio.client import (
    Client,
)

from api.campaigns import build_config, create_and_launch
from api.contact_validation import config_zone_resolver, validate_rows, zone_resolver
from api.idempotency import body_fingerprint, campaign_id_for_key
from api import csv_upload
from api import appending
from api.upload_settings import draft_settings
from api.cross_site import refuse_cross_site
from api.csv_docs import file_upload_body
from api.csv_routes import csv_draft
from api.deps import ClientDep, DbDep, SettingsDep, TenantDep
from api.errors import ApiError, error_responses, state_error
from api.json_body import openapi_body, parse_json_body, read_body
from api.lifecycle_schemas import (
    AppendContactsIn,
    CancelOut,
    PauseOut,
    RemoveContactOut,
    ResumeOut,
    RowError,
    StartCampaignOut,
    UploadCampaignDataIn,
    UploadCampaignDataOut,
    UploadTarget,
)
from campaign_engine.models import (
    CampaignConfig,
    CampaignProgress,
    CampaignStatus,
    ContactRemoval,
    ContactState,
)
from campaign_engine.store import compliance, repo, roster
from campaign_engine.phones import InvalidPhoneNumber, normalize_e164
from workflows.campaign import CampaignWorkflow

router = APIRouter(tags=["campaign lifecycle"])

from api.campaign_calls import (  # noqa: E402  (the calls to the campaign workflow; monitoring uses them too)
    CampaignClosed,
    configuration,
    final_status,
    not_found,
    query,
    totals,
    update,
    campaign_handle,
)


# --- uploads -------------------------------------------------------------------------------


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _creates(raw: bytes) -> bool | None:
    """Whether an /uploadCampaignData body creates a campaign (it has no campaign_id), read
    ahead of the body's own parse and without building any of it in Python; None when this
    cannot tell (a body pydantic's JSON parser does not read: FastAPI's steps may)."""
    try:
        return UploadTarget.model_validate_json(raw).campaign_id is None
    except ValidationError:
        return None


def _row_errors(errors: list[dict]) -> list[RowError]:
    return [RowError(row=e["row"], field=e["field"], message=e["message"]) for e in errors]


@router.post(
    "/uploadCampaignData",
    response_model=UploadCampaignDataOut,
    summary="Create a campaign without starting it, or append contacts to one (campaign_id)",
    responses={400: {"description": "BAD_REQUEST"}, 404: {"description": "NOT_FOUND (campaign_id)"},
               409: {"description": "IDEMPOTENCY_KEY_REUSED, or INVALID_CAMPAIGN_STATE (appending to a finished "
                     "campaign)"}, **error_responses(408, 413, 415, 422)},
    # The body is an UploadCampaignDataIn, read here rather than by FastAPI (see api.json_body).
    openapi_extra=file_upload_body(openapi_body(UploadCampaignDataIn)),
)
async def upload_campaign_data(
    request: Request, tenant: TenantDep, client: ClientDep, db: DbDep, settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> UploadCampaignDataOut:
    # One copy of the contact list at a time: the bytes until they are parsed (and
    # fingerprinted: a create records the fingerprint, an append under an Idempotency-Key
    # names its batches after it), the parsed rows until validate_rows has made them
    # Contacts, then the Contacts. The fingerprint parses the JSON once more, so it is taken
    # before the body's own parse rather than alongside its rows.
    if csv_upload.is_file_upload(request.headers.get("content-type")):  # a CSV or xlsx file
        return await csv_draft(request, tenant.id, client, db, settings, idempotency_key)
    raw = await read_body(request)
    fingerprint = body_fingerprint(raw) if idempotency_key or _creates(raw) else None
    body = parse_json_body(UploadCampaignDataIn, raw, request.headers.get("content-type"))
    if fingerprint is None and body.campaign_id is None:  # a create _creates could not read
        fingerprint = body_fingerprint(raw)
    del raw
    if body.campaign_id is not None:
        return await append_rows(client, db, tenant.id, body.campaign_id, body.contacts, body.schedule_time,
                                 idempotency_key, fingerprint, consent_required=settings.consent_required)
    campaign, scheduled = draft_settings(body)
    validated = validate_rows(body.contacts, scheduled=scheduled, default_time=body.schedule_time,
                              zones_for=zone_resolver(campaign), consent_required=settings.consent_required)
    if not validated.contacts:
        raise ApiError(400, "BAD_REQUEST", "no valid contact in the upload", validated.errors)
    now = datetime.now(UTC)
    campaign_id = campaign_id_for_key(tenant.id, idempotency_key, now) if idempotency_key else None
    config = build_config(campaign, tenant.id, settings, now, campaign_id)
    out = UploadCampaignDataOut(
        message="Campaign created; start it with GET /startCampaignv2/{campaign_id}",
        campaign_id=config.campaign_id, campaign_name=config.name, status=CampaignStatus.DRAFT.value,
        uploaded_count=len(validated.contacts), failed_count=len(validated.errors),
        duplicate_count=len(validated.duplicates), total_contacts=len(validated.contacts),
        errors=_row_errors(validated.errors),
    )
    existing = await create_and_launch(client, db, settings, config, validated, start_paused=True,
                                       idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing is not None:  # the same key again: the same campaign back
        out.campaign_id = existing.campaign_id
        out.message = "Campaign already created by an earlier request with this Idempotency-Key"
        out.status, out.total_contacts, out.replayed = existing.status, existing.total_contacts, True
    out.suppressed_count = await compliance.suppressed_in_campaign(db, tenant.id, out.campaign_id)
    return out


async def append_rows(
    client: Client, db: AsyncEngine, tenant_id: str, campaign_id: str, rows: list, schedule_time: datetime | None,
    idempotency_key: str | None, fingerprint: str | None, *, consent_required: bool = False,
) -> UploadCampaignDataOut:
    """Append the raw `rows` (consumed: see validate_rows): the rows are written to the
    store first, then the campaign is told how far its contacts now go. `fingerprint` is
    body_fingerprint of the request, needed only with an Idempotency-Key."""
    row = await appending.campaign_to_append(db, tenant_id, campaign_id)
    config = CampaignConfig.model_validate(row.config)
    validated = validate_rows(rows, scheduled=config.is_scheduled, default_time=schedule_time,
                              zones_for=config_zone_resolver(config), consent_required=consent_required)
    out = UploadCampaignDataOut(
        message="Contacts appended", campaign_id=campaign_id, campaign_name=config.name, status=row.status,
        uploaded_count=0, failed_count=len(validated.errors), duplicate_count=len(validated.duplicates),
        total_contacts=row.total_contacts, errors=_row_errors(validated.errors),
    )
    appending.refuse_finished(row)
    if not validated.contacts:
        out.suppressed_count = await compliance.suppressed_in_campaign(db, tenant_id, campaign_id)
        return out
    key_hash = hashlib.sha256(idempotency_key.encode()).hexdigest() if idempotency_key else None
    appended = await roster.append_contacts(db, tenant_id, campaign_id, validated.contacts, key_hash=key_hash,
                                            fingerprint=fingerprint)
    if appended.other_body:
        raise appending.other_body(campaign_id)
    if appended.replayed:
        out.replayed = True
        out.message = "Contacts already appended by an earlier request with this Idempotency-Key"
    if not await appending.tell_campaign(client, tenant_id, campaign_id, appended) and not appended.replayed:
        # finished meanwhile: the rows go again
        await roster.withdraw_append(db, tenant_id, campaign_id, appended, key_hash)
        raise await appending.finished_error(client, tenant_id, campaign_id)
    out.uploaded_count = appended.added
    out.duplicate_count += appended.duplicates
    out.status, out.total_contacts = await appending.status_and_total(client, tenant_id, campaign_id)
    out.suppressed_count = await compliance.suppressed_in_campaign(db, tenant_id, campaign_id)
    return out


@router.post(
    "/campaigns/{campaign_id}/contacts",
    response_model=UploadCampaignDataOut,
    summary="Append contacts to a campaign (draft, running or paused); they are dialled under the same rules",
    responses={400: {"description": "BAD_REQUEST"}, 404: {"description": "NOT_FOUND"},
               409: {"description": "IDEMPOTENCY_KEY_REUSED, or INVALID_CAMPAIGN_STATE (the campaign has "
                     "finished)"}, **error_responses(408, 413, 415, 422)},
    # The body is an AppendContactsIn, read here rather than by FastAPI (see api.json_body).
    openapi_extra=openapi_body(AppendContactsIn),
)
async def append_contacts(
    campaign_id: str, request: Request, tenant: TenantDep, client: ClientDep, db: DbDep, settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> UploadCampaignDataOut:
    # As upload_campaign_data: the bytes (fingerprinted first under an Idempotency-Key) until
    # they are parsed, then the rows until they are Contacts.
    raw = await read_body(request)
    fingerprint = body_fingerprint(raw) if idempotency_key else None
    body = parse_json_body(AppendContactsIn, raw, request.headers.get("content-type"))
    del raw
    return await append_rows(client, db, tenant.id, campaign_id, body.contacts, body.schedule_time,
                             idempotency_key, fingerprint, consent_required=settings.consent_required)


# --- start, pause, resume, cancel ----------------------------------------------------------------


def get_and_post(path: str, operation_id: str, **kwargs: Any) -> Callable:
    """POST, the form to use, and the Dialer API's GET (each its own OpenAPI operation). The
    GET refuses cross-site browser requests (api.cross_site): 403 CROSS_SITE_REQUEST."""
    def register(func: Callable) -> Callable:
        get_responses = {**kwargs.pop("responses", {}),
                         403: {"description": "CROSS_SITE_REQUEST (a browser request from another site)"}}
        router.add_api_route(path, func, methods=["POST"], operation_id=f"{operation_id}_post",
                             responses={k: v for k, v in get_responses.items() if k != 403}, **kwargs)
        router.add_api_route(path, func, methods=["GET"], operation_id=operation_id, responses=get_responses,
                             dependencies=[Depends(refuse_cross_site)],
                             description="The Dialer API's GET form: prefer POST. Refused (403) when a "
                             "browser sends it from another site.", **kwargs)
        return func
    return register


@get_and_post(
    "/startCampaignv2/{campaign_id}", "start_campaign_v2", response_model=StartCampaignOut,
    summary="Start an uploaded (draft) campaign",
    responses={404: {"description": "NOT_FOUND"},
               409: {"description": "CAMPAIGN_ALREADY_RUNNING, or INVALID_CAMPAIGN_STATE (finished)"}},
)
async def start_campaign_v2(campaign_id: str, tenant: TenantDep, client: ClientDep, db: DbDep) -> StartCampaignOut:
    handle = campaign_handle(client, tenant.id, campaign_id)
    before: CampaignProgress = await query(handle, campaign_id, CampaignWorkflow.progress)
    if before.status == CampaignStatus.PAUSED:
        raise state_error("CAMPAIGN_ALREADY_RUNNING",
                       f"campaign was started and is paused; resume it with /startCampaign/{campaign_id}")
    # A draft's contacts, counted while it is still quiet (they do not change until it starts).
    draft = before.status == CampaignStatus.DRAFT
    scheduled, immediate = await roster.due_counts(db, tenant.id, campaign_id, datetime.now(UTC)) if draft else (0, 0)
    try:
        result = await update(handle, campaign_id, CampaignWorkflow.resume)
    except CampaignClosed:
        status, _ = await final_status(handle, campaign_id)
        raise state_error("INVALID_CAMPAIGN_STATE", f"campaign is {status}") from None
    progress, config = await asyncio.gather(
        query(handle, campaign_id, CampaignWorkflow.progress), query(handle, campaign_id, CampaignWorkflow.config))
    return StartCampaignOut(
        campaign_id=campaign_id, campaign_name=config.name, status=result.status.value,
        started_at=progress.started_at, total_contacts=progress.total_contacts,
        scheduled_calls=scheduled,
        # Counted from the draft as it was started: fast calls may already have ended.
        immediate_calls=immediate,
        estimated_completion=progress.estimated_completion, configuration=configuration(config),
    )


@get_and_post(
    "/pauseTheCampaign/{campaign_id}", "pause_the_campaign", response_model=PauseOut,
    summary="Pause: no new call is placed; calls already ringing finish and are recorded",
    responses={404: {"description": "NOT_FOUND"}, 409: {"description": "CAMPAIGN_NOT_RUNNING"}},
)
async def pause_campaign(campaign_id: str, tenant: TenantDep, client: ClientDep) -> PauseOut:
    handle = campaign_handle(client, tenant.id, campaign_id)
    try:
        result = await update(handle, campaign_id, CampaignWorkflow.pause)
    except CampaignClosed:
        status, _ = await final_status(handle, campaign_id)
        raise state_error("CAMPAIGN_NOT_RUNNING", f"campaign is {status}, not running") from None
    return PauseOut(campaign_id=campaign_id, status=result.status.value, paused_at=result.at,
                    active_calls=result.active_calls)


@get_and_post(
    "/startCampaign/{campaign_id}", "start_campaign", response_model=ResumeOut,
    summary="Resume a paused campaign (or start a draft); contacts due while paused are dialled first",
    responses={404: {"description": "NOT_FOUND"},
               409: {"description": "CAMPAIGN_ALREADY_RUNNING, or INVALID_CAMPAIGN_STATE (finished)"}},
)
async def resume_campaign(campaign_id: str, tenant: TenantDep, client: ClientDep) -> ResumeOut:
    handle = campaign_handle(client, tenant.id, campaign_id)
    # The queue while paused (it only grows until the resume): once resumed it drains at once.
    before: CampaignProgress = await query(handle, campaign_id, CampaignWorkflow.progress)
    try:
        result = await update(handle, campaign_id, CampaignWorkflow.resume)
    except CampaignClosed:
        status, _ = await final_status(handle, campaign_id)
        raise state_error("INVALID_CAMPAIGN_STATE", f"campaign is {status}") from None
    return ResumeOut(campaign_id=campaign_id, status=result.status.value, resumed_at=result.at,
                     active_calls=result.active_calls,
                     queued_calls=before.by_state.get(ContactState.QUEUED.value, 0))


@router.post(
    "/campaigns/{campaign_id}/cancel", response_model=CancelOut,
    summary="Cancel: no further calls, pending timers stop, live calls finish; idempotent",
    responses={404: {"description": "NOT_FOUND"}},
)
async def cancel_campaign(campaign_id: str, tenant: TenantDep, client: ClientDep) -> CancelOut:
    handle = campaign_handle(client, tenant.id, campaign_id)
    try:
        result = await update(handle, campaign_id, CampaignWorkflow.cancel)
    except CampaignClosed:
        status, progress = await final_status(handle, campaign_id)
        return CancelOut(
            message=f"campaign already finished ({status})", campaign_id=campaign_id, status=status,
            canceled_at=progress.finished_at if status == CampaignStatus.CANCELED.value else None,
            active_calls=0, summary=totals(progress))
    progress = await query(handle, campaign_id, CampaignWorkflow.progress)
    if result.status == CampaignStatus.CANCELED:
        message = ("Campaign canceled: no further calls; "
                   + (f"{result.active_calls} live call(s) finish and are recorded" if result.active_calls
                      else "no call was live"))
    else:
        message = f"campaign already {result.status.value}"
    return CancelOut(message=message, campaign_id=campaign_id, status=result.status.value,
                     canceled_at=result.at if result.status == CampaignStatus.CANCELED else None,
                     active_calls=result.active_calls, summary=totals(progress))


# --- one contact -----------------------------------------------------------------------------


@router.delete(
    "/campaigns/{campaign_id}/contacts/{phone:path}", response_model=RemoveContactOut,
    summary="Skip one contact not reached yet (phone in E.164, URL-encoded): its timers stop, it is never called",
    responses={400: {"description": "BAD_REQUEST (not a phone number)"},
               404: {"description": "NOT_FOUND (campaign or contact)"},
               409: {"description": "CONTACT_ALREADY_FINAL, or INVALID_CAMPAIGN_STATE (finished campaign)"}},
)
async def remove_contact(campaign_id: str, phone: str, tenant: TenantDep, client: ClientDep,
                         db: DbDep) -> RemoveContactOut:
    handle = campaign_handle(client, tenant.id, campaign_id)
    try:
        e164 = normalize_e164(phone)
    except InvalidPhoneNumber as err:
        raise ApiError(400, "BAD_REQUEST", str(err), [{"field": "phone", "message": str(err)}]) from None
    if await repo.get_campaign(db, tenant.id, campaign_id) is None:
        raise not_found(campaign_id)
    found = await roster.contact_by_phone(db, tenant.id, campaign_id, e164)
    if found is None:
        raise ApiError(404, "NOT_FOUND", "no such contact in this campaign")
    state = ContactState(found.state)
    if state.is_final:
        raise state_error("CONTACT_ALREADY_FINAL", f"contact already finished ({state.value}"
                          + (f", {found.disposition}" if found.disposition else "") + ")")
    try:
        removal: ContactRemoval = await update(handle, campaign_id, CampaignWorkflow.remove_contact, found.key)
    except CampaignClosed:
        status, _ = await final_status(handle, campaign_id)
        raise state_error("INVALID_CAMPAIGN_STATE", f"campaign is {status}") from None
    if removal.state == ContactState.REMOVED:
        return RemoveContactOut(message="Contact removed: it will not be called", campaign_id=campaign_id,
                                phone_number=e164, state=removal.state.value, removal="done")
    message = ("Contact being removed: its pending timers stop and it will not be called"
               if removal.state != ContactState.DIALING else
               "Contact being removed: the call in progress finishes and no redial follows")
    return RemoveContactOut(message=message, campaign_id=campaign_id, phone_number=e164,
                            state=removal.state.value, removal="pending")
