"""A workflow cancellation (the Temporal UI's "Request Cancellation", `temporal workflow
cancel`) does what POST /campaigns/{id}/cancel does, and every view of the canceled campaign
tells the same story: by_disposition, the CSV export, the contacts pages, and the Temporal
UI's summary (what never changes) and current details (what does: contacts, redial config)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus

from campaign_engine.ids import contact_workflow_id
from campaign_engine.models import CampaignStatus, ContactState
from tests.conftest import running_engine
from tests.helpers import wait_for
from tests.test_lifecycle_api import FAR, campaign_probe, create, get, handle, iso, phone, rows


async def current_details(h) -> str:
    meta = await h.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return meta.current_details


async def test_workflow_cancellation_cancels_the_campaign_like_the_api(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, SIMULATED_OUTCOMES="busy=1",
                              SIMULATED_RING_SECONDS="0.8-1", SIMULATED_TALK_SECONDS="0.8-1") as engine:
        created = await create(engine, rows(4) + rows(2, start=60, scheduledCallDateTime=FAR),
                               schedule_time=iso(datetime.now(UTC)), maxConcurrentCalls=2,
                               redialConfig={"enabled": True, "maxAttempts": 3, "retryIntervals": [14400]})
        cid = created["campaign_id"]
        h = handle(engine, cid)
        desc = await h.describe()
        summary_text, details_text = await desc.static_summary(), await desc.static_details()
        assert "contacts" not in summary_text and "contacts" not in details_text and "redial" not in details_text
        await get(engine, f"/startCampaignv2/{cid}")

        # What changes is in the current details: an append and a rule update show there.
        resp = await engine.http.post(f"/campaigns/{cid}/contacts", headers=engine.headers(),
                                      json={"contacts": rows(1, start=70, scheduledCallDateTime=FAR)})
        assert resp.status_code == 200, resp.text
        put = await engine.http.put(f"/updateCampaignData/{cid}", headers=engine.headers(), json={
            "redialConfig": {"enabled": True, "maxAttempts": 5, "retryIntervals": [14400]}})
        assert put.status_code == 200, put.text
        details = await current_details(h)
        assert "contacts: 7" in details and "up to 5 calls" in details, details

        await wait_for(campaign_probe(engine, cid),
                       lambda c: c["by_state"].get("redial_wait", 0) >= 1 and c["live_calls"] >= 1,
                       what="a contact waiting to redial and a live call")
        await h.cancel()

        summary = await asyncio.wait_for(h.result(), 60)
        assert summary.status == CampaignStatus.CANCELED and summary.finished_at
        assert (await h.describe()).status == WorkflowExecutionStatus.COMPLETED
        # Every contact ended canceled: those waiting (timers stopped), the live ones once
        # their call ended, the far ones never called.
        assert summary.by_disposition == {"canceled": 7}
        called = {c["to"] for c in engine.ledger.calls(cid)}
        assert not called & {phone(60), phone(61), phone(70)}
        assert summary.calls_placed == len(engine.ledger.calls(cid))
        # No contact's workflow is left open. One that reported its end by signal closes in
        # its next workflow task, which may come just after the campaign's own end.
        for key in range(7):
            contact = engine.client.get_workflow_handle(contact_workflow_id(h.id, key))
            await wait_for(contact.describe, lambda d: d.status != WorkflowExecutionStatus.RUNNING,
                           timeout=30, what=f"contact {key}'s workflow closed")

        final = await get(engine, f"/campaigns/{cid}")
        assert final["status"] == "canceled" and final["finished_at"] and final["live_calls"] == 0
        assert set(final["by_state"]) <= {s.value for s in ContactState if s.is_final}, final["by_state"]
        assert final["by_state"] == {"canceled": 7} and final["by_disposition"] == {"canceled": 7}
        # The API's cancel is a no-op now, and nothing else is possible.
        again = await engine.http.post(f"/campaigns/{cid}/cancel", headers=engine.headers())
        assert again.status_code == 200 and again.json()["status"] == "canceled"

        # The export and the contacts pages say what by_disposition says.
        resp = await engine.http.get("/downloadCampaignStats", params={"campaign_id": cid, "format": "csv"},
                                     headers=engine.headers())
        assert resp.status_code == 200, resp.text
        exported = list(csv.DictReader(io.StringIO(resp.text)))
        by_contact = {r["contact_index"]: r["disposition"] for r in exported}
        assert len(by_contact) == 7 and set(by_contact.values()) == {"canceled"}, exported
        # ... while each attempt keeps its own outcome.
        assert {r["outcome"] for r in exported if r["attempt"]} <= {"busy"}
        page = await get(engine, f"/campaigns/{cid}/contacts", status="canceled")
        assert page["total"] == 7 and {c["disposition"] for c in page["contacts"]} == {"canceled"}
        assert (await get(engine, f"/campaigns/{cid}/contacts", status="busy"))["total"] == 0
        assert all(c["last_outcome"] in (None, "busy") for c in page["contacts"])
        assert "**canceled**" in await current_details(h)


async def test_workflow_cancellation_of_a_draft(engine):
    created = await create(engine, rows(3))
    cid = created["campaign_id"]
    h = handle(engine, cid)
    await h.cancel()
    summary = await asyncio.wait_for(h.result(), 30)
    assert summary.status == CampaignStatus.CANCELED and summary.by_disposition == {"canceled": 3}
    assert engine.ledger.calls(cid) == []
    final = await get(engine, f"/campaigns/{cid}")
    assert final["status"] == "canceled" and final["finished_at"] and final["by_state"] == {"canceled": 3}
    resp = await engine.http.get(f"/startCampaignv2/{cid}", headers=engine.headers())
    assert resp.status_code == 409 and resp.json()["error"] == "INVALID_CAMPAIGN_STATE", resp.text
