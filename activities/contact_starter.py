"""Starting contact workflows from outside a campaign's children.

A campaign run starts at most `children_per_run` children (Temporal limits a workflow's open
children), and contacts waiting for the next run travel in its continue-as-new input, which
Temporal refuses over 2 MB. Contacts with kilobytes of custom_data appended faster than the
runs start them would not fit: the campaign has this activity start them instead, as
workflows of their own with the same ids. They ask the campaign before each call and report
to it by signal, as handed-over children do.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from campaign_engine.ids import contact_workflow_id
from campaign_engine.models import ContactCallInput, ContactStartRequest
from campaign_engine.packing import unpack_contacts

# Starts in flight at once: enough to hide the round trip, few enough not to flood the server.
CONCURRENT_STARTS = 20


class ContactStarter:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def start_contact_workflows(self, request: ContactStartRequest) -> int:
        """Start each contact's workflow once; returns how many this attempt started (a
        retry finds the ones started before and leaves them)."""
        contacts = unpack_contacts(request.packed_contacts)
        gate = asyncio.Semaphore(CONCURRENT_STARTS)
        started = 0

        async def start(contact) -> None:
            nonlocal started
            async with gate:
                try:
                    await self._client.start_workflow(
                        "ContactCallWorkflow",
                        ContactCallInput(campaign_workflow_id=request.campaign_workflow_id,
                                         config=request.config, contact=contact),
                        id=contact_workflow_id(request.campaign_workflow_id, contact.key),
                        task_queue=request.task_queue,
                        # Once per contact, ever: running or already finished, it is not started again.
                        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        static_summary=contact.workflow_summary(request.config.name),
                    )
                    started += 1
                except WorkflowAlreadyStartedError:
                    pass
                activity.heartbeat(started)

        await asyncio.gather(*(start(c) for c in contacts))
        return started
