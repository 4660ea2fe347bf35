"""POST /uploadCampaignDataAndRun against the dev server, over real HTTP, to completion."""

from __future__ import annotations

import copy
import json
from datetime import datetime

from temporalio.service import RPCError, RPCStatusCode

from campaign_engine.ids import campaign_workflow_id
from campaign_engine.models import CampaignStatus, ContactState
from tests.conftest import OTHER_TENANT_KEY
from tests.helpers import incompressible_text, wait_for
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow

# The seed's three examples, exactly as written there.
SEED_JSON = {
    "campaignName": "Q1 Sales Outreach",
    "agentId": "507f1f77bcf86cd799439012",
    "isScheduledCall": False,
    "isContextBasedCall": True,
    "redialConfig": {"enabled": True, "maxAttempts": 3, "retryIntervals": [3600, 7200, 14400]},
    "contacts": [
        {"phone_number": "+919876543210", "name": "John Doe", "email": "john@example.com",
         "custom_data": {"company": "Acme Corp", "industry": "Technology", "deal_value": "50000"}},
        {"phone_number": "+919123456789", "name": "Jane Smith", "email": "jane@example.com",
         "custom_data": {"company": "Beta Inc", "industry": "Finance"}},
    ],
}
SEED_CURL = {
    "campaignName": "Q1 Sales Outreach",
    "agentId": "507f1f77bcf86cd799439012",
    "isContextBasedCall": True,
    "redialConfig": {"enabled": True, "maxAttempts": 3},
    "contacts": [{"phone_number": "+919876543210", "name": "John Doe", "custom_data": {"company": "Acme Corp"}}],
}
SEED_JS = {
    "campaignName": "Q1 Sales Outreach",
    "agentId": "507f1f77bcf86cd799439012",
    "isContextBasedCall": True,
    "redialConfig": {"enabled": True, "maxAttempts": 3, "retryIntervals": [3600, 7200]},
    "contacts": [{"phone_number": "+919876543210", "name": "John Doe",
                  "custom_data": {"company": "Acme Corp", "deal_value": "50000"}}],
}


def campaign_handle(engine, campaign_id: str, tenant: str = "acme"):
    return engine.client.get_workflow_handle_for(CampaignWorkflow.run, campaign_workflow_id(tenant, campaign_id))


async def test_seed_json_example_runs_to_completion(engine):
    # Everyone answers, so the one-hour redials never come into play.
    body = copy.deepcopy(SEED_JSON)
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["success"] is True
    assert out["message"] == "Campaign created and started successfully"
    campaign = out["data"]["campaign"]
    assert set(campaign) >= {"_id", "campaignName", "campaignId", "status", "agentId", "totalContacts",
                             "isScheduledCall", "isContextBasedCall", "createdAt", "campaignStartTime"}
    assert len(campaign["_id"]) == 24 and int(campaign["_id"], 16) >= 0
    assert campaign["campaignName"] == "Q1 Sales Outreach"
    assert campaign["status"] == "in_progress"
    assert campaign["agentId"] == body["agentId"]
    assert campaign["totalContacts"] == 2
    assert campaign["isScheduledCall"] is False and campaign["isContextBasedCall"] is True
    execution = out["data"]["execution_status"]
    assert execution["calls_queued"] == 2 and execution["calls_initiated"] == 0
    eta = datetime.fromisoformat(execution["estimated_completion"])
    assert eta > datetime.fromisoformat(campaign["createdAt"])
    assert out["data"]["redial_config"] == {"enabled": True, "maxAttempts": 3, "retryIntervals": [3600, 7200, 14400]}

    handle = campaign_handle(engine, campaign["campaignId"])
    summary = await handle.result()
    assert summary.status == CampaignStatus.COMPLETED
    assert summary.total_contacts == 2
    assert sum(summary.by_disposition.values()) == 2
    progress = await handle.query(CampaignWorkflow.progress)
    assert progress.by_state == {ContactState.DONE.value: 2}
    assert progress.percentage == 100.0

    calls = engine.ledger.calls(campaign["campaignId"])
    assert len(calls) == summary.calls_placed >= 2
    first = next(c for c in calls if c["to"] == "+919876543210")
    # Context-based: the agent gets the contact's data with the call.
    assert first["variables"]["company"] == "Acme Corp"
    assert first["variables"]["name"] == "John Doe"
    assert first["variables"]["email"] == "john@example.com"
    assert first["idempotency_key"].endswith("/attempt-1")

    status = await engine.client.get_workflow_handle(first["contact_workflow_id"]).query(ContactCallWorkflow.status)
    assert status.attempts[0].call_id == first["call_id"]
    assert status.state == ContactState.DONE


async def test_seed_curl_and_js_examples_are_accepted(engine):
    curl = (await engine.http.post("/uploadCampaignDataAndRun", json=SEED_CURL, headers=engine.headers())).json()
    js = (await engine.http.post("/uploadCampaignDataAndRun", json=SEED_JS, headers=engine.headers())).json()
    assert curl["success"] and js["success"]
    # Documented fall-back: no retryIntervals means one hour before every redial.
    assert curl["data"]["redial_config"] == {"enabled": True, "maxAttempts": 3, "retryIntervals": [3600]}
    assert curl["data"]["campaign"]["isScheduledCall"] is False
    assert js["data"]["redial_config"]["retryIntervals"] == [3600, 7200]
    assert curl["data"]["campaign"]["campaignId"] != js["data"]["campaign"]["campaignId"]


async def test_duplicates_are_dialled_once_and_reported(engine):
    body = copy.deepcopy(SEED_JSON)
    body["redialConfig"] = {"enabled": False}
    body["contacts"].append({"phone_number": "+91 98765 43210", "name": "John again"})
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    data = resp.json()["data"]
    assert data["campaign"]["totalContacts"] == 2
    assert data["contacts"] == {"received": 3, "accepted": 2, "duplicates_merged": 1, "suppressed": 0}
    handle = campaign_handle(engine, data["campaign"]["campaignId"])
    summary = await handle.result()
    calls = engine.ledger.calls(data["campaign"]["campaignId"])
    assert sorted(c["to"] for c in calls) == ["+919123456789", "+919876543210"]
    assert summary.calls_placed == 2
    # Every view says the same about the merged row: the campaign, the progress query.
    campaign = (await engine.http.get(f"/campaigns/{data['campaign']['campaignId']}", headers=engine.headers())).json()
    assert campaign["duplicates_merged"] == 1
    assert (await handle.query(CampaignWorkflow.progress)).duplicates_merged == 1


async def test_authentication(engine):
    missing = await engine.http.post("/uploadCampaignDataAndRun", json=SEED_CURL)
    assert missing.status_code == 401
    assert missing.json() == {"success": False, "message": "missing x-api-key header", "error": "UNAUTHORIZED"}
    wrong = await engine.http.post("/uploadCampaignDataAndRun", json=SEED_CURL, headers={"x-api-key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "UNAUTHORIZED"
    other = await engine.http.post("/uploadCampaignDataAndRun", json=SEED_CURL, headers=engine.headers(OTHER_TENANT_KEY))
    assert other.status_code == 200
    cid = other.json()["data"]["campaign"]["campaignId"]
    # Filed under the other tenant: the id the acme tenant would use does not exist.
    desc = await campaign_handle(engine, cid, "globex").describe()
    assert desc.id == f"campaign/globex/{cid}"


def _bad(body_change) -> dict:
    body = copy.deepcopy(SEED_JSON)
    body_change(body)
    return body


async def test_bad_input_is_refused_clearly_and_starts_nothing(engine):
    cases = {
        "bad phone": (_bad(lambda b: b["contacts"][1].update(phone_number="12345")), 400,
                      "contacts[1].phone_number", 1),
        "scheduled without time": (_bad(lambda b: b.update(isScheduledCall=True)), 400,
                                   "contacts[0].scheduledCallDateTime", 0),
        "naive datetime": (_bad(lambda b: (b.update(isScheduledCall=True), [
            c.update(scheduledCallDateTime="2030-01-17T14:00:00") for c in b["contacts"]])), 400,
            "contacts[0].scheduledCallDateTime", 0),
        "negative interval": (_bad(lambda b: b["redialConfig"].update(retryIntervals=[3600, -5])), 400,
                              "redialConfig", None),
        "zero interval": (_bad(lambda b: b["redialConfig"].update(retryIntervals=[0])), 400, "redialConfig", None),
        "absurd maxAttempts": (_bad(lambda b: b["redialConfig"].update(maxAttempts=500)), 400,
                               "redialConfig.maxAttempts", None),
        "empty contacts": (_bad(lambda b: b.update(contacts=[])), 400, "contacts", None),
        "missing agent": (_bad(lambda b: b.pop("agentId")), 400, "agentId", None),
        "custom_data too large": (_bad(lambda b: b["contacts"][1].update(custom_data={"notes": "x" * 20_000})), 400,
                                  "contacts[1].custom_data", 1),
        "too many": (_bad(lambda b: b.update(contacts=[{"phone_number": f"+9198{i:08d}"} for i in range(1001)])),
                     413, "contacts", None),
    }
    for name, (body, status, field, row) in cases.items():
        resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
        assert resp.status_code == status, (name, resp.text)
        out = resp.json()
        assert out["success"] is False and out["error"] in ("BAD_REQUEST", "PAYLOAD_TOO_LARGE"), name
        assert field in out["message"] or any(field in d.get("field", "") for d in out["details"]), (name, out)
        if row is not None:
            assert any(d.get("row") == row and d["field"].startswith(f"contacts[{row}]") for d in out["details"]), out
    malformed = await engine.http.post(
        "/uploadCampaignDataAndRun", content=b'{"campaignName": "x", "contacts": [',
        headers={**engine.headers(), "content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"] == "INVALID_JSON"
    assert "JSON" in malformed.json()["message"] and malformed.json()["details"][0]["field"] == "body"

    # Nothing was started: no call, no workflow on this task queue.
    assert engine.ledger.calls() == []
    query = f"TaskQueue = '{engine.settings.temporal_task_queue}'"
    assert [wf async for wf in engine.client.list_workflows(query)] == []


async def test_datetime_with_offset_is_accepted_and_idempotency_key_replays(engine):
    body = copy.deepcopy(SEED_JSON)
    body["isScheduledCall"] = True
    body["contacts"][0]["scheduledCallDateTime"] = "2030-01-17T14:00:00+05:30"
    body["contacts"][1]["scheduledCallDateTime"] = "2030-01-17T08:30:00Z"
    headers = {**engine.headers(), "Idempotency-Key": "upload-42"}
    first = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=headers)
    assert again.status_code == 200
    cid = first.json()["data"]["campaign"]["campaignId"]
    assert again.json()["data"]["campaign"]["campaignId"] == cid
    assert again.json()["data"]["campaign"]["_id"] == first.json()["data"]["campaign"]["_id"]
    # The replay answers with the same document (the status is the campaign's current one).
    was, now = first.json()["data"], again.json()["data"]
    assert {**now["campaign"], "status": was["campaign"]["status"]} == was["campaign"]
    assert (now["redial_config"], now["contacts"]) == (was["redial_config"], was["contacts"])
    # The same body written differently (key order, spacing) is the same request.
    respelled = json.dumps(dict(reversed(list(body.items()))), indent=2)
    third = await engine.http.post("/uploadCampaignDataAndRun", content=respelled,
                                   headers={**headers, "content-type": "application/json"})
    assert third.status_code == 200, third.text
    assert third.json()["data"]["campaign"]["campaignId"] == cid
    # Scheduled in 2030: nobody is called now, and the ETA says so.
    eta = datetime.fromisoformat(first.json()["data"]["execution_status"]["estimated_completion"])
    assert eta.year == 2030
    progress = await wait_for(
        lambda: campaign_handle(engine, cid).query(CampaignWorkflow.progress),
        lambda p: p.by_state.get("scheduled") == 2, what="both contacts scheduled")
    assert progress.calls_placed == 0
    body["campaignName"] = "Another body"
    conflict = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    await campaign_handle(engine, cid).terminate("test over")


async def test_thousand_contacts_with_kilobytes_of_custom_data_each(engine):
    """3 MB of contact data in one upload: written to the store, never into a workflow's
    history; the contacts' workflows carry no number, name or custom data."""
    body = {
        "campaignName": "big", "agentId": "a", "isScheduledCall": True, "isContextBasedCall": True,
        "contacts": [
            {"phone_number": f"+9198{i:08d}", "name": f"Contact {i}", "scheduledCallDateTime": "2030-01-01T10:00:00Z",
             "custom_data": {"notes": incompressible_text(3000, seed=i), "row": i}}
            for i in range(1000)
        ],
    }
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code == 200, resp.text[:500]
    cid = resp.json()["data"]["campaign"]["campaignId"]
    assert resp.json()["data"]["campaign"]["totalContacts"] == 1000
    handle = campaign_handle(engine, cid)
    progress = await wait_for(lambda: handle.query(CampaignWorkflow.progress),
                              lambda p: p.by_state.get("scheduled") == 1000, timeout=180,
                              what="1000 contacts scheduled")
    assert progress.total_contacts == 1000 and progress.calls_placed == 0
    # The last contact's data arrived whole, in its own workflow. (A contact counts as scheduled
    # from the moment its start is requested, a little before its workflow exists.)
    last_handle = engine.client.get_workflow_handle(f"campaign/acme/{cid}/contact/999")

    async def last_status():
        try:
            return await last_handle.query(ContactCallWorkflow.status)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return None

    last = await wait_for(last_status, lambda s: s is not None, timeout=60, what="contact 999's workflow")
    assert last.label.startswith("+91") and "xx" in last.label and last.label != "+919800000999"
    # No personal data in Temporal: neither the campaign's history nor a contact's holds a
    # number, a name or custom data (the dial and webhook activities read them from the store).
    for h in (handle, last_handle):
        history = (await h.fetch_history()).to_json()
        assert "9800000999" not in history and "Contact 999" not in history, h.id
        assert incompressible_text(3000, seed=999)[:40] not in history
    desc = await handle.describe()
    assert desc.raw_description.workflow_execution_info.history_length < 10_000
    await handle.terminate("test over")


