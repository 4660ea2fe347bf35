"""The export: every contact of a campaign with each of its call attempts, as CSV (streamed
from a server-side cursor, memory flat) or an Excel workbook."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import DbDep, TenantDep
from api.errors import ApiError
from api.routes.monitoring import campaign_row
from campaign_engine.ids import campaign_workflow_id, contact_workflow_id, idempotency_key
from campaign_engine.models import reported_disposition
from campaign_engine.store import repo

router = APIRouter(tags=["campaign monitoring"])

EXPORT_CHUNK = 500


CSV_COLUMNS = ["campaign_id", "contact_index", "phone_number", "name", "email", "custom_data", "contact_state",
               "disposition", "attempt", "attempt_time", "ended_at", "outcome", "duration_seconds", "call_id",
               "provider", "from_number", "hangup_cause", "recording_url", "reason", "reference_id",
               # The contact's consent (issue 14), empty when it has none.
               "consent_source", "consent_obtained_at", "consent_text", "consent_reference"]
CONSENT_FIELDS = ("source", "obtained_at", "text", "reference")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _export_row(campaign_id: str, wf_id: str, r: Row) -> list:
    """One attempt of one contact (a contact never called: its row with empty attempt columns)."""
    called = r.attempt is not None
    return [
        campaign_id, r.key, r.phone, r.name or "", r.email or "",
        json.dumps(r.custom_data, ensure_ascii=False, separators=(",", ":")) if r.custom_data else "",
        r.state, reported_disposition(r.state, r.disposition) or "",
        r.attempt if called else "", _iso(r.placed_at), _iso(r.ended_at), r.outcome or "",
        "" if r.duration_seconds is None else r.duration_seconds, r.call_id or "", r.provider or "",
        r.from_number or "", r.hangup_cause or "", r.recording_url or "",
        (r.attempt_reason if called else r.reason) or "",
        idempotency_key(contact_workflow_id(wf_id, r.key), r.attempt) if called else "",
        *(str((r.consent or {}).get(name) or "") for name in CONSENT_FIELDS),
    ]


def _csv_text(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


async def _export_csv(db: AsyncEngine, tenant_id: str, campaign_id: str) -> AsyncIterator[str]:
    """The CSV streamed from a server-side cursor: memory stays flat at any size."""
    wf_id = campaign_workflow_id(tenant_id, campaign_id)
    yield _csv_text([CSV_COLUMNS])
    chunk: list[list] = []
    async for row in repo.export_rows(db, tenant_id, campaign_id):
        chunk.append(_export_row(campaign_id, wf_id, row))
        if len(chunk) >= EXPORT_CHUNK:
            yield _csv_text(chunk)
            chunk = []
    if chunk:
        yield _csv_text(chunk)


async def _export_xlsx(db: AsyncEngine, tenant_id: str, campaign_id: str) -> bytes:
    """The same rows as a workbook, plus one column per custom_data key (numbers as numbers,
    empty cells empty). A workbook is a zip written at the end, so it cannot stream: the rows
    go to openpyxl's write-only sheet, which keeps them compact, and the file is built off the
    event loop."""
    from openpyxl import Workbook

    wf_id = campaign_workflow_id(tenant_id, campaign_id)
    keys = await repo.custom_data_keys(db, tenant_id, campaign_id)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("attempts")
    sheet.append(CSV_COLUMNS + [f"custom_data.{k}" for k in keys])
    async for row in repo.export_rows(db, tenant_id, campaign_id):
        extra: list[Any] = [_cell((row.custom_data or {}).get(k)) for k in keys]
        sheet.append([None if value == "" else value for value in _export_row(campaign_id, wf_id, row)] + extra)
    out = io.BytesIO()
    await asyncio.to_thread(book.save, out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


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
    tenant: TenantDep, db: DbDep,
    campaign_id: Annotated[str, Query()],
    format: Annotated[str, Query(description="csv or xlsx")] = "csv",
) -> Response:
    fmt = format.strip().lower()
    if fmt not in ("csv", "xlsx"):
        raise ApiError(400, "BAD_REQUEST", f"unknown format '{format}'; use format=csv or format=xlsx",
                       [{"field": "format", "message": "csv or xlsx"}])
    await campaign_row(db, tenant.id, campaign_id)  # 404 before the stream starts
    if fmt == "xlsx":
        return Response(
            await _export_xlsx(db, tenant.id, campaign_id), media_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{campaign_id}.xlsx"'},
        )
    return StreamingResponse(
        _export_csv(db, tenant.id, campaign_id), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}.csv"'},
    )
