"""HMAC-SHA256 signatures for webhooks, in both directions.

One scheme serves our outbound customer webhooks (we sign) and the callbacks of generic
voice-agent platforms (we verify):

- ``X-Signature-Timestamp``: the Unix time, in whole seconds, at which the body was signed.
- ``X-Signature``: ``v1=<hex>``, the lowercase hex HMAC-SHA256, keyed with the shared
  secret, of the bytes ``f"{timestamp}."`` followed by the raw body, exactly as sent.

Several ``v1=`` values may be given, separated by commas (while a secret is being rotated the
sender signs with both); the signature is valid when one of them matches. A receiver
rejects a timestamp further than ``tolerance_seconds`` from its own clock, in either
direction, so a captured request cannot be replayed later. (Within the window a replay is
possible: receivers dedupe on the event's own id as well.)

Pure functions, no I/O: usable from the API, activities and tests alike.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def compute_digest(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The lowercase hex HMAC-SHA256 of ``f"{timestamp}."`` + ``body``."""
    message = f"{int(timestamp)}.".encode("ascii") + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign_payload(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The value of the ``X-Signature`` header for ``body`` signed at ``timestamp``: ``v1=<hex>``."""
    return f"{SIGNATURE_VERSION}={compute_digest(secret, body, timestamp)}"


def signature_headers(secret: str | bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Both headers to send with ``body`` (timestamp defaults to now)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign_payload(secret, body, ts)}


def _as_epoch(now: float | int | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("`now` must be timezone-aware")
        return now.timestamp()
    return float(now)


def verify_signature(
    secret: str | bytes,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now: float | int | datetime | None = None,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``signature_header`` signs ``body`` at ``timestamp_header`` with ``secret``
    and the timestamp is within ``tolerance_seconds`` of ``now`` (epoch seconds or an aware
    datetime; defaults to the current time). Never raises on malformed input: returns False.

    The comparison is constant-time (``hmac.compare_digest``).
    """
    if not secret or not timestamp_header or not signature_header:
        return False
    try:
        ts = int(str(timestamp_header).strip())
    except ValueError:
        return False
    if abs(_as_epoch(now) - ts) > tolerance_seconds:
        return False
    expected = compute_digest(secret, body, ts)
    valid = False
    for part in str(signature_header).split(","):
        scheme, sep, value = part.strip().partition("=")
        if not sep or scheme.strip() != SIGNATURE_VERSION:
            continue
        # Evaluate every candidate: no early exit that would tell which one matched.
        valid |= hmac.compare_digest(expected.encode("ascii"), value.strip().lower().encode("ascii", "replace"))
    return valid
