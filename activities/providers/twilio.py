"""Twilio's status callbacks: the webhook's URL, its signature, and its form as a `CallOutcome`.

`verify_twilio_signature` checks ``X-Twilio-Signature`` (Twilio signs the exact public URL it
requested, query included, plus the sorted POST parameters, with the account's Auth Token —
even when the REST calls use an API key). `parse_twilio_callback` turns the form into a
`CallOutcome`; `build_status_callback_url` makes the StatusCallback URL of an attempt and
`parse_callback_query` recovers the contact workflow id and attempt from it; `parse_form_body`
decodes a form body without python-multipart. Twilio may deliver status callbacks out of order
(``SequenceNumber`` orders them): a final outcome must win over a later-arriving progress event.

The provider itself (placing and polling calls) is `activities.providers.twilio_provider`.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlencode

from twilio.request_validator import RequestValidator, get_signature_algorithm

from activities.providers.twilio_status import (
    first_param,
    map_twilio_status,
    parse_rfc2822,
    status_reason,
    to_float,
    to_int,
)
from campaign_engine.models import CallOutcome

CALLBACK_PATH = "/callbacks/twilio"


def parse_twilio_callback(form: Mapping[str, Any], attempt: int = 0) -> CallOutcome:
    """Turn a Twilio status callback (its form parameters) into a `CallOutcome`.

    ``attempt`` is the attempt number from the callback URL's query (see
    `parse_callback_query`). Raises ValueError when CallSid or a known CallStatus is missing.
    """
    call_sid = first_param(form, "CallSid")
    status = first_param(form, "CallStatus")
    if not call_sid:
        raise ValueError("Twilio callback without CallSid")
    answered_by = first_param(form, "AnsweredBy")
    sip = to_int(first_param(form, "SipResponseCode"))
    outcome, progress, hangup = map_twilio_status(status, answered_by, sip, first_param(form, "CallDuration"))
    if outcome is None and progress is None:
        raise ValueError(f"Twilio callback with unknown CallStatus {status!r}")
    return CallOutcome(
        call_id=call_sid,
        attempt=attempt,
        outcome=outcome,
        progress=progress,
        duration_seconds=to_float(first_param(form, "CallDuration")) if outcome is not None else None,
        hangup_cause=hangup,
        reason=status_reason(status, sip, answered_by),
        answered_by=answered_by,
        recording_url=first_param(form, "RecordingUrl"),
        ended_at=parse_rfc2822(first_param(form, "Timestamp")) if outcome is not None else None,
    )


def verify_twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any] | None,
    signature: str | None,
    *,
    signature_settings: str | None = None,
) -> bool:
    """True when ``signature`` (the X-Twilio-Signature header) signs this request.

    ``url`` must be the exact public URL Twilio requested, query string included (the route
    rebuilds it as PUBLIC_BASE_URL + path + "?" + the raw query string); ``params`` the POST
    form parameters. ``signature_settings`` is the X-Twilio-Webhooks-Signature-Settings
    header when the webhook is signed with a shared key (then ``auth_token`` is that secret).
    """
    if not auth_token or not signature:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    try:
        return bool(RequestValidator(auth_token).validate(url, dict(params or {}), signature, algorithm))
    except Exception:  # noqa: BLE001 - a malformed request is simply not valid
        return False


def build_status_callback_url(public_base_url: str, contact_workflow_id: str, attempt: int) -> str:
    """``{public_base_url}/callbacks/twilio?wf=<contact_workflow_id>&attempt=<n>``, url-encoded."""
    query = urlencode({"wf": contact_workflow_id, "attempt": str(attempt)}, quote_via=quote)
    return f"{public_base_url.rstrip('/')}{CALLBACK_PATH}?{query}"


def parse_callback_query(query: Mapping[str, Any]) -> tuple[str, int]:
    """``(contact_workflow_id, attempt)`` from a callback URL's query parameters."""
    wf = first_param(query, "wf")
    attempt = to_int(first_param(query, "attempt"))
    if not wf or attempt is None:
        raise ValueError("callback URL without wf/attempt")
    return wf, attempt


def parse_form_body(body: bytes) -> dict[str, str]:
    """Decode an application/x-www-form-urlencoded body (the last value of a repeated key wins).

    Starlette's ``request.form()`` needs python-multipart even for url-encoded forms.
    """
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
