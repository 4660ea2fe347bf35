"""What the campaign sends its contacts: a grant for each free call slot, the stops and
retry times of single contacts, and a stop or new redial rules to every open one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.broadcast import BroadcastRequest
    from campaign_engine.contract import Activity, ContactSignal
    from campaign_engine.models import CampaignConfig, CampaignState, ContactState, DialGrant, RedialUpdate
    from campaign_engine.store.records import ContactChange
    from workflows.admission import Admission
    from workflows.contact_signal import SIGNAL_BATCH, signal_contacts
    from workflows.recorder import Recorder


class Dispatcher:
    def __init__(self, state: CampaignState, config: CampaignConfig, admission: Admission, recorder: Recorder, *,
                 on_unreachable: Callable[[int], None]) -> None:
        self.st, self.cfg, self.admission, self.recorder = state, config, admission, recorder
        self._on_unreachable = on_unreachable
        self._outbox: list[tuple[int, tuple]] = []  # (key, (grant,)): grants, stops and retries to send

    def send(self, key: int, grant: DialGrant) -> None:
        self._outbox.append((key, (grant,)))

    def has_work(self) -> bool:
        return bool(self._outbox or self.st.broadcasts)

    async def dispatch(self) -> None:
        """Grant the free slots, send what waits, then the broadcasts in order."""
        now = workflow.now()
        for key, attempt in self.admission.take(now, SIGNAL_BATCH):
            self.st.calls_placed += 1
            self.recorder.change(ContactChange(key=key, state=ContactState.DIALING))
            self.send(key, DialGrant(attempt=attempt, granted_at=now))
        while self._outbox:
            outbox, self._outbox = self._outbox, []
            for key in await signal_contacts(ContactSignal.DIAL_GRANT, outbox):
                self._on_unreachable(key)
        while self.st.broadcasts:
            await self._broadcast(self.st.broadcasts[0])
            self.st.broadcasts.pop(0)

    async def _broadcast(self, what: str) -> None:
        """A stop (cancel) or the new redial rules to every open contact, paged from the store
        once it has every launch (contacts launched later start with the rules in force)."""
        await self.recorder.recorded()
        cfg = self.cfg
        request = BroadcastRequest(
            campaign_workflow_id=workflow.info().workflow_id, tenant_id=cfg.tenant_id, campaign_id=cfg.campaign_id,
            stop=DialGrant(attempt=0, stop=ContactState.CANCELED, reason="campaign canceled") if what == "stop" else None,
            policy=RedialUpdate(redial=cfg.redial, redial_rules=cfg.redial_rules) if what == "policy" else None,
        )
        await workflow.execute_activity(
            Activity.SIGNAL_OPEN_CONTACTS, request, result_type=int, start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=1), summary=f"{what} to every open contact",
        )
