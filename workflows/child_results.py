"""Children of this run whose final report is their result, and the end of every child.

A contact started with its first call granted, that never needs to speak to the campaign
(one call, no wait), returns its final report as its result (ContactStatus.final_report):
the run that started it sees the child's completion anyway, so a signal would only add
events and workflow tasks. Whichever way a child of this run ends, its end is seen here: one
terminated or failed ends its contact without a report.

The next run is not the children's parent and never sees their results, so before it
continues as new a run tells each child still owing its result to report by signal, and
waits for the results of those that had closed already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import ContactSignal
    from campaign_engine.models import AttemptReport, ContactStatus
    from workflows.contact_signal import signal_contacts


class ChildResults:
    def __init__(self, *, on_report: Callable[[AttemptReport], None], on_closed: Callable[[int], None]) -> None:
        self._on_report, self._on_closed = on_report, on_closed
        self._owed: set[int] = set()  # keys whose final report will be their result

    def watch(self, key: int, handle: workflow.ChildWorkflowHandle, *, report_as_result: bool) -> None:
        if report_as_result:
            self._owed.add(key)
        asyncio.create_task(self._await_end(key, handle))

    def owes(self, key: int) -> bool:
        """Whether the contact's end is coming as its result (so a failed signal to it means
        it has just closed, not that it vanished)."""
        return key in self._owed

    def spoke(self, key: int) -> None:
        """A signal from the contact: it will report its end by signal."""
        self._owed.discard(key)

    def all_in(self) -> bool:
        return not self._owed

    async def hand_over(self) -> None:
        """Before continuing as new: every child still owing its result reports by signal.
        One that closed already keeps owing: its result is on its way to this run."""
        missed = await signal_contacts(ContactSignal.REPORT_BY_SIGNAL, [(key, ()) for key in sorted(self._owed)])
        self._owed.intersection_update(missed)  # a closed one's result is on its way to this run

    async def _await_end(self, key: int, handle: workflow.ChildWorkflowHandle) -> None:
        try:
            status: ContactStatus = await handle
        except ChildWorkflowError:
            self._owed.discard(key)
            self._on_closed(key)  # terminated, failed or timed out: no report, or only some
            return
        if key not in self._owed:
            return  # it reported by signal
        self._owed.discard(key)
        if status.final_report is not None:
            self._on_report(status.final_report)
        else:
            self._on_closed(key)
