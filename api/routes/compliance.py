"""Compliance over REST (issue 14): the tenant's suppression (do-not-call) list and the audit
trail. Every entry and every event belongs to the caller's tenant; another tenant's are never
seen or touched."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DbDep, TenantDep
from api.errors import ApiError, error_responses
from api.json_body import openapi_body, parse_json_body, read_body
from campaign_engine.phones import InvalidPhoneNumber, mask_phone, normalize_e164
from campaign_engine.store import compliance

# One request adds at most this many numbers (larger lists: several requests).
MAX_NUMBERS_PER_REQUEST = 10_000

writes = APIRouter(tags=["compliance"])
reads = APIRouter(tags=["compliance"])


class SuppressionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_numbers: list[str] = Field(min_length=1, max_length=MAX_NUMBERS_PER_REQUEST,
                                     description="E.164 numbers, checked as on uploads")
    reason: str | None = Field(None, max_length=500)
    expires_at: datetime | None = Field(None, description="ISO 8601 with a zone; absent: for ever")


class Suppression(BaseModel):
    phone_number: str
    reason: str | None
    source: str = Field(description="api, opt_out (heard on a call) or import (a CSV body)")
    source_ref: str | None = Field(None, description="an opt-out: the call's idempotency key")
    expires_at: datetime | None
    created_at: datetime


class SuppressionsAdded(BaseModel):
    success: bool = True
    received: int
    added: int = Field(description="numbers that were not on the list before")
    updated: int = Field(description="numbers already on the list (their reason and expiry replaced)")


class SuppressionsPage(BaseModel):
    success: bool = True
    total: int
    suppressions: list[Suppression]
    next_cursor: str | None


class SuppressionRemoved(BaseModel):
    success: bool = True
    phone_number: str
    removed: bool


class AuditEvent(BaseModel):
    seq: int
    at: datetime
    tenant_id: str
    key_id: str | None = Field(description="the API key's id (a prefix of its SHA-256), never the key")
    action: str
    campaign_id: str | None
    subject: str | None
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    success: bool = True
    events: list[AuditEvent]
    next_cursor: int | None


def _e164_or_errors(numbers: list[str], field: str) -> tuple[list[str], list[dict]]:
    good, errors = [], []
    for i, raw in enumerate(numbers):
        try:
            good.append(normalize_e164(raw))
        except InvalidPhoneNumber as err:
            errors.append({"row": i, "field": f"{field}[{i}]", "message": str(err)})
    return good, errors


def _csv_numbers(raw: bytes) -> list[str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "BAD_REQUEST", "the CSV body is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "phone_number" not in [f.strip() for f in reader.fieldnames]:
        raise ApiError(400, "BAD_REQUEST", "the CSV body needs a phone_number column",
                       [{"field": "phone_number", "message": "column missing"}])
    column = next(f for f in reader.fieldnames if f.strip() == "phone_number")
    numbers = [(row.get(column) or "").strip() for row in reader]
    if not numbers:
        raise ApiError(400, "BAD_REQUEST", "the CSV body has no rows")
    if len(numbers) > MAX_NUMBERS_PER_REQUEST:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"at most {MAX_NUMBERS_PER_REQUEST} numbers per request")
    return numbers


@writes.post("/suppressions", response_model=SuppressionsAdded,
             summary="Add numbers to the tenant's suppression (do-not-call) list",
             description="JSON `{phone_numbers, reason, expires_at}` (source `api`), or a `text/csv` body with a "
                         "`phone_number` column (source `import`; `?reason=` applies to every row). Every number "
                         "is checked as on uploads; one invalid number refuses the request (400, naming its row). "
                         "A listed number is never dialled again by any campaign of the tenant, not even a redial "
                         "already waiting: the dial activity checks the list right before every call.",
             responses=error_responses(408, 413, 415),
             openapi_extra={"requestBody": {"required": True, "content": {
                 **openapi_body(SuppressionsIn)["requestBody"]["content"],
                 "text/csv": {"schema": {"type": "string"}}}}})
async def add_suppressions(request: Request, tenant: TenantDep, db: DbDep,
                           reason: Annotated[str | None, Query(max_length=500)] = None) -> SuppressionsAdded:
    raw = await read_body(request)
    content_type = request.headers.get("content-type") or ""
    if content_type.split(";")[0].strip().lower() == "text/csv":
        numbers, source, expires_at, field = _csv_numbers(raw), "import", None, "phone_number"
    else:
        body = parse_json_body(SuppressionsIn, raw, content_type)
        numbers, source, expires_at, field = body.phone_numbers, "api", body.expires_at, "phone_numbers"
        reason = body.reason
    if expires_at is not None and expires_at.tzinfo is None:
        raise ApiError(400, "BAD_REQUEST", "expires_at needs a time zone",
                       [{"field": "expires_at", "message": "a time without a zone"}])
    phones, errors = _e164_or_errors(numbers, field)
    if errors:
        raise ApiError(400, "BAD_REQUEST", f"{len(errors)} invalid phone number(s); nothing was added", errors[:100])
    async with db.begin() as conn:
        new = await compliance.add_suppressions(conn, tenant.id, phones, source=source, reason=reason,
                                                expires_at=expires_at)
        await compliance.audit(conn, tenant.id, tenant.key_id, "suppression.added", details={
            "source": source, "received": len(phones), "added": len(new), "reason": reason,
            "numbers": [mask_phone(p) for p in dict.fromkeys(phones)][:100]})
    distinct = len(set(phones))
    return SuppressionsAdded(received=len(numbers), added=len(new), updated=distinct - len(new))


@writes.delete("/suppressions/{phone_number}", response_model=SuppressionRemoved,
               summary="Remove a number from the tenant's suppression list",
               responses={404: {"description": "NOT_FOUND: the number is not on the list"}})
async def remove_suppression(phone_number: str, tenant: TenantDep, db: DbDep) -> SuppressionRemoved:
    phone = _one_number(phone_number, "phone_number")
    async with db.begin() as conn:
        removed = await compliance.remove_suppression(conn, tenant.id, phone)
        if removed:
            await compliance.audit(conn, tenant.id, tenant.key_id, "suppression.removed", subject=mask_phone(phone))
    if not removed:
        raise ApiError(404, "NOT_FOUND", f"{mask_phone(phone)} is not on the suppression list")
    return SuppressionRemoved(phone_number=phone, removed=True)


def _one_number(raw: str, field: str) -> str:
    try:
        return normalize_e164(raw)
    except InvalidPhoneNumber as err:
        raise ApiError(400, "BAD_REQUEST", f"{field}: {err}", [{"field": field, "message": str(err)}]) from None


@reads.get("/suppressions", response_model=SuppressionsPage,
           summary="The tenant's suppression list, page by page, or one number's entry (?phone_number=)")
async def list_suppressions(tenant: TenantDep, db: DbDep,
                            phone_number: Annotated[str | None, Query(max_length=64)] = None,
                            cursor: Annotated[str | None, Query(max_length=64)] = None,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> SuppressionsPage:
    phone = _one_number(phone_number, "phone_number") if phone_number is not None else None
    after = _one_number(cursor, "cursor") if cursor else ""
    rows, total = await compliance.suppression_page(db, tenant.id, phone=phone, after=after, limit=limit)
    return SuppressionsPage(total=total, suppressions=[Suppression(
        phone_number=r.phone, reason=r.reason, source=r.source, source_ref=r.source_ref, expires_at=r.expires_at,
        created_at=r.created_at) for r in rows], next_cursor=rows[-1].phone if len(rows) == limit else None)


@reads.get("/audit", response_model=AuditPage,
           summary="The tenant's audit trail: who (API key id) did what and when, oldest first")
async def audit_trail(tenant: TenantDep, db: DbDep,
                      cursor: Annotated[int, Query(ge=0)] = 0,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      action: Annotated[str | None, Query(max_length=48)] = None,
                      campaign_id: Annotated[str | None, Query(max_length=64)] = None) -> AuditPage:
    rows = await compliance.audit_page(db, tenant.id, after=cursor, limit=limit, action=action,
                                       campaign_id=campaign_id)
    return AuditPage(events=[AuditEvent(
        seq=r.seq, at=r.at, tenant_id=r.tenant_id, key_id=r.key_id, action=r.action, campaign_id=r.campaign_id,
        subject=r.subject, details=r.details) for r in rows], next_cursor=rows[-1].seq if len(rows) == limit else None)


__all__ = ["reads", "writes"]
