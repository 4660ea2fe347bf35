"""The file form of POST /uploadCampaignData (api.csv_upload): a draft from a CSV or xlsx, or
its rows appended to a campaign (`campaign_id`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api import csv_rows, csv_upload
from api.errors import ApiError
from api.lifecycle_schemas import RowError, UploadCampaignDataIn, UploadCampaignDataOut
from campaign_engine.models import CampaignConfig, CampaignStatus
from campaign_engine.settings import Settings
from api import appending
from api.upload_settings import draft_settings
from campaign_engine.store import compliance, roster


def _rows(errors: list[dict]) -> list[RowError]:
    return [RowError(**e) for e in errors]


async def csv_draft(request: Request, tenant_id: str, client: Client, db: AsyncEngine, settings: Settings,
                    idempotency_key: str | None) -> UploadCampaignDataOut:

    upload = await csv_upload.read_upload(request, settings)
    if "contacts" in upload.fields:
        raise ApiError(400, "BAD_REQUEST", "contacts: the contacts of a file upload are the file's rows",
                       [{"field": "contacts", "message": "not allowed with a file"}])
    try:
        body = UploadCampaignDataIn.model_validate({**upload.fields, "contacts": [{}]})
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
    if body.campaign_id is not None:
        return await append_file(client, db, settings, tenant_id, body, upload, idempotency_key)
    campaign, scheduled = draft_settings(body)
    created = await csv_upload.create_from_file(
        client, db, settings, tenant_id, campaign, upload, start_paused=True, keep_valid=True,
        default_time=body.schedule_time, idempotency_key=idempotency_key)
    report = created.report
    out = UploadCampaignDataOut(
        message="Campaign created; start it with GET /startCampaignv2/{campaign_id}",
        campaign_id=created.config.campaign_id, campaign_name=created.config.name, status=CampaignStatus.DRAFT.value,
        uploaded_count=created.total, failed_count=report.failed, duplicate_count=created.duplicates,
        total_contacts=created.total, errors=_rows(report.errors))
    if created.existing is not None:
        out.message = "Campaign already created by an earlier request with this Idempotency-Key"
        out.status, out.replayed = created.existing.status, True
    out.suppressed_count = await compliance.suppressed_in_campaign(db, tenant_id, created.config.campaign_id)
    return out


def _check_file(upload: csv_upload.Upload, settings: Settings) -> None:
    """The whole file read once before anything is appended: a file that breaks off midway
    (bad quoting, not UTF-8, too many rows) appends nothing."""
    columns, rows = csv_upload.open_rows(upload)
    n = 0
    try:
        for _, cells in rows:
            if csv_rows.row_values(columns, cells) is not None:
                n += 1
                if n > settings.max_upload_rows:
                    raise ApiError(413, "PAYLOAD_TOO_LARGE",
                                   f"the file has more than {settings.max_upload_rows} contact rows (MAX_UPLOAD_ROWS)")
    except csv_rows.FileError as err:
        raise ApiError(400, "BAD_REQUEST", f"file: {err}", [{"field": "file", "message": str(err)}]) from None
    upload.file.seek(0)


def _pages(valid, size: int):
    """(number, contacts) of each page of `size` valid rows ((row, contact) pairs)."""
    page: list = []
    number = 0
    for _, contact in valid:
        page.append(contact)
        if len(page) >= size:
            yield number, page
            page, number = [], number + 1
    if page:
        yield number, page


@dataclass
class _AppendedPages:
    added: int = 0
    duplicates: int = 0
    replayed: bool = False
    last: roster.Appended | None = None
    written: list[roster.Appended] = field(default_factory=list)  # not replays: withdrawn if refused

    def add(self, appended: roster.Appended) -> None:
        self.added += appended.added
        self.duplicates += appended.duplicates
        self.replayed = self.replayed or appended.replayed
        self.last = appended
        if not appended.replayed:
            self.written.append(appended)


async def append_file(client: Client, db: AsyncEngine, settings: Settings, tenant_id: str,
                      body: UploadCampaignDataIn, upload: csv_upload.Upload,
                      idempotency_key: str | None) -> UploadCampaignDataOut:
    """The file's valid rows appended a page at a time (each page as one append, under the
    Idempotency-Key with the page's number), then the campaign told once how far it goes."""
    campaign_id = body.campaign_id
    assert campaign_id is not None  # an append names its campaign
    row = await appending.campaign_to_append(db, tenant_id, campaign_id)
    appending.refuse_finished(row)
    config = CampaignConfig.model_validate(row.config)
    _check_file(upload, settings)
    csv_upload.check_consent(*csv_upload.open_rows(upload), settings.consent_required)
    upload.file.seek(0)
    columns, rows = csv_upload.open_rows(upload)
    from api.contact_validation import config_zone_resolver

    report = csv_upload.RowReport()
    valid = csv_upload.contacts_of(columns, rows, report, scheduled=config.is_scheduled,
                                   default_time=body.schedule_time, zones_for=config_zone_resolver(config),
                                   max_rows=settings.max_upload_rows, consent_required=settings.consent_required)
    done = _AppendedPages()
    for number, page in _pages(valid, csv_upload.PAGE):
        key_hash = (hashlib.sha256(f"{idempotency_key}\0file-page-{number}".encode()).hexdigest()
                    if idempotency_key else None)
        appended = await roster.append_contacts(db, tenant_id, campaign_id, page, key_hash=key_hash,
                                                fingerprint=upload.fingerprint)
        if appended.other_body:
            raise appending.other_body(campaign_id)
        done.add(appended)
    out = UploadCampaignDataOut(
        message="Contacts appended", campaign_id=campaign_id, campaign_name=config.name, status=row.status,
        uploaded_count=done.added, failed_count=report.failed, duplicate_count=done.duplicates,
        total_contacts=row.total_contacts, errors=_rows(report.errors), replayed=done.replayed)
    if done.last is None:
        out.suppressed_count = await compliance.suppressed_in_campaign(db, tenant_id, campaign_id)
        return out
    if not await appending.tell_campaign(client, tenant_id, campaign_id, done.last):
        for appended in reversed(done.written):  # finished meanwhile: the rows go again
            await roster.withdraw_append(db, tenant_id, campaign_id, appended, None)
        raise await appending.finished_error(client, tenant_id, campaign_id)
    out.status, out.total_contacts = await appending.status_and_total(client, tenant_id, campaign_id)
    out.suppressed_count = await compliance.suppressed_in_campaign(db, tenant_id, campaign_id)
    return out
