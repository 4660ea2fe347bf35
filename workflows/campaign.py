"""CampaignWorkflow: one campaign, from upload to its final summary.

It starts one ContactCallWorkflow per contact, decides when each may dial (pause, cancel,
concurrency live here), keeps every contact's state from the reports its children send, and
answers the `progress` query. Children are started with ParentClosePolicy.ABANDON and report
by signalling this workflow's id, so the campaign can continue-as-new (to stay within
Temporal's history and pending-children limits) while they keep running.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from pydantic import BaseModel
from pydantic_core import to_json
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from campaign_engine import search_attributes as sa
    from campaign_engine.ids import contact_workflow_id
    from campaign_engine.packing import compress, decompress, pack_in_chunks, unpack_contacts
    from campaign_engine.models import (
        AppendResult,
        AttemptReport,
        CampaignConfig,
        CampaignInput,
        CampaignProgress,
        CampaignState,
        CampaignStatus,
        CampaignSummary,
        Contact,
        ContactBatch,
        ContactCallInput,
        ContactStartRequest,
        ContactPage,
        ContactPageRequest,
        ContactState,
        ContactSummary,
        ControlResult,
        DialGrant,
        DialRequest,
        EndedContact,
        Outcome,
        RedialUpdate,
        reported_disposition,
    )
    from campaign_engine.policy.eta import campaign_eta

    from activities.webhooks import (
        CAMPAIGN_COMPLETED,
        WebhookDelivery,
        campaign_completed_document,
        campaign_delivery_id,
    )
    from workflows.recorder import StoreRecorder
    from workflows.contact_call import (
        WEBHOOKS_PATCH,
        ContactCallWorkflow,
        await_webhook_deliveries,
        start_webhook_delivery,
    )

# Children started per batch; each batch's starts are awaited together.
START_BATCH = 200
# ... and at most this much contact data: a batch's start commands travel in one workflow task
# completion, which Temporal refuses over 4 MB (the run is then terminated, GrpcMessageTooLarge).
START_BATCH_BYTES = 1_000_000
START_BATCH_BYTES_PATCH = "start-batch-bytes"
# Signals (grants, stops) sent per batch; Temporal allows 2,000 pending per run.
SIGNAL_BATCH = 500
# A run continues as new past this many events (Temporal's hard limit is 51,200) or once
# it has started CampaignConfig.children_per_run children (1,000: its pending-children limit
# is 2,000; Temporal advises about 1,000) while more wait: a run never starts more, the rest
# start in the next run. The server rewrites a run's pending children on every event, so a
# run with 1,900 of them is 4 times slower per event than one with 1,000 (a 10,000-contact
# start made queries time out).
MAX_RUN_EVENTS = 8_000
# An upload's batches after the first come by signal right after the start. If some have not
# come by this long after (the request broke off and was never retried with its key), the
# campaign counts them as missing and goes on with the contacts it has.
UPLOAD_BATCHES_DEADLINE = timedelta(minutes=15)
# The progress query lists every contact up to this many; past it, use the contacts query.
PROGRESS_CONTACTS_LIMIT = 1_000
# Runs look for contacts whose workflows ended without a report (see _close_ended_contacts).
ENDED_CONTACTS_PATCH = "ended-contacts-check"


class _Carried(BaseModel):
    state: CampaignState
    unstarted: list[Contact]


def pack_carried(state: CampaignState, unstarted: list[Contact]) -> str:
    """What continue-as-new carries, as compressed JSON (base64)."""
    raw = _Carried(state=state, unstarted=unstarted).model_dump_json().encode()
    return compress(raw, 6)


def _within_bytes(contacts: list[Contact], limit: int) -> list[Contact]:
    """The longest prefix of `contacts` (one at least) whose JSON stays within `limit`."""
    size = 0
    for i, contact in enumerate(contacts):
        size += len(to_json(contact))
        if size > limit and i > 0:
            return contacts[:i]
    return contacts


def _waiting_state(contact: Contact, now) -> ContactState:
    """A started contact not yet dialling: queued once due, else scheduled."""
    due = contact.scheduled_at is None or contact.scheduled_at <= now
    return ContactState.QUEUED if due else ContactState.SCHEDULED


def _unpacked(packed: str | None) -> list[Contact]:
    return unpack_contacts(packed) if packed else []


def unpack_carried(input: CampaignInput) -> CampaignInput:
    assert input.packed is not None
    carried = _Carried.model_validate_json(decompress(input.packed))
    return input.model_copy(update={"carried": carried.state, "unstarted": carried.unstarted, "packed": None})


@workflow.defn
class CampaignWorkflow(StoreRecorder):
    @workflow.init
    def __init__(self, input: CampaignInput) -> None:
        if input.packed:  # a continue-as-new: the carried state travels compressed
            input = unpack_carried(input)
        self._config = input.config
        self._expected = input.expected_contacts
        self._state = input.carried or CampaignState(
            status=CampaignStatus.DRAFT if input.start_paused else CampaignStatus.IN_PROGRESS,
            duplicates_merged=input.duplicates_merged,
        )
        self._by_phone = {c.phone: c.key for c in self._state.contacts}
        self._final = sum(1 for c in self._state.contacts if c.state.is_final)
        # Contacts accepted in this run whose child is not started yet (with their data).
        self._to_start: list[Contact] = list(input.unstarted)
        self._children_started_this_run = 0
        self._sa_status: CampaignStatus | None = None
        # Final reports that come as child results (children of this run dialled with their
        # start, see _start_child): keys not in yet (a key leaves once the child has reported
        # or will report by signal); and keys whose hand-over found the child closed, so this
        # run must see their result before it continues as new.
        self._awaiting_result: set[int] = set()
        self._results_due_here: set[int] = set()
        # Children this run started: it awaits each one's end, whatever way it ends. Other
        # started contacts report by signal only, so the run checks now and then that their
        # workflows are still running (see _close_ended_contacts).
        self._run_children: set[int] = set()
        self._check_ended = False
        self._init_recorder()
        self._accept(input.contacts or _unpacked(input.packed_contacts))

    # --- the process ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CampaignInput) -> CampaignSummary:
        """The campaign, shielded from a workflow cancellation (the Temporal UI's "Request
        Cancellation", `temporal workflow cancel`): the SDK cancels this task only, so the
        campaign runs in a task of its own that the cancellation never reaches. A request
        cancels the campaign as the `cancel` update does (no further calls, contacts not
        reached end canceled, live calls finish), and the workflow then ends as a canceled
        campaign with its summary and final flush to the store, like any other."""
        campaign = asyncio.create_task(self._run_campaign(input))
        while True:
            try:
                return await asyncio.shield(campaign)
            except asyncio.CancelledError:
                if campaign.done():
                    return campaign.result()
                workflow.logger.info("workflow cancellation requested: canceling the campaign")
                self._cancel_campaign()

    async def _run_campaign(self, input: CampaignInput) -> CampaignSummary:
        st = self._state
        if st.started_at is None and st.status != CampaignStatus.DRAFT:
            st.started_at = workflow.now()
        if st.upload_started_at is None:
            st.upload_started_at = workflow.now()
        if workflow.patched(ENDED_CONTACTS_PATCH):
            self._check_ended = self._has_contacts_outside_run()
            asyncio.create_task(self._close_ended_contacts())
        self._publish()
        # Beside the main loop: the store gets what changed (see workflows/recorder.py).
        asyncio.create_task(self._run_recorder())
        while True:
            waits = [w for w in (
                (self._pacing_wait(), "pacing: next call slot"),
                (self._upload_wait(), "waiting for the upload's remaining contacts"),
            ) if w[0] is not None]
            try:
                await workflow.wait_condition(
                    lambda: self._has_work() or self._is_finished()
                    or (self._should_continue_as_new() and not self._results_due_here),
                    timeout=min(waits)[0] if waits else None,
                    timeout_summary=min(waits)[1] if waits else None,
                )
            except asyncio.TimeoutError:
                pass
            self._give_up_on_missing_batches()
            await self._start_children()
            await self._send_stops()
            await self._send_policy()
            await self._grant_dials()
            self._publish()
            if self._is_finished():
                break
            if self._should_continue_as_new() and not self._has_work():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._hand_over_results()
                if not self._has_work() and not self._results_due_here:
                    await self._recorded()
                    st.runs += 1
                    # Contacts not started yet travel with their data; started ones are
                    # only their compact summaries. Both compressed: a 10,000-contact state
                    # is over 3 MB as JSON, past Temporal's 2 MB limit on the input.
                    packed = await self._pack_for_next_run()
                    if not (workflow.all_handlers_finished() and self._store_is_current()) or self._has_work():
                        # An operation or reports came meanwhile: the next run would start
                        # without what this run has not answered or written yet.
                        st.runs -= 1
                        continue
                    workflow.continue_as_new(CampaignInput(
                        config=self._config, expected_contacts=self._expected, packed=packed,
                    ))

        await workflow.wait_condition(workflow.all_handlers_finished)
        if st.status != CampaignStatus.CANCELED:
            st.status = CampaignStatus.COMPLETED
        st.finished_at = workflow.now()
        self._publish()
        await self._recorded()
        summary = CampaignSummary(
            campaign_id=self._config.campaign_id,
            status=st.status,
            total_contacts=len(st.contacts),
            by_disposition=self._by_disposition(),
            outcome_counts=dict(st.outcome_counts),
            calls_placed=st.calls_placed,
            started_at=st.started_at,
            finished_at=st.finished_at,
        )
        await self._notify_finished(summary)
        # Operations that came in the meantime get their answer (the recorder serves them).
        await workflow.wait_condition(workflow.all_handlers_finished)
        return summary

    async def _notify_finished(self, summary: CampaignSummary) -> None:
        """The campaign-completed customer webhook. Sent after the status is published as
        final, so nothing waits on it; a delivery that gave up after a day is logged only."""
        cfg = self._config
        if not cfg.notification_webhook_url or not workflow.patched(WEBHOOKS_PATCH):
            return
        delivery_id = campaign_delivery_id(workflow.info().workflow_id)
        await await_webhook_deliveries([start_webhook_delivery(WebhookDelivery(
            url=cfg.notification_webhook_url,
            tenant_id=cfg.tenant_id,
            delivery_id=delivery_id,
            event=CAMPAIGN_COMPLETED,
            payload=campaign_completed_document(cfg, summary, delivery_id=delivery_id),
        ))])

    # --- messages from contacts ----------------------------------------------------------

    @workflow.signal
    def add_contacts(self, batch: ContactBatch) -> None:
        """Further contacts of the upload that started the campaign (large uploads)."""
        if batch.chunk_id in self._state.received_chunks:
            return
        self._state.received_chunks.append(batch.chunk_id)
        self._accept(batch.contacts or _unpacked(batch.packed))

    @workflow.signal
    def dial_request(self, request: DialRequest) -> None:
        self._awaiting_result.discard(request.key)  # it talks to us: its end comes by signal
        summary = self._contact(request.key)
        if summary is None or summary.state.is_final:
            return
        if any(r.key == request.key for r in self._state.dial_queue):
            return
        summary.state = ContactState.QUEUED
        summary.next_call_at = None
        self._dirty.add(request.key)
        self._state.dial_queue.append(request)

    @workflow.signal
    def provider_blocked(self, request: DialRequest) -> None:
        """A contact's dial was refused for bad provider credentials: stop burning attempts."""
        self._awaiting_result.discard(request.key)
        st = self._state
        summary = self._contact(request.key)
        if summary is not None and summary.state == ContactState.DIALING:
            summary.state = ContactState.QUEUED
            st.calls_placed = max(0, st.calls_placed - 1)
            self._dirty.add(request.key)
        if st.status == CampaignStatus.IN_PROGRESS:
            st.status = CampaignStatus.PAUSED
            st.paused_at = workflow.now()
        st.pause_reason = request.blocked_reason

    @workflow.signal
    def attempt_report(self, report: AttemptReport) -> None:
        self._awaiting_result.discard(report.key)
        self._apply_report(report)

    def _apply_report(self, report: AttemptReport) -> None:
        """A contact's report after an attempt or at its end; a final one is applied once."""
        st = self._state
        summary = self._contact(report.key)
        if summary is None or summary.state.is_final:
            return
        self._dirty.add(report.key)
        if report.attempt is not None and report.attempt.attempt > summary.attempts:
            summary.attempts = report.attempt.attempt
            outcome = report.attempt.outcome
            if outcome is not None:
                self._attempt_ended(report.key, report.attempt)
                summary.last_outcome = outcome
                st.outcome_counts[outcome.value] = st.outcome_counts.get(outcome.value, 0) + 1
                if outcome == Outcome.COMPLETED and report.attempt.duration_seconds:
                    summary.talk_seconds += report.attempt.duration_seconds
                    st.answered_calls += 1
                    st.answered_talk_seconds += report.attempt.duration_seconds
        if summary.state == ContactState.DIALING and report.attempt is None:
            # Granted, then gave the slot back unused, or stopped (cancel, removal) before dialling.
            st.calls_placed = max(0, st.calls_placed - 1)
        summary.state = report.state
        summary.next_call_at = report.next_call_at
        summary.reason = report.reason
        if report.state.is_final:
            summary.disposition = report.disposition
            self._final += 1

    # --- control (the REST API's pause, resume, cancel, append, remove) ---------------------

    @workflow.update
    async def pause(self) -> ControlResult:
        st = self._state
        if st.status != CampaignStatus.IN_PROGRESS:
            raise ApplicationError(f"campaign is {st.status.value}, not running", type="CAMPAIGN_NOT_RUNNING")
        st.status = CampaignStatus.PAUSED
        st.paused_at = workflow.now()
        st.pause_reason = "paused through the API"
        self._publish()
        return await self._answer_when_recorded(self._control_result())

    @workflow.update
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
        self._publish()
        return await self._answer_when_recorded(self._control_result())

    @workflow.update
    async def cancel(self) -> ControlResult:
        """No further calls; live calls finish; idempotent."""
        if self._state.status in (CampaignStatus.COMPLETED,):
            return self._control_result("campaign already completed")
        self._cancel_campaign()
        return await self._answer_when_recorded(self._control_result())

    def _cancel_campaign(self) -> None:
        """What a cancel does, from the `cancel` update or a workflow cancellation: contacts
        not started end canceled, started ones get a stop (a live call finishes first), the
        queue empties. Nothing for a campaign already canceled or finished."""
        st = self._state
        if st.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELED, CampaignStatus.FAILED):
            return
        st.status = CampaignStatus.CANCELED
        for contact in self._to_start:
            self._end_contact(contact.key, ContactState.CANCELED, "campaign canceled")
        self._to_start.clear()
        for summary in st.contacts:
            if not summary.state.is_final and summary.state != ContactState.PENDING:
                st.stops_to_send.append(summary.key)
        st.dial_queue.clear()
        self._publish()

    @workflow.update
    async def update_redial(self, update: RedialUpdate) -> CampaignConfig:
        """New redial configuration: contacts waiting to redial re-plan with it at once (see
        ContactCallWorkflow._wait_to_redial), the others use it after their next call."""
        st = self._state
        self._config.redial = update.redial
        self._config.redial_rules = update.redial_rules
        for summary in st.contacts:
            if not summary.state.is_final and summary.state != ContactState.PENDING:
                st.policy_to_send.append(summary.key)
        self._config_changed = True
        self._publish()
        return await self._answer_when_recorded(self._config)

    @update_redial.validator
    def _validate_update_redial(self, update: RedialUpdate) -> None:
        if self._state.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELED, CampaignStatus.FAILED):
            raise ApplicationError(f"campaign is {self._state.status.value}", type="INVALID_CAMPAIGN_STATE")

    @workflow.update
    async def append_contacts(self, batch: ContactBatch) -> AppendResult:
        st = self._state
        if batch.chunk_id in st.received_chunks:  # a replay: what the first one answered
            added, duplicates = st.append_results.get(batch.chunk_id, [0, 0])
            return await self._answer_when_recorded(
                AppendResult(added=added, duplicates=duplicates, total_contacts=len(st.contacts)))
        st.received_chunks.append(batch.chunk_id)
        before, dup_before = len(st.contacts), st.duplicates_merged
        # The store gets the appended rows with the next flush (their keys are decided here).
        self._new_rows.extend(self._accept(batch.contacts or _unpacked(batch.packed)))
        self._expected = max(self._expected, st.received_contacts)
        result = AppendResult(
            added=len(st.contacts) - before,
            duplicates=st.duplicates_merged - dup_before,
            total_contacts=len(st.contacts),
        )
        st.append_results[batch.chunk_id] = [result.added, result.duplicates]
        self._publish()
        return await self._answer_when_recorded(result)

    @workflow.query
    def append_results(self, prefix: str) -> dict[str, list[int]]:
        """[added, duplicates] of each batch taken so far whose id starts with `prefix`
        (idempotent appends; batches taken before results were kept answer [0, 0])."""
        st = self._state
        return {c: st.append_results.get(c, [0, 0]) for c in st.received_chunks if c.startswith(prefix)}

    @append_contacts.validator
    def _validate_append(self, batch: ContactBatch) -> None:
        if self._state.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELED, CampaignStatus.FAILED):
            raise ApplicationError(f"campaign is {self._state.status.value}", type="INVALID_CAMPAIGN_STATE")

    @workflow.update
    async def remove_contact(self, phone: str) -> ContactSummary:
        key = self._by_phone.get(phone)
        summary = self._contact(key) if key is not None else None
        if summary is None:
            raise ApplicationError("no such contact in this campaign", type="NOT_FOUND")
        if summary.state.is_final:
            raise ApplicationError(
                f"contact already finished ({summary.state.value}"
                + (f", {summary.disposition.value}" if summary.disposition else "") + ")",
                type="CONTACT_ALREADY_FINAL",
            )
        pending = next((c for c in self._to_start if c.key == key), None)
        if pending is not None:
            self._to_start.remove(pending)
            self._end_contact(key, ContactState.REMOVED, "removed through the API")
        elif key not in self._state.removals_requested:
            self._state.removals_requested.append(key)
            self._state.stops_to_send.append(key)
            self._state.dial_queue = [r for r in self._state.dial_queue if r.key != key]
        return await self._answer_when_recorded(summary)

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> CampaignProgress:
        st = self._state
        by_state = Counter(c.state.value for c in st.contacts)
        redial_waits = [c.next_call_at for c in st.contacts if c.state == ContactState.REDIAL_WAIT and c.next_call_at]
        total = max(len(st.contacts), 1)
        done = self._final
        return CampaignProgress(
            campaign_id=self._config.campaign_id,
            name=self._config.name,
            status=st.status,
            total_contacts=len(st.contacts),
            # Known contacts plus rows of the upload still on their way (duplicates excluded).
            expected_contacts=len(st.contacts) + max(self._expected - st.received_contacts, 0),
            duplicates_merged=st.duplicates_merged,
            by_state=dict(by_state),
            by_disposition=self._by_disposition(),
            outcome_counts=dict(st.outcome_counts),
            calls_placed=st.calls_placed,
            live_calls=by_state.get(ContactState.DIALING.value, 0),
            redials_made=sum(max(c.attempts - 1, 0) for c in st.contacts),
            pending_redials=len(redial_waits),
            next_redial_at=min(redial_waits) if redial_waits else None,
            percentage=round(100.0 * done / total, 1) if st.contacts else 0.0,
            estimated_completion=self._estimate(),
            started_at=st.started_at,
            finished_at=st.finished_at,
            run=st.runs,
            pause_reason=st.pause_reason,
            missing_contacts=st.missing_contacts,
            contacts=st.contacts[:PROGRESS_CONTACTS_LIMIT],
        )

    @workflow.query
    def config(self) -> CampaignConfig:
        return self._config

    @workflow.query
    def contacts(self, request: ContactPageRequest) -> ContactPage:
        rows = [
            c for c in self._state.contacts
            if (request.state is None or c.state == request.state)
            and (request.disposition is None or c.disposition == request.disposition)
        ]
        end = request.offset + request.limit
        return ContactPage(
            contacts=rows[request.offset:end], total=len(rows),
            next_offset=end if end < len(rows) else None,
        )

    @workflow.query
    def contact(self, phone: str) -> ContactSummary | None:
        key = self._by_phone.get(phone)
        return self._contact(key) if key is not None else None

    # --- internals -----------------------------------------------------------------------

    def _accept(self, contacts: list[Contact]) -> list[Contact]:
        """Take contacts in (duplicates by number are merged); returns those taken, keyed."""
        st = self._state
        accepted: list[Contact] = []
        for contact in contacts:
            st.received_contacts += 1
            if contact.phone in self._by_phone:
                st.duplicates_merged += 1
                continue
            key = len(st.contacts)
            contact = contact.model_copy(update={"key": key})
            self._by_phone[contact.phone] = key
            accepted.append(contact)
            st.contacts.append(ContactSummary(key=key, phone=contact.phone, next_call_at=contact.scheduled_at,
                                              zones=contact.zones))
            if st.status == CampaignStatus.CANCELED:
                self._end_contact(key, ContactState.CANCELED, "campaign canceled")
            else:
                self._to_start.append(contact)
        return accepted

    def _contact(self, key: int | None) -> ContactSummary | None:
        if key is None or not 0 <= key < len(self._state.contacts):
            return None
        return self._state.contacts[key]

    def _end_contact(self, key: int, state: ContactState, reason: str, disposition: Outcome | None = None) -> None:
        """A contact final without a report from it (stopped before its start, or its workflow
        ended without one); nothing changes for one already final."""
        summary = self._contact(key)
        if summary is None or summary.state.is_final:
            return
        self._dirty.add(key)
        summary.state = state
        summary.reason = reason
        summary.next_call_at = None
        if disposition is not None:
            summary.disposition = disposition
        self._final += 1

    def _has_work(self) -> bool:
        st = self._state
        return bool(
            (self._to_start and st.status != CampaignStatus.DRAFT
             and self._children_started_this_run < self._config.children_per_run)
            or st.stops_to_send
            or st.policy_to_send
            or (st.dial_queue and self._free_slots() > 0)
        )

    def _free_slots(self) -> int:
        st = self._state
        if st.status != CampaignStatus.IN_PROGRESS:
            return 0
        cap = self._config.max_concurrent_calls
        slots = len(st.dial_queue)
        if cap is not None:
            slots = min(slots, max(cap - self._live_calls(), 0))
        if self._config.calls_per_second:
            slots = min(slots, int(self._pacing_tokens()))
        return slots

    def _live_calls(self) -> int:
        return sum(1 for c in self._state.contacts if c.state == ContactState.DIALING)

    def _pacing_tokens(self) -> float:
        """Calls the pacing allows now: a token bucket of callsPerSecond, at most one second's worth."""
        cps = self._config.calls_per_second
        assert cps
        st = self._state
        capacity = max(1.0, cps)
        if st.pace_at is None:
            return capacity
        return min(capacity, st.pace_tokens + (workflow.now() - st.pace_at).total_seconds() * cps)

    def _pacing_wait(self) -> float | None:
        """Seconds until pacing lets the next queued contact dial, when only pacing holds it."""
        cps = self._config.calls_per_second
        st = self._state
        if not cps or not st.dial_queue or st.status != CampaignStatus.IN_PROGRESS:
            return None
        tokens = self._pacing_tokens()
        return None if tokens >= 1 else max((1 - tokens) / cps, 0.001)

    def _upload_deadline(self):
        """Until when the campaign waits for its upload's remaining batches (None: it has them)."""
        st = self._state
        if st.received_contacts >= self._expected or st.upload_started_at is None:
            return None
        return st.upload_started_at + UPLOAD_BATCHES_DEADLINE

    def _upload_wait(self) -> float | None:
        deadline = self._upload_deadline()
        return None if deadline is None else max((deadline - workflow.now()).total_seconds(), 0.001)

    def _give_up_on_missing_batches(self) -> None:
        st = self._state
        deadline = self._upload_deadline()
        if deadline is None or workflow.now() < deadline:
            return
        st.missing_contacts = self._expected - st.received_contacts
        workflow.logger.warning("%d contacts of the upload never arrived", st.missing_contacts)
        self._expected = st.received_contacts

    def _is_finished(self) -> bool:
        st = self._state
        if st.status == CampaignStatus.DRAFT or self._to_start:
            return False
        if st.received_contacts < self._expected and st.status != CampaignStatus.CANCELED:
            return False
        return self._final == len(st.contacts) and (len(st.contacts) > 0 or st.status == CampaignStatus.CANCELED)

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > MAX_RUN_EVENTS
            # A full run continues as new only to start more contacts: its open children
            # would otherwise be handed over for nothing.
            or (self._children_started_this_run >= self._config.children_per_run and bool(self._to_start))
        )

    async def _start_children(self) -> None:
        st = self._state
        while self._to_start and st.status != CampaignStatus.DRAFT:
            if self._children_started_this_run >= self._config.children_per_run:
                return  # the rest start in the next run
            room = self._config.children_per_run - self._children_started_this_run
            batch = self._to_start[: min(START_BATCH, room)]
            if workflow.patched(START_BATCH_BYTES_PATCH):
                batch = _within_bytes(batch, START_BATCH_BYTES)
            del self._to_start[: len(batch)]
            self._children_started_this_run += len(batch)
            await asyncio.gather(*(self._start_child(c) for c in batch))

    async def _pack_for_next_run(self) -> str:
        """What continue-as-new carries, within `carry_limit_bytes`. Contacts waiting to start
        carry their custom_data: when they do not all fit (kilobytes each, appended faster than
        runs start them), the ones that do not are started now as workflows of their own."""
        limit = self._config.carry_limit_bytes
        packed = pack_carried(self._state, self._to_start)
        while len(packed) > limit and self._to_start:
            # Keep the share that should fit (with room to spare), start the rest; at worst,
            # all of them (the summaries alone may be what is large).
            keep = int(len(self._to_start) * limit / len(packed) * 0.8)
            overflow = self._to_start[keep:]
            del self._to_start[keep:]
            await self._start_outside(overflow)
            packed = pack_carried(self._state, self._to_start)
        return packed

    async def _start_outside(self, contacts: list[Contact]) -> None:
        """Start contacts as workflows of their own (activities/contact_starter.py): they ask
        for each call and report by signal, like children handed over to a later run."""
        now = workflow.now()
        for contact in contacts:
            self._state.contacts[contact.key].state = _waiting_state(contact, now)
            self._dirty.add(contact.key)
        self._check_ended = True
        info = workflow.info()
        # One piece at a time: each activity's input travels in a workflow task completion,
        # which Temporal refuses over 4 MB.
        for piece in pack_in_chunks(contacts):
            await workflow.execute_activity(
                "start_contact_workflows",
                ContactStartRequest(campaign_workflow_id=info.workflow_id, task_queue=info.task_queue,
                                    config=self._config, packed_contacts=piece),
                result_type=int,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=1),
                summary="start contacts that do not fit in continue-as-new",
            )

    async def _start_child(self, contact: Contact) -> None:
        st = self._state
        summary = st.contacts[contact.key]
        waiting = _waiting_state(contact, workflow.now())
        # The campaign's go-ahead for the first call travels with the start when nothing
        # could hold it back; otherwise the contact asks when it is due.
        granted = (waiting == ContactState.QUEUED and st.status == CampaignStatus.IN_PROGRESS
                   and self._free_slots_for_new() > 0)
        if granted:
            summary.state = ContactState.DIALING
            st.calls_placed += 1
        else:
            summary.state = waiting
        self._dirty.add(contact.key)
        wf_id = contact_workflow_id(workflow.info().workflow_id, contact.key)
        try:
            handle = await workflow.start_child_workflow(
                ContactCallWorkflow.run,
                ContactCallInput(
                    campaign_workflow_id=workflow.info().workflow_id,
                    config=self._config,
                    contact=contact,
                    first_call_granted=granted,
                    # A contact dialled at once without a word to the campaign (no cap, no
                    # redial) reports its end as its result: two events fewer per contact
                    # here and in the child. Any other contact talks to the campaign anyway.
                    final_report_as_result=granted,
                ),
                id=wf_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=contact.workflow_summary(self._config.name),
            )
        except WorkflowAlreadyStartedError:
            return  # started by an earlier try of this same step: nothing to do
        self._run_children.add(contact.key)
        if granted:
            self._awaiting_result.add(contact.key)
        # Awaited for every child of this run: one that is terminated still ends its contact.
        asyncio.create_task(self._await_final_report(contact.key, handle))

    async def _await_final_report(self, key: int, handle) -> None:
        """The contact's final report, from its result. A child that ended without one
        (terminated by an operator, failed) is final too: the campaign must not wait for it."""
        report = None
        try:
            status = await handle
            report = status.final_report
        except ChildWorkflowError as err:
            self._end_without_report(key, f"the contact's workflow ended without a result: {err.cause or err}")
        self._awaiting_result.discard(key)
        self._results_due_here.discard(key)
        if report is not None:
            self._apply_report(report)

    def _end_without_report(self, key: int, reason: str) -> None:
        """A contact whose workflow ended without a final report (terminated, failed) is done,
        as failed. A call it was granted stays counted as placed: it was most likely under way
        (the carrier's record has it), and nothing says it was given back."""
        self._end_contact(key, ContactState.DONE, reason, Outcome.FAILED)

    def _has_contacts_outside_run(self) -> bool:
        """Whether any started contact that is not this run's child is still open."""
        return any(not c.state.is_final and c.state != ContactState.PENDING and c.key not in self._run_children
                   for c in self._state.contacts)

    async def _close_ended_contacts(self) -> None:
        """For the whole run, beside the main loop: contacts that report by signal whose
        workflow ended without a report (terminated by an operator, say) are final too; the
        campaign must not wait for them for ever. (The run's own children need no check: it
        sees each one's end as its result.) One timer per check, none while nothing to check."""
        interval = timedelta(seconds=self._config.ended_contacts_check_seconds)
        while True:
            await workflow.wait_condition(lambda: self._check_ended)
            await workflow.sleep(interval, summary="until the next check for contact workflows that ended")
            try:
                ended: list[EndedContact] = await workflow.execute_activity(
                    "find_contacts_ended_without_report",
                    workflow.info().workflow_id,
                    result_type=list[EndedContact],
                    start_to_close_timeout=timedelta(minutes=2),
                    # A server whose visibility cannot answer (the time-skipping test server)
                    # is asked again at the next check, not in a loop.
                    retry_policy=RetryPolicy(maximum_attempts=3),
                    summary="look for contact workflows that ended without a report",
                )
            except ActivityError as err:
                workflow.logger.warning("check for ended contact workflows failed: %s", err.cause or err)
                continue
            for contact in ended:
                if contact.key not in self._run_children:
                    self._end_without_report(
                        contact.key, f"the contact's workflow was {contact.status} without reporting its end")
            self._check_ended = self._has_contacts_outside_run()

    async def _hand_over_results(self) -> None:
        """Before continuing as new: children of this run that are still open will report
        their end by signal (the next run is not their parent and never sees their result)."""
        keys = sorted(self._awaiting_result - self._results_due_here)
        for i in range(0, len(keys), SIGNAL_BATCH):
            await asyncio.gather(*(self._hand_over(key) for key in keys[i:i + SIGNAL_BATCH]))

    async def _hand_over(self, key: int) -> None:
        handle = workflow.get_external_workflow_handle(contact_workflow_id(workflow.info().workflow_id, key))
        try:
            await handle.signal(ContactCallWorkflow.report_by_signal)
            self._awaiting_result.discard(key)  # its end now comes by signal
        except Exception:
            # Closed already: its result is on the way to this run, which waits for it.
            if key in self._awaiting_result:
                self._results_due_here.add(key)

    def _free_slots_for_new(self) -> int:
        """Whether a new contact's first call can be granted with its start."""
        cfg = self._config
        if cfg.calls_per_second or cfg.calling_window or cfg.blackout_dates:
            return 0  # pacing and windows are decided when the contact asks
        if cfg.max_concurrent_calls is None:
            return 1
        # Contacts already queued go first.
        return max(cfg.max_concurrent_calls - self._live_calls() - len(self._state.dial_queue), 0)

    async def _grant_dials(self) -> None:
        st = self._state
        while st.dial_queue and (slots := self._free_slots()) > 0:
            batch = st.dial_queue[: min(slots, SIGNAL_BATCH)]
            del st.dial_queue[: len(batch)]
            if self._config.calls_per_second:
                st.pace_tokens = self._pacing_tokens() - len(batch)
                st.pace_at = workflow.now()
            for request in batch:
                st.contacts[request.key].state = ContactState.DIALING
                st.calls_placed += 1
                self._dirty.add(request.key)
            await asyncio.gather(
                *(self._signal_contact(r.key, DialGrant(attempt=r.attempt, granted_at=workflow.now())) for r in batch)
            )

    async def _send_policy(self) -> None:
        st = self._state
        update = RedialUpdate(redial=self._config.redial, redial_rules=self._config.redial_rules)
        while st.policy_to_send:
            batch = st.policy_to_send[:SIGNAL_BATCH]
            del st.policy_to_send[: len(batch)]
            await asyncio.gather(*(self._signal_contact_policy(key, update) for key in batch))

    async def _signal_contact_policy(self, key: int, update: RedialUpdate) -> None:
        handle = workflow.get_external_workflow_handle(contact_workflow_id(workflow.info().workflow_id, key))
        try:
            await handle.signal(ContactCallWorkflow.policy_update, update)
        except Exception as err:  # ended meanwhile
            workflow.logger.info("contact %s not updated: %s", key, err)

    async def _send_stops(self) -> None:
        st = self._state
        while st.stops_to_send:
            batch = st.stops_to_send[:SIGNAL_BATCH]
            del st.stops_to_send[: len(batch)]
            grants = []
            for key in batch:
                removed = key in st.removals_requested
                grants.append(self._signal_contact(key, DialGrant(
                    attempt=0,
                    stop=ContactState.REMOVED if removed else ContactState.CANCELED,
                    reason="removed through the API" if removed else "campaign canceled",
                )))
            await asyncio.gather(*grants)

    async def _signal_contact(self, key: int, grant: DialGrant) -> None:
        handle = workflow.get_external_workflow_handle(contact_workflow_id(workflow.info().workflow_id, key))
        try:
            await handle.signal(ContactCallWorkflow.dial_grant, grant)
        except Exception as err:  # the contact already ended: its final report is on the way
            workflow.logger.info("contact %s not signalled: %s", key, err)

    def _by_disposition(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for c in self._state.contacts:
            if (disposition := reported_disposition(c.state, c.disposition)) is not None:
                counts[disposition] += 1
        return dict(counts)

    def _estimate(self):
        st = self._state
        if st.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELED):
            return st.finished_at
        waiting = [c for c in st.contacts if not c.state.is_final and c.state != ContactState.DIALING]
        return campaign_eta(
            self._config, workflow.now(), [c.next_call_at for c in waiting],
            # Each contact's window opens in its own time zones.
            contact_zones=[c.zones for c in waiting],
            attempts_made=[c.attempts for c in waiting],
            live_calls=self._live_calls(),
            observed_calls=sum(st.outcome_counts.values()),
            observed_answered=st.outcome_counts.get(Outcome.COMPLETED.value, 0),
            observed_call_seconds=st.answered_talk_seconds,
        )

    def _control_result(self, detail: str | None = None) -> ControlResult:
        return ControlResult(
            campaign_id=self._config.campaign_id,
            status=self._state.status,
            at=workflow.now(),
            active_calls=self._live_calls(),
            detail=detail or self._state.pause_reason,
        )

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
        total = len(st.contacts)
        workflow.set_current_details(
            f"**{st.status.value}** · {self._final}/{total} contacts final "
            f"({round(100 * self._final / total) if total else 0}%) · {st.calls_placed} calls placed · "
            + ", ".join(f"{k} {v}" for k, v in sorted(st.outcome_counts.items()))
            + f"\n\n- contacts: {total}\n- redial: {self._redial_label()}"
            + (f"\n\npaused: {st.pause_reason}" if st.status == CampaignStatus.PAUSED and st.pause_reason else "")
        )

    def _redial_label(self) -> str:
        """The redial configuration in force (it changes with PUT /updateCampaignData)."""
        cfg = self._config
        rules = cfg.redial_rules
        if rules is not None:
            if not rules.enabled:
                return "off"
            return f"up to {rules.effective_max_attempts} calls, rules: " + ", ".join(r.match for r in rules.call_status)
        return f"up to {cfg.redial.max_attempts} calls" if cfg.redial.enabled else "off"
