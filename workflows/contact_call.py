"""ContactCallWorkflow: everything that happens to one contact of a campaign.

Wait for the contact's scheduled time, ask the campaign for permission to dial, place the
call, wait for its outcome (the provider's callback arrives as a signal; if it does not,
ask the provider), and redial after the configured interval while attempts remain. Every
wait is a durable timer, so hours-long waits survive any restart.

It tells the campaign how it stands by one signal, `contact_report`, after every attempt,
on every wait it begins and at its end; it never carries the contact's number or data (the
dial and webhook activities read them from the store). One started with its first call
granted that never needed to speak to the campaign (one call, no wait) ends with its final
report as its result instead: the run that started it sees the child's completion anyway,
so the signal would cost two workflow tasks and five history events for nothing. A run that
continues as new first tells such children still open to report by signal.

The `call.ended` webhook of each attempt is started and not awaited (the contact goes on at
once); the deliveries are awaited at the very end, after the final report, so a failing
receiver keeps only this workflow open (workflows/webhook_delivery.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import CampaignSignal, ContactQuery, ContactSignal
    from campaign_engine.models import (
        AttemptRecord,
        AttemptReport,
        CallOutcome,
        ContactCallInput,
        ContactState,
        ContactStatus,
        DialGrant,
        DialRequest,
        Outcome,
        RedialUpdate,
    )
    from campaign_engine.policy.redial import describe_wait
    from campaign_engine.policy.redial_rules import decide_next_call

    from workflows import dial
    from workflows.contact_window import ContactWindow
    from workflows.webhook_delivery import await_webhook_deliveries, start_call_ended

# After a provider auth failure, how long before the contact asks to dial again by itself.
AUTH_FAILURE_RECHECK = timedelta(minutes=15)

@workflow.defn
class ContactCallWorkflow:
    @workflow.init
    def __init__(self, input: ContactCallInput) -> None:
        self._input = input
        self._wf_id = workflow.info().workflow_id
        self._attempts: list[AttemptRecord] = []
        # Final outcomes that arrived by signal, keyed by attempt (duplicates are dropped).
        self._outcomes: dict[int, CallOutcome] = {}
        # attempt -> when the campaign granted it (None: granted with the start)
        self._grants: dict[int, datetime | None] = {}
        # attempt -> when the contact first asked to dial it (became due): CallRequest.due_at
        self._due: dict[int, datetime] = {}
        self._stop: DialGrant | None = None
        self._state = ContactState.PENDING
        self._disposition: Outcome | None = None
        self._next_action: str | None = None
        self._next_action_at = None
        self._reason: str | None = None
        self._window = ContactWindow(input.config, input.contact)
        # Customer webhook deliveries started and not awaited yet.
        self._deliveries: list[workflow.ActivityHandle] = []
        # Set by dial_grant when the campaign's dial queue is full: ask again then.
        self._retry_at: datetime | None = None
        # Set by policy_update: a redial wait under way is planned again with the new rules.
        self._policy_changed = False
        # The final report goes in the result (see the module's docstring) while this holds.
        self._report_as_result = input.first_call_granted

    # --- messages ------------------------------------------------------------------------

    @workflow.signal(name=ContactSignal.CALL_OUTCOME)
    def call_outcome(self, outcome: CallOutcome) -> None:
        """The provider's report on a call (callback), routed here by workflow id + attempt."""
        if outcome.outcome is None or outcome.attempt < 1 or outcome.attempt in self._outcomes:
            return  # progress only, unknown attempt, or a duplicate: nothing to do
        known = next((a for a in self._attempts if a.attempt == outcome.attempt), None)
        if known is not None and known.call_id and known.call_id != outcome.call_id:
            return  # not the call we placed for that attempt
        self._outcomes[outcome.attempt] = outcome

    @workflow.signal(name=ContactSignal.DIAL_GRANT)
    def dial_grant(self, grant: DialGrant) -> None:
        if grant.stop is not None:
            if self._stop is None:
                self._stop = grant
        elif grant.retry_at is not None:
            self._retry_at = grant.retry_at
        else:
            self._grants[grant.attempt] = grant.granted_at

    @workflow.signal(name=ContactSignal.PING)
    def ping(self) -> None:
        """The campaign checking that this workflow still runs (a signal to a closed one fails)."""

    @workflow.signal(name=ContactSignal.REPORT_BY_SIGNAL)
    def report_by_signal(self) -> None:
        """The run that started this contact continues as new: it will not see our result."""
        self._report_as_result = False

    @workflow.signal(name=ContactSignal.POLICY_UPDATE)
    def policy_update(self, update: RedialUpdate) -> None:
        """New redial rules (PUT /updateCampaignData): they decide every later attempt, and a
        contact waiting to redial re-plans its wait with them (see _wait_to_redial)."""
        self._input.config.redial = update.redial
        self._input.config.redial_rules = update.redial_rules
        self._policy_changed = True

    @workflow.query(name=ContactQuery.STATUS)
    def status(self) -> ContactStatus:
        c = self._input.contact
        return ContactStatus(
            key=c.key,
            label=c.label,
            state=self._state,
            attempts=self._attempts,
            max_attempts=self._max_attempts,
            disposition=self._disposition,
            next_action=self._next_action,
            next_action_at=self._next_action_at,
            reason=self._reason,
        )

    # --- the process ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ContactCallInput) -> ContactStatus:
        contact = input.contact
        now = workflow.now()
        if contact.scheduled_at is not None and contact.scheduled_at > now:
            self._set(ContactState.SCHEDULED, "call", contact.scheduled_at)
            wait = contact.scheduled_at - now
            summary = f"scheduled call at {contact.scheduled_at.isoformat()}"
            if await self._wait_unless_stopped(wait, summary):
                return await self._end_stopped()

        attempt = 1
        granted = input.first_call_granted
        while True:
            if not granted:
                if not await self._wait_for_window():
                    if self._stop is not None:
                        return await self._end_stopped()
                    return await self._end(ContactState.DONE, None, "no calling window opens within 400 days")
                if not await self._ask_to_dial(attempt):
                    return await self._end_stopped()
                if not self._window.is_open(workflow.now()):
                    # Queued so long (a pause overnight) that the window closed: give the
                    # slot back and wait for the window again.
                    await self._report(ContactState.OUTSIDE_WINDOW, None)
                    continue
            granted = False
            record = await self._call(attempt)
            if record is None:  # provider refused our credentials, or a frequency cap held it: ask again later
                granted = False
                continue
            assert record.outcome is not None
            if record.outcome == Outcome.SUPPRESSED:
                # The dial activity found the number on the tenant's suppression list: no call
                # was made (no attempt burnt, no webhook), and the contact ends here.
                self._attempts.remove(record)
                return await self._end(ContactState.DONE, Outcome.SUPPRESSED, record.reason)
            decided_at = workflow.now()
            self._policy_changed = False  # decided with the rules in force now
            decision = self._decide(decided_at)
            redials = decision.redial and self._stop is None
            next_at = decision.next_call_at(decided_at) or decided_at
            self._notify_attempt(record, next_at if redials else None)
            if not redials:
                reason = decision.reason if self._stop is None else (self._stop.reason or "stopped")
                final_state = ContactState.DONE
                if self._stop is not None and decision.redial:
                    final_state = self._stop.stop or ContactState.CANCELED
                return await self._end(final_state, record.outcome, reason, record)

            self._set(ContactState.REDIAL_WAIT, f"redial {attempt} of {self._max_attempts - 1}", next_at)
            self._reason = decision.reason
            await self._report(ContactState.REDIAL_WAIT, record, next_call_at=next_at)
            ended = await self._wait_to_redial(attempt, record, decided_at, next_at)
            if ended is not None:
                return ended
            attempt += 1

    # --- steps ---------------------------------------------------------------------------

    def _decide(self, now: datetime):
        """Whether and when to call again after the latest attempt, by the rules in force."""
        cfg = self._input.config
        return decide_next_call(
            cfg.redial_rules or cfg.redial, self._attempts, now, self._wf_id,
            self._input.contact.zones, self._window.window, cfg.blackout_dates,
        )

    async def _wait_to_redial(self, attempt: int, record: AttemptRecord, decided_at: datetime,
                              next_at: datetime) -> ContactStatus | None:
        """The redial wait, until `next_at`. New redial rules (policy_update) during it re-plan
        it: the decision is made again, with the new rules, as it would have been made when
        the call ended (same attempts, same moment), and the contact waits for that time
        instead (at once if it has passed), or ends done if the new rules allow no further
        call. Returns the contact's end when it ended (stopped, or no call left), else None."""
        assert record.outcome is not None
        while True:
            wait = next_at - workflow.now()
            summary = (
                f"redial {attempt} of {self._max_attempts - 1} in "
                f"{describe_wait(max(wait.total_seconds(), 0))} after {record.outcome.value}"
            )
            if await self._wait_unless_stopped(wait, summary, wake=lambda: self._policy_changed):
                return await self._end_stopped()
            if not self._policy_changed:
                return None  # the wait is over: redial
            self._policy_changed = False
            decision = self._decide(decided_at)
            if not decision.redial:
                self._reason = f"redial configuration updated: {decision.reason}"
                return await self._end(ContactState.DONE, record.outcome, self._reason, record)
            planned = max(decision.next_call_at(decided_at) or decided_at, workflow.now())
            if planned != next_at:
                next_at = planned
                self._set(ContactState.REDIAL_WAIT, f"redial {attempt} of {self._max_attempts - 1}", next_at)
                self._reason = f"redial configuration updated: {decision.reason}"
                await self._report(ContactState.REDIAL_WAIT, None, next_call_at=next_at)

    @property
    def _max_attempts(self) -> int:
        cfg = self._input.config
        if cfg.redial_rules is not None:
            return cfg.redial_rules.effective_max_attempts if cfg.redial_rules.enabled else 1
        return cfg.redial.max_attempts if cfg.redial.enabled else 1

    async def _wait_for_window(self) -> bool:
        """Wait, on a durable timer, until the calling window is open in the contact's zones.

        False when stopped meanwhile, or when no window opens within 400 days.
        """
        while not self._window.is_open(now := workflow.now()):
            at, self._reason = self._window.closed_until(now)
            if at is None:
                return False
            self._set(ContactState.OUTSIDE_WINDOW, "call when the calling window opens", at)
            await self._report(ContactState.OUTSIDE_WINDOW, None, next_call_at=at)
            if await self._wait_unless_stopped(at - now, f"outside calling window until {at.isoformat()}"):
                return False
        return self._stop is None

    def _set(self, state: ContactState, next_action: str | None = None, at=None) -> None:
        self._state = state
        self._next_action = next_action
        self._next_action_at = at

    async def _wait_unless_stopped(self, wait: timedelta, summary: str, wake=None) -> bool:
        """A durable timer that a stop (removal, campaign cancel), or `wake()` turning true,
        cuts short. True if stopped."""
        if wait.total_seconds() > 0:
            try:
                await workflow.wait_condition(
                    lambda: self._stop is not None or (wake is not None and wake()),
                    timeout=wait, timeout_summary=summary,
                )
            except asyncio.TimeoutError:
                pass
        return self._stop is not None

    async def _ask_to_dial(self, attempt: int) -> bool:
        """Ask the campaign for a dial slot (pause, concurrency, pacing live there). A full
        dial queue answers "ask again at": the contact waits on a timer and asks again."""
        self._due.setdefault(attempt, workflow.now())
        # A grant this attempt already had was given back unused (a frequency cap held the
        # number, the window closed, the credentials were refused): a new one is needed, or
        # the call would go out unasked, past the campaign's concurrency and uncounted.
        self._grants.pop(attempt, None)
        while True:
            self._set(ContactState.QUEUED, "waiting for the campaign to allow the call")
            self._retry_at = None
            asked = await self._signal_campaign(
                CampaignSignal.DIAL_REQUEST, DialRequest(key=self._input.contact.key, attempt=attempt))
            if not asked and self._stop is None:
                # Its campaign has no running workflow (an operator terminated it): nobody can
                # grant this call, and the contact would otherwise wait for ever.
                self._stop = DialGrant(attempt=0, stop=ContactState.CANCELED,
                                       reason="the campaign's workflow has ended (terminated?): no further calls")
            await workflow.wait_condition(
                lambda: attempt in self._grants or self._stop is not None or self._retry_at is not None)
            if self._stop is not None or attempt in self._grants:
                return self._stop is None
            assert self._retry_at is not None
            wait = self._retry_at - workflow.now()
            if await self._wait_unless_stopped(wait, "the campaign's dial queue is full: ask again"):
                return False

    async def _call(self, attempt: int) -> AttemptRecord | None:
        """Place one call and wait for its final outcome (workflows/dial.py). None: no call
        was made (the provider refused our credentials, or a frequency cap held the number)."""
        cfg = self._input.config
        placed_at = workflow.now()
        self._set(ContactState.DIALING, f"call {attempt} of {self._max_attempts}", placed_at)
        request = dial.call_request(
            self._input, self._wf_id, attempt, [a.call_id for a in self._attempts if a.call_id],
            # The campaign decided the dial when it granted it (pacing is counted there). It
            # must not change when a crashed workflow task runs the dial again (a local
            # activity's input is computed anew): the provider looks for calls since then.
            started_at=self._grants.get(attempt) or self._granted_with_start(attempt) or placed_at,
            due_at=self._due.get(attempt),
        )
        try:
            placed = await dial.place(request, cfg.dial_task_queue, f"dial {self._input.contact.label} (call {attempt})")
        except dial.CredentialsRefused as refused:
            await self._credentials_refused(attempt, refused.reason)
            return None
        if placed.capped_until is not None:
            # A frequency cap holds the number: no call was made, the attempt is not used.
            await self._wait_capped(placed.capped_until, placed.capped_reason)
            return None
        record = AttemptRecord(attempt=attempt, call_id=placed.call_id, placed_at=placed_at)
        if placed.adopted:
            record.reason = "adopted the call an earlier try had placed"
        self._attempts.append(record)  # visible to the status query while the call runs
        outcome = placed.outcome if placed.outcome is not None and placed.outcome.is_final else None
        if outcome is None:
            outcome = await dial.await_outcome(cfg, attempt, placed, request, self._outcomes)
        dial.record_outcome(record, outcome)
        return record

    async def _credentials_refused(self, attempt: int, reason: str) -> None:
        """The provider refused our credentials: the campaign pauses; this contact waits."""
        self._reason = f"provider refused the credentials: {reason}"
        await self._signal_campaign(CampaignSignal.PROVIDER_BLOCKED, DialRequest(
            key=self._input.contact.key, attempt=attempt, blocked_reason=self._reason))
        try:
            await workflow.wait_condition(lambda: self._stop is not None, timeout=AUTH_FAILURE_RECHECK,
                                          timeout_summary="provider credentials refused; waiting")
        except asyncio.TimeoutError:
            pass

    async def _wait_capped(self, until: datetime, reason: str | None) -> None:
        """Held by a frequency cap: state `capped` until the cap allows the next call (a
        durable timer a stop cuts short); the campaign gets its dial slot back."""
        self._set(ContactState.CAPPED, "call when the frequency cap allows", until)
        self._reason = reason
        await self._report(ContactState.CAPPED, None, next_call_at=until)
        await self._wait_unless_stopped(until - workflow.now(), f"frequency cap: next call at {until.isoformat()}")

    def _granted_with_start(self, attempt: int) -> datetime | None:
        if attempt == 1 and self._input.first_call_granted:
            return workflow.info().workflow_start_time
        return None

    async def _end(self, state: ContactState, disposition: Outcome | None, reason: str | None,
                   record: AttemptRecord | None = None) -> ContactStatus:
        self._set(state)
        self._disposition = disposition
        self._reason = reason
        report = self._attempt_report(state, record, disposition=disposition)
        if self._report_as_result and not self._deliveries:
            return self.status().model_copy(update={"final_report": report})
        # Webhooks still under way could hold the result for a day: the campaign hears now.
        await self._signal_campaign(CampaignSignal.CONTACT_REPORT, report)
        await await_webhook_deliveries(self._deliveries)
        return self.status()

    async def _end_stopped(self) -> ContactStatus:
        assert self._stop is not None
        state = self._stop.stop or ContactState.CANCELED
        last = self._attempts[-1].outcome if self._attempts else None
        return await self._end(state, last, self._stop.reason)

    def _notify_attempt(self, record: AttemptRecord, next_call_at) -> None:
        """Start the `call.ended` customer webhook for an ended attempt, without waiting
        (`_end` awaits what is still pending, after the final report)."""
        handle = start_call_ended(self._input.config, self._wf_id, self._input.contact.key, record,
                                  max_attempts=self._max_attempts, next_call_at=next_call_at)
        if handle is not None:
            self._deliveries.append(handle)

    async def _report(self, state: ContactState, record: AttemptRecord | None, *,
                      next_call_at=None, disposition: Outcome | None = None) -> None:
        await self._signal_campaign(
            CampaignSignal.CONTACT_REPORT,
            self._attempt_report(state, record, next_call_at=next_call_at, disposition=disposition),
        )

    def _attempt_report(self, state: ContactState, record: AttemptRecord | None, *,
                        next_call_at=None, disposition: Outcome | None = None) -> AttemptReport:
        ended = [a for a in self._attempts if a.outcome is not None]
        return AttemptReport(
            key=self._input.contact.key,
            attempt=record,
            state=state,
            attempts=len(ended),
            last_outcome=ended[-1].outcome if ended else None,
            talk_seconds=sum(a.duration_seconds or 0.0 for a in ended if a.outcome == Outcome.COMPLETED),
            disposition=disposition,
            next_call_at=next_call_at,
            reason=self._reason,
        )

    async def _signal_campaign(self, name: str, arg) -> bool:
        """Whether the signal reached the campaign. By workflow id without run id: it reaches
        the campaign's current run, whatever continue-as-new did since this contact started."""
        self._report_as_result = False  # it spoke: the campaign now expects its end by signal
        handle = workflow.get_external_workflow_handle(self._input.campaign_workflow_id)
        try:
            await handle.signal(name, arg)
            return True
        except Exception as err:  # the campaign is gone (terminated by an operator)
            workflow.logger.warning("could not signal the campaign: %s", err)
            return False

