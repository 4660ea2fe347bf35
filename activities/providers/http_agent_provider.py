"""A generic provider for voice-agent platforms that place calls over a JSON HTTP API.

Placing a call: ``POST {HTTP_PROVIDER_URL}`` with the JSON body

    {"agentId", "phoneNumber", "fromNumber", "variables", "callbackUrl",
     "referenceId": <idempotency key>, "detectVoicemail"}

and the headers ``Idempotency-Key: <idempotency key>``, the configured extra headers
(HTTP_PROVIDER_HEADERS) and, when a secret is set, our own ``X-Signature-Timestamp`` /
``X-Signature`` over the body. The answer names the call: ``{"callId"}`` (or ``call_id`` /
``id``, at the top or under ``data``). Retrying the same attempt sends the same
Idempotency-Key and referenceId: the platform is expected to answer with the call it already
placed (an ``Idempotent-Replayed: true`` header or a 409 naming the call marks the answer as
adopted). Platforms without idempotency keys cannot be made safe from here.

Errors: 401/403 -> ProviderAuthError; 404/405 (wrong URL) -> ProviderAuthError; 408/409
without a call id/425/429/5xx/network -> ProviderError (retry); other 4xx -> a PlacedCall
whose outcome is already FAILED (INVALID_NUMBER when the error says the number is invalid,
else CALL_REJECTED) with the synthetic call id ``rejected:<idempotency key>``.

Status: ``GET {HTTP_PROVIDER_STATUS_URL}`` with ``{call_id}`` replaced; the JSON is read like
a callback (`activities.providers.http_agent`, which also reads the callbacks).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote

import httpx

from activities.http_client import LoopBoundClient
from activities.providers.base import ProviderAuthError, ProviderError
from activities.providers.http_agent import CALLBACK_PATH, outcome_from_payload, pick, unwrap
from activities.providers.http_agent_settings import HttpAgentSettings
from campaign_engine import signing
from campaign_engine.models import CallOutcome, CallRequest, Outcome, PlacedCall

logger = logging.getLogger(__name__)

PROVIDER_NAME = "http"
REJECTED_PREFIX = "rejected:"
_INVALID_MARKERS = ("INVALID_NUMBER", "INVALID_PHONE", "INVALID_DESTINATION", "INVALID_TO")


class HttpProviderError(ProviderError):
    """The platform failed in a way worth retrying."""


def _invalid_number_error(payload: Any) -> bool:
    if not isinstance(payload, Mapping):
        return False
    payload = unwrap(payload)
    texts = [pick(payload, key) for key in ("error", "code", "errorCode", "error_code", "hangupCause", "reason")]
    nested = payload.get("error")
    if isinstance(nested, Mapping):
        texts += [pick(nested, key) for key in ("code", "type", "reason")]
    joined = " ".join(str(t).upper().replace("-", "_") for t in texts if t is not None and not isinstance(t, Mapping))
    return any(marker in joined for marker in _INVALID_MARKERS)


def _error_message(payload: Any, text: str) -> str:
    if isinstance(payload, Mapping):
        message = pick(payload, "message", "error", "detail")
        if isinstance(message, Mapping):
            message = pick(message, "message", "code")
        if message is not None:
            return str(message)
    return text[:300]


class HttpAgentProvider:
    """`TelephonyProvider` for a voice-agent platform's JSON API."""

    name = PROVIDER_NAME

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        status_url: str | None = None,
        secret: str | None = None,
        callback_url: str | None = None,
        public_base_url: str | None = None,
        timeout_seconds: float = 15.0,
        poll_after_seconds: float = 300.0,
    ) -> None:
        if not url:
            raise ValueError("HTTP provider: url is required (HTTP_PROVIDER_URL)")
        self.url = url
        self.headers = dict(headers or {})
        self.status_url = status_url or None
        self.secret = secret or None
        if not callback_url and public_base_url:
            callback_url = f"{public_base_url.rstrip('/')}{CALLBACK_PATH}"
        self.callback_url = callback_url or None
        self.timeout_seconds = timeout_seconds
        self.poll_after_seconds = poll_after_seconds
        self._client = LoopBoundClient(timeout=timeout_seconds, trust_env=False)
        self._rejections: dict[str, CallOutcome] = {}

    @classmethod
    def from_settings(cls, settings: Any = None) -> "HttpAgentProvider":
        """Build from `HttpAgentSettings` (read from the environment when not given); the
        engine's `Settings` is accepted too for its PUBLIC_BASE_URL."""
        hs = settings if isinstance(settings, HttpAgentSettings) else HttpAgentSettings()
        return cls(
            url=hs.url,
            headers=hs.header_dict(),
            status_url=hs.status_url or None,
            secret=hs.secret.get_secret_value() or None,
            callback_url=hs.callback_url or None,
            public_base_url=hs.public_base_url or getattr(settings, "public_base_url", "") or None,
            timeout_seconds=hs.timeout_seconds,
            poll_after_seconds=hs.poll_after_seconds,
        )

    def _http(self) -> httpx.AsyncClient:
        return self._client.get()

    def request_body(self, request: CallRequest) -> dict[str, Any]:
        return {
            "agentId": request.agent_id,
            "phoneNumber": request.to,
            "fromNumber": request.from_number,
            "variables": request.variables,
            "callbackUrl": self.callback_url,
            "referenceId": request.idempotency_key,
            "detectVoicemail": request.detect_voicemail,
        }

    async def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> httpx.Response:
        try:
            return await self._http().request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HttpProviderError(f"http provider: {method} {url}: {type(exc).__name__}: {exc}") from exc

    async def place_call(self, request: CallRequest) -> PlacedCall:
        body = json.dumps(self.request_body(request), separators=(",", ":"), default=str).encode("utf-8")
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": request.idempotency_key,
        }
        if self.secret:
            headers.update(signing.signature_headers(self.secret, body))
        response = await self._send("POST", self.url, body, headers)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        status = response.status_code
        data = unwrap(payload) if isinstance(payload, Mapping) else {}
        call_id = pick(data, "callId", "call_id", "id")
        text = f"http provider: POST {self.url}: HTTP {status}: {_error_message(payload, response.text)}"

        if status in (401, 403, 404, 405):
            raise ProviderAuthError(text)
        if 200 <= status < 300 or (status == 409 and call_id):
            if not call_id:
                raise HttpProviderError(f"{text}: no callId in the answer")
            return self._accepted(response, data, str(call_id), request)
        if status in (408, 409, 425, 429) or status >= 500:
            raise HttpProviderError(text)
        # Any other 4xx: the platform refused this call.
        return self._refused(status, payload, response.text, request)

    def _accepted(
        self, response: httpx.Response, data: Mapping[str, Any], call_id: str, request: CallRequest
    ) -> PlacedCall:
        """The platform placed the call (adopted: it had placed it already, a replay or a 409)."""
        replayed = response.headers.get("Idempotent-Replayed") or response.headers.get("Idempotency-Replayed")
        adopted = response.status_code == 409 or str(replayed).lower() == "true"
        outcome = None
        try:
            maybe = outcome_from_payload(data, call_id, request.attempt)
            outcome = maybe if maybe.is_final else None
        except ValueError:
            pass  # no status in the answer (the usual case)
        return PlacedCall(
            call_id=call_id,
            provider=self.name,
            adopted=adopted,
            outcome=outcome,
            poll_after_seconds=self.poll_after_seconds,
        )

    def _refused(self, status: int, payload: Any, text: str, request: CallRequest) -> PlacedCall:
        """The platform refused this call (a 4xx that is not about us): a failed attempt, at once."""
        rejected_id = f"{REJECTED_PREFIX}{request.idempotency_key}"
        outcome = CallOutcome(
            call_id=rejected_id,
            attempt=request.attempt,
            outcome=Outcome.FAILED,
            hangup_cause="INVALID_NUMBER" if _invalid_number_error(payload) else "CALL_REJECTED",
            reason=f"http provider {status}: {_error_message(payload, text)}",
            ended_at=datetime.now(timezone.utc),
        )
        self._rejections[rejected_id] = outcome
        return PlacedCall(call_id=rejected_id, provider=self.name, outcome=outcome, poll_after_seconds=0.0)

    async def fetch_call_status(self, call_id: str, request: CallRequest) -> CallOutcome:
        if call_id.startswith(REJECTED_PREFIX):
            return self._rejections.get(call_id) or CallOutcome(
                call_id=call_id,
                attempt=request.attempt,
                outcome=Outcome.FAILED,
                hangup_cause="CALL_REJECTED",
                reason="the platform refused the call when it was placed",
            )
        if not self.status_url:
            # Nothing to ask: stay "not final" and let the callback (or the engine's
            # call_max_seconds) decide.
            return CallOutcome(call_id=call_id, attempt=request.attempt, reason="no HTTP_PROVIDER_STATUS_URL")
        url = self.status_url.replace("{call_id}", quote(call_id, safe="")).replace(
            "{reference_id}", quote(request.idempotency_key, safe="")
        )
        headers = {**self.headers, "Accept": "application/json"}
        response = await self._send("GET", url, None, headers)
        status = response.status_code
        if status in (401, 403):
            raise ProviderAuthError(f"http provider: GET {url}: HTTP {status}")
        if status == 404:
            return CallOutcome(
                call_id=call_id, attempt=request.attempt, outcome=Outcome.FAILED, reason="call not found"
            )
        if status >= 300:
            raise HttpProviderError(f"http provider: GET {url}: HTTP {status}: {response.text[:300]}")
        try:
            payload = response.json()
            if not isinstance(payload, Mapping):
                raise ValueError("not a JSON object")
            return outcome_from_payload(unwrap(payload), call_id, request.attempt)
        except ValueError as exc:
            raise HttpProviderError(f"http provider: GET {url}: unreadable status: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
