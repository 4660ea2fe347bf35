"""CSV and Excel uploads to /uploadCampaignData and /uploadCampaignDataAndRun.

Two forms: `multipart/form-data` with a `file` part and the campaign fields as form fields (or
a `config` part holding them as JSON), or the file itself as the body (`text/csv`, or the xlsx
media type) with the campaign fields as query parameters. The file is spooled to a temporary
file as it arrives (at most SPOOL_MEMORY bytes of it in memory), then read row by row
(api.csv_rows): each row is validated by the JSON path's rules (ContactIn, E.164, scheduled
time) and the valid ones go to the store a page at a time inside one transaction
(campaign_engine.store.bulk). The workflow is started once, with the total, after the commit.
Memory is bounded by a page, whatever the file's size; the limit is MAX_UPLOAD_ROWS rows (not
MAX_BODY_BYTES, which is the JSON bodies'; a file may be up to MAX_UPLOAD_BYTES).

Upload-and-run refuses the whole file when any row is invalid (nothing is written); the
draft upload keeps the valid rows and reports the others. Errors name the file's row (the
header is row 1) and the column as headed in the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import UploadFile
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import csv_rows
from api.campaigns import build_config, start_campaign_workflow
from api.contact_validation import consent_missing, refuse_consent, zone_resolver
from api.idempotency import campaign_id_for_key
from api.errors import ApiError, is_consent_error
from api.schemas import CampaignIn, CampaignOut, ContactIn, ContactsReportOut, ExecutionStatusOut, RedialConfigOut
from api.schemas import UploadAndRunData
from campaign_engine.models import CampaignConfig, CampaignStatus, Contact
from campaign_engine.phones import InvalidPhoneNumber, parse_phone
from campaign_engine.policy.eta import campaign_eta
from campaign_engine.settings import Settings
from campaign_engine.store import bulk, compliance, repo, roster

SPOOL_MEMORY = 1024 * 1024
PAGE = 1000
CHUNK = 64 * 1024
# Row errors listed in an answer (all are counted in failed_count).
MAX_REPORTED_ERRORS = 1000
FILE_MEDIA_TYPES = {"text/csv", "application/csv", *csv_rows.XLSX_TYPES}
# Campaign fields whose values are text; any other field's value may be JSON (true, 5, {...}).
_TEXT_FIELDS = {"campaignName", "campaign_name", "agentId", "agent_id", "notificationWebhookUrl",
                "notification_webhook_url", "provider", "callerIdStrategy", "campaign_id", "campaignId",
                "schedule_time", "scheduleTime"}


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def is_file_upload(content_type: str | None) -> bool:
    media = media_type(content_type)
    return media == "multipart/form-data" or media in FILE_MEDIA_TYPES


@dataclass
class Upload:
    fields: dict[str, Any]
    file: IO[bytes]
    filename: str | None
    content_type: str | None
    fingerprint: str


def _field_value(name: str, value: str) -> Any:
    if name in _TEXT_FIELDS:
        return value
    stripped = value.strip()
    if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null"):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


def _fingerprint(fields: dict[str, Any], file: IO[bytes]) -> str:
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\0")
    file.seek(0)
    while chunk := file.read(CHUNK):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


async def read_upload(request: Request, settings: Settings) -> Upload:
    """The campaign fields and the spooled file of a file upload (either form)."""
    content_type = request.headers.get("content-type")
    if media_type(content_type) == "multipart/form-data":
        return await _read_multipart(request, settings)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_upload_bytes:
            spool.close()
            raise _too_large_bytes(settings)
        spool.write(chunk)
    spool.seek(0)
    fields = {k: _field_value(k, v) for k, v in request.query_params.multi_items()}
    return Upload(fields, spool, None, content_type, _fingerprint(fields, spool))


def _too_large_bytes(settings: Settings) -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE",
                    f"the file is larger than {settings.max_upload_bytes} bytes (MAX_UPLOAD_BYTES)")


async def _read_multipart(request: Request, settings: Settings) -> Upload:
    try:
        form = await request.form(max_files=2, max_fields=200)
    except Exception as err:  # starlette's MultiPartException and parser errors
        raise ApiError(400, "BAD_REQUEST", f"the multipart body cannot be read: {err}") from None
    fields: dict[str, Any] = {}
    file: UploadFile | None = None
    for name, value in form.multi_items():
        if name == "file" and isinstance(value, UploadFile):
            file = value
        elif name == "config":
            raw = await value.read(SPOOL_MEMORY + 1) if isinstance(value, UploadFile) else value.encode()
            try:
                config = json.loads(raw)
            except ValueError:
                raise ApiError(400, "BAD_REQUEST", "config: not a JSON object",
                               [{"field": "config", "message": "not a JSON object"}]) from None
            if not isinstance(config, dict):
                raise ApiError(400, "BAD_REQUEST", "config: not a JSON object",
                               [{"field": "config", "message": "not a JSON object"}])
            fields.update(config)
        elif isinstance(value, str):
            fields[name] = _field_value(name, value)
    if file is None:
        raise ApiError(400, "BAD_REQUEST", "file: a multipart upload needs a `file` part (the CSV or xlsx)",
                       [{"field": "file", "message": "required"}])
    file.file.seek(0, 2)
    if file.file.tell() > settings.max_upload_bytes:
        raise _too_large_bytes(settings)
    file.file.seek(0)
    return Upload(fields, file.file, file.filename, file.content_type, _fingerprint(fields, file.file))


def open_rows(upload: Upload) -> tuple[csv_rows.Columns, Iterator[tuple[int, list[Any]]]]:
    head = upload.file.read(8)
    upload.file.seek(0)
    try:
        csv_rows.decode_check(head)
        if csv_rows.is_xlsx(upload.content_type, upload.filename, head):
            return csv_rows.xlsx_rows(upload.file)
        return csv_rows.csv_rows(upload.file)
    except csv_rows.FileError as err:
        raise _file_error(err) from None


def _file_error(err: csv_rows.FileError) -> ApiError:
    return ApiError(400, "BAD_REQUEST", f"file: {err}", [{"field": "file", "message": str(err)}])


def campaign_body(fields: dict[str, Any]) -> CampaignIn:
    """The upload-and-run fields as a CampaignIn (the contacts are the file's)."""
    if "contacts" in fields:
        raise ApiError(400, "BAD_REQUEST", "contacts: the contacts of a file upload are the file's rows",
                       [{"field": "contacts", "message": "not allowed with a file"}])
    try:
        return CampaignIn.model_validate({**fields, "contacts": [{"phone_number": "+0"}]})
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None


@dataclass
class RowReport:
    received: int = 0
    valid: int = 0
    failed: int = 0
    errors: list[dict] = field(default_factory=list)
    # Rows whose consent is malformed or missing (CONSENT_REQUIRED): the file is refused (422).
    consent_errors: list[dict] = field(default_factory=list)

    def refuse(self, row: int, column: str, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "field": column, "message": message})


def consent_error(columns: csv_rows.Columns, n: int, values: dict[str, Any], err: ValidationError | None,
                  required: bool) -> dict | None:
    """A file row's consent problem (malformed, or missing under CONSENT_REQUIRED), naming the
    column as headed; None when its consent is fine."""
    if err is not None:
        found = next((e for e in err.errors() if is_consent_error(e.get("loc", ()))), None)
        if found is None:
            return None
        loc = [str(p) for p in found.get("loc", ())]
        column = columns.header_of(".".join(loc[:2]))
        return {"row": n, "field": column, "message": found.get("msg", "invalid")}
    if required and "consent" not in values:
        return consent_missing(n, "consent_source")
    return None


def check_consent(columns: csv_rows.Columns, rows: Iterator[tuple[int, list[Any]]], required: bool) -> None:
    """Every row's consent read once, before anything is written (a file appended a page at a
    time): 422 on the first problem's row and column, each listed."""
    errors: list[dict] = []
    for n, cells in rows:
        values = csv_rows.row_values(columns, cells)
        if values is None or (not required and "consent" not in values):
            continue
        err = None
        if "consent" in values:
            try:
                ContactIn.model_validate({"phone_number": "", "consent": values["consent"]})
            except ValidationError as exc:
                err = exc
        problem = consent_error(columns, n, values, err, required)
        if problem is not None and len(errors) < MAX_REPORTED_ERRORS:
            errors.append(problem)
    refuse_consent(errors, file=True)


def contacts_of(columns: csv_rows.Columns, rows: Iterator[tuple[int, list[Any]]], report: RowReport, *,
                scheduled: bool, default_time: datetime | None, zones_for, max_rows: int,
                consent_required: bool = False) -> Iterator[tuple[int, Contact]]:
    """The valid rows as (file row, Contact), the others counted and reported in `report`. A
    row whose consent is malformed, or missing under `consent_required`, refuses the file: 422
    once every row has been read (nothing is written: the caller's transaction rolls back)."""
    yield from _contacts_of(columns, rows, report, scheduled=scheduled, default_time=default_time,
                            zones_for=zones_for, max_rows=max_rows, consent_required=consent_required)
    refuse_consent(report.consent_errors, file=True)


def _contacts_of(columns: csv_rows.Columns, rows: Iterator[tuple[int, list[Any]]], report: RowReport, *,
                 scheduled: bool, default_time: datetime | None, zones_for, max_rows: int,
                 consent_required: bool) -> Iterator[tuple[int, Contact]]:
    for n, cells in rows:
        values = csv_rows.row_values(columns, cells)
        if values is None:
            continue
        report.received += 1
        if report.received > max_rows:
            raise ApiError(413, "PAYLOAD_TOO_LARGE",
                           f"the file has more than {max_rows} contact rows (MAX_UPLOAD_ROWS)")
        try:
            row = ContactIn.model_validate(values)
        except ValidationError as err:
            problem = consent_error(columns, n, values, err, consent_required)
            if problem is not None:
                if len(report.consent_errors) < MAX_REPORTED_ERRORS:
                    report.consent_errors.append(problem)
                continue
            first = err.errors()[0]
            loc = first.get("loc", ())
            column = columns.header_of(str(loc[0])) if loc else "row"
            report.refuse(n, column, first.get("msg", "invalid"))
            continue
        if consent_required and row.consent is None:
            if len(report.consent_errors) < MAX_REPORTED_ERRORS:
                report.consent_errors.append(consent_missing(n, "consent_source"))
            continue
        if default_time is not None and row.scheduledCallDateTime is None:
            row = row.model_copy(update={"scheduledCallDateTime": default_time})
        try:
            parsed = parse_phone(row.phone_number)
        except InvalidPhoneNumber as err:
            report.refuse(n, columns.phone_header, str(err))
            continue
        if scheduled and row.scheduledCallDateTime is None:
            report.refuse(n, columns.header_of("scheduledCallDateTime"),
                          "required when isScheduledCall is true (ISO 8601 with a time zone)")
            continue
        report.valid += 1
        yield n, Contact(
            key=0, phone=parsed.e164, masked=parsed.masked, name=row.name, email=row.email,
            custom_data=row.custom_data,
            scheduled_at=row.scheduledCallDateTime.astimezone(UTC) if scheduled and row.scheduledCallDateTime else None,
            timezone=row.timezone, zones=zones_for(parsed, row.timezone) if zones_for else [], consent=row.consent)


def _summary(report: RowReport) -> str:
    first = report.errors[0]
    more = f" (and {report.failed - 1} more)" if report.failed > 1 else ""
    return f"row {first['row']}, {first['field']}: {first['message']}{more}"


@dataclass
class Created:
    config: CampaignConfig
    total: int
    duplicates: int
    received: int
    report: RowReport
    existing: Any = None  # the row an earlier request with the Idempotency-Key made


async def create_from_file(
    client: Client, db: AsyncEngine, settings: Settings, tenant_id: str, body: CampaignIn, upload: Upload, *,
    start_paused: bool, keep_valid: bool, default_time: datetime | None, idempotency_key: str | None,
) -> Created:
    """The campaign and the file's valid rows in one transaction, then its workflow started."""
    now = datetime.now(UTC)
    campaign_id = campaign_id_for_key(tenant_id, idempotency_key, now) if idempotency_key else None
    config = build_config(body, tenant_id, settings, now, campaign_id)
    columns, rows = open_rows(upload)
    report = RowReport()
    status = CampaignStatus.DRAFT if start_paused else CampaignStatus.IN_PROGRESS
    existing = None
    try:
        async with db.begin() as conn:
            await bulk.begin_campaign(conn, config, status=status, idempotency_key=idempotency_key,
                                      fingerprint=upload.fingerprint)
            page: list[tuple[int, Contact]] = []
            valid = contacts_of(columns, rows, report, scheduled=body.isScheduledCall, default_time=default_time,
                                zones_for=zone_resolver(body), max_rows=settings.max_upload_rows,
                                consent_required=settings.consent_required)
            try:
                for item in valid:
                    if report.failed and not keep_valid:
                        continue  # the file is refused: the rest is only checked
                    page.append(item)
                    if len(page) >= PAGE:
                        await bulk.stage_page(conn, page)
                        page = []
                        await asyncio.sleep(0)
            except csv_rows.FileError as err:
                raise _file_error(err) from None
            if report.failed and not keep_valid:
                raise ApiError(400, "BAD_REQUEST", _summary(report), report.errors)
            if not report.valid:
                raise ApiError(400, "BAD_REQUEST",
                               "no valid contact in the file" if report.received else "the file has no contact rows",
                               report.errors)
            await bulk.stage_page(conn, page)
            result = await bulk.finish_campaign(conn, config, received=report.received)
    except bulk.CampaignExists as taken:
        existing = taken.row
        if existing.fingerprint != upload.fingerprint:
            raise ApiError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request "
                           "body", [{"field": "Idempotency-Key", "message": "already used with another body for "
                                     f"campaign {existing.campaign_id}"}]) from None
        config = CampaignConfig.model_validate(existing.config)
        result = bulk.BulkResult(total=existing.total_contacts, duplicates=existing.duplicates_merged)
        report.received = existing.received_contacts
        if existing.launched_at is not None:
            return Created(config, result.total, result.duplicates, report.received, report, existing)
    try:
        await start_campaign_workflow(client, settings, config, result.total, start_paused=start_paused,
                                      fingerprint=upload.fingerprint, duplicates=result.duplicates)
    except WorkflowAlreadyStartedError:
        pass
    await repo.mark_launched(db, config.tenant_id, config.campaign_id)
    return Created(config, result.total, result.duplicates, report.received, report, existing)


async def store_eta(db: AsyncEngine, config: CampaignConfig, now: datetime) -> datetime:
    due, zones, made = [], [], []
    async with db.connect() as conn:
        for minute, attempts, contact_zones, n in await roster.eta_rows(conn, config.tenant_id, config.campaign_id):
            due.extend([minute] * n)
            zones.extend([contact_zones] * n)
            made.extend([attempts] * n)
    return campaign_eta(config, now, due, contact_zones=zones, attempts_made=made)


async def run_data(db: AsyncEngine, created: Created) -> UploadAndRunData:
    config = created.config
    now = datetime.now(UTC)
    status = created.existing.status if created.existing is not None else CampaignStatus.IN_PROGRESS.value
    return UploadAndRunData(
        campaign=CampaignOut(
            id=config.object_id, campaignName=config.name, campaignId=config.campaign_id, status=status,
            agentId=config.agent_id, totalContacts=created.total, isScheduledCall=config.is_scheduled,
            isContextBasedCall=config.is_context_based, createdAt=config.created_at, campaignStartTime=now),
        execution_status=ExecutionStatusOut(calls_queued=created.total, calls_initiated=0,
                                            estimated_completion=await store_eta(db, config, now)),
        redial_config=RedialConfigOut(enabled=config.redial.enabled, maxAttempts=config.redial.max_attempts,
                                      retryIntervals=config.redial.retry_intervals),
        contacts=ContactsReportOut(received=created.received, accepted=created.total,
                                   duplicates_merged=created.duplicates,
                                   suppressed=await compliance.suppressed_in_campaign(
                                       db, config.tenant_id, config.campaign_id)),
    )
