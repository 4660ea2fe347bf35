"""Dependencies: the caller's tenant (from x-api-key), the shared Temporal client and store, settings."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.errors import ApiError
from campaign_engine.settings import Settings


@dataclass(frozen=True)
class Tenant:
    id: str
    # Which key made the request, for the audit trail: the first 16 hex digits of the key's
    # SHA-256 (campaign_engine.api_keys keeps the same digest), never the key.
    key_id: str | None = None


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_client(request: Request) -> Client:
    return request.app.state.temporal_client


async def get_db(request: Request) -> AsyncEngine:
    return request.app.state.db


async def require_tenant(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias="x-api-key")] = None,
) -> Tenant:
    keys: dict[bytes, str] = request.app.state.api_keys  # SHA-256 of each key -> tenant
    if not x_api_key:
        raise ApiError(401, "UNAUTHORIZED", "missing x-api-key header")
    if len(request.headers.getlist("x-api-key")) > 1:
        raise ApiError(401, "UNAUTHORIZED", "more than one x-api-key header")
    tenant = None
    presented = hashlib.sha256(x_api_key.encode()).digest()
    # Compare against every key in constant time: no early exit that timing could reveal.
    for key_digest, tenant_id in keys.items():
        if hmac.compare_digest(presented, key_digest):
            tenant = tenant_id
    if tenant is None:
        raise ApiError(401, "UNAUTHORIZED", "invalid API key")
    return Tenant(tenant, key_id=presented.hex()[:16])


# Coroutines, although none of them waits for anything: FastAPI runs a plain function
# dependency in a worker thread, a round trip through the thread pool on every request.
TenantDep = Annotated[Tenant, Depends(require_tenant)]
ClientDep = Annotated[Client, Depends(get_client)]
DbDep = Annotated[AsyncEngine, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
