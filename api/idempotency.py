"""Idempotency-Key support: the body's fingerprint (a retry must carry the same request) and
the campaign id a key maps to."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any


def body_fingerprint(raw: bytes) -> str:
    """sha256 of the body as canonical JSON (sorted keys, no spaces), so a keyed retry that
    spells the same body differently matches; of the bytes when they are not JSON.

    Hashed piece by piece: the canonical text of a whole contact list is never built (json.dumps
    of 1,000 contacts peaks at about 6 times the body's size; each row's text is a few
    hundred bytes). The digest is the same as hashing `json.dumps(..., sort_keys=True)`."""
    try:
        tree = json.loads(raw)
    except ValueError:
        return hashlib.sha256(raw).hexdigest()
    digest = hashlib.sha256()
    _hash_canonical(digest, tree, depth=2)
    return digest.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _hash_canonical(digest: Any, value: Any, depth: int) -> None:
    """Feed `_canonical(value)` to `digest`, splitting objects and arrays `depth` levels down
    (the body, then its fields: the contact list row by row)."""
    if depth == 0 or not isinstance(value, dict | list) or not value:
        digest.update(_canonical(value))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            digest.update(b"," if i else b"[")
            _hash_canonical(digest, item, depth - 1)
        digest.update(b"]")
    else:
        for i, key in enumerate(sorted(value)):
            digest.update((b"," if i else b"{") + _canonical(key) + b":")
            _hash_canonical(digest, value[key], depth - 1)
        digest.update(b"}")


def campaign_id_for_key(tenant_id: str, idem_key: str, now: datetime) -> str:
    digest = hashlib.sha256(f"{tenant_id}\0{idem_key}".encode()).digest()
    return f"CAMP-{now.year}-" + base64.b32encode(digest).decode()[:10]


