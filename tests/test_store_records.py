"""The store as the system of record, against the real (embedded) PostgreSQL: what each upload
path writes, that refused input writes nothing, that idempotent replays write nothing twice,
and that every read answers unchanged once Temporal has deleted the campaign's workflows."""

from __future__ import annotations

import csv
import io
import json
import subprocess

from openpyxl import load_workbook
from sqlalchemy import func, select

from api.campaign_calls import campaign_handle
from campaign_engine.ids import contact_workflow_id
from campaign_engine.store.db import store_engine
from campaign_engine.store.tables import attempts, campaigns, contacts
from tests.conftest import venv_binary
from tests.helpers import wait_for


def body(n: int, **extra) -> dict:
    return {"campaignName": "Records", "agentId": "agent-r", "isContextBasedCall": True,
            "contacts": [{"phone_number": f"+9198{i:08d}", "name": f"Person {i}", "email": f"p{i}@example.com",
                          "custom_data": {"company": f"Co {i}", "rank": i}} for i in range(n)],
            **extra}


async def counts(db) -> tuple[int, int, int]:
    async with db.connect() as conn:
        return tuple([(await conn.execute(select(func.count()).select_from(t))).scalar_one()
                      for t in (campaigns, contacts, attempts)])


async def test_upload_writes_campaign_and_contacts_refusals_and_replays_write_nothing(engine):
    db = store_engine(engine.settings)
    try:
        # Refused input (one bad row of three) writes nothing.
        bad = body(3)
        bad["contacts"][1]["phone_number"] = "12345"
        resp = await engine.http.post("/uploadCampaignDataAndRun", json=bad, headers=engine.headers())
        assert resp.status_code == 400
        assert await counts(db) == (0, 0, 0)

        headers = {**engine.headers(), "Idempotency-Key": "records-1"}
        first = await engine.http.post("/uploadCampaignDataAndRun", json=body(4), headers=headers)
        assert first.status_code == 200, first.text
        cid = first.json()["data"]["campaign"]["campaignId"]
        async with db.connect() as conn:
            row = (await conn.execute(select(campaigns).where(campaigns.c.campaign_id == cid))).one()
            rows = (await conn.execute(select(contacts).where(contacts.c.campaign_id == cid)
                                       .order_by(contacts.c.key))).all()
        assert (row.tenant_id, row.name, row.agent_id, row.idempotency_key) == ("acme", "Records", "agent-r", "records-1")
        assert row.launched_at is not None and row.total_contacts == 4
        assert [(r.key, r.phone, r.name, r.email, r.custom_data) for r in rows] == [
            (i, f"+9198{i:08d}", f"Person {i}", f"p{i}@example.com", {"company": f"Co {i}", "rank": i})
            for i in range(4)]

        # The same key and body: the same campaign, nothing written twice.
        again = await engine.http.post("/uploadCampaignDataAndRun", json=body(4), headers=headers)
        assert again.status_code == 200 and again.json()["data"]["campaign"]["campaignId"] == cid
        other = await engine.http.post("/uploadCampaignDataAndRun", json=body(5), headers=headers)
        assert other.status_code == 409 and other.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
        assert (await counts(db))[:2] == (1, 4)

        # Every attempt one row, keyed by its idempotency key, with the carrier's call id.
        handle = campaign_handle(engine.client, "acme", cid)
        await handle.result()
        calls = engine.ledger.calls(cid)
        async with db.connect() as conn:
            done = (await conn.execute(select(attempts).where(attempts.c.campaign_id == cid))).all()
            states = (await conn.execute(select(contacts.c.state, contacts.c.disposition, contacts.c.attempts)
                                         .where(contacts.c.campaign_id == cid))).all()
        assert sorted((a.idempotency_key, a.call_id, a.outcome) for a in done) == sorted(
            (c["idempotency_key"], c["call_id"], c["outcome"]) for c in calls)
        # The agent got the contact's data from the upload (context-based call).
        assert {c["variables"]["company"] for c in calls} == {f"Co {i}" for i in range(4)}
        assert all(a.placed_at and a.ended_at and a.provider == "simulated" for a in done)
        assert sorted(states) == [("done", "completed", 1)] * 4
        campaign = (await engine.http.get(f"/campaigns/{cid}", headers=engine.headers())).json()
        assert campaign["status"] == "completed" and campaign["by_disposition"] == {"completed": 4}
    finally:
        await db.dispose()


async def test_draft_and_appends_are_recorded_with_their_duplicates(engine):
    db = store_engine(engine.settings)
    try:
        draft_body = {"campaign_name": "Draft", "agent_id": "a",
                      "contacts": [{"phone_number": "+919800000001"}, {"phone_number": "+919800000001"},
                                   {"phone_number": "+919800000002"}]}
        draft = (await engine.http.post("/uploadCampaignData", json=draft_body, headers=engine.headers())).json()
        cid = draft["campaign_id"]
        appended = await engine.http.post(f"/campaigns/{cid}/contacts", headers=engine.headers(), json={
            "contacts": [{"phone_number": "+919800000002"}, {"phone_number": "+919800000003", "name": "New"}]})
        assert appended.status_code == 200 and appended.json()["uploaded_count"] == 1
        # The answer came after the store had the appended row: read at once.
        async with db.connect() as conn:
            rows = (await conn.execute(select(contacts.c.key, contacts.c.phone, contacts.c.name)
                                       .where(contacts.c.campaign_id == cid).order_by(contacts.c.key))).all()
        assert [tuple(r) for r in rows] == [(0, "+919800000001", None), (1, "+919800000002", None),
                                           (2, "+919800000003", "New")]
        got = (await engine.http.get(f"/campaigns/{cid}", headers=engine.headers())).json()
        assert got["status"] == "draft" and got["total_contacts"] == 3 and got["duplicates_merged"] == 2
    finally:
        await db.dispose()


async def test_reads_answer_unchanged_after_every_workflow_is_deleted(engine):
    resp = await engine.http.post("/uploadCampaignDataAndRun", headers={**engine.headers(), "Idempotency-Key": "gone-1"},
                                  json=body(3, redialConfig={"enabled": False}))
    cid = resp.json()["data"]["campaign"]["campaignId"]
    handle = campaign_handle(engine.client, "acme", cid)
    await handle.result()
    reads = [f"/campaigns/{cid}", f"/getCampaignStats/{cid}", f"/getCampaignStatuses?campaign_id={cid}",
             f"/campaigns/{cid}/contacts", f"/downloadCampaignStats?campaign_id={cid}"]

    async def snapshot() -> list:
        out = []
        for path in reads:
            r = await engine.http.get(path, headers=engine.headers())
            assert r.status_code == 200, (path, r.text)
            out.append(list(csv.reader(io.StringIO(r.text))) if "download" in path else r.json())
        return out

    before = await snapshot()
    assert before[0]["status"] == "completed" and len(before[4]) == 4  # header and three attempts
    # The export says who was called: number, name, email and custom_data.
    table = [dict(zip(before[4][0], row, strict=True)) for row in before[4][1:]]
    assert sorted((r["phone_number"], r["name"], r["email"], json.loads(r["custom_data"])) for r in table) == [
        (f"+9198{i:08d}", f"Person {i}", f"p{i}@example.com", {"company": f"Co {i}", "rank": i}) for i in range(3)]
    xlsx = await engine.http.get(f"/downloadCampaignStats?campaign_id={cid}&format=xlsx", headers=engine.headers())
    sheet = [list(r) for r in load_workbook(io.BytesIO(xlsx.content), read_only=True)["attempts"].iter_rows(values_only=True)]
    assert sheet[0][-2:] == ["custom_data.company", "custom_data.rank"]
    assert sorted(tuple(r[-2:]) for r in sheet[1:]) == [(f"Co {i}", i) for i in range(3)]

    # Delete every workflow of the campaign with the Temporal CLI, as retention would.
    address = engine.settings.resolved_temporal_address
    ids = [handle.id] + [contact_workflow_id(handle.id, k) for k in range(3)]
    for wf_id in ids:
        done = subprocess.run([venv_binary("temporal"), "workflow", "delete", "--address", address,
                               "--workflow-id", wf_id, "--yes"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    async def gone() -> int:
        found = 0
        for wf_id in ids:
            try:
                await engine.client.get_workflow_handle(wf_id).describe()
                found += 1
            except Exception:
                pass
        return found

    await wait_for(gone, lambda n: n == 0, what="the workflows deleted")
    assert await snapshot() == before

    # A retry of the upload with its key starts nothing again (no workflow, no call).
    calls = len(engine.ledger.calls(cid))
    again = await engine.http.post("/uploadCampaignDataAndRun", headers={**engine.headers(), "Idempotency-Key": "gone-1"},
                                   json=body(3, redialConfig={"enabled": False}))
    assert again.status_code == 200 and again.json()["data"]["campaign"]["campaignId"] == cid
    assert again.json()["data"]["campaign"]["status"] == "completed"
    assert await gone() == 0 and len(engine.ledger.calls(cid)) == calls
