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
a callback. Callbacks: ``POST`` JSON to ``callbackUrl``, signed with HMAC-SHA256
(`campaign_engine.signing`): verify with `verify_hmac_callback` over the raw body, then
`parse_http_agent_callback`. The referenceId ``{contact_workflow_id}/attempt-{n}`` tells the
route which workflow and attempt the result belongs to (`parse_reference_id`).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote

import httpx

from activities.http_client import LoopBoundClient
from activities.providers.base import ProviderAuthError, ProviderError
from activities.providers.http_agent_settings import HttpAgentSettings
from campaign_engine import signing
from campaign_engine.models import CallOutcome, CallProgress, CallRequest, Outcome, PlacedCall

logger = logging.getLogger(__name__)

PROVIDER_NAME = "http"
CALLBACK_PATH = "/callbacks/http-agent"
REJECTED_PREFIX = "rejected:"
SIGNATURE_HEADER = signing.SIGNATURE_HEADER  # "X-Signature", value "v1=<hex>"
TIMESTAMP_HEADER = signing.TIMESTAMP_HEADER  # "X-Signature-Timestamp", Unix seconds

_FINAL = {
    "completed": Outcome.COMPLETED,
    "complete": Outcome.COMPLETED,
    "no-answer": Outcome.NO_ANSWER,
    "noanswer": Outcome.NO_ANSWER,
    "unanswered": Outcome.NO_ANSWER,
    "not-answered": Outcome.NO_ANSWER,
    "busy": Outcome.BUSY,
    "user-busy": Outcome.BUSY,
    "failed": Outcome.FAILED,
    "failure": Outcome.FAILED,
    "error": Outcome.FAILED,
    "voicemail": Outcome.VOICEMAIL,
    "machine": Outcome.VOICEMAIL,
    "answering-machine": Outcome.VOICEMAIL,
    "canceled": Outcome.CANCELED,
    "cancelled": Outcome.CANCELED,
}
_PROGRESS = {
    "queued": CallProgress.QUEUED,
    "initiated": CallProgress.QUEUED,
    "pending": CallProgress.QUEUED,
    "scheduled": CallProgress.QUEUED,
    "ringing": CallProgress.RINGING,
    "in-progress": CallProgress.IN_PROGRESS,
    "ongoing": CallProgress.IN_PROGRESS,
    "active": CallProgress.IN_PROGRESS,
    "answered": CallProgress.IN_PROGRESS,
}
_DEFAULT_HANGUP = {
    Outcome.COMPLETED: "NORMAL_CLEARING",
    Outcome.VOICEMAIL: "NORMAL_CLEARING",
    Outcome.BUSY: "USER_BUSY",
    Outcome.NO_ANSWER: "NO_ANSWER",
    Outcome.CANCELED: "ORIGINATOR_CANCEL",
}
_INVALID_MARKERS = ("INVALID_NUMBER", "INVALID_PHONE", "INVALID_DESTINATION", "INVALID_TO")
_ATTEMPT_RE = re.compile(r"^(?P<wf>.+)/attempt-(?P<n>\d+)$")


class HttpProviderError(ProviderError):
    """The platform failed in a way worth retrying."""


def normalize_status(raw: Any) -> str:
    """``No_Answer`` / ``no answer`` / ``no-answer`` -> ``no-answer``."""
    return re.sub(r"[\s_]+", "-", str(raw or "").strip().lower())


def map_http_agent_status(raw: Any) -> tuple[Outcome | None, CallProgress | None]:
    status = normalize_status(raw)
    if status in _FINAL:
        return _FINAL[status], None
    return None, _PROGRESS.get(status)


def parse_reference_id(reference_id: str) -> tuple[str, int]:
    """``"{contact_workflow_id}/attempt-{n}"`` -> ``(contact_workflow_id, n)``."""
    match = _ATTEMPT_RE.match(reference_id or "")
    if not match:
        raise ValueError(f"not an attempt reference: {reference_id!r}")
    return match.group("wf"), int(match.group("n"))


def _pick(payload: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = payload.get(key)
        if value is not None and value != "":
            return value
    return None


def _unwrap(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Some platforms nest the call under "data" or "call"."""
    for key in ("data", "call"):
        inner = payload.get(key)
        if isinstance(inner, Mapping) and not _pick(payload, "callStatus", "status", "call_status"):
            merged = dict(inner)
            for k, v in payload.items():
                merged.setdefault(k, v)
            return merged
    return payload


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _datetime(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _outcome_from_payload(payload: Mapping[str, Any], call_id: str, attempt: int) -> CallOutcome:
    raw_status = _pick(payload, "callStatus", "status", "call_status")
    outcome, progress = map_http_agent_status(raw_status)
    if outcome is None and progress is None:
        raise ValueError(f"unknown call status {raw_status!r}")
    hangup = _pick(payload, "hangupCause", "hangup_cause")
    hangup = str(hangup).strip().upper() if hangup else (_DEFAULT_HANGUP.get(outcome) if outcome else None)
    analysis = _pick(payload, "postCallAnalysisResults", "analysis", "post_call_analysis")
    if analysis is not None and not isinstance(analysis, dict):
        analysis = {"value": analysis}
    reason = _pick(payload, "reason", "errorMessage", "error_message", "message")
    answered_by = _pick(payload, "answeredBy", "answered_by")
    return CallOutcome(
        call_id=call_id,
        attempt=attempt,
        outcome=outcome,
        progress=progress,
        duration_seconds=_float(_pick(payload, "callDuration", "duration", "call_duration", "durationSeconds")),
        hangup_cause=hangup,
        reason=str(reason) if reason is not None else f"status={normalize_status(raw_status)}",
        answered_by=str(answered_by) if answered_by is not None else None,
        recording_url=_pick(payload, "callRecordingUrl", "recordingUrl", "recording_url"),
        analysis=analysis or {},
        ended_at=_datetime(_pick(payload, "endedAt", "ended_at", "endTime", "end_time")) if outcome else None,
    )


def parse_http_agent_callback(payload: Mapping[str, Any]) -> tuple[str, CallOutcome]:
    """``(referenceId, CallOutcome)`` from a platform's callback JSON.

    Accepts ``referenceId``/``reference_id``, ``callId``/``call_id``/``id``,
    ``callStatus``/``status`` (``completed``, ``no-answer``/``no_answer``, ``busy``, ``failed``,
    ``voicemail``, ``canceled``/``cancelled``, and progress: ``queued``, ``ringing``,
    ``in-progress``...), ``callDuration``, ``recordingUrl``/``callRecordingUrl``,
    ``hangupCause``, ``analysis``/``postCallAnalysisResults``, ``answeredBy``, ``endedAt``.
    The attempt number comes from the referenceId. Raises ValueError on a payload without a
    referenceId or with an unknown status.
    """
    if not isinstance(payload, Mapping):
        raise ValueError("callback payload must be a JSON object")
    payload = _unwrap(payload)
    reference_id = _pick(payload, "referenceId", "reference_id")
    if reference_id is None and isinstance(payload.get("metadata"), Mapping):
        reference_id = _pick(payload["metadata"], "referenceId", "reference_id")
    if not reference_id:
        raise ValueError("callback without referenceId")
    reference_id = str(reference_id)
    try:
        _, attempt = parse_reference_id(reference_id)
    except ValueError:
        attempt = 0
    call_id = _pick(payload, "callId", "call_id", "id")
    return reference_id, _outcome_from_payload(payload, str(call_id or reference_id), attempt)


def verify_hmac_callback(
    secret: str | bytes,
    raw_body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now: float | int | datetime | None = None,
    tolerance_seconds: float = signing.DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Check a platform callback: ``X-Signature: v1=<hex HMAC-SHA256(secret, f"{ts}.{body}")>``
    with ``X-Signature-Timestamp: <ts>`` within ``tolerance_seconds`` of ``now``."""
    return signing.verify_signature(secret, raw_body, timestamp_header, signature_header, now, tolerance_seconds)


def _invalid_number_error(payload: Any) -> bool:
    if not isinstance(payload, Mapping):
        return False
    payload = _unwrap(payload)
    texts = [_pick(payload, key) for key in ("error", "code", "errorCode", "error_code", "hangupCause", "reason")]
    nested = payload.get("error")
    if isinstance(nested, Mapping):
        texts += [_pick(nested, key) for key in ("code", "type", "reason")]
    joined = " ".join(str(t).upper().replace("-", "_") for t in texts if t is not None and not isinstance(t, Mapping))
    return any(marker in joined for marker in _INVALID_MARKERS)


def _error_message(payload: Any, text: str) -> str:
    if isinstance(payload, Mapping):
        message = _pick(payload, "message", "error", "detail")
        if isinstance(message, Mapping):
            message = _pick(message, "message", "code")
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
        data = _unwrap(payload) if isinstance(payload, Mapping) else {}
        call_id = _pick(data, "callId", "call_id", "id")
        text = f"http provider: POST {self.url}: HTTP {status}: {_error_message(payload, response.text)}"

        if status in (401, 403, 404, 405):
            raise ProviderAuthError(text)
        if 200 <= status < 300 or (status == 409 and call_id):
            if not call_id:
                raise HttpProviderError(f"{text}: no callId in the answer")
            replayed = response.headers.get("Idempotent-Replayed") or response.headers.get("Idempotency-Replayed")
            adopted = status == 409 or str(replayed).lower() == "true"
            outcome = None
            try:
                maybe = _outcome_from_payload(data, str(call_id), request.attempt)
                outcome = maybe if maybe.is_final else None
            except ValueError:
                pass  # no status in the answer (the usual case)
            return PlacedCall(
                call_id=str(call_id),
                provider=self.name,
                adopted=adopted,
                outcome=outcome,
                poll_after_seconds=self.poll_after_seconds,
            )
        if status in (408, 409, 425, 429) or status >= 500:
            raise HttpProviderError(text)
        # Any other 4xx: the platform refused this call.
        rejected_id = f"{REJECTED_PREFIX}{request.idempotency_key}"
        outcome = CallOutcome(
            call_id=rejected_id,
            attempt=request.attempt,
            outcome=Outcome.FAILED,
            hangup_cause="INVALID_NUMBER" if _invalid_number_error(payload) else "CALL_REJECTED",
            reason=f"http provider {status}: {_error_message(payload, response.text)}",
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
            return _outcome_from_payload(_unwrap(payload), call_id, request.attempt)
        except ValueError as exc:
            raise HttpProviderError(f"http provider: GET {url}: unreadable status: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
