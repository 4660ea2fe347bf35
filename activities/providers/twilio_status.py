"""Twilio's call statuses in the engine's terms: `Outcome`, `CallProgress` and a hangup cause.

Shared by the status callbacks (`activities.providers.twilio`) and by the provider, which reads
the same statuses from the Call resource (`activities.providers.twilio_provider`). Also the small,
forgiving readers of the values Twilio sends (numbers, RFC 2822 dates, form parameters).
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from campaign_engine.models import CallProgress, Outcome

_MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax", "machine"}
)
_INVALID_SIP = frozenset({404, 410, 484, 604})
_REJECTED_SIP = frozenset({403, 603, 607, 608})
_BUSY_SIP = frozenset({486, 600})
_NO_ANSWER_SIP = frozenset({408, 480, 487})


def to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def parse_rfc2822(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _failed_hangup_cause(sip: int | None) -> str | None:
    if sip is None:
        return None
    if sip in _INVALID_SIP:
        return "INVALID_NUMBER"
    if sip in _REJECTED_SIP:
        return "CALL_REJECTED"
    if sip in _BUSY_SIP:
        return "USER_BUSY"
    if sip in _NO_ANSWER_SIP:
        return "NO_ANSWER"
    if 500 <= sip < 600:
        return "NETWORK_ERROR"
    return None


def map_twilio_status(
    call_status: str | None,
    answered_by: str | None = None,
    sip_response_code: int | str | None = None,
    duration: float | str | None = None,
) -> tuple[Outcome | None, CallProgress | None, str | None]:
    """Map Twilio's CallStatus (of a callback or of the Call resource) to the engine's terms.

    Returns ``(outcome, progress, hangup_cause)``: exactly one of outcome/progress is set for
    a known status; ``(None, None, None)`` for a status this engine does not know.

    - queued / initiated -> QUEUED, ringing -> RINGING, in-progress / answered -> IN_PROGRESS
    - completed -> COMPLETED (answered by a person, or ``AnsweredBy`` human / unknown / absent),
      VOICEMAIL when ``AnsweredBy`` is ``machine_*`` or ``fax``; hangup NORMAL_CLEARING
    - busy -> BUSY (USER_BUSY), no-answer -> NO_ANSWER (NO_ANSWER),
      canceled -> CANCELED (ORIGINATOR_CANCEL)
    - failed -> FAILED; the hangup cause comes from the SIP response code: 404/410/484/604
      INVALID_NUMBER, 403/603/607/608 CALL_REJECTED, 486/600 USER_BUSY, 408/480/487
      NO_ANSWER, 5xx NETWORK_ERROR, otherwise none.

    ``duration`` is accepted so callers can pass a callback through unchanged; Twilio's
    status alone decides (a completed call was answered whatever its length).
    """
    del duration
    status = (call_status or "").strip().lower()
    if status in ("queued", "initiated"):
        return None, CallProgress.QUEUED, None
    if status == "ringing":
        return None, CallProgress.RINGING, None
    if status in ("in-progress", "answered"):
        return None, CallProgress.IN_PROGRESS, None
    if status == "completed":
        if (answered_by or "").strip().lower() in _MACHINE_ANSWERS:
            return Outcome.VOICEMAIL, None, "NORMAL_CLEARING"
        return Outcome.COMPLETED, None, "NORMAL_CLEARING"
    if status == "busy":
        return Outcome.BUSY, None, "USER_BUSY"
    if status == "no-answer":
        return Outcome.NO_ANSWER, None, "NO_ANSWER"
    if status == "canceled":
        return Outcome.CANCELED, None, "ORIGINATOR_CANCEL"
    if status == "failed":
        return Outcome.FAILED, None, _failed_hangup_cause(to_int(sip_response_code))
    return None, None, None


def status_reason(status: str | None, sip: int | None = None, answered_by: str | None = None) -> str:
    parts = [f"twilio status={status or 'unknown'}"]
    if answered_by:
        parts.append(f"answered_by={answered_by}")
    if sip is not None:
        parts.append(f"sip={sip}")
    return " ".join(parts)


def first_param(form: Mapping[str, Any], key: str) -> str | None:
    value = form.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value)
    return value if value != "" else None
