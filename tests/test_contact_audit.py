"""find_contacts_ended_without_report: which of a campaign's contact workflows ended without
a word to it (terminated, failed, timed out, canceled), from the server's visibility."""

from __future__ import annotations

import uuid

from temporalio.testing import ActivityEnvironment

from activities.contact_audit import ContactAudit
from tests.helpers import wait_for


async def test_finds_the_campaigns_contacts_that_ended_without_a_report_and_no_others(dev_env, task_queue):
    client = dev_env.client
    campaign = f"campaign/acme/CAMP-AUDIT-{uuid.uuid4().hex[:6]}"
    # Another campaign whose id begins with this one's: none of its contacts may be listed.
    neighbour = campaign + "0"

    async def start(wf_id: str):
        # A workflow type no worker polls for: it stays running until ended here.
        return await client.start_workflow("ContactCallWorkflow", id=wf_id, task_queue=task_queue)

    handles = [await start(f"{campaign}/contact/{key}") for key in range(4)]
    other = await start(f"{neighbour}/contact/1")
    await handles[1].terminate("operator")
    await handles[3].cancel()  # no worker: the request stays pending, the workflow running
    await handles[2].terminate("operator")
    await other.terminate("operator")

    audit = ContactAudit(client)

    async def ended():
        found = await ActivityEnvironment().run(audit.find_contacts_ended_without_report, campaign)
        return sorted((c.key, c.status) for c in found)

    # Visibility is eventually consistent: wait for both terminations to show.
    assert await wait_for(ended, lambda found: len(found) >= 2, what="both terminations listed") == [
        (1, "terminated"), (2, "terminated")]
    for h in (handles[0], handles[3]):
        await h.terminate("test over")
    assert await wait_for(ended, lambda found: len(found) >= 4, what="all four listed") == [
        (0, "terminated"), (1, "terminated"), (2, "terminated"), (3, "terminated")]
    # A later run of the same id (what an operator's reset leaves: the old run terminated, a
    # new one running) means the contact goes on: it is not listed.
    rerun = await start(f"{campaign}/contact/2")

    async def listed_keys() -> list[int]:
        return [key for key, _ in await ended()]

    assert await wait_for(listed_keys, lambda keys: 2 not in keys, what="contact 2 running again") == [0, 1, 3]
    await rerun.terminate("test over")
