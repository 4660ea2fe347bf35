"""Contacts whose workflow closed without a word: the campaign must not wait for them.

The run that started a contact sees its end (workflows/child_results.py); a later run hears
only its signals. One terminated by an operator (Temporal UI, CLI) never reports its end, so beside the campaign's main loop this asks the store, every
`silent_contact_check_seconds`, for open contacts past the word they owe (a waiting one
past its next call time, one queued or on a call for longer than the check) and signals each
a `ping`: a signal to a closed workflow fails, and that contact ends as failed. A grant or
stop that fails the same way ends its contact too (see CampaignWorkflow._tell).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.records import SilentContactsRequest
    from campaign_engine.contract import Activity, ContactSignal
    from campaign_engine.models import CampaignConfig, CampaignState, ContactState, Outcome
    from campaign_engine.store.records import ContactChange
    from workflows.admission import Admission
    from workflows.contact_signal import signal_contact
    from workflows.recorder import Recorder

# Keys that ended lately: a signal that fails because the contact closed after its final
# report must not end it a second time.
RECENT_FINALS = 5_000


class Liveness:
    def __init__(self, state: CampaignState, config: CampaignConfig, admission: Admission, recorder: Recorder, *,
                 on_closed: Callable[[int], None], is_finished: Callable[[], bool]) -> None:
        self.st, self.cfg, self.admission, self.recorder = state, config, admission, recorder
        self._on_closed, self._is_finished = on_closed, is_finished
        self.recent_finals: deque[int] = deque(maxlen=RECENT_FINALS)

    def ended_without_report(self, key: int) -> bool:
        """Record a contact whose workflow closed without its final report (terminated) as
        failed; a call it was granted stays counted (it may have gone out). False when it
        had ended already."""
        if key in self.recent_finals:
            return False
        for keys in (self.st.dialing, self.st.fresh):
            if key in keys:
                keys.remove(key)
        self.admission.drop(key)
        self.recorder.change(ContactChange(
            key=key, state=ContactState.DONE, disposition=Outcome.FAILED, clear_next_call=True,
            reason="the contact's workflow closed without reporting its end (terminated?)"))
        return True

    async def watch(self) -> None:
        interval = timedelta(seconds=self.cfg.silent_contact_check_seconds)
        while True:
            await workflow.wait_condition(lambda: self.st.next_key > 0 and not self._is_finished())
            await workflow.sleep(interval, summary="until the next check for silent contacts")
            await self.recorder.recorded()
            try:
                keys: list[int] = await workflow.execute_local_activity(
                    Activity.FIND_SILENT_CONTACTS,
                    SilentContactsRequest(tenant_id=self.cfg.tenant_id, campaign_id=self.cfg.campaign_id,
                                          grace_seconds=interval.total_seconds(),
                                          call_bound_seconds=interval.total_seconds()),
                    result_type=list[int], start_to_close_timeout=timedelta(seconds=30),
                    summary="contacts silent for too long",
                )
            except ActivityError as err:
                workflow.logger.warning("check for silent contacts failed: %s", err.cause or err)
                continue
            queued = self.admission.queued()  # these wait for the campaign, not it for them
            for key in keys:
                if key not in queued:
                    await self._ping(key)

    async def _ping(self, key: int) -> None:
        if not await signal_contact(key, ContactSignal.PING):
            self._on_closed(key)
