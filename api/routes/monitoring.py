"""Monitoring: campaign statuses, stats, the CSV export, the campaign and its contacts.

Every figure comes from the live workflows: the campaign workflow's queries (they also answer
once it has finished, while a worker polls) and, for the export, each contact workflow's
`status` query (its attempts). The list of a tenant's campaigns comes from Temporal
visibility (the TenantId search attribute), which is eventually consistent: a campaign
created a moment ago may be missing from the list for a moment, never from a direct lookup.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ClientDep, SettingsDep, TenantDep
from api.errors import ApiError
from api.lifecycle_schemas import (
    CallStatistics,
    CampaignOutFull,
    CampaignStatsOut,
    CampaignStatusesOut,
    CampaignStatusOut,
    ContactOut,
    ContactPageOut,
    ProgressOut,
    RedialInfo,
    StatusesSummary,
    SuccessMetrics,
)
from api.routes.lifecycle import (
    QUERY_TIMEOUT,
    all_contacts,
    api_status,
    campaign_handle,
    configuration,
    execution_status,
    query,
)
from campaign_engine.ids import contact_workflow_id
from campaign_engine.models import (
    CampaignConfig,
    CampaignProgress,
    CampaignStatus,
    ContactPageRequest,
    ContactState,
    ContactStatus,
    ContactSummary,
    Outcome,
)
from campaign_engine.settings import Settings
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow

router = APIRouter(tags=["campaign monitoring"])
log = logging.getLogger("api.monitoring")

# Campaigns queried at once by the statuses list; contact workflows queried at once by the export.
CAMPAIGN_QUERY_CONCURRENCY = 16
CONTACT_QUERY_CONCURRENCY = 50
# Contacts per page of the export (each page is one campaign query and its contacts' queries).
EXPORT_PAGE = 500
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

STATUS_ALIASES = {
    "in_progress": CampaignStatus.IN_PROGRESS, "in-progress": CampaignStatus.IN_PROGRESS,
    "running": CampaignStatus.IN_PROGRESS, "paused": CampaignStatus.PAUSED,
    "completed": CampaignStatus.COMPLETED, "failed": CampaignStatus.FAILED,
    "canceled": CampaignStatus.CANCELED, "cancelled": CampaignStatus.CANCELED,
    "draft": CampaignStatus.DRAFT, "not-yet-started": CampaignStatus.DRAFT, "not_yet_started": CampaignStatus.DRAFT,
}


@dataclass
class Snapshot:
    """One campaign as the monitoring endpoints see it."""

    campaign_id: str
    client: Client
    handle: WorkflowHandle
    status: str
    progress: CampaignProgress
    config: CampaignConfig
    talk_seconds: float = 0.0


def _rate(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _ended_calls(progress: CampaignProgress) -> int:
    return sum(progress.outcome_counts.values())


async def snapshot(client: Client, handle: WorkflowHandle, campaign_id: str,
                   execution: WorkflowExecutionStatus | None = None, *, describe: bool = True) -> Snapshot:
    calls = [query(handle, campaign_id, CampaignWorkflow.progress), query(handle, campaign_id, CampaignWorkflow.config)]
    if describe:
        calls.append(execution_status(handle, campaign_id))
    results = await asyncio.gather(*calls)
    progress, config = results[0], results[1]
    if describe:
        execution = results[2]
    talk_seconds = 0.0
    if progress.outcome_counts.get(Outcome.COMPLETED.value):  # only answered calls have talk time
        talk_seconds = sum(c.talk_seconds for c in await all_contacts(handle, campaign_id, progress))
    return Snapshot(campaign_id, client, handle, api_status(progress, execution), progress, config,
                    talk_seconds=talk_seconds)


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


async def tenant_campaigns(client: Client, settings: Settings, tenant_id: str) -> dict[str, WorkflowExecutionStatus]:
    """The tenant's campaigns on this engine's task queue: campaign id -> status of its latest run.

    A campaign that continued as new is listed once per run: the latest run wins.
    """
    tenant = tenant_id.replace("\\", "\\\\").replace("'", "\\'")
    task_queue = settings.temporal_task_queue.replace("\\", "\\\\").replace("'", "\\'")
    visibility = (f"TenantId = '{tenant}' AND WorkflowType = 'CampaignWorkflow' "
                  f"AND TaskQueue = '{task_queue}'")
    latest: dict[str, tuple[datetime, WorkflowExecutionStatus | None]] = {}
    prefix = f"campaign/{tenant_id}/"
    async for wf in client.list_workflows(visibility, rpc_timeout=QUERY_TIMEOUT):
        if not wf.id.startswith(prefix):
            continue
        seen = latest.get(wf.id)
        if seen is None or wf.start_time >= seen[0]:
            latest[wf.id] = (wf.start_time, wf.status)
    return {wf_id[len(prefix):]: status for wf_id, (_, status) in latest.items()}


async def _calls_today(snap: Snapshot, today: datetime, sem: asyncio.Semaphore) -> int:
    """Calls placed since `today` (00:00 UTC): exact without reading attempts unless the
    campaign was already calling before midnight and still is (or ended today)."""
    p = snap.progress
    if p.started_at is None or p.calls_placed == 0:
        return 0
    if p.started_at >= today:
        return p.calls_placed
    if p.finished_at is not None and p.finished_at < today:
        return 0
    contacts = await all_contacts(snap.handle, snap.campaign_id, p)
    statuses = await _contact_statuses(snap.client, snap.handle, [c for c in contacts if c.attempts or
                                                     c.state == ContactState.DIALING], sem)
    return sum(1 for s in statuses.values() for a in s.attempts if a.placed_at and a.placed_at >= today)


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
    tenant: TenantDep, client: ClientDep, settings: SettingsDep,
    campaign_id: Annotated[str | None, Query(description="Only this campaign")] = None,
    status: Annotated[str | None, Query(
        description="in_progress, paused, completed, failed, canceled or draft")] = None,
) -> CampaignStatusesOut:
    wanted = parse_campaign_status(status)
    if campaign_id:
        snaps = [await snapshot(client, campaign_handle(client, tenant.id, campaign_id), campaign_id)]
    else:
        listed = await tenant_campaigns(client, settings, tenant.id)
        sem = asyncio.Semaphore(CAMPAIGN_QUERY_CONCURRENCY)

        async def one(cid: str, execution: WorkflowExecutionStatus | None) -> Snapshot | None:
            async with sem:
                try:
                    return await snapshot(client, campaign_handle(client, tenant.id, cid), cid, execution,
                                          describe=False)
                except ApiError as err:  # gone since it was listed, or its worker does not answer
                    log.warning("campaign %s left out of the statuses: %s", cid, err.message)
                    return None

        snaps = [s for s in await asyncio.gather(*(one(c, e) for c, e in listed.items())) if s is not None]
        snaps.sort(key=lambda s: s.config.created_at, reverse=True)
    if wanted is not None:
        snaps = [s for s in snaps if s.status == wanted.value]
    today = datetime.combine(datetime.now(UTC).date(), time(0), tzinfo=UTC)
    sem = asyncio.Semaphore(CONTACT_QUERY_CONCURRENCY)
    calls_today = sum(await asyncio.gather(*(_calls_today(s, today, sem) for s in snaps)))
    return CampaignStatusesOut(campaigns=[_status_out(s) for s in snaps], summary=_summary(snaps, calls_today))


@router.get(
    "/getCampaignStats/{campaign_id}", response_model=CampaignStatsOut,
    summary="Outcome breakdown of one campaign",
    responses={404: {"description": "NOT_FOUND"}},
)
async def get_campaign_stats(campaign_id: str, tenant: TenantDep, client: ClientDep) -> CampaignStatsOut:
    snap = await snapshot(client, campaign_handle(client, tenant.id, campaign_id), campaign_id)
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


# --- the export ----------------------------------------------------------------------------------


CSV_COLUMNS = ["campaign_id", "contact_index", "phone_number", "contact_state", "disposition", "attempt",
               "attempt_time", "ended_at", "outcome", "duration_seconds", "call_id", "hangup_cause", "reason"]


async def _contact_statuses(client: Client, handle: WorkflowHandle, contacts: list[ContactSummary],
                            sem: asyncio.Semaphore) -> dict[int, ContactStatus]:
    """The `status` of each contact's workflow (its attempts), for the contacts given."""

    async def one(c: ContactSummary) -> tuple[int, ContactStatus | None]:
        async with sem:
            child = client.get_workflow_handle(contact_workflow_id(handle.id, c.key))
            try:
                return c.key, await child.query(ContactCallWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:  # never started (canceled or removed before)
                    return c.key, None
                raise

    results = await asyncio.gather(*(one(c) for c in contacts))
    return {key: status for key, status in results if status is not None}


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _csv_rows(campaign_id: str, contact: ContactSummary, status: ContactStatus | None) -> list[list]:
    base = [campaign_id, contact.key, contact.phone, contact.state.value,
            contact.disposition.value if contact.disposition else ""]
    attempts = status.attempts if status is not None else []
    if not attempts:
        return [base + ["", "", "", "", "", "", "", contact.reason or ""]]
    return [
        base + [a.attempt, _iso(a.placed_at), _iso(a.ended_at), a.outcome.value if a.outcome else "",
                "" if a.duration_seconds is None else a.duration_seconds, a.call_id or "",
                a.hangup_cause or "", a.reason or ""]
        for a in attempts
    ]


def _csv_text(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


async def _export_rows(client: Client, handle: WorkflowHandle, campaign_id: str) -> AsyncIterator[list[list]]:
    """The export's rows, a page of contacts at a time (the header first)."""
    yield [CSV_COLUMNS]
    sem = asyncio.Semaphore(CONTACT_QUERY_CONCURRENCY)
    offset: int | None = 0
    while offset is not None:
        page = await query(handle, campaign_id, CampaignWorkflow.contacts,
                           ContactPageRequest(offset=offset, limit=EXPORT_PAGE))
        called = [c for c in page.contacts if c.attempts or c.state == ContactState.DIALING]
        statuses = await _contact_statuses(client, handle, called, sem)
        yield [row for c in page.contacts for row in _csv_rows(campaign_id, c, statuses.get(c.key))]
        offset = page.next_offset


async def _export_csv(client: Client, handle: WorkflowHandle, campaign_id: str) -> AsyncIterator[str]:
    async for rows in _export_rows(client, handle, campaign_id):
        yield _csv_text(rows)


async def _export_xlsx(client: Client, handle: WorkflowHandle, campaign_id: str) -> bytes:
    """The same rows as a workbook (numbers as numbers, empty cells empty). A workbook is a zip
    written at the end, so it cannot stream: the rows go to openpyxl's write-only sheet, which
    keeps them compact, and the file is built off the event loop."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("attempts")
    async for rows in _export_rows(client, handle, campaign_id):
        for row in rows:
            sheet.append([None if value == "" else value for value in row])
    out = io.BytesIO()
    await asyncio.to_thread(book.save, out)
    return out.getvalue()


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/downloadCampaignStats",
    summary="CSV or Excel workbook of every contact with each call attempt (time, outcome, duration, call id)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}},
                     "description": "One row per attempt; a contact never called has one row with empty "
                     "attempt columns. csv streams; xlsx is built whole, then sent"},
               400: {"description": "BAD_REQUEST (format)"}, 404: {"description": "NOT_FOUND"}},
)
async def download_campaign_stats(
    tenant: TenantDep, client: ClientDep,
    campaign_id: Annotated[str, Query()],
    format: Annotated[str, Query(description="csv or xlsx")] = "csv",
) -> Response:
    fmt = format.strip().lower()
    if fmt not in ("csv", "xlsx"):
        raise ApiError(400, "BAD_REQUEST", f"unknown format '{format}'; use format=csv or format=xlsx",
                       [{"field": "format", "message": "csv or xlsx"}])
    handle = campaign_handle(client, tenant.id, campaign_id)
    await query(handle, campaign_id, CampaignWorkflow.config)  # 404 before the stream starts
    if fmt == "xlsx":
        return Response(
            await _export_xlsx(client, handle, campaign_id), media_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{campaign_id}.xlsx"'},
        )
    return StreamingResponse(
        _export_csv(client, handle, campaign_id), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}.csv"'},
    )


# --- resource style ------------------------------------------------------------------------------


@router.get(
    "/campaigns/{campaign_id}", response_model=CampaignOutFull,
    summary="The campaign: configuration, status, counts by contact state and outcome, progress, ETA",
    responses={404: {"description": "NOT_FOUND"}},
)
async def get_campaign(campaign_id: str, tenant: TenantDep, client: ClientDep) -> CampaignOutFull:
    handle = campaign_handle(client, tenant.id, campaign_id)
    progress, config, execution = await asyncio.gather(
        query(handle, campaign_id, CampaignWorkflow.progress), query(handle, campaign_id, CampaignWorkflow.config),
        execution_status(handle, campaign_id))
    p = progress
    return CampaignOutFull(
        campaign_id=campaign_id, object_id=config.object_id, campaign_name=config.name,
        status=api_status(p, execution), agent_id=config.agent_id, created_at=config.created_at,
        started_at=p.started_at, finished_at=p.finished_at, total_contacts=p.total_contacts,
        expected_contacts=p.expected_contacts, duplicates_merged=p.duplicates_merged, by_state=p.by_state,
        by_disposition=p.by_disposition, outcome_counts=p.outcome_counts, calls_placed=p.calls_placed,
        live_calls=p.live_calls, redials_made=p.redials_made, pending_redials=p.pending_redials,
        next_redial_at=p.next_redial_at, percentage=p.percentage, estimated_completion=p.estimated_completion,
        pause_reason=p.pause_reason, missing_contacts=p.missing_contacts, run=p.run, configuration=configuration(config),
    )


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        offset = int(value)
        if kind != "o" or offset < 0:
            raise ValueError
        return offset
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
        return None, Outcome(text.replace("_", "-"))
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


def _contact_out(c: ContactSummary) -> ContactOut:
    return ContactOut(
        index=c.key, phone_number=c.phone, state=c.state.value, attempts=c.attempts,
        disposition=c.disposition.value if c.disposition else None,
        last_outcome=c.last_outcome.value if c.last_outcome else None,
        next_action=_NEXT_ACTION.get(c.state), next_action_at=None if c.state.is_final else c.next_call_at,
        talk_seconds=c.talk_seconds, reason=c.reason,
    )


@router.get(
    "/campaigns/{campaign_id}/contacts", response_model=ContactPageOut,
    summary="A page of the campaign's contacts with state, attempts and next action",
    responses={400: {"description": "BAD_REQUEST (status or cursor)"}, 404: {"description": "NOT_FOUND"}},
)
async def list_contacts(
    campaign_id: str, tenant: TenantDep, client: ClientDep,
    status: Annotated[str | None, Query(description="A contact state (pending, scheduled, queued, dialing, "
                                        "redial_wait, done, removed, canceled) or a final outcome "
                                        "(completed, no-answer, busy, failed, voicemail)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> ContactPageOut:
    state, disposition = _contact_filter(status)
    offset = _decode_cursor(cursor) if cursor else 0
    handle = campaign_handle(client, tenant.id, campaign_id)
    page = await query(handle, campaign_id, CampaignWorkflow.contacts,
                       ContactPageRequest(state=state, disposition=disposition, offset=offset, limit=limit))
    return ContactPageOut(
        campaign_id=campaign_id, contacts=[_contact_out(c) for c in page.contacts], total=page.total,
        next_cursor=_encode_cursor(page.next_offset) if page.next_offset is not None else None,
    )
