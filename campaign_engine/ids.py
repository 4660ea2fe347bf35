"""Identifiers. None of them contains personal data: contacts are known by their position."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def new_object_id(now: datetime) -> str:
    """A 24-hex id shaped like the seed's `_id` (a MongoDB ObjectId: time, then random)."""
    return f"{int(now.timestamp()):08x}{secrets.token_hex(8)}"


def new_campaign_id(now: datetime) -> str:
    """'CAMP-2026-7K3QX9TA': the year, then random letters and digits (no sequence to guess)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    suffix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"CAMP-{now.year}-{suffix}"


def is_safe_id(value: str) -> bool:
    return bool(_SAFE.match(value))


def campaign_workflow_id(tenant_id: str, campaign_id: str) -> str:
    # The tenant is part of the id: one tenant can never address another's campaign.
    return f"campaign/{tenant_id}/{campaign_id}"


def contact_workflow_id(campaign_wf_id: str, key: int) -> str:
    return f"{campaign_wf_id}/contact/{key}"


def parse_contact_workflow_id(workflow_id: str) -> tuple[str, int] | None:
    campaign_wf_id, sep, key = workflow_id.rpartition("/contact/")
    if not sep or not key.isdigit():
        return None
    return campaign_wf_id, int(key)


def idempotency_key(contact_wf_id: str, attempt: int) -> str:
    return f"{contact_wf_id}/attempt-{attempt}"
