"""Monitoring: campaign statuses, stats, the CSV export, the campaign and its contacts.

Every read comes from the store (PostgreSQL), the system of record, in a few SQL statements
whatever the campaign's size: the campaign's row holds its status and the progress document
its workflow flushes (at most a second behind), the contacts' rows their state, the attempts'
rows every call. They answer with no worker running and after Temporal has deleted every
workflow of the campaign.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import ClientDep, DbDep, TenantDep
from api.errors import ApiError
from api.lifecycle_schemas import (
    CallStatistics,
    CampaignOutFull,
    CampaignStatsOut,
    CampaignStatusesOut,
    CampaignStatusOut,
    ContactOut,
    ContactPageOut,
    HeldOut,
    ProgressOut,
    RedialInfo,
    StatusesSummary,
    SuccessMetrics,
)
from api.campaign_calls import configuration, not_found
from campaign_engine.ids import campaign_workflow_id, is_safe_id
from campaign_engine.models import (
    CampaignConfig,
    CampaignProgress,
    CampaignStatus,
    ContactState,
    Outcome,
    reported_disposition,
)
from campaign_engine.status import campaign_status
from campaign_engine.store import repo

FINAL_STATUSES = {CampaignStatus.COMPLETED.value, CampaignStatus.CANCELED.value, CampaignStatus.FAILED.value}
DESCRIBE_TIMEOUT = timedelta(seconds=3)

router = APIRouter(tags=["campaign monitoring"])

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Rows of the export written per chunk of the streamed CSV.

STATUS_ALIASES = {
    "in_progress": CampaignStatus.IN_PROGRESS, "in-progress": CampaignStatus.IN_PROGRESS,
    "running": CampaignStatus.IN_PROGRESS, "paused": CampaignStatus.PAUSED,
    "completed": CampaignStatus.COMPLETED, "failed": CampaignStatus.FAILED,
    "canceled": CampaignStatus.CANCELED, "cancelled": CampaignStatus.CANCELED,
    "draft": CampaignStatus.DRAFT, "not-yet-started": CampaignStatus.DRAFT, "not_yet_started": CampaignStatus.DRAFT,
}


@dataclass
class Snapshot:
    """One campaign as the monitoring endpoints see it: its row in the store."""

    campaign_id: str
    status: str
    progress: CampaignProgress
    config: CampaignConfig
    talk_seconds: float = 0.0


def _rate(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _ended_calls(progress: CampaignProgress) -> int:
    return sum(progress.outcome_counts.values())


def snapshot_of(row: Row) -> Snapshot:
    config = CampaignConfig.model_validate(row.config)
    if row.progress:
        progress = CampaignProgress.model_validate(row.progress)
    else:  # started a moment ago: its workflow has not flushed its first figures yet
        progress = CampaignProgress(
            campaign_id=row.campaign_id, name=row.name, status=CampaignStatus(row.status),
            total_contacts=row.total_contacts, expected_contacts=row.total_contacts,
            duplicates_merged=row.duplicates_merged,
            by_state={ContactState.PENDING.value: row.total_contacts} if row.total_contacts else {},
            by_disposition={}, outcome_counts={}, calls_placed=0, live_calls=0, redials_made=0, pending_redials=0,
            next_redial_at=None, percentage=0.0, estimated_completion=None, started_at=None, finished_at=None, run=1,
        )
    return Snapshot(row.campaign_id, row.status, progress, config, talk_seconds=row.talk_seconds)


async def campaign_row(db: AsyncEngine, tenant_id: str, campaign_id: str) -> Row:
    row = await repo.get_campaign(db, tenant_id, campaign_id) if is_safe_id(campaign_id) else None
    if row is None:
        raise not_found(campaign_id)
    return row


async def snapshot(db: AsyncEngine, client: Client, tenant_id: str, campaign_id: str) -> Snapshot:
    snap = snapshot_of(await campaign_row(db, tenant_id, campaign_id))
    if snap.status not in FINAL_STATUSES:
        snap.status = await _check_workflow_ended(db, client, tenant_id, snap)
    return snap


async def _check_workflow_ended(db: AsyncEngine, client: Client, tenant_id: str, snap: Snapshot) -> str:
    """A campaign the store has as open whose workflow ended without saying so (terminated by
    an operator, failed, timed out) is failed: asked of Temporal on a single campaign's read,
    recorded in the store once found. Temporal unreachable or the workflow gone: the store's
    status stands."""
    handle = client.get_workflow_handle(campaign_workflow_id(tenant_id, snap.campaign_id))
    try:
        execution = (await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT)).status
    except RPCError:
        return snap.status
    status = campaign_status(CampaignStatus(snap.status), execution).value
    if status != snap.status:
        await repo.set_status(db, tenant_id, snap.campaign_id, status)
    return status


def parse_campaign_status(status: str | None) -> CampaignStatus | None:
    if status is None or status == "":
        return None
    found = STATUS_ALIASES.get(status.strip().lower())
    if found is None:
        raise ApiError(400, "BAD_REQUEST", f"unknown status '{status}'; use one of in_progress, paused, "
                       "completed, failed, canceled, draft", [{"field": "status", "message": "unknown status"}])
    return found


def _status_out(snap: Snapshot) -> CampaignStatusOut:
    p, counts = snap.progress, snap.progress.outcome_counts
    ended = _ended_calls(p)
    answered = counts.get(Outcome.COMPLETED.value, 0)
    final = sum(v for k, v in p.by_state.items() if ContactState(k).is_final)
    return CampaignStatusOut(
        campaign_id=snap.campaign_id,
        campaign_name=snap.config.name,
        status=snap.status,
        agent_id=snap.config.agent_id,
        created_at=snap.config.created_at,
        started_at=p.started_at,
        completed_at=p.finished_at,
        total_contacts=p.total_contacts,
        call_statistics=CallStatistics(
            total_calls=p.calls_placed,
            completed=answered,
            in_progress=p.live_calls,
            failed=counts.get(Outcome.FAILED.value, 0),
            no_answer=counts.get(Outcome.NO_ANSWER.value, 0),
            busy=counts.get(Outcome.BUSY.value, 0),
            voicemail=counts.get(Outcome.VOICEMAIL.value, 0),
            canceled=counts.get(Outcome.CANCELED.value, 0),
            queued=p.total_contacts - final - p.live_calls,
        ),
        success_metrics=SuccessMetrics(
            connection_rate=_rate(answered + counts.get(Outcome.VOICEMAIL.value, 0), ended),
            success_rate=_rate(answered, ended),
            average_call_duration=round(snap.talk_seconds / answered, 1) if answered else 0.0,
        ),
        progress=ProgressOut(percentage=p.percentage, estimated_completion=p.estimated_completion,
                             contacts_final=final, total_contacts=p.total_contacts),
        redial_info=RedialInfo(total_redials=p.redials_made, pending_redials=p.pending_redials,
                               next_redial_at=p.next_redial_at),
        pause_reason=p.pause_reason,
    )


def _summary(snaps: list[Snapshot], calls_today: int) -> StatusesSummary:
    answered = sum(s.progress.outcome_counts.get(Outcome.COMPLETED.value, 0) for s in snaps)
    ended = sum(_ended_calls(s.progress) for s in snaps)
    return StatusesSummary(
        total_campaigns=len(snaps),
        active_campaigns=sum(1 for s in snaps if s.status in (CampaignStatus.IN_PROGRESS, CampaignStatus.PAUSED)),
        completed_campaigns=sum(1 for s in snaps if s.status == CampaignStatus.COMPLETED),
        total_calls_today=calls_today,
        success_rate_overall=_rate(answered, ended),
    )


@router.get(
    "/getCampaignStatuses", response_model=CampaignStatusesOut,
    summary="Status of the tenant's campaigns (or one) with call statistics, success metrics, progress, "
    "redials, and a summary over the campaigns listed",
    responses={400: {"description": "BAD_REQUEST (unknown status)"}, 404: {"description": "NOT_FOUND (campaign_id)"}},
)
async def get_campaign_statuses(
    tenant: TenantDep, db: DbDep, client: ClientDep,
    campaign_id: Annotated[str | None, Query(description="Only this campaign")] = None,
    status: Annotated[str | None, Query(
        description="in_progress, paused, completed, failed, canceled or draft")] = None,
) -> CampaignStatusesOut:
    wanted = parse_campaign_status(status)
    if campaign_id:
        snaps = [await snapshot(db, client, tenant.id, campaign_id)]
        if wanted is not None:
            snaps = [s for s in snaps if s.status == wanted.value]
    else:
        snaps = [snapshot_of(row) for row in await repo.list_campaigns(db, tenant.id, wanted)]
        snaps.sort(key=lambda s: s.config.created_at, reverse=True)
    # Calls placed since midnight (UTC) over the campaigns listed: a counter row per campaign.
    today = datetime.now(UTC).date()
    calls_today = await repo.calls_on(db, tenant.id, today, [s.campaign_id for s in snaps]) if snaps else 0
    return CampaignStatusesOut(campaigns=[_status_out(s) for s in snaps], summary=_summary(snaps, calls_today))


@router.get(
    "/getCampaignStats/{campaign_id}", response_model=CampaignStatsOut,
    summary="Outcome breakdown of one campaign",
    responses={404: {"description": "NOT_FOUND"}},
)
async def get_campaign_stats(campaign_id: str, tenant: TenantDep, db: DbDep, client: ClientDep) -> CampaignStatsOut:
    snap = await snapshot(db, client, tenant.id, campaign_id)
    p, counts = snap.progress, snap.progress.outcome_counts
    final = sum(v for k, v in p.by_state.items() if ContactState(k).is_final)
    busy, no_answer = counts.get(Outcome.BUSY.value, 0), counts.get(Outcome.NO_ANSWER.value, 0)
    failed = counts.get(Outcome.FAILED.value, 0)
    return CampaignStatsOut(
        campaign_id=campaign_id, campaign_name=snap.config.name, status=snap.status,
        total_contacts=p.total_contacts,
        answered=counts.get(Outcome.COMPLETED.value, 0), busy=busy, no_answer=no_answer, failed=failed,
        voicemail=counts.get(Outcome.VOICEMAIL.value, 0), canceled=counts.get(Outcome.CANCELED.value, 0),
        calls_completed=_ended_calls(p), calls_failed=busy + no_answer + failed,
        calls_in_progress=p.live_calls, calls_pending=p.total_contacts - final - p.live_calls,
        by_disposition=p.by_disposition, by_state=p.by_state,
    )


# --- resource style ------------------------------------------------------------------------------


@router.get(
    "/campaigns/{campaign_id}", response_model=CampaignOutFull,
    summary="The campaign: configuration, status, counts by contact state and outcome, progress, ETA",
    responses={404: {"description": "NOT_FOUND"}},
)
async def get_campaign(campaign_id: str, tenant: TenantDep, db: DbDep, client: ClientDep) -> CampaignOutFull:
    snap = await snapshot(db, client, tenant.id, campaign_id)
    p, config = snap.progress, snap.config
    return CampaignOutFull(
        campaign_id=campaign_id, object_id=config.object_id, campaign_name=config.name,
        status=snap.status, agent_id=config.agent_id, created_at=config.created_at,
        started_at=p.started_at, finished_at=p.finished_at, total_contacts=p.total_contacts,
        expected_contacts=p.expected_contacts, duplicates_merged=p.duplicates_merged, by_state=p.by_state,
        by_disposition=p.by_disposition, outcome_counts=p.outcome_counts, calls_placed=p.calls_placed,
        live_calls=p.live_calls, redials_made=p.redials_made, pending_redials=p.pending_redials,
        next_redial_at=p.next_redial_at, percentage=p.percentage, estimated_completion=p.estimated_completion,
        pause_reason=p.pause_reason, run=p.run, configuration=configuration(config),
        held=[HeldOut(state=r.state, reason=r.reason, contacts=r.contacts, opens_at=r.opens_at)
              for r in await repo.held_contacts(db, tenant.id, campaign_id)],
    )


def _encode_cursor(last_key: int) -> str:
    return base64.urlsafe_b64encode(f"k:{last_key}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    """The last contact key of the previous page (keyset paging: no offset to skip)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        last_key = int(value)
        if kind != "k" or last_key < 0:
            raise ValueError
        return last_key
    except ValueError:
        raise ApiError(400, "BAD_REQUEST", "invalid cursor: pass back the next_cursor of the previous page",
                       [{"field": "cursor", "message": "invalid"}]) from None


def _contact_filter(status: str | None) -> tuple[ContactState | None, Outcome | None]:
    if not status:
        return None, None
    text = status.strip().lower()
    try:
        return ContactState(text), None
    except ValueError:
        pass
    try:
        # A final outcome is the disposition of contacts done with it (reported_disposition: a
        # contact stopped after a busy call reads `canceled`, and is listed under that).
        return ContactState.DONE, Outcome(text.replace("_", "-"))
    except ValueError:
        states = ", ".join(s.value for s in ContactState)
        outcomes = ", ".join(o.value for o in Outcome)
        raise ApiError(400, "BAD_REQUEST", f"unknown status '{status}': a contact state ({states}) or a final "
                       f"outcome ({outcomes})", [{"field": "status", "message": "unknown status"}]) from None


_NEXT_ACTION = {
    ContactState.PENDING: "start",
    ContactState.SCHEDULED: "call",
    ContactState.QUEUED: "call as soon as the campaign allows",
    ContactState.DIALING: "wait for the call to end",
    ContactState.REDIAL_WAIT: "redial",
}


def _contact_out(r: Row) -> ContactOut:
    state = ContactState(r.state)
    return ContactOut(
        index=r.key, phone_number=r.phone, state=state.value, attempts=r.attempts,
        disposition=reported_disposition(state, r.disposition), last_outcome=r.last_outcome,
        next_action=_NEXT_ACTION.get(state), next_action_at=None if state.is_final else r.next_call_at,
        talk_seconds=r.talk_seconds, reason=r.reason, consent=r.consent,
    )


@router.get(
    "/campaigns/{campaign_id}/contacts", response_model=ContactPageOut,
    summary="A page of the campaign's contacts with state, attempts and next action",
    responses={400: {"description": "BAD_REQUEST (status or cursor)"}, 404: {"description": "NOT_FOUND"}},
)
async def list_contacts(
    campaign_id: str, tenant: TenantDep, db: DbDep,
    status: Annotated[str | None, Query(description="A contact state (pending, scheduled, queued, dialing, "
                                        "redial_wait, done, removed, canceled) or a final outcome "
                                        "(completed, no-answer, busy, failed, voicemail)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> ContactPageOut:
    state, disposition = _contact_filter(status)
    after = _decode_cursor(cursor) if cursor else -1
    await campaign_row(db, tenant.id, campaign_id)
    rows, total = await repo.contacts_page(
        db, tenant.id, campaign_id, state=state.value if state else None,
        disposition=disposition.value if disposition else None, after_key=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ContactPageOut(
        campaign_id=campaign_id, contacts=[_contact_out(r) for r in rows], total=total,
        next_cursor=_encode_cursor(rows[-1].key) if more and rows else None,
    )
