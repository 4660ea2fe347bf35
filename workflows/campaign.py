"""CampaignWorkflow: one campaign, from upload to its final summary.

Its contacts are rows in the store. It launches them in key order (workflows/launcher.py),
decides when each may dial (workflows/admission.py: pause, concurrency, pacing), sends the
grants and stops (workflows/dispatcher.py), hears from each by one signal (`contact_report`),
or by its result for a contact dialled with its start (workflows/child_results.py), and
writes what changed to the store (workflows/recorder.py). It keeps counters and what is in
flight, never a list of every contact, and continues as new as often as its history needs:
contacts are started with ParentClosePolicy.ABANDON and report to the campaign's workflow
id, whichever run is current.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from campaign_engine import search_attributes as sa
    from campaign_engine.contract import CampaignQuery, CampaignSignal, CampaignUpdate
    from campaign_engine.models import (
        AppendNotice,
        AttemptReport,
        CampaignConfig,
        CampaignInput,
        CampaignProgress,
        CampaignState,
        CampaignStatus,
        CampaignSummary,
        ContactRemoval,
        ContactState,
        ControlResult,
        DialGrant,
        DialRequest,
        Outcome,
        RedialUpdate,
    )
    from campaign_engine.store.records import CampaignCounters, ContactChange
    from workflows import auto_pause
    from workflows.admission import Admission
    from workflows.child_results import ChildResults
    from workflows.dispatcher import Dispatcher
    from workflows.webhook_delivery import await_webhook_deliveries, start_campaign_completed, start_campaign_paused
    from workflows.launcher import Launcher
    from workflows.liveness import Liveness
    from workflows import campaign_view as view
    from workflows.recorder import Recorder

# A run continues as new past this many events (Temporal's hard limit is 51,200).
MAX_RUN_EVENTS = 8_000
FINISHED = (CampaignStatus.COMPLETED, CampaignStatus.CANCELED, CampaignStatus.FAILED)


@workflow.defn
class CampaignWorkflow:
    @workflow.init
    def __init__(self, input: CampaignInput) -> None:
        self._config = input.config
        self._state = input.carried or CampaignState(
            status=CampaignStatus.DRAFT if input.start_paused else CampaignStatus.IN_PROGRESS,
            total=input.total_contacts, duplicates_merged=input.duplicates_merged,
        )
        self._admission = Admission(self._state, self._config)
        self._recorder = Recorder(self._config, self._state, self._counters)
        self._results = ChildResults(on_report=self.contact_report, on_closed=self._closed_without_report)
        self._launcher = Launcher(self._state, self._config, self._admission, self._recorder, self._results)
        self._dispatcher = Dispatcher(self._state, self._config, self._admission, self._recorder,
                                      on_unreachable=self._closed_without_report)
        self._liveness = Liveness(self._state, self._config, self._admission, self._recorder,
                                  on_closed=self._closed_without_report, is_finished=self._is_finished)
        self._sa_status: CampaignStatus | None = None
        self._notices: list = []  # campaign.paused webhooks under way (awaited before the run ends)

    # --- the process ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CampaignInput) -> CampaignSummary:
        """The campaign, shielded from a workflow cancellation (the Temporal UI's "Request
        Cancellation", `temporal workflow cancel`): the SDK cancels this task only, so the
        campaign runs in a task of its own that the cancellation never reaches. A request
        cancels the campaign as the `cancel` update does, and the workflow then ends as a
        canceled campaign with its summary, like any other."""
        campaign = asyncio.create_task(self._live())
        while True:
            try:
                return await asyncio.shield(campaign)
            except asyncio.CancelledError:
                if campaign.done():
                    return campaign.result()
                workflow.logger.info("workflow cancellation requested: canceling the campaign")
                self._cancel_campaign()

    async def _live(self) -> CampaignSummary:
        st = self._state
        if st.started_at is None and st.status != CampaignStatus.DRAFT:
            st.started_at = workflow.now()
        self._publish()
        asyncio.create_task(self._recorder.run())
        asyncio.create_task(self._liveness.watch())
        while True:
            await self._until_something_to_do()
            await self._launcher.launch()
            await self._dispatcher.dispatch()
            self._publish()
            if self._is_finished() and (summary := await self._finish()) is not None:
                return summary
            if self._continue_as_new_due() and not self._has_work():
                await self._continue_as_new()

    async def _until_something_to_do(self) -> None:
        wait = self._admission.pacing_wait(workflow.now())
        try:
            await workflow.wait_condition(
                lambda: self._has_work() or self._is_finished() or self._continue_as_new_due(),
                timeout=timedelta(seconds=wait) if wait is not None else None,
                timeout_summary="pacing: next call slot" if wait is not None else None,
            )
        except asyncio.TimeoutError:
            pass

    def _has_work(self) -> bool:
        return bool(self._dispatcher.has_work() or self._launcher.can_launch()
                    or self._admission.free_slots(workflow.now()) > 0)

    def _is_finished(self) -> bool:
        st = self._state
        if st.status == CampaignStatus.DRAFT or self._launcher.has_more() or self._dispatcher.has_work():
            return False
        return st.final >= st.total and (st.total > 0 or st.status == CampaignStatus.CANCELED)

    def _continue_as_new_due(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested() or info.get_current_history_length() > MAX_RUN_EVENTS
                # A full run continues as new only to launch more contacts.
                or (self._launcher.run_is_full() and self._launcher.has_more()
                    and self._state.status == CampaignStatus.IN_PROGRESS))

    async def _continue_as_new(self) -> None:
        """Hand the carried state to a new run, once every operation is answered and the
        store has everything; returns if something came meanwhile."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._results.hand_over()
        await workflow.wait_condition(self._results.all_in)  # results of children that closed meanwhile
        await self._notices_sent()
        await self._recorder.recorded()
        if self._has_work() or not workflow.all_handlers_finished() or not self._recorder.is_current():
            return
        self._state.runs += 1
        workflow.continue_as_new(CampaignInput(config=self._config, carried=self._state))

    async def _finish(self) -> CampaignSummary | None:
        """The end, once every operation is answered and every row written; None if an
        operation meanwhile gave the campaign more to do (an append)."""
        st = self._state
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._recorder.recorded()  # every row written before the final status shows
        if not self._is_finished():
            return None
        if st.status != CampaignStatus.CANCELED:
            st.status = CampaignStatus.COMPLETED
        st.finished_at = workflow.now()
        self._publish()
        await self._recorder.recorded()
        progress = self.progress()
        summary = CampaignSummary(
            campaign_id=self._config.campaign_id, status=st.status, total_contacts=st.total,
            by_disposition=progress.by_disposition, outcome_counts=dict(st.outcome_counts),
            calls_placed=st.calls_placed, started_at=st.started_at, finished_at=st.finished_at,
        )
        # The campaign-completed webhook, once the final status is recorded.
        await await_webhook_deliveries([n for n in [start_campaign_completed(self._config, summary)] if n])
        await self._notices_sent()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return summary

    async def _notices_sent(self) -> None:
        notices, self._notices = self._notices, []
        await await_webhook_deliveries(notices)

    def _pause_automatically(self, reason: str) -> None:
        """Calls keep failing for carrier reasons (workflows/auto_pause.py): paused as by the
        API (resume works the same), the reason recorded, a campaign.paused webhook sent."""
        st, cfg = self._state, self._config
        st.status = CampaignStatus.PAUSED
        st.paused_at = workflow.now()
        st.pause_reason = reason
        st.auto_pauses += 1
        workflow.logger.warning("campaign %s: %s", cfg.campaign_id, reason)
        self._publish()
        if (notice := start_campaign_paused(cfg, st)) is not None:
            self._notices.append(notice)

    # --- what contacts say -------------------------------------------------------------

    @workflow.signal(name=CampaignSignal.DIAL_REQUEST)
    def dial_request(self, request: DialRequest) -> None:
        st, key = self._state, request.key
        self._results.spoke(key)
        self._discard(st.fresh, key)
        if st.status == CampaignStatus.CANCELED:
            self._dispatcher.send(key, DialGrant(attempt=0, stop=ContactState.CANCELED, reason="campaign canceled"))
        elif key in st.dialing:
            return
        elif self._admission.enqueue(key, request.attempt):
            self._recorder.change(ContactChange(key=key, state=ContactState.QUEUED, clear_next_call=True))
        else:
            self._dispatcher.send(key, DialGrant(attempt=request.attempt,
                                                 retry_at=self._admission.retry_at(workflow.now())))

    @workflow.signal(name=CampaignSignal.PROVIDER_BLOCKED)
    def provider_blocked(self, request: DialRequest) -> None:
        """A dial was refused for bad provider credentials: pause rather than burn attempts."""
        st = self._state
        self._results.spoke(request.key)
        if request.key in st.dialing:
            self._discard(st.dialing, request.key)
            st.calls_placed = max(0, st.calls_placed - 1)
            self._recorder.change(ContactChange(key=request.key, state=ContactState.QUEUED))
        if st.status == CampaignStatus.IN_PROGRESS:
            st.status = CampaignStatus.PAUSED
            st.paused_at = workflow.now()
        st.pause_reason = request.blocked_reason

    @workflow.signal(name=CampaignSignal.CONTACT_REPORT)
    def contact_report(self, report: AttemptReport) -> None:
        """A contact's report, by signal (or, for a final one, as its result: ChildResults)."""
        st, key = self._state, report.key
        self._results.spoke(key)
        self._discard(st.fresh, key)
        self._admission.drop(key)
        if key in st.dialing:
            self._discard(st.dialing, key)
            if report.attempt is None:  # the slot was given back unused
                st.calls_placed = max(0, st.calls_placed - 1)
        record = report.attempt
        if record is not None and record.outcome is not None:
            st.outcome_counts[record.outcome.value] = st.outcome_counts.get(record.outcome.value, 0) + 1
            if record.outcome == Outcome.COMPLETED and record.duration_seconds:
                st.answered_calls += 1
                st.answered_talk_seconds += record.duration_seconds
            self._recorder.attempt_ended(key, record)
            reason = auto_pause.observe(st, self._config.auto_pause, record.outcome)
            if reason is not None and st.status == CampaignStatus.IN_PROGRESS:
                self._pause_automatically(reason)
        self._recorder.change(ContactChange(key=key, report=report))
        if report.state.is_final:
            self._count_final(key)

    def _closed_without_report(self, key: int) -> None:
        if self._results.owes(key):
            return  # it closed with its report as its result, which comes to this run
        if self._liveness.ended_without_report(key):
            self._count_final(key)

    def _count_final(self, key: int) -> None:
        self._state.final += 1
        self._liveness.recent_finals.append(key)

    # --- control (the REST API's pause, resume, cancel, append, remove) ---------------------

    @workflow.update(name=CampaignUpdate.PAUSE)
    async def pause(self) -> ControlResult:
        st = self._state
        if st.status != CampaignStatus.IN_PROGRESS:
            raise ApplicationError(f"campaign is {st.status.value}, not running", type="CAMPAIGN_NOT_RUNNING")
        st.status = CampaignStatus.PAUSED
        st.paused_at = workflow.now()
        st.pause_reason = "paused through the API"
        self._publish()
        return await self._recorder.answer_when_recorded(self._control_result())

    @workflow.update(name=CampaignUpdate.RESUME)
    async def resume(self) -> ControlResult:
        """Start a draft campaign, or resume a paused one."""
        st = self._state
        if st.status not in (CampaignStatus.PAUSED, CampaignStatus.DRAFT):
            code = "CAMPAIGN_ALREADY_RUNNING" if st.status == CampaignStatus.IN_PROGRESS else "INVALID_CAMPAIGN_STATE"
            raise ApplicationError(f"campaign is {st.status.value}", type=code)
        if st.status == CampaignStatus.DRAFT:
            st.started_at = workflow.now()
        st.status = CampaignStatus.IN_PROGRESS
        st.paused_at = None
        st.pause_reason = None
        st.recent_failures.clear()  # a fresh window of ended calls (workflows/auto_pause.py)
        self._publish()
        return await self._recorder.answer_when_recorded(self._control_result())

    @workflow.update(name=CampaignUpdate.CANCEL)
    async def cancel(self) -> ControlResult:
        """No further calls; live calls finish; idempotent."""
        if self._state.status == CampaignStatus.COMPLETED:
            return self._control_result("campaign already completed")
        self._cancel_campaign()
        return await self._recorder.answer_when_recorded(self._control_result())

    def _cancel_campaign(self) -> None:
        """Contacts not launched end canceled, every open one gets a stop (a live call
        finishes first), the queue empties. Nothing for a campaign already finished."""
        st = self._state
        if st.status in FINISHED:
            return
        st.status = CampaignStatus.CANCELED
        st.final += self._launcher.skip_unlaunched()
        st.queue.clear()
        st.broadcasts.append("stop")
        self._publish()

    @workflow.update(name=CampaignUpdate.UPDATE_REDIAL)
    async def update_redial(self, update: RedialUpdate) -> CampaignConfig:
        """New redial configuration: contacts waiting to redial re-plan with it at once (see
        ContactCallWorkflow._wait_to_redial), the others use it after their next call."""
        self._config.redial = update.redial
        self._config.redial_rules = update.redial_rules
        self._state.broadcasts.append("policy")
        self._recorder.config_changed = True
        self._publish()
        return await self._recorder.answer_when_recorded(self._config)

    @workflow.update(name=CampaignUpdate.CONTACTS_APPENDED)
    async def contacts_appended(self, notice: AppendNotice) -> ControlResult:
        """The API wrote appended rows: the campaign's contacts now go to this key."""
        st = self._state
        st.total = max(st.total, notice.total_contacts)
        st.duplicates_merged = max(st.duplicates_merged, notice.duplicates)
        self._publish()
        return await self._recorder.answer_when_recorded(self._control_result())

    @workflow.update(name=CampaignUpdate.REMOVE_CONTACT)
    async def remove_contact(self, key: int) -> ContactRemoval:
        """Skip one contact: one not launched ends removed now; a launched one is told to
        stop (a live call finishes, no redial follows)."""
        st = self._state
        if not 0 <= key < st.total:
            raise ApplicationError("no such contact in this campaign", type="NOT_FOUND")
        if key >= st.next_key:
            if self._launcher.remove_unlaunched(key):
                st.final += 1
                self._recorder.change(ContactChange(key=key, state=ContactState.REMOVED, clear_next_call=True,
                                                    reason="removed through the API"))
            return await self._recorder.answer_when_recorded(ContactRemoval(key=key, state=ContactState.REMOVED))
        live = key in st.dialing
        self._admission.drop(key)
        self._dispatcher.send(key, DialGrant(attempt=0, stop=ContactState.REMOVED, reason="removed through the API"))
        return ContactRemoval(key=key, state=ContactState.DIALING if live else ContactState.QUEUED)

    @update_redial.validator
    def _validate_update_redial(self, update: RedialUpdate) -> None:
        self._refuse_when_finished()

    @contacts_appended.validator
    def _validate_append(self, notice: AppendNotice) -> None:
        self._refuse_when_finished()

    @remove_contact.validator
    def _validate_remove(self, key: int) -> None:
        self._refuse_when_finished()

    def _refuse_when_finished(self) -> None:
        if self._state.status in FINISHED:
            raise ApplicationError(f"campaign is {self._state.status.value}", type="INVALID_CAMPAIGN_STATE")

    # --- queries -------------------------------------------------------------------------

    @workflow.query(name=CampaignQuery.PROGRESS)
    def progress(self) -> CampaignProgress:
        """Counters from this workflow, counts by state from the store's rows as of the last
        flush (at most a second behind). Per-contact detail: GET /campaigns/{id}/contacts."""
        return view.progress(self._state, self._config, self._recorder.progress)

    @workflow.query(name=CampaignQuery.CONFIG)
    def config(self) -> CampaignConfig:
        return self._config

    # --- internals -----------------------------------------------------------------------

    def _counters(self) -> CampaignCounters:
        return view.counters(self._state, self._config)

    @staticmethod
    def _discard(keys: list[int], key: int) -> None:
        if key in keys:
            keys.remove(key)

    def _control_result(self, detail: str | None = None) -> ControlResult:
        return ControlResult(campaign_id=self._config.campaign_id, status=self._state.status, at=workflow.now(),
                             active_calls=len(self._state.dialing), detail=detail or self._state.pause_reason)

    def _publish(self) -> None:
        """Search attributes and the UI's current details follow the campaign's state."""
        st = self._state
        if self._sa_status != st.status:
            self._sa_status = st.status
            workflow.upsert_search_attributes([
                sa.CAMPAIGN_STATUS.value_set(st.status.value),
                sa.CAMPAIGN_ID.value_set(self._config.campaign_id),
                sa.AGENT_ID.value_set(self._config.agent_id),
                sa.TENANT_ID.value_set(self._config.tenant_id),
            ])
        workflow.set_current_details(view.current_details(st, self._config))
