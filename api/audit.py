"""The audit trail of what API keys did to campaigns (issue 14), written by one ASGI
middleware so no route has to remember it.

For each successful (2xx) answer to an audited operation, one event goes into the store's
`audit_events` before the answer leaves: the tenant and the key's id (the first 16 hex digits
of its SHA-256, as api.deps computes it; never the key), the action, the campaign and what was
done (from the answer, which these operations keep small). A failed operation writes nothing.
A store that cannot take the event is logged and the answer still goes out: the operation has
happened, and refusing its answer would invite a retry that, without an Idempotency-Key,
does it twice. The suppression endpoints write their own events inside their transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from campaign_engine.phones import mask_phone
from campaign_engine.store import compliance

log = logging.getLogger(__name__)

_ID = r"(?P<cid>[^/]+)"
# (methods, path pattern, action)
AUDITED: list[tuple[frozenset[str], re.Pattern[str], str]] = [
    (frozenset({"POST"}), re.compile(r"/uploadCampaignDataAndRun"), "campaign.created_and_started"),
    (frozenset({"POST"}), re.compile(r"/uploadCampaignData"), "campaign.uploaded"),
    (frozenset({"GET", "POST"}), re.compile(rf"/startCampaignv2/{_ID}"), "campaign.started"),
    (frozenset({"GET", "POST"}), re.compile(rf"/pauseTheCampaign/{_ID}"), "campaign.paused"),
    (frozenset({"GET", "POST"}), re.compile(rf"/startCampaign/{_ID}"), "campaign.resumed"),
    (frozenset({"POST"}), re.compile(rf"/campaigns/{_ID}/cancel"), "campaign.canceled"),
    (frozenset({"POST"}), re.compile(rf"/campaigns/{_ID}/contacts"), "contacts.appended"),
    (frozenset({"DELETE"}), re.compile(rf"/campaigns/{_ID}/contacts/(?P<phone>[^/]+)"), "contact.removed"),
    (frozenset({"PUT"}), re.compile(rf"/updateCampaignData/{_ID}"), "redial_rules.changed"),
]
CREATES = ("campaign.created", "campaign.created_and_started")
# Answers larger than this are not read for details (none of the audited ones is).
_BODY_LIMIT = 256 * 1024


def audited_action(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    for methods, pattern, action in AUDITED:
        if method in methods:
            match = pattern.fullmatch(path)
            if match:
                return action, match.groupdict()
    return None


def key_identity(api_keys: dict[bytes, str], presented: str) -> tuple[str, str] | None:
    """(tenant, key id) of a key, compared in constant time as api.deps does."""
    digest = hashlib.sha256(presented.encode()).digest()
    tenant = None
    for key_digest, tenant_id in api_keys.items():
        if hmac.compare_digest(digest, key_digest):
            tenant = tenant_id
    return (tenant, digest.hex()[:16]) if tenant is not None else None


def _event(action: str, params: dict[str, str], answer: dict[str, Any]) -> dict[str, Any]:
    found = answer.get("data")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    campaign_id = params.get("cid") or answer.get("campaign_id") or (data.get("campaign") or {}).get("campaignId")
    details: dict[str, Any] = {}
    subject = None
    if action == "campaign.uploaded":
        # A draft created, or contacts appended to the campaign named in the body.
        action = "campaign.created" if answer.get("status") == "draft" else "contacts.appended"
        details = {k: answer[k] for k in ("uploaded_count", "failed_count", "duplicate_count") if k in answer}
    elif action == "campaign.created_and_started":
        details = {"contacts": (data.get("contacts") or {})}
    elif action == "contact.removed":
        phone = answer.get("phone_number") or params.get("phone", "")
        try:
            subject = mask_phone(phone)
        except Exception:  # noqa: BLE001 - a subject to show, never a reason to fail
            subject = None
    elif action == "redial_rules.changed":
        details = {"redialConfig": answer.get("redialConfig")}
    elif action == "contacts.appended":
        details = {k: answer[k] for k in ("added", "duplicates", "uploaded_count") if k in answer}
    if "status" in answer and action != "campaign.created":
        details["status"] = answer["status"]
    return {"action": action, "campaign_id": campaign_id, "subject": subject, "details": details or None}


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = audited_action(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if not 200 <= message["status"] < 300:
                    await send(message)
                return
            if message["type"] != "http.response.body" or start is None or not 200 <= start["status"] < 300:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            await self._record(scope, found, b"".join(chunks))
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})

        await self.app(scope, receive, capture)

    async def _record(self, scope: Scope, found: tuple[str, dict[str, str]], body: bytes) -> None:
        app = scope["app"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        who = key_identity(app.state.api_keys, headers.get("x-api-key", ""))
        if who is None:
            return
        try:
            answer = json.loads(body) if len(body) <= _BODY_LIMIT else {}
        except ValueError:
            answer = {}
        event = _event(found[0], found[1], answer if isinstance(answer, dict) else {})
        events = [event]
        settings = app.state.settings
        if event["action"] in CREATES:
            tenant_widens = settings.widenings(who[0])
            if settings.legal_hours == "off" and settings.legal_hours_for(who[0]) == "off":
                # Legal calling hours lifted for this campaign by the deployment (LEGAL_HOURS=off).
                events.append({"action": "legal_hours.override", "campaign_id": event["campaign_id"], "subject": None,
                               "details": {"LEGAL_HOURS": "off", "effect": "the campaign calls whenever its own "
                                           "callingWindow allows, whatever the law of the contact's location"}})
            # The tenant's overrides that widen the deployment's rules (TENANT_POLICIES).
            events.extend({"action": w["action"], "campaign_id": event["campaign_id"], "subject": None,
                           "details": w["details"]} for w in tenant_widens)
        try:
            for e in events:
                await compliance.record_audit(app.state.db, who[0], who[1], e["action"], campaign_id=e["campaign_id"],
                                              subject=e["subject"], details=e["details"])
        except Exception:
            log.exception("audit event %s of campaign %s not recorded", event["action"], event["campaign_id"])
