"""How a campaign workflow shows itself: its progress query, the counters it writes, and the
Temporal UI's current details. Pure functions of the carried state."""

from __future__ import annotations

from campaign_engine.models import CampaignConfig, CampaignProgress, CampaignState, CampaignStatus, ContactState
from campaign_engine.store.records import CampaignCounters


def counters(st: CampaignState, config: CampaignConfig) -> CampaignCounters:
    return CampaignCounters(
        name=config.name, status=st.status, total_contacts=st.total, duplicates_merged=st.duplicates_merged,
        calls_placed=st.calls_placed, live_calls=len(st.dialing), outcome_counts=dict(st.outcome_counts),
        answered_calls=st.answered_calls, answered_talk_seconds=st.answered_talk_seconds,
        started_at=st.started_at, finished_at=st.finished_at, pause_reason=st.pause_reason, run=st.runs,
    )


def progress(st: CampaignState, config: CampaignConfig, base: CampaignProgress | None) -> CampaignProgress:
    """The workflow's counters over the store's counts as of the last flush (`base`)."""
    total = max(st.total, 1)
    return CampaignProgress(
        campaign_id=config.campaign_id, name=config.name, status=st.status,
        total_contacts=st.total, expected_contacts=st.total, duplicates_merged=st.duplicates_merged,
        by_state=dict(base.by_state) if base else {ContactState.PENDING.value: st.total},
        by_disposition=dict(base.by_disposition) if base else {},
        outcome_counts=dict(st.outcome_counts), calls_placed=st.calls_placed, live_calls=len(st.dialing),
        redials_made=base.redials_made if base else 0, pending_redials=base.pending_redials if base else 0,
        next_redial_at=base.next_redial_at if base else None,
        percentage=round(100.0 * st.final / total, 1) if st.total else 0.0,
        estimated_completion=st.finished_at or (base.estimated_completion if base else None),
        started_at=st.started_at, finished_at=st.finished_at, run=st.runs, pause_reason=st.pause_reason,
    )


def current_details(st: CampaignState, config: CampaignConfig) -> str:
    """The Temporal UI's current details of the campaign's workflow (markdown)."""
    total = st.total
    return (
        f"**{st.status.value}** · {st.final}/{total} contacts final "
        f"({round(100 * st.final / total) if total else 0}%) · {st.calls_placed} calls placed · "
        + ", ".join(f"{k} {v}" for k, v in sorted(st.outcome_counts.items()))
        + f"\n\n- contacts: {total} (launched up to key {st.next_key})\n- live calls: {len(st.dialing)}"
        + f"\n- redial: {redial_label(config)}"
        + (f"\n\npaused: {st.pause_reason}" if st.status == CampaignStatus.PAUSED and st.pause_reason else "")
    )


def redial_label(config: CampaignConfig) -> str:
    """The redial configuration in force (it changes with PUT /updateCampaignData)."""
    rules = config.redial_rules
    if rules is not None:
        if not rules.enabled:
            return "off"
        return f"up to {rules.effective_max_attempts} calls, rules: " + ", ".join(r.match for r in rules.call_status)
    return f"up to {config.redial.max_attempts} calls" if config.redial.enabled else "off"
