"""Signed provider callbacks: the only endpoints without an API key.

Each callback names its contact workflow and attempt in what the provider signed (Twilio:
the callback URL's query; the HTTP agent platform: `referenceId`), so routing needs no table
that a restart could lose. Unknown, late and duplicate callbacks change nothing and get 200,
so the provider stops retrying; anything unsigned or wrongly signed gets 403.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from pydantic_core import from_json
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.providers import http_agent, twilio
from activities.providers.http_agent_settings import HttpAgentSettings
from activities.providers.twilio_settings import TwilioSettings
from api.deps import ClientDep, SettingsDep
from api.errors import ApiError, envelope
from campaign_engine.contract import ContactSignal
from campaign_engine.ids import parse_contact_workflow_id
from campaign_engine.models import CallOutcome

router = APIRouter(tags=["provider callbacks"])
log = logging.getLogger("api.callbacks")

# A provider's status callback is a few hundred bytes (Twilio) to a few kilobytes (an agent
# platform's analysis and transcript); anything near this is not a callback.
CALLBACK_MAX_BODY_BYTES = 1024 * 1024


class CallbackTooLarge(ApiError):
    def __init__(self) -> None:
        super().__init__(413, "PAYLOAD_TOO_LARGE", f"a callback body is at most {CALLBACK_MAX_BODY_BYTES} bytes")


async def read_small_body(request: Request) -> bytes:
    """The body of a callback, refused with 413 once it passes CALLBACK_MAX_BODY_BYTES (by its
    Content-Length before reading, else while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > CALLBACK_MAX_BODY_BYTES:
        raise CallbackTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > CALLBACK_MAX_BODY_BYTES:
            raise CallbackTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def deliver_outcome(client: Client, contact_wf_id: str, outcome: CallOutcome) -> str:
    if parse_contact_workflow_id(contact_wf_id) is None:
        return "ignored: not a contact workflow"
    try:
        await client.get_workflow_handle(contact_wf_id).signal(ContactSignal.CALL_OUTCOME, outcome)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return "ignored: the contact has finished or does not exist"
        raise
    return "accepted"


@router.post(twilio.CALLBACK_PATH, summary="Twilio status callback (signed with X-Twilio-Signature)")
async def twilio_status_callback(request: Request, client: ClientDep, settings: SettingsDep) -> JSONResponse:
    tw = TwilioSettings()
    signature = request.headers.get("X-Twilio-Signature")
    token = tw.auth_token.get_secret_value()
    if not token or not signature:  # refused before a byte of the body is read
        return envelope(403, "FORBIDDEN", "missing or invalid X-Twilio-Signature")
    raw = await read_small_body(request)
    try:
        form = twilio.parse_form_body(raw)
    except (UnicodeDecodeError, ValueError):
        return envelope(400, "BAD_REQUEST", "the body is not a UTF-8 application/x-www-form-urlencoded form")
    base = tw.public_base_url or settings.public_base_url
    url = base.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not twilio.verify_twilio_signature(
        token, url, form, signature,
        signature_settings=request.headers.get("X-Twilio-Webhooks-Signature-Settings"),
    ):
        return envelope(403, "FORBIDDEN", "missing or invalid X-Twilio-Signature")
    try:
        wf_id, attempt = twilio.parse_callback_query(request.query_params)
        outcome = twilio.parse_twilio_callback(form, attempt)
    except ValueError as err:
        return JSONResponse({"success": True, "result": f"ignored: {err}"})
    if not outcome.is_final:
        return JSONResponse({"success": True, "result": "progress noted"})
    return JSONResponse({"success": True, "result": await deliver_outcome(client, wf_id, outcome)})


@router.post(http_agent.CALLBACK_PATH, summary="Outcome callback of an HTTP voice-agent platform (HMAC-SHA256)")
async def http_agent_callback(request: Request, client: ClientDep) -> JSONResponse:
    cfg = HttpAgentSettings()
    secret: str = cfg.secret.get_secret_value() if isinstance(cfg.secret, SecretStr) else cfg.secret
    timestamp, signature = request.headers.get("X-Signature-Timestamp"), request.headers.get("X-Signature")
    if not secret or not timestamp or not signature:  # refused before a byte of the body is read
        return envelope(403, "FORBIDDEN", "missing, invalid or expired signature")
    raw = await read_small_body(request)
    if not http_agent.verify_hmac_callback(secret, raw, timestamp, signature):
        return envelope(403, "FORBIDDEN", "missing, invalid or expired signature")
    try:
        # pydantic's parser: no RecursionError on a deeply nested body, a ValueError instead.
        document = from_json(raw)
    except ValueError:
        return envelope(400, "BAD_REQUEST", "the body is not JSON (or nests deeper than 200 levels)")
    try:
        reference, outcome = http_agent.parse_http_agent_callback(document)
        wf_id, attempt = http_agent.parse_reference_id(reference)
    except (ValueError, KeyError, TypeError) as err:
        return JSONResponse({"success": True, "result": f"ignored: {err}"})
    outcome.attempt = attempt
    if not outcome.is_final:
        return JSONResponse({"success": True, "result": "progress noted"})
    return JSONResponse({"success": True, "result": await deliver_outcome(client, wf_id, outcome)})
