"""Finding contacts whose workflows ended without telling their campaign.

A contact reports its end to its campaign: as its result, to the run that started it, or by
signal when a later run holds it (children handed over across continue-as-new, contacts
started outside the children). A contact workflow that is terminated by an operator, or
fails or times out, sends nothing; a campaign waiting for it would never finish. So the
campaign asks this activity, now and then, which of its contacts' workflows ended that way.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from campaign_engine.ids import contact_workflow_id, parse_contact_workflow_id
from campaign_engine.models import EndedContact

# Ended without a report. Completed contacts reported before completing (their last signal is
# in the campaign's history before they close); continued-as-new ones are still running.
_ENDED_WITHOUT_REPORT = ("Terminated", "Failed", "TimedOut", "Canceled")
# Describes in flight at once (each contact found is checked for a later run).
CONCURRENT_DESCRIBES = 20


def ended_contacts_query(campaign_workflow_id: str) -> str:
    """The visibility query for the campaign's contact workflows that ended without a report."""
    prefix = contact_workflow_id(campaign_workflow_id, 0)[:-1]  # '.../contact/'
    if "'" in prefix or "\\" in prefix:
        raise ApplicationError(f"unexpected characters in workflow id {campaign_workflow_id!r}",
                               non_retryable=True)
    statuses = " OR ".join(f"ExecutionStatus = '{s}'" for s in _ENDED_WITHOUT_REPORT)
    return f"WorkflowId STARTS_WITH '{prefix}' AND ({statuses})"


class ContactAudit:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def find_contacts_ended_without_report(self, campaign_workflow_id: str) -> list[EndedContact]:
        candidates: dict[str, tuple[int, WorkflowExecutionStatus]] = {}
        async for execution in self._client.list_workflows(ended_contacts_query(campaign_workflow_id)):
            parsed = parse_contact_workflow_id(execution.id)
            if parsed is not None and parsed[0] == campaign_workflow_id:
                candidates[execution.id] = (parsed[1], execution.status or WorkflowExecutionStatus.TERMINATED)
        gate = asyncio.Semaphore(CONCURRENT_DESCRIBES)

        async def ended_for_good(workflow_id: str, key: int, status: WorkflowExecutionStatus) -> EndedContact | None:
            # A run that ended is not the contact's end when a later run of the same id goes
            # on (an operator's reset terminates the run it resets and starts another).
            async with gate:
                latest = (await self._client.get_workflow_handle(workflow_id).describe()).status or status
                activity.heartbeat()
            if latest in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED,
                          WorkflowExecutionStatus.CONTINUED_AS_NEW):
                return None
            return EndedContact(key=key, status=latest.name.lower().replace("_", " "))

        found = await asyncio.gather(*(ended_for_good(wf_id, key, status)
                                       for wf_id, (key, status) in sorted(candidates.items())))
        return [contact for contact in found if contact is not None]
