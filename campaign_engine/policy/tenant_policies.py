"""Per-tenant overrides of the deployment's compliance defaults (issue 14): `TENANT_POLICIES`, a
JSON object of tenant id -> {"frequency_cap": "5/24h" or "" (none), "legal_hours": "auto" |
"on" | "off"}. A tenant's value replaces the deployment's (FREQUENCY_CAP, LEGAL_HOURS) for that
tenant's campaigns; a campaign's own frequencyCap still only adds a stricter cap. An override
that widens the deployment's rules (legal hours lifted, a looser cap or none) is written to the
audit trail for each campaign created under it (api/audit.py).

Checked at start-up: a bad entry stops the start with one line naming the tenant and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from campaign_engine.api_keys import TENANT_RE
from campaign_engine.policy.frequency_cap import FrequencyCap, parse_cap

LEGAL_MODES = ("off", "auto", "on")  # from the widest to the strictest
FIELDS = ("frequency_cap", "legal_hours")


@dataclass(frozen=True)
class TenantPolicy:
    frequency_cap: str | None = None  # None: the deployment's FREQUENCY_CAP; "": no cap
    legal_hours: str | None = None  # None: the deployment's LEGAL_HOURS


def parse_tenant_policies(text: str) -> dict[str, TenantPolicy]:
    """The overrides of TENANT_POLICIES; ValueError naming the tenant and field at fault."""
    if not text or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ValueError(f"not JSON ({err.msg} at character {err.pos}): "  # type: ignore[attr-defined]
                         'give {"tenant": {"frequency_cap": "5/24h", "legal_hours": "auto|on|off"}}') from None
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object of tenant id -> {"frequency_cap": ..., "legal_hours": ...}')
    return {_tenant(tenant): _policy(tenant, value) for tenant, value in data.items()}


def _tenant(tenant: str) -> str:
    if not TENANT_RE.fullmatch(tenant):
        raise ValueError(f"tenant {tenant[:70]!r}: not a tenant id (letters, digits, _ and -, 1 to 64)")
    return tenant


def _policy(tenant: str, value: Any) -> TenantPolicy:
    if not isinstance(value, dict):
        raise ValueError(f"tenant {tenant!r}: must be an object with frequency_cap and/or legal_hours")
    unknown = [k for k in value if k not in FIELDS]
    if unknown:
        raise ValueError(f"tenant {tenant!r}: unknown field {str(unknown[0])[:40]!r} (frequency_cap, legal_hours)")
    cap = value.get("frequency_cap")
    if cap is not None:
        if not isinstance(cap, str):
            raise ValueError(f"tenant {tenant!r}: frequency_cap must be text such as \"5/24h\", or \"\" for none")
        cap = cap.strip()
        if cap:
            try:
                parse_cap(cap)
            except ValueError as err:
                raise ValueError(f"tenant {tenant!r}: frequency_cap {err}") from None
    legal = value.get("legal_hours")
    if legal is not None and legal not in LEGAL_MODES:
        raise ValueError(f"tenant {tenant!r}: legal_hours {str(legal)[:40]!r} is not auto, on or off")
    return TenantPolicy(frequency_cap=cap, legal_hours=legal)


def wider_cap(cap: FrequencyCap | None, default: FrequencyCap | None) -> bool:
    """Whether `cap` allows a number more calls than `default` in some window: none at all, more
    calls, or the same calls in a shorter window."""
    if default is None:
        return False
    if cap is None:
        return True
    return not (cap.max_calls <= default.max_calls and cap.window_seconds >= default.window_seconds)


def wider_legal_hours(mode: str, default: str) -> bool:
    """Whether `mode` applies legal hours to fewer campaigns than `default`."""
    return LEGAL_MODES.index(mode) < LEGAL_MODES.index(default)


def widenings(policy: TenantPolicy | None, *, frequency_cap: str, legal_hours: str) -> list[dict[str, Any]]:
    """The audit details of each way a tenant's overrides widen the deployment's rules
    (`frequency_cap`, `legal_hours`: the deployment's)."""
    if policy is None:
        return []
    out: list[dict[str, Any]] = []
    if policy.legal_hours is not None and wider_legal_hours(policy.legal_hours, legal_hours):
        out.append({"action": "legal_hours.override", "details": {
            "TENANT_POLICIES": {"legal_hours": policy.legal_hours}, "LEGAL_HOURS": legal_hours,
            "effect": "legal calling hours lifted for this tenant's campaign" if policy.legal_hours == "off"
            else "legal calling hours applied to fewer providers than the deployment's"}})
    if policy.frequency_cap is not None:
        default = parse_cap(frequency_cap) if frequency_cap else None
        mine = parse_cap(policy.frequency_cap) if policy.frequency_cap else None
        if wider_cap(mine, default):
            out.append({"action": "frequency_cap.override", "details": {
                "TENANT_POLICIES": {"frequency_cap": policy.frequency_cap or "none"},
                "FREQUENCY_CAP": frequency_cap, "effect": "a looser cap on calls per number than the deployment's"}})
    return out


def summary(policies: dict[str, TenantPolicy]) -> str | None:
    """The line `campaign-engine up` prints about the tenants' overrides (None: there are none)."""
    if not policies:
        return None
    parts = []
    for tenant in sorted(policies):
        p = policies[tenant]
        said = []
        if p.frequency_cap is not None:
            said.append(f"frequency cap {p.frequency_cap or 'none'}")
        if p.legal_hours is not None:
            said.append(f"legal hours {p.legal_hours}")
        parts.append(f"{tenant} ({', '.join(said) or 'the defaults'})")
    n = len(policies)
    return f"tenant rules   {n} tenant{'s' if n != 1 else ''} override the defaults (TENANT_POLICIES): " + \
        "; ".join(parts)
