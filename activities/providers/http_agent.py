"""Reading a voice-agent platform's JSON (its callbacks and its status answers) as `CallOutcome`s.

Callbacks: ``POST`` JSON to ``callbackUrl``, signed with HMAC-SHA256 (`campaign_engine.signing`):
verify with `verify_hmac_callback` over the raw body, then `parse_http_agent_callback`. The
referenceId ``{contact_workflow_id}/attempt-{n}`` tells the route which workflow and attempt the
result belongs to (`parse_reference_id`). The status answer of ``GET {HTTP_PROVIDER_STATUS_URL}``
is read the same way (`outcome_from_payload`).

The provider itself (placing and polling calls) is `activities.providers.http_agent_provider`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from campaign_engine import signing
from campaign_engine.models import CallOutcome, CallProgress, Outcome

CALLBACK_PATH = "/callbacks/http-agent"
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
_ATTEMPT_RE = re.compile(r"^(?P<wf>.+)/attempt-(?P<n>\d+)$")


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


def pick(payload: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = payload.get(key)
        if value is not None and value != "":
            return value
    return None


def unwrap(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Some platforms nest the call under "data" or "call"."""
    for key in ("data", "call"):
        inner = payload.get(key)
        if isinstance(inner, Mapping) and not pick(payload, "callStatus", "status", "call_status"):
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


def outcome_from_payload(payload: Mapping[str, Any], call_id: str, attempt: int) -> CallOutcome:
    raw_status = pick(payload, "callStatus", "status", "call_status")
    outcome, progress = map_http_agent_status(raw_status)
    if outcome is None and progress is None:
        raise ValueError(f"unknown call status {raw_status!r}")
    hangup = pick(payload, "hangupCause", "hangup_cause")
    hangup = str(hangup).strip().upper() if hangup else (_DEFAULT_HANGUP.get(outcome) if outcome else None)
    analysis = pick(payload, "postCallAnalysisResults", "analysis", "post_call_analysis")
    if analysis is not None and not isinstance(analysis, dict):
        analysis = {"value": analysis}
    reason = pick(payload, "reason", "errorMessage", "error_message", "message")
    answered_by = pick(payload, "answeredBy", "answered_by")
    return CallOutcome(
        call_id=call_id,
        attempt=attempt,
        outcome=outcome,
        progress=progress,
        duration_seconds=_float(pick(payload, "callDuration", "duration", "call_duration", "durationSeconds")),
        hangup_cause=hangup,
        reason=str(reason) if reason is not None else f"status={normalize_status(raw_status)}",
        answered_by=str(answered_by) if answered_by is not None else None,
        recording_url=pick(payload, "callRecordingUrl", "recordingUrl", "recording_url"),
        analysis=analysis or {},
        ended_at=_datetime(pick(payload, "endedAt", "ended_at", "endTime", "end_time")) if outcome else None,
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
    payload = unwrap(payload)
    reference_id = pick(payload, "referenceId", "reference_id")
    if reference_id is None and isinstance(payload.get("metadata"), Mapping):
        reference_id = pick(payload["metadata"], "referenceId", "reference_id")
    if not reference_id:
        raise ValueError("callback without referenceId")
    reference_id = str(reference_id)
    try:
        _, attempt = parse_reference_id(reference_id)
    except ValueError:
        attempt = 0
    call_id = pick(payload, "callId", "call_id", "id")
    return reference_id, outcome_from_payload(payload, str(call_id or reference_id), attempt)


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
