"""The tenant's suppression (do-not-call) list (issue 14), against the dev server and the
embedded PostgreSQL: the REST endpoints, the check inside the dial activity right before every
call (a redial already waiting included), opt-outs heard on calls feeding the list, uploads and
preflight counting suppressed contacts, and a list that cannot be read dialling nobody."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.providers.simulated import CarrierLedger, SimulatedCarrier
from activities.telephony import TelephonyActivities
from api.routes.callbacks import deliver_outcome
from campaign_engine import metrics
from campaign_engine.ids import (
    campaign_workflow_id,
    contact_workflow_id,
    idempotency_key,
)
from campaign_engine.models import CallOutcome, CallRequest, Outcome
from campaign_engine.settings import Settings
from campaign_engine.store.db import store_engine
from tests.conftest import API_KEY, OTHER_TENANT_KEY, running_engine
from tests.helpers import wait_for
from tests.test_lifecycle_api import assert_error, get, phone, rows, until_finished


def to_asyncpg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def run_and_upload(engine, contacts: list[dict], **fields) -> dict:
    body = {"campaignName": "DNC", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "contacts": contacts, **fields}
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


async def suppress(engine, *numbers: str, key: str = API_KEY, **extra) -> dict:
    resp = await engine.http.post("/suppressions", headers=engine.headers(key),
                                  json={"phone_numbers": list(numbers), "reason": "asked", **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_suppression_endpoints_validate_page_isolate_and_audit(engine):
    added = await suppress(engine, "+91 98000 00001", phone(2), phone(2))
    assert added == {"success": True, "received": 3, "added": 2, "updated": 0}
    again = await suppress(engine, phone(2))
    assert again["added"] == 0 and again["updated"] == 1

    # A CSV body with a phone_number column is an import.
    csv_body = "name,phone_number\nA,+919800000003\nB,+91-98000-00004\n"
    resp = await engine.http.post("/suppressions", params={"reason": "imported"}, content=csv_body,
                                  headers={**engine.headers(), "content-type": "text/csv"})
    assert resp.status_code == 200 and resp.json()["added"] == 2, resp.text

    # E.164 as on uploads: one bad number refuses the request, naming its row; nothing is added.
    bad = await engine.http.post("/suppressions", headers=engine.headers(),
                                 json={"phone_numbers": [phone(5), "12345", "+1415555ABCD"]})
    out = assert_error(bad, 400, "BAD_REQUEST")
    assert [d["field"] for d in out["details"]] == ["phone_numbers[1]", "phone_numbers[2]"], out
    no_column = await engine.http.post("/suppressions", content="number\n+919800000009\n",
                                       headers={**engine.headers(), "content-type": "text/csv"})
    assert_error(no_column, 400, "BAD_REQUEST")
    assert_error(await engine.http.post("/suppressions", headers=engine.headers(), json={"phone_numbers": [phone(6)],
                                                                                       "extra": 1}), 400, "BAD_REQUEST")

    page = await get(engine, "/suppressions", limit=3)
    assert page["total"] == 4 and len(page["suppressions"]) == 3 and page["next_cursor"] == phone(3)
    rest = await get(engine, "/suppressions", limit=3, cursor=page["next_cursor"])
    assert [s["phone_number"] for s in rest["suppressions"]] == [phone(4)] and rest["next_cursor"] is None
    sources = {s["phone_number"]: s["source"] for s in page["suppressions"] + rest["suppressions"]}
    assert sources == {phone(1): "api", phone(2): "api", phone(3): "import", phone(4): "import"}
    one = await get(engine, "/suppressions", phone_number=phone(3))
    assert one["total"] == 1 and one["suppressions"][0]["reason"] == "imported"
    assert one["suppressions"][0]["created_at"]

    # Another tenant sees none of it and can remove none of it.
    other = await engine.http.get("/suppressions", headers=engine.headers(OTHER_TENANT_KEY))
    assert other.status_code == 200 and other.json()["total"] == 0
    gone = await engine.http.delete(f"/suppressions/{phone(1)}", headers=engine.headers(OTHER_TENANT_KEY))
    assert_error(gone, 404, "NOT_FOUND")

    resp = await engine.http.delete(f"/suppressions/{phone(1)}", headers=engine.headers())
    assert resp.status_code == 200 and resp.json()["removed"] is True, resp.text
    assert_error(await engine.http.delete(f"/suppressions/{phone(1)}", headers=engine.headers()), 404, "NOT_FOUND")
    assert (await get(engine, "/suppressions", phone_number=phone(1)))["total"] == 0
    assert_error(await engine.http.get("/suppressions", params={"phone_number": "abc"}, headers=engine.headers()),
                 400, "BAD_REQUEST")
    assert (await engine.http.get("/suppressions")).status_code == 401

    # The audit trail has each change, by key id, never the key; another tenant's is empty.
    events = (await get(engine, "/audit"))["events"]
    actions = [e["action"] for e in events]
    assert actions == ["suppression.added"] * 3 + ["suppression.removed"], actions
    assert {e["tenant_id"] for e in events} == {"acme"}
    assert all(e["key_id"] and len(e["key_id"]) == 16 and API_KEY not in str(e) for e in events)
    assert events[2]["details"]["source"] == "import"
    assert (await get(engine, "/audit", OTHER_TENANT_KEY))["events"] == []


async def test_a_number_suppressed_mid_campaign_is_not_redialled(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, SIMULATED_OUTCOMES="busy=1") as engine:
        await suppress(engine, phone(12))  # on the list before the upload
        preflight = await engine.http.post("/campaigns/preflight", headers=engine.headers(), json={
            "campaignName": "DNC", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "contacts": rows(3, start=10)})
        assert preflight.status_code == 200, preflight.text
        pf = preflight.json()
        assert pf["suppressed"] == 1 and [r["row"] for r in pf["suppressed_rows"]] == [2], pf
        assert pf["contacts"][2]["suppressed"] is True and pf["contacts"][2]["first_call_at"] is None

        data = await run_and_upload(engine, rows(3, start=10),
                                    redialConfig={"enabled": True, "maxAttempts": 2, "retryIntervals": [3600]})
        assert data["contacts"]["suppressed"] == 1
        cid = data["campaign"]["campaignId"]
        # Both callable contacts made their first call and wait an hour to redial.
        await wait_for(lambda: get(engine, f"/campaigns/{cid}"),
                       lambda c: c["by_state"].get("redial_wait", 0) == 2, what="two contacts waiting to redial")
        await suppress(engine, phone(10))  # while its redial waits
        # The redial is brought forward (new rules re-plan waiting redials at once).
        put = await engine.http.put(f"/updateCampaignData/{cid}", headers=engine.headers(), json={
            "redialConfig": {"enabled": True, "maxAttempts": 2, "retryIntervals": [1]}})
        assert put.status_code == 200, put.text
        final = await until_finished(engine, cid)

        called = [c["to"] for c in engine.ledger.calls(cid)]
        assert sorted(called) == [phone(10), phone(11), phone(11)], called
        assert final["by_disposition"] == {"suppressed": 2, "busy": 1}, final
        contacts = {c["phone_number"]: c for c in (await get(engine, f"/campaigns/{cid}/contacts"))["contacts"]}
        assert contacts[phone(10)]["disposition"] == "suppressed" and contacts[phone(10)]["attempts"] == 1
        assert contacts[phone(12)]["disposition"] == "suppressed" and contacts[phone(12)]["attempts"] == 0
        stats = await get(engine, f"/getCampaignStats/{cid}")
        assert "suppressed" in str(stats), stats


async def test_an_opt_out_on_a_call_suppresses_the_number_for_a_later_campaign(dev_env, task_queue, carrier_db):
    # Calls ring long enough for the provider's callback (sent here as the callback route does)
    # to be the call's outcome.
    async with running_engine(dev_env, task_queue, carrier_db, SIMULATED_RING_SECONDS="600") as engine:
        data = await run_and_upload(engine, rows(1, start=20))
        cid = data["campaign"]["campaignId"]
        calls = await wait_for(lambda: _calls(engine, cid), lambda c: len(c) == 1, what="the call")
        contact_wf = contact_workflow_id(campaign_workflow_id("acme", cid), 0)
        said = await deliver_outcome(engine.client, contact_wf, CallOutcome(
            call_id=calls[0]["call_id"], attempt=1, outcome=Outcome.COMPLETED, duration_seconds=12.0,
            analysis={"do_not_call": True}))
        assert said == "accepted"
        await until_finished(engine, cid)

        listed = await wait_for(lambda: get(engine, "/suppressions", phone_number=phone(20)),
                                lambda p: p["total"] == 1, what="the opted-out number on the list")
        entry = listed["suppressions"][0]
        assert entry["source"] == "opt_out" and entry["source_ref"] == idempotency_key(contact_wf, 1), entry

        later = await run_and_upload(engine, rows(1, start=20))
        assert later["contacts"]["suppressed"] == 1
        final = await until_finished(engine, later["campaign"]["campaignId"])
        assert final["by_disposition"] == {"suppressed": 1}
        assert engine.ledger.calls(later["campaign"]["campaignId"]) == []


async def _calls(engine, cid):
    return engine.ledger.calls(cid)


async def test_a_list_that_cannot_be_read_dials_nobody(dev_env, task_queue, carrier_db, tmp_path):
    """The dial activity itself, on the real store and the simulated carrier: with the list
    unreadable it raises (Temporal retries it) and the carrier has no call; once the list reads
    again the same attempt dials once."""
    async with running_engine(dev_env, task_queue, carrier_db) as engine:
        # A contact called in 2035: its row is in the store, and only this test dials it.
        data = await run_and_upload(engine, rows(1, start=30, scheduledCallDateTime="2035-01-01T00:00:00Z"),
                                    isScheduledCall=True)
        cid = data["campaign"]["campaignId"]
        raw_url = engine.settings.database_url.get_secret_value()
        url = to_asyncpg(raw_url)
        ledger = CarrierLedger(tmp_path / "activity-carrier.sqlite3")
        carrier = SimulatedCarrier(ledger, "completed=1", "600", "0")
        db = store_engine(Settings(DATABASE_URL=raw_url))
        wf = contact_workflow_id(campaign_workflow_id("acme", cid), 0)
        request = CallRequest(idempotency_key=idempotency_key(wf, 1), contact_workflow_id=wf, attempt=1,
                              campaign_id=cid, tenant_id="acme", agent_id="agent-1", contact_key=0,
                              attempt_started_at=datetime.now(UTC), provider="simulated")
        activities = TelephonyActivities({"simulated": carrier}, db)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ALTER TABLE suppressions RENAME TO suppressions_unreadable")
            with pytest.raises(Exception, match="suppressions") as raised:
                await ActivityEnvironment().run(activities.place_call, request)
            assert "does not exist" in str(raised.value)
            assert ledger.calls() == []
            await conn.execute("ALTER TABLE suppressions_unreadable RENAME TO suppressions")
            counted = metrics.WORKER.get_sample_value("campaign_engine_worker_calls_placed_total",
                                                      {"provider": "simulated"}) or 0.0
            placed = await ActivityEnvironment().run(activities.place_call, request)
            assert placed.outcome is None and [c["to"] for c in ledger.calls()] == [phone(30)]
            # A retry of the same attempt (a worker that died after the dial) adopts the call:
            # still one call, counted once by the worker's metric.
            again = await ActivityEnvironment().run(activities.place_call, request)
            assert again.call_id == placed.call_id and len(ledger.calls()) == 1
            assert metrics.WORKER.get_sample_value("campaign_engine_worker_calls_placed_total",
                                                   {"provider": "simulated"}) == counted + 1
        finally:
            await conn.close()
            await db.dispose()
            ledger.close()


async def test_every_upload_answers_how_many_contacts_are_suppressed(engine):
    """The CSV upload-and-run, the draft upload (JSON and file) and appends report the
    campaign's suppressed contacts as the JSON upload-and-run does (one count, from the store)."""
    await suppress(engine, phone(90), phone(93), phone(95))
    h = engine.headers()
    csv_head = "phone,name\n"
    run = await engine.http.post("/uploadCampaignDataAndRun", headers={**h, "Content-Type": "text/csv"},
                                 params={"campaignName": "DNC CSV", "agentId": "a1"},
                                 content=(csv_head + f"{phone(90)},A\n{phone(91)},B\n").encode())
    assert run.status_code == 200, run.text
    assert run.json()["data"]["contacts"]["suppressed"] == 1

    far = "2035-01-01T00:00:00Z"
    draft = await engine.http.post("/uploadCampaignData", headers=h, json={
        "campaign_name": "DNC draft", "agent_id": "a1", "contacts": rows(3, start=91, scheduledCallDateTime=far)})
    assert draft.status_code == 200, draft.text
    assert draft.json()["suppressed_count"] == 1  # phone(93)
    did = draft.json()["campaign_id"]
    appended = await engine.http.post(f"/campaigns/{did}/contacts", headers=h,
                                      json={"contacts": rows(2, start=94, scheduledCallDateTime=far)})
    assert appended.status_code == 200, appended.text
    assert appended.json()["suppressed_count"] == 2  # phone(93), phone(95): the campaign's, now
    filed = await engine.http.post("/uploadCampaignData", headers={**h, "Content-Type": "text/csv"},
                                   params={"campaign_id": did}, content=(csv_head + f"{phone(90)},A\n").encode())
    assert filed.status_code == 200, filed.text
    assert filed.json()["suppressed_count"] == 3
    file_draft = await engine.http.post("/uploadCampaignData", headers={**h, "Content-Type": "text/csv"},
                                        params={"campaign_name": "DNC file draft", "agent_id": "a1"},
                                        content=(csv_head + f"{phone(95)},A\n{phone(96)},B\n").encode())
    assert file_draft.status_code == 200, file_draft.text
    assert file_draft.json()["suppressed_count"] == 1


class FailedDials(logging.Handler):
    """The failed attempts of each contact's place_call, as the worker (in this process) logs
    them: the activity ran, raised, and Temporal retries it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.attempts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        info = getattr(record, "temporal_activity", None)
        if isinstance(info, dict) and info.get("activity_type") == "place_call" and record.exc_info \
                and "suppressions" in str(record.exc_info[1]):
            wf = str(info.get("workflow_id"))
            self.attempts[wf] = max(self.attempts.get(wf, 0), int(info.get("attempt", 0)))


async def test_a_running_campaign_dials_nobody_while_the_list_is_unreadable(dev_env, task_queue, carrier_db):
    """End to end (real Temporal, the embedded PostgreSQL): with the suppression table unreadable
    the campaign's dials fail closed, Temporal retries them and the carrier has no call; once the
    table is back every contact is called once and the campaign completes."""
    async with running_engine(dev_env, task_queue, carrier_db) as engine:
        draft = await engine.http.post("/uploadCampaignData", headers=engine.headers(), json={
            "campaign_name": "Unreadable", "agent_id": "agent-1", "contacts": rows(3, start=100)})
        assert draft.status_code == 200, draft.text
        cid = draft.json()["campaign_id"]
        url = to_asyncpg(engine.settings.database_url.get_secret_value())
        conn = await asyncpg.connect(url)
        failed = FailedDials()
        logging.getLogger("temporalio.activity").addHandler(failed)
        try:
            await conn.execute("ALTER TABLE suppressions RENAME TO suppressions_unreadable")
            started = await engine.http.post(f"/startCampaignv2/{cid}", headers=engine.headers())
            assert started.status_code == 200, started.text
            # Every contact's dial has failed twice (the list read raised) and Temporal retries it.
            wf = campaign_workflow_id("acme", cid)

            async def attempts() -> list[int]:
                return [failed.attempts.get(contact_workflow_id(wf, k), 0) for k in range(3)]
            await wait_for(attempts, lambda a: all(n >= 2 for n in a), timeout=60, what="each contact's dial retried")
            assert engine.ledger.calls(cid) == []
            progress = await get(engine, f"/campaigns/{cid}")
            assert progress["status"] == "in_progress" and progress["by_disposition"] == {}, progress
        finally:
            logging.getLogger("temporalio.activity").removeHandler(failed)
            await conn.execute("ALTER TABLE IF EXISTS suppressions_unreadable RENAME TO suppressions")
            await conn.close()
        final = await until_finished(engine, cid)
        assert final["status"] == "completed" and final["by_disposition"] == {"completed": 3}, final
        assert sorted(c["to"] for c in engine.ledger.calls(cid)) == [phone(100), phone(101), phone(102)]
