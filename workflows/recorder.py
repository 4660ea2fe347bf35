"""The campaign workflow's side of the store: what changed is flushed to PostgreSQL.

A task beside the campaign's main loop writes, in one local activity, the contacts whose
summary changed, the attempts that ended, contacts appended after the start, and the
campaign's status and progress: at most once per RECORD_EVERY, at once when much has changed
or when an API operation waits for it (operations answer once the store has what they did,
so a read right after one sees it). Before continuing as new and at the end the run waits
until the store is current, so nothing that happened in a run is left unwritten.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from campaign_engine.ids import contact_workflow_id, idempotency_key
    from campaign_engine.models import AttemptRecord, CampaignConfig, CampaignState, Contact
    from campaign_engine.store.records import CampaignChanges, EndedAttempt

if TYPE_CHECKING:
    from campaign_engine.models import CampaignProgress

# The store gets what changed at most this often, and at once past RECORD_BATCH contacts.
RECORD_EVERY = timedelta(seconds=1)
RECORD_BATCH = 500
# Retried until the store answers: nothing is lost while it is down, the campaign waits.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))

T = TypeVar("T")


class StoreRecorder:
    _state: CampaignState
    _config: CampaignConfig
    _final: int

    def progress(self) -> CampaignProgress:  # the campaign workflow's query
        raise NotImplementedError

    def _init_recorder(self) -> None:
        self._dirty: set[int] = set()  # contacts whose summary changed
        self._ended_attempts: list[EndedAttempt] = []
        self._new_rows: list[Contact] = []  # appended after the start (the upload's rows the API wrote)
        self._config_changed = False
        self._recorded_figures: tuple | None = None
        self._flushes_started = 0
        self._flushes_done = 0
        self._flush_requested = False

    def _attempt_ended(self, key: int, record: AttemptRecord) -> None:
        wf_id = contact_workflow_id(workflow.info().workflow_id, key)
        self._ended_attempts.append(EndedAttempt(key=key, record=record,
                                                 idempotency_key=idempotency_key(wf_id, record.attempt)))

    def _figures(self) -> tuple:
        st = self._state
        return (st.status, st.calls_placed, self._final, len(st.contacts), tuple(sorted(st.outcome_counts.items())),
                st.missing_contacts, st.duplicates_merged, st.pause_reason, st.finished_at, st.started_at)

    def _record_due(self) -> bool:
        return bool(self._dirty or self._ended_attempts or self._new_rows or self._config_changed
                    or self._figures() != self._recorded_figures)

    def _store_is_current(self) -> bool:
        return not self._record_due() and self._flushes_done == self._flushes_started

    async def _run_recorder(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._flush_requested or self._record_due())
            if not self._flush_requested:  # not asked for: wait a moment, gather more
                try:
                    await workflow.wait_condition(
                        lambda: self._flush_requested or len(self._dirty) >= RECORD_BATCH,
                        timeout=RECORD_EVERY, timeout_summary="record progress in the store")
                except asyncio.TimeoutError:
                    pass
            await self._flush()

    async def _flush(self) -> None:
        self._flush_requested = False
        self._flushes_started += 1
        number = self._flushes_started
        if self._record_due():
            st = self._state
            changes = CampaignChanges(
                tenant_id=self._config.tenant_id, campaign_id=self._config.campaign_id, status=st.status,
                progress=self.progress().model_copy(update={"contacts": []}),
                talk_seconds=st.answered_talk_seconds, config=self._config if self._config_changed else None,
                new_contacts=self._new_rows, contacts=[st.contacts[k] for k in sorted(self._dirty)],
                attempts=self._ended_attempts,
            )
            self._dirty, self._ended_attempts, self._new_rows, self._config_changed = set(), [], [], False
            self._recorded_figures = self._figures()
            await workflow.execute_local_activity(
                "record_campaign_changes", changes, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY, summary="record progress in the store",
            )
        self._flushes_done = number

    async def _recorded(self) -> None:
        """Return once a flush that began after this call has finished: the store then has
        everything that happened before it."""
        target = self._flushes_started + 1
        self._flush_requested = True
        await workflow.wait_condition(lambda: self._flushes_done >= target)

    async def _answer_when_recorded(self, result: T) -> T:
        """An update's answer, once the store has what it changed (read-your-writes)."""
        await self._recorded()
        return result



