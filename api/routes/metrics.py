"""GET /metrics: the store's figures in Prometheus' text format (campaign_engine.metrics).

Authenticated like every endpoint, two ways: `Authorization: Bearer $METRICS_TOKEN` (the
operator's scraper: every tenant's figures together), or a tenant's `x-api-key` (that
tenant's figures only). Without METRICS_TOKEN set only the second works. Not rate-limited
(a scrape every few seconds is its purpose), like /healthz.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from api.deps import DbDep, SettingsDep, require_tenant
from api.errors import ApiError, error_responses
from campaign_engine.metrics import CONTENT_TYPE, store_exposition
from campaign_engine.store.metrics import store_figures

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: calls placed and ended by provider and outcome, live calls, campaigns by status",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition format 0.0.4"},
               **error_responses(401, 503)},
)
async def metrics(
    request: Request, db: DbDep, settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header(alias="x-api-key")] = None,
) -> Response:
    token = settings.metrics_token.get_secret_value()
    if authorization is not None and token:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                hashlib.sha256(presented.strip().encode()).digest(), hashlib.sha256(token.encode()).digest()):
            raise ApiError(401, "UNAUTHORIZED", "invalid metrics token (Authorization: Bearer $METRICS_TOKEN)")
        tenant_id = None
    elif x_api_key is None and authorization is not None:
        raise ApiError(401, "UNAUTHORIZED", "METRICS_TOKEN is not set: scrape with a tenant's x-api-key")
    else:
        tenant_id = (await require_tenant(request, x_api_key)).id
    body = store_exposition(await store_figures(db, tenant_id))
    return Response(body, media_type=CONTENT_TYPE)
