"""Launching a campaign's contacts: pages of rows from the store, one workflow each.

The store is the roster (the record loader of samples-python's batch_sliding_window): the
campaign reads the next page after its cursor by local activity, and starts the contacts'
workflows in batches whose start commands go in one workflow task. Contacts due now launch
only while few are waiting to dial (CampaignConfig.launch_ahead), so the campaign's state
stays bounded by what is in flight.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import Activity
    from campaign_engine.ids import contact_workflow_id
    from campaign_engine.models import (
        CampaignConfig,
        CampaignState,
        CampaignStatus,
        ContactCallInput,
        ContactState,
        LaunchPageRequest,
        LaunchRow,
    )
    from campaign_engine.store.records import ContactChange
    from workflows.admission import Admission
    from workflows.child_results import ChildResults
    from workflows.contact_call import ContactCallWorkflow
    from workflows.recorder import Recorder

PAGE = 200  # rows per page: a page travels in one local activity marker (~25 KB at 200)
START_BATCH = 200


class Launcher:
    def __init__(self, state: CampaignState, config: CampaignConfig, admission: Admission,
                 recorder: Recorder, results: ChildResults) -> None:
        self.st, self.cfg, self.admission, self.recorder = state, config, admission, recorder
        self.results = results
        self._page: list[LaunchRow] = []  # loaded, not launched yet (the cursor is in the state)
        self.started_this_run = 0

    def run_is_full(self) -> bool:
        return self.started_this_run >= self.cfg.children_per_run

    def has_more(self) -> bool:
        return self.st.next_key < self.st.total

    def can_launch(self) -> bool:
        if self.st.status != CampaignStatus.IN_PROGRESS or self.run_is_full() or not self.has_more():
            return False
        if not self._page:
            return True  # a page to load
        return not self._is_due(self._page[0]) or self._room_ahead() or self.admission.may_grant_with_start(self._page[0])

    def skip_unlaunched(self) -> int:
        """Cancel: every contact not launched ends; returns how many (not counted final yet)."""
        n = self.st.total - self.st.next_key - len(self.st.skip)  # skip holds keys from next_key on
        self.recorder.cancel_from_key = self.st.next_key
        self.st.next_key = self.st.total
        self.st.skip.clear()
        self._page.clear()
        return n

    def remove_unlaunched(self, key: int) -> bool:
        """A contact removed before its launch; False if it was removed already."""
        if key in self.st.skip:
            return False
        self.st.skip.append(key)
        self._page = [r for r in self._page if r.key != key]
        return True

    async def launch(self) -> None:
        while self.can_launch():
            if not self._page:
                await self._load()
                continue
            batch = self._take_batch()
            if not batch:
                return
            await asyncio.gather(*(self._start(row, granted) for row, granted in batch))

    async def _load(self) -> None:
        rows = await workflow.execute_local_activity(
            Activity.LOAD_LAUNCH_PAGE,
            LaunchPageRequest(tenant_id=self.cfg.tenant_id, campaign_id=self.cfg.campaign_id,
                              after_key=self.st.next_key - 1, below_key=self.st.total, limit=PAGE),
            result_type=list[LaunchRow], start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
            summary="next contacts to launch",
        )
        skipped = set(self.st.skip)
        self._page = [r for r in rows if r.key not in skipped]
        if not rows:  # nothing pending after the cursor: the rest were removed
            self._advance(self.st.total)
        elif not self._page:  # a page of contacts removed before their launch
            self._advance(rows[-1].key + 1)

    def _advance(self, next_key: int) -> None:
        self.st.next_key = max(self.st.next_key, next_key)
        self.st.skip = [k for k in self.st.skip if k >= self.st.next_key]

    def _is_due(self, row: LaunchRow) -> bool:
        return row.scheduled_at is None or row.scheduled_at <= workflow.now()

    def _room_ahead(self) -> bool:
        return len(self.st.fresh) + len(self.st.queue) < self.cfg.launch_ahead

    def _take_batch(self) -> list[tuple[LaunchRow, bool]]:
        """The next rows to start, each with whether its first call goes with its start."""
        batch: list[tuple[LaunchRow, bool]] = []
        while self._page and len(batch) < START_BATCH and not self.run_is_full():
            row = self._page[0]
            due = self._is_due(row)
            granted = due and self.admission.may_grant_with_start(row)
            if due and not granted and not self._room_ahead():
                break
            self._page.pop(0)
            self._advance(row.key + 1)
            self.started_this_run += 1
            if granted:
                self.st.dialing.append(row.key)
                self.st.calls_placed += 1
                state = ContactState.DIALING
            elif due:
                self.st.fresh.append(row.key)
                state = ContactState.QUEUED
            else:
                state = ContactState.SCHEDULED
            self.recorder.change(ContactChange(key=row.key, state=state))
            batch.append((row, granted))
        return batch

    async def _start(self, row: LaunchRow, granted: bool) -> None:
        info = workflow.info()
        try:
            handle = await workflow.start_child_workflow(
                ContactCallWorkflow.run,
                ContactCallInput(campaign_workflow_id=info.workflow_id, config=self.cfg, contact=row,
                                 first_call_granted=granted),
                id=contact_workflow_id(info.workflow_id, row.key),
                # Contacts outlive the run that started them (it continues as new); they
                # report by signal to the campaign's workflow id, whichever run is current.
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{row.label} · campaign {self.cfg.name}",
            )
        except WorkflowAlreadyStartedError:
            return  # started already (the id is the contact's, for ever)
        self.results.watch(row.key, handle, report_as_result=granted)
