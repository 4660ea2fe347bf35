"""POST /uploadCampaignDataAndRun: the seed's one-step create-and-start."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api import campaigns, csv_upload
from api.idempotency import body_fingerprint
from api.csv_docs import file_upload_body
from api.deps import ClientDep, DbDep, SettingsDep, TenantDep
from api.errors import error_responses
from api.json_body import openapi_body, parse_json_body, read_body
from api.schemas import CampaignIn, UploadAndRunResponse
from campaign_engine.store import compliance

router = APIRouter(tags=["campaigns"])


@router.post(
    "/uploadCampaignDataAndRun",
    response_model=UploadAndRunResponse,
    response_model_by_alias=True,
    summary="Upload contacts and a campaign configuration, and start calling",
    responses={409: {"description": "IDEMPOTENCY_KEY_REUSED (the key came with another body)"},
               **error_responses(408, 413, 415, 422)},
    # The body is a CampaignIn, read here rather than by FastAPI (see api.json_body).
    openapi_extra=file_upload_body(openapi_body(CampaignIn)),
)
async def upload_campaign_data_and_run(
    request: Request,
    tenant: TenantDep,
    client: ClientDep,
    db: DbDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> UploadAndRunResponse:
    # One copy of the contact list at a time: the bytes until they are validated (and
    # fingerprinted, for an Idempotency-Key), the models until they are Contacts (see
    # contact_validation.stream_contacts), then the Contacts as they are written.
    if csv_upload.is_file_upload(request.headers.get("content-type")):  # a CSV or xlsx file
        upload = await csv_upload.read_upload(request, settings)
        body = csv_upload.campaign_body(upload.fields)
        created = await csv_upload.create_from_file(
            client, db, settings, tenant.id, body, upload, start_paused=False, keep_valid=False, default_time=None,
            idempotency_key=idempotency_key)
        return UploadAndRunResponse(data=await csv_upload.run_data(db, created))
    raw = await read_body(request)
    fingerprint = body_fingerprint(raw) if idempotency_key else None
    body = parse_json_body(CampaignIn, raw, request.headers.get("content-type"))
    del raw
    data = await campaigns.upload_and_run(client, db, settings, tenant.id, body, fingerprint, idempotency_key)
    campaign_id = data.campaign.campaignId
    data.contacts.suppressed = await compliance.suppressed_in_campaign(db, tenant.id, campaign_id)
    return UploadAndRunResponse(data=data)
