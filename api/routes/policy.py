"""Dialing policy over REST: rule-based redials on a running campaign, and the preflight."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api import campaigns, contact_validation
from api.deps import ClientDep, DbDep, SettingsDep, TenantDep
from api.errors import error_responses, state_error
from api.json_body import openapi_body, parse_json_body, read_body
from api.campaign_calls import CampaignClosed, campaign_handle, update
from api.schemas import MAX_CONTACTS_PER_REQUEST, CampaignIn, RedialConfigIn
from campaign_engine.models import RedialPolicy, RedialUpdate
from campaign_engine.policy import legal_hours
from campaign_engine.policy.redial import DEFAULT_RETRY_INTERVAL_SECONDS
from campaign_engine.policy.windows import next_call_time, resolve_time_zones
from campaign_engine.store import compliance
from workflows.campaign import CampaignWorkflow

router = APIRouter(tags=["dialing policy"])


class UpdateCampaignDataIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    redialConfig: RedialConfigIn


class UpdateCampaignDataOut(BaseModel):
    success: bool = True
    message: str = ("Redial configuration updated: contacts waiting to redial re-plan their next call with it "
                    "now, as if it had been in force when their last call ended (or end if it allows no further "
                    "call); every other contact follows it after its next call")
    campaign_id: str
    redialConfig: dict[str, Any]


def redial_update(cfg: RedialConfigIn) -> RedialUpdate:
    simple = RedialPolicy(
        enabled=cfg.enabled,
        max_attempts=(cfg.maxAttempts or campaigns.DEFAULT_MAX_ATTEMPTS_WHEN_ENABLED) if cfg.enabled else 1,
        retry_intervals=cfg.retryIntervals or [DEFAULT_RETRY_INTERVAL_SECONDS],
    )
    return RedialUpdate(redial=simple, redial_rules=cfg.rules())


@router.put("/updateCampaignData/{campaign_id}", response_model=UpdateCampaignDataOut,
            summary="Replace a campaign's redial configuration (simple or rule-based), also while it runs",
            responses={404: {"description": "NOT_FOUND"},
                       409: {"description": "INVALID_CAMPAIGN_STATE (the campaign has finished)"},
                       **error_responses(408, 413, 415)})
async def update_campaign_data(campaign_id: str, body: UpdateCampaignDataIn, tenant: TenantDep,
                               client: ClientDep) -> UpdateCampaignDataOut:
    handle = campaign_handle(client, tenant.id, campaign_id)
    change = redial_update(body.redialConfig)
    try:
        await update(handle, campaign_id, CampaignWorkflow.update_redial, change)
    except CampaignClosed:
        raise state_error("INVALID_CAMPAIGN_STATE", f"campaign {campaign_id} has finished") from None
    shown = change.redial_rules.model_dump(mode="json", by_alias=True) if change.redial_rules else \
        {"enabled": change.redial.enabled, "maxAttempts": change.redial.max_attempts,
         "retryIntervals": change.redial.retry_intervals}
    return UpdateCampaignDataOut(campaign_id=campaign_id, redialConfig=shown)


class PreflightIn(CampaignIn):
    # Rows are checked one by one here: a bad row is reported, not a reason to refuse the body.
    contacts: list[Any] = Field(min_length=1, max_length=MAX_CONTACTS_PER_REQUEST)


class PreflightContact(BaseModel):
    row: int
    phone: str
    zones: list[str]
    first_call_at: datetime | None
    note: str | None = None
    suppressed: bool = False
    legal_rule: str | None = Field(None, description="the legal calling hours that apply to it, when the campaign "
                                   "follows them (e.g. `US-FL 08:00-20:00 local, at most 3 calls per 24 h`)")


class PreflightOut(BaseModel):
    success: bool = True
    total_rows: int
    valid: int
    invalid: int
    invalid_rows: list[dict]
    duplicates: int
    duplicate_rows: list[dict]
    scheduled_in_past: int
    outside_every_window: int
    suppressed: int = Field(0, description="contacts on the tenant's suppression list: they would not be dialled")
    suppressed_rows: list[dict] = Field(default_factory=list, description="each: its row and masked number")
    estimated_completion: datetime | None
    contacts: list[PreflightContact]


def _first_call_note(first: datetime, due: datetime, now: datetime, in_past: bool) -> str | None:
    """What the contact's first_call_at means, in words that agree with it."""
    waits_for_window = first > due
    if in_past:
        return ("scheduled time is in the past: called when its calling window opens" if waits_for_window
                else "scheduled time is in the past: called at once")
    if waits_for_window:
        return "outside its calling window when due: called when the window opens"
    return None


@router.post("/campaigns/preflight", response_model=PreflightOut,
             summary="Check an upload-and-run body without starting anything",
             responses=error_responses(408, 413, 415, 422),
             # The body is a PreflightIn, read here rather than by FastAPI (see api.json_body).
             openapi_extra=openapi_body(PreflightIn))
async def preflight(request: Request, tenant: TenantDep, settings: SettingsDep, db: DbDep) -> PreflightOut:
    # One copy of the contact list at a time: the bytes until they are parsed, the rows until
    # validate_rows has made them Contacts.
    raw = await read_body(request)
    body = parse_json_body(PreflightIn, raw, request.headers.get("content-type"))
    del raw
    now = datetime.now(UTC)
    validated = contact_validation.validate_rows(body.contacts, scheduled=body.isScheduledCall,
                                        zones_for=contact_validation.zone_resolver(body),
                                        consent_required=settings.consent_required)
    config = campaigns.build_config(body, tenant.id, settings, now)
    # (body.contacts is empty now: validate_rows consumed it.) The rows that became contacts:
    refused = {e["row"] for e in validated.errors} | {d["row"] for d in validated.duplicates}
    rows = [i for i in range(validated.received) if i not in refused]
    out: list[PreflightContact] = []
    past = never = 0
    due_times: list[datetime] = []
    suppressed = await compliance.suppressed_among(db, tenant.id, [c.phone for c in validated.contacts])
    suppressed_rows = []
    for row, contact in zip(rows, validated.contacts, strict=True):
        if contact.phone in suppressed:
            suppressed_rows.append({"row": row, "phone": contact.masked})
            out.append(PreflightContact(row=row, phone=contact.masked, zones=contact.zones, first_call_at=None,
                                        note="on the suppression list: never dialled", suppressed=True))
            continue
        due = contact.scheduled_at or now
        in_past = contact.scheduled_at is not None and contact.scheduled_at < now
        past += in_past
        rule = legal_hours.rule_for(contact.phone) if config.legal_hours else None
        window = legal_hours.narrowed(config.calling_window, rule.window()) if rule else config.calling_window
        zones = contact.zones or (list(resolve_time_zones(contact.phone, None, None)) if rule else [])
        first = next_call_time(max(due, now), now, window, zones, config.blackout_dates) \
            if (window or config.blackout_dates) else max(due, now)
        note: str | None
        if first is None:
            never += 1
            note = "no calling window opens for this contact within 400 days"
        else:
            due_times.append(first)
            note = _first_call_note(first, max(due, now), now, in_past)
            if rule is not None and note and first > max(due, now):
                note += f" (legal hours {rule.describe()})"
        out.append(PreflightContact(row=row, phone=contact.masked, zones=contact.zones, first_call_at=first, note=note,
                                    legal_rule=rule.describe() if rule else None))
    reachable = [c for c, p in zip(validated.contacts, out, strict=True) if p.first_call_at is not None]
    eta = campaigns.eta_for(config, reachable, now) if reachable else None
    return PreflightOut(
        total_rows=validated.received, valid=len(validated.contacts), invalid=len(validated.errors),
        invalid_rows=validated.errors, duplicates=len(validated.duplicates), duplicate_rows=validated.duplicates,
        scheduled_in_past=past, outside_every_window=never, suppressed=len(suppressed_rows),
        suppressed_rows=suppressed_rows, estimated_completion=eta, contacts=out,
    )
