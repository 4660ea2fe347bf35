"""Stop dialling when calls keep failing (issue 15): the campaign pauses itself when, over its
last N ended calls (CampaignConfig.auto_pause.window, default 20), more than a share (threshold,
default 50%) failed for carrier reasons: outcome `failed`, a call that could not be
established (busy, no-answer, voicemail are the callee's; a suppressed contact is no call).

The state is a ring of the last N outcomes in CampaignState (0/1 each), carried across
continue-as-new and cleared on resume, so a resumed campaign gets a fresh window: it pauses
again only after N more ended calls that fail as much. Pure functions of the state (workflow
code: deterministic, no I/O); the workflow records the pause and sends the `campaign.paused`
customer webhook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaign_engine.models import AutoPausePolicy, CampaignConfig, CampaignState, Outcome

CAMPAIGN_PAUSED = "campaign.paused"
CARRIER_FAILURES = frozenset({Outcome.FAILED})
NOT_CALLS = frozenset({Outcome.SUPPRESSED, Outcome.CANCELED})


def observe(state: CampaignState, policy: AutoPausePolicy, outcome: Outcome) -> str | None:
    """Record one ended call in the ring; the pause reason when the campaign must pause now."""
    if not policy.enabled or outcome in NOT_CALLS:
        return None
    ring = state.recent_failures
    ring.append(1 if outcome in CARRIER_FAILURES else 0)
    del ring[:-policy.window]
    if len(ring) < policy.window:
        return None
    failed = sum(ring)
    if failed <= policy.threshold * len(ring):
        return None
    return (f"paused automatically: {failed} of the last {len(ring)} ended calls failed for carrier reasons "
            f"(more than {policy.threshold:.0%}); resume the campaign once the carrier works")


def paused_document(config: CampaignConfig, state: CampaignState, *, delivery_id: str,
                    paused_at: datetime) -> dict[str, Any]:
    """The campaign-paused webhook document."""
    return {
        "event": CAMPAIGN_PAUSED,
        "webhookId": delivery_id,
        "campaignId": config.campaign_id,
        "campaignName": config.name,
        "agentId": config.agent_id,
        "status": "paused",
        "reason": state.pause_reason,
        "automatic": True,
        "pausedAt": paused_at.isoformat().replace("+00:00", "Z"),
        "callsPlaced": state.calls_placed,
        "outcomeCounts": dict(state.outcome_counts),
    }
