"""One signal to every open contact of a campaign (cancel, new redial rules).

The campaign workflow knows only the contacts in flight; the store knows which are open. This
activity pages through them and signals each one's workflow, a page at a time, heartbeating
the last key done so a retry after a crash goes on from there. Contacts ignore a repeated
stop or rule update, so a page sent twice is harmless.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from campaign_engine.contract import ContactSignal
from campaign_engine.ids import contact_workflow_id
from campaign_engine.models import DialGrant, RedialUpdate
from campaign_engine.store import roster

PAGE = 500
CONCURRENT_SIGNALS = 50


class BroadcastRequest(BaseModel):
    campaign_workflow_id: str
    tenant_id: str
    campaign_id: str
    stop: DialGrant | None = None  # a stop for every open contact
    policy: RedialUpdate | None = None  # or new redial rules


class Broadcaster:
    def __init__(self, client: Client, db: AsyncEngine) -> None:
        self._client = client
        self._db = db

    @activity.defn
    async def signal_open_contacts(self, request: BroadcastRequest) -> int:
        """Signal every open contact; returns how many were signalled by this attempt."""
        details = activity.info().heartbeat_details
        after = int(details[0]) if details else -1
        gate = asyncio.Semaphore(CONCURRENT_SIGNALS)
        sent = 0

        async def signal(key: int) -> None:
            nonlocal sent
            handle = self._client.get_workflow_handle(contact_workflow_id(request.campaign_workflow_id, key))
            async with gate:
                try:
                    if request.stop is not None:
                        await handle.signal(ContactSignal.DIAL_GRANT, request.stop)
                    else:
                        await handle.signal(ContactSignal.POLICY_UPDATE, request.policy)
                    sent += 1
                except RPCError:  # ended meanwhile: its report is on the way
                    pass

        while keys := await roster.open_contact_keys(self._db, request.tenant_id, request.campaign_id, after, PAGE):
            await asyncio.gather(*(signal(k) for k in keys))
            after = keys[-1]
            activity.heartbeat(after)
        return sent
