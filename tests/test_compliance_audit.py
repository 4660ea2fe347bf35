"""The audit trail (issue 14): every state change an API key makes to a campaign is in the
store, by tenant and key id (never the key), in order, paged by GET /audit; a refused
operation writes nothing; another tenant sees none of it."""

from __future__ import annotations

import hashlib

from tests.conftest import API_KEY, OTHER_TENANT_KEY, running_engine
from tests.test_lifecycle_api import FAR, create, get, phone, rows


async def test_campaign_changes_are_audited_by_key_id(engine):
    created = await create(engine, rows(3, start=40, scheduledCallDateTime=FAR), isScheduledCall=True)
    cid = created["campaign_id"]
    h = engine.headers()
    for method, path in (("post", f"/startCampaignv2/{cid}"), ("post", f"/pauseTheCampaign/{cid}"),
                         ("post", f"/startCampaign/{cid}")):
        resp = await engine.http.request(method, path, headers=h)
        assert resp.status_code == 200, (path, resp.text)
    # Refused (already running): nothing is written for it.
    assert (await engine.http.post(f"/startCampaignv2/{cid}", headers=h)).status_code == 409
    put = await engine.http.put(f"/updateCampaignData/{cid}", headers=h, json={
        "redialConfig": {"enabled": True, "maxAttempts": 4, "retryIntervals": [600]}})
    assert put.status_code == 200, put.text
    appended = await engine.http.post(f"/campaigns/{cid}/contacts", headers=h,
                                      json={"contacts": rows(1, start=50, scheduledCallDateTime=FAR)})
    assert appended.status_code == 200, appended.text
    removed = await engine.http.delete(f"/campaigns/{cid}/contacts/{phone(41)}", headers=h)
    assert removed.status_code == 200, removed.text
    assert (await engine.http.post(f"/campaigns/{cid}/cancel", headers=h)).status_code == 200

    page = await get(engine, "/audit", campaign_id=cid)
    events = page["events"]
    assert [e["action"] for e in events] == [
        "campaign.created", "campaign.started", "campaign.paused", "campaign.resumed", "redial_rules.changed",
        "contacts.appended", "contact.removed", "campaign.canceled"], events
    key_id = hashlib.sha256(API_KEY.encode()).hexdigest()[:16]
    assert {e["key_id"] for e in events} == {key_id} and {e["tenant_id"] for e in events} == {"acme"}
    assert API_KEY not in str(page)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[4]["details"]["redialConfig"]["maxAttempts"] == 4
    assert events[6]["subject"] and phone(41) not in str(events[6])  # masked, never the number
    assert events[0]["details"]["uploaded_count"] == 3

    # Paged: a cursor continues after the last event seen.
    first = await get(engine, "/audit", campaign_id=cid, limit=5)
    assert len(first["events"]) == 5 and first["next_cursor"] == events[4]["seq"]
    rest = await get(engine, "/audit", campaign_id=cid, cursor=first["next_cursor"])
    assert [e["action"] for e in rest["events"]] == ["contacts.appended", "contact.removed", "campaign.canceled"]

    # Another tenant sees nothing of it; its own cancel of this campaign is a 404, not audited.
    assert (await engine.http.post(f"/campaigns/{cid}/cancel", headers=engine.headers(OTHER_TENANT_KEY))
            ).status_code == 404
    assert (await get(engine, "/audit", OTHER_TENANT_KEY))["events"] == []
    assert [e["action"] for e in (await get(engine, "/audit", campaign_id=cid))["events"]][-1] == "campaign.canceled"
    assert len((await get(engine, "/audit", campaign_id=cid))["events"]) == 8


async def test_upload_and_run_is_audited(engine):
    body = {"campaignName": "Audited", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "contacts": rows(2, start=60)}
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code == 200, resp.text
    cid = resp.json()["data"]["campaign"]["campaignId"]
    events = (await get(engine, "/audit", action="campaign.created_and_started"))["events"]
    assert [e["campaign_id"] for e in events] == [cid]
    assert events[0]["details"]["contacts"]["accepted"] == 2


async def test_legal_hours_lifted_by_the_deployment_is_audited(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, LEGAL_HOURS="off") as engine:
        created = await create(engine, rows(1, start=70, scheduledCallDateTime=FAR), isScheduledCall=True)
        events = (await get(engine, "/audit", campaign_id=created["campaign_id"]))["events"]
        assert [e["action"] for e in events] == ["campaign.created", "legal_hours.override"], events
        assert events[1]["details"]["LEGAL_HOURS"] == "off"
