"""POST /uploadCampaignDataAndRun: the seed's one-step create-and-start."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api import campaigns
from api.deps import ClientDep, SettingsDep, TenantDep
from api.schemas import CampaignIn, UploadAndRunResponse

router = APIRouter(tags=["campaigns"])


@router.post(
    "/uploadCampaignDataAndRun",
    response_model=UploadAndRunResponse,
    response_model_by_alias=True,
    summary="Upload contacts and a campaign configuration, and start calling",
)
async def upload_campaign_data_and_run(
    body: CampaignIn,
    request: Request,
    tenant: TenantDep,
    client: ClientDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> UploadAndRunResponse:
    raw = await request.body()
    data = await campaigns.upload_and_run(client, settings, tenant.id, body, raw, idempotency_key)
    return UploadAndRunResponse(data=data)
