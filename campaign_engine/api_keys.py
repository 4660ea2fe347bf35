"""`CAMPAIGN_API_KEYS`: which key belongs to which tenant (pure; read by campaign_engine.settings).

Comma-separated entries, each one of

    tenant:key               the key of a tenant
    key                      a key of the tenant "default"
    tenant:sha256:<hex>      the SHA-256 of the key (64 hex digits): the setting holds no usable key
    sha256:<hex>             the same for the tenant "default"

Tenant names become part of workflow ids, so they are `[A-Za-z0-9_-]{1,64}`; keys are made of
letters, digits and `._~+/=-` (what `secrets.token_urlsafe` and base64 produce). An entry that
is none of these, an empty key or tenant, or one key given to two tenants is refused (the
messages never repeat a key).
"""

from __future__ import annotations

import hashlib
import re

DEFAULT_TENANT = "default"
TENANT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_RE = re.compile(r"[A-Za-z0-9._~+/=-]{1,512}")
HASH_RE = re.compile(r"sha256:([0-9a-fA-F]{64})")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse(value: str) -> tuple[dict[bytes, str], dict[str, str]]:
    """(SHA-256 digest of each key -> tenant, plain key -> tenant); ValueError saying what is wrong."""
    digests: dict[bytes, str] = {}
    plain: dict[str, str] = {}
    for number, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        hashed = HASH_RE.fullmatch(item)
        if hashed:
            tenant, key = DEFAULT_TENANT, item
        else:
            tenant, sep, key = item.partition(":")
            if not sep:
                tenant, key = DEFAULT_TENANT, item
            tenant, key = tenant.strip(), key.strip()
            hashed = HASH_RE.fullmatch(key)
        if not tenant:
            raise ValueError(f"entry {number} has an empty tenant name (expected tenant:key)")
        if not TENANT_RE.fullmatch(tenant):
            raise ValueError(f"entry {number}: tenant {tenant[:64]!r} must be 1-64 letters, digits, '_' or '-'")
        if not key:
            raise ValueError(f"entry {number} (tenant {tenant}) has an empty key")
        if hashed:
            key_digest = bytes.fromhex(hashed.group(1))
        elif KEY_RE.fullmatch(key):
            key_digest = digest(key)
        else:
            raise ValueError(f"entry {number} (tenant {tenant}): a key is letters, digits and ._~+/=- only "
                             "(or sha256:<64 hex digits>)")
        other = digests.get(key_digest)
        if other is not None and other != tenant:
            raise ValueError(f"entry {number}: one key is given to two tenants ({other} and {tenant})")
        digests[key_digest] = tenant
        if not hashed:
            plain[key] = tenant
    return digests, plain
