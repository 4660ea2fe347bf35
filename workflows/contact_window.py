"""When one contact may be called: the campaign's calling window in the contact's zones,
narrowed to the contact's legal hours when the campaign follows them (the rule came with the
contact's row: policy/legal_hours.py), outside the blackout dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from campaign_engine.models import CampaignConfig, LaunchRow
    from campaign_engine.policy.legal_hours import narrowed
    from campaign_engine.policy.windows import CallingWindow, is_open, next_open, window_state


@dataclass
class ContactWindow:
    config: CampaignConfig
    contact: LaunchRow

    @property
    def window(self) -> CallingWindow | None:
        cfg, contact = self.config, self.contact
        if not cfg.legal_hours or contact.legal_window is None:
            return cfg.calling_window
        return narrowed(cfg.calling_window, contact.legal_window)

    def is_open(self, now: datetime) -> bool:
        window = self.window
        if window is None and not self.config.blackout_dates:
            return True
        return is_open(now, window, self.contact.zones, self.config.blackout_dates)

    def closed_until(self, now: datetime) -> tuple[datetime | None, str]:
        """When the window next opens (None: not within 400 days), and why it is closed now."""
        cfg, window, zones = self.config, self.window, self.contact.zones
        reason = window_state(now, window, zones, cfg.blackout_dates)
        if cfg.legal_hours and self.contact.legal_rule:
            reason += f" (legal hours {self.contact.legal_rule} narrow the calling window)"
        return next_open(now, window, zones, cfg.blackout_dates), reason
