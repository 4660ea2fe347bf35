"""The campaign workflow's side of the store: what changed is flushed to PostgreSQL.

A task beside the campaign's main loop writes, in one local activity, the contacts whose row
changed, the attempts that ended and the campaign's counters: at most once per RECORD_EVERY,
at once when much has changed or when an API operation waits for it (operations answer once
the store has what they did, so a read right after one sees it). The activity answers the
campaign's progress as the store then has it (counts by state come from the rows), which
the `progress` query shows. Before continuing as new and at the end the run waits until the
store is current, so nothing that happened in a run is left unwritten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import Activity
    from campaign_engine.ids import contact_workflow_id, idempotency_key
    from campaign_engine.models import AttemptRecord, CampaignConfig, CampaignProgress, CampaignState
    from campaign_engine.store.records import CampaignChanges, CampaignCounters, ContactChange, EndedAttempt

# The store gets what changed at most this often, and at once past RECORD_BATCH contacts.
RECORD_EVERY = timedelta(seconds=1)
RECORD_BATCH = 500
# Counting the rows by state and the completion estimate read every row of the campaign:
# past this many contacts, at most this often (and at every change of status, every flush an
# operation waits for, and the last).
RECOUNT_LARGE_CAMPAIGN = 10_000
RECOUNT_EVERY = timedelta(seconds=10)
# Retried until the store answers: nothing is lost while it is down, the campaign waits.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))

T = TypeVar("T")


class Recorder:
    def __init__(self, config: CampaignConfig, state: CampaignState,
                 counters: Callable[[], CampaignCounters]) -> None:
        self._config = config
        self._state = state  # for the flushes' numbers, carried across runs
        self._counters = counters
        self._changes: dict[int, ContactChange] = {}
        self._attempts: list[EndedAttempt] = []
        self.config_changed = False
        self.cancel_from_key: int | None = None
        self._written: CampaignCounters | None = None
        self.progress: CampaignProgress | None = None  # as the last flush wrote it
        self._recounted_at: datetime | None = None
        self._started = 0
        self._done = 0
        self._requested = False

    def change(self, change: ContactChange) -> None:
        earlier = self._changes.get(change.key)
        self._changes[change.key] = earlier.then(change) if earlier is not None else change

    def attempt_ended(self, key: int, record: AttemptRecord) -> None:
        wf_id = contact_workflow_id(workflow.info().workflow_id, key)
        self._attempts.append(EndedAttempt(key=key, record=record, idempotency_key=idempotency_key(wf_id, record.attempt)))

    def _due(self) -> bool:
        return bool(self._changes or self._attempts or self.config_changed or self.cancel_from_key is not None
                    or self._counters() != self._written)

    def is_current(self) -> bool:
        return not self._due() and self._done == self._started

    async def run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._requested or self._due())
            if not self._requested:  # not asked for: wait a moment, gather more
                try:
                    await workflow.wait_condition(lambda: self._requested or len(self._changes) >= RECORD_BATCH,
                                                  timeout=RECORD_EVERY, timeout_summary="record progress in the store")
                except asyncio.TimeoutError:
                    pass
            await self._flush()

    async def _flush(self) -> None:
        asked, self._requested = self._requested, False
        self._started += 1
        number = self._started
        if self._due():
            counters = self._counters()
            now = workflow.now()
            recount = (counters.total_contacts <= RECOUNT_LARGE_CAMPAIGN or self._recounted_at is None
                       or now - self._recounted_at >= RECOUNT_EVERY or counters.finished_at is not None
                       or asked or (self._written is not None and self._written.status != counters.status))
            if recount:
                self._recounted_at = now
            self._state.flushes += 1
            changes = CampaignChanges(
                tenant_id=self._config.tenant_id, campaign_id=self._config.campaign_id,
                flush=self._state.flushes, counters=counters,
                config=self._config, config_changed=self.config_changed, contacts=list(self._changes.values()),
                attempts=self._attempts, cancel_from_key=self.cancel_from_key, recount=recount,
            )
            self._changes, self._attempts, self.config_changed, self.cancel_from_key = {}, [], False, None
            self._written = counters
            self.progress = await workflow.execute_local_activity(
                Activity.RECORD_CAMPAIGN_CHANGES, changes, result_type=CampaignProgress,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY,
                summary="record progress in the store",
            )
        self._done = number

    async def recorded(self) -> None:
        """Return once a flush that began after this call has finished: the store then has
        everything that happened before it."""
        target = self._started + 1
        self._requested = True
        await workflow.wait_condition(lambda: self._done >= target)

    async def answer_when_recorded(self, result: T) -> T:
        """An update's answer, once the store has what it changed (read-your-writes)."""
        await self.recorded()
        return result
