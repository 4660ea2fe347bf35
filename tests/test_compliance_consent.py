"""Consent on contacts (issue 14), against the dev server and the embedded PostgreSQL: `consent`
(source, obtained_at, text or reference) accepted on every upload path (upload-and-run as JSON
and as a CSV file, the draft upload, appends as JSON and as a file), stored with the contact,
shown by GET /campaigns/{id}/contacts and exported; a malformed one refuses the request (422
INVALID_CONSENT naming row and field, nothing written); with CONSENT_REQUIRED every contact
needs one (422 CONSENT_REQUIRED); and none of it ever reaches Temporal."""

from __future__ import annotations

import csv
import io

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from campaign_engine.ids import campaign_workflow_id, contact_workflow_id
from campaign_engine.models import Consent, ContactCallInput, LaunchRow
from campaign_engine.settings import Settings
from campaign_engine.store.db import store_engine
from campaign_engine.store.tables import campaigns, contacts
from tests.conftest import running_engine
from tests.test_lifecycle_api import FAR, assert_error, get, phone, rows, until_finished

CONSENT = {"source": "web_form", "obtained_at": "2026-11-30T10:15:00+05:30",
           "text": "I agree to be called about my order (consent-text-7f3a)"}
REFERENCED = {"source": "ivr", "obtained_at": "2026-11-29T08:00:00Z", "reference": "rec-12345"}
CSV_HEADER = "phone,name,consent_source,consent_obtained_at,consent_text,consent_reference\n"


def test_consent_model_bounds_and_evidence():
    ok = Consent.model_validate(CONSENT)
    assert ok.stored() == {"source": "web_form", "obtained_at": "2026-11-30T10:15:00+05:30",
                           "text": CONSENT["text"]}
    assert Consent.model_validate(REFERENCED).reference == "rec-12345"
    for bad in ({**CONSENT, "obtained_at": "2026-11-30T10:15:00"},  # no zone
                {**CONSENT, "obtained_at": "yesterday"},
                {k: v for k, v in CONSENT.items() if k != "source"},
                {**CONSENT, "source": "  "},
                {"source": "web", "obtained_at": CONSENT["obtained_at"]},  # neither text nor reference
                {**CONSENT, "text": "x" * 4001},
                {**CONSENT, "source": "s" * 201},
                {**CONSENT, "reference": "r" * 501},
                {**CONSENT, "unknown": 1}):
        with pytest.raises(ValidationError):
            Consent.model_validate(bad)


def test_the_workflows_inputs_carry_no_consent():
    """The contact's workflow gets its key and masked number: consent stays in the store."""
    assert "consent" not in LaunchRow.model_fields
    assert "consent" not in ContactCallInput.model_fields


async def _counts(settings: Settings, tenant: str = "acme") -> tuple[int, int]:
    db = store_engine(settings)
    try:
        async with db.connect() as conn:
            n_campaigns = (await conn.execute(select(func.count()).select_from(campaigns).where(
                campaigns.c.tenant_id == tenant))).scalar_one()
            n_contacts = (await conn.execute(select(func.count()).select_from(contacts).where(
                contacts.c.tenant_id == tenant))).scalar_one()
    finally:
        await db.dispose()
    return int(n_campaigns), int(n_contacts)


def _body(contacts: list[dict], **fields) -> dict:
    return {"campaignName": "Consent", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "contacts": contacts, **fields}


def _csv(*lines: str) -> bytes:
    return (CSV_HEADER + "".join(f"{line}\n" for line in lines)).encode()


async def _consents(engine, cid: str) -> dict[str, dict | None]:
    page = await get(engine, f"/campaigns/{cid}/contacts")
    return {c["phone_number"]: c["consent"] for c in page["contacts"]}


async def test_consent_is_taken_on_every_upload_path_stored_shown_and_exported(engine):
    h = engine.headers()
    # Upload-and-run (JSON): one contact with consent, one without (not required here).
    resp = await engine.http.post("/uploadCampaignDataAndRun", headers=h, json=_body(
        [{**rows(1, start=60)[0], "consent": CONSENT}, rows(1, start=61)[0]]))
    assert resp.status_code == 200, resp.text
    cid = resp.json()["data"]["campaign"]["campaignId"]
    shown = await _consents(engine, cid)
    assert shown[phone(60)] == Consent.model_validate(CONSENT).stored() and shown[phone(61)] is None

    # Its export: one column per consent field.
    await until_finished(engine, cid)
    export = await engine.http.get("/downloadCampaignStats", params={"campaign_id": cid}, headers=h)
    assert export.status_code == 200, export.text
    table = {r["phone_number"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert table[phone(60)]["consent_source"] == "web_form"
    assert table[phone(60)]["consent_obtained_at"] == "2026-11-30T10:15:00+05:30"
    assert table[phone(60)]["consent_text"] == CONSENT["text"] and table[phone(60)]["consent_reference"] == ""
    assert table[phone(61)]["consent_source"] == ""
    xlsx = await engine.http.get("/downloadCampaignStats", params={"campaign_id": cid, "format": "xlsx"}, headers=h)
    assert xlsx.status_code == 200

    # Nothing of it in Temporal: the campaign's and the contact's histories carry keys only.
    wf = campaign_workflow_id("acme", cid)
    for workflow_id in (wf, contact_workflow_id(wf, 0)):
        history = await engine.client.get_workflow_handle(workflow_id).fetch_history()
        text = history.to_json()
        assert "consent-text-7f3a" not in text and "web_form" not in text, workflow_id

    # The draft upload (JSON), then an append (JSON) and a file append to it.
    draft = await engine.http.post("/uploadCampaignData", headers=h, json={
        "campaign_name": "Consent draft", "agent_id": "a1",
        "contacts": [{**r, "consent": REFERENCED} for r in rows(2, start=62, scheduledCallDateTime=FAR)]})
    assert draft.status_code == 200, draft.text
    did = draft.json()["campaign_id"]
    appended = await engine.http.post(f"/campaigns/{did}/contacts", headers=h, json={"contacts": [
        {**rows(1, start=64, scheduledCallDateTime=FAR)[0], "consent": CONSENT}]})
    assert appended.status_code == 200, appended.text
    filed = await engine.http.post("/uploadCampaignData", headers={**h, "Content-Type": "text/csv"},
                                   params={"campaign_id": did},
                                   content=_csv(f"{phone(65)},Ann,paper,2026-01-02T03:04:05Z,,box 7"))
    assert filed.status_code == 200, filed.text
    shown = await _consents(engine, did)
    assert shown[phone(62)] == shown[phone(63)] == REFERENCED
    assert shown[phone(64)]["source"] == "web_form"
    assert shown[phone(65)] == {"source": "paper", "obtained_at": "2026-01-02T03:04:05Z", "reference": "box 7"}

    # Upload-and-run from a CSV file (COPY through the staging table).
    run = await engine.http.post("/uploadCampaignDataAndRun", headers={**h, "Content-Type": "text/csv"},
                                 params={"campaignName": "Consent CSV", "agentId": "a1"},
                                 content=_csv(f"{phone(66)},Bo,sms,2026-02-03T04:05:06+01:00,Yes to calls,",
                                              f"{phone(67)},Cy,,,,"))
    assert run.status_code == 200, run.text
    shown = await _consents(engine, run.json()["data"]["campaign"]["campaignId"])
    assert shown[phone(66)] == {"source": "sms", "obtained_at": "2026-02-03T04:05:06+01:00", "text": "Yes to calls"}
    assert shown[phone(67)] is None


async def test_a_malformed_consent_refuses_the_request_naming_row_and_field(engine):
    h = engine.headers()
    before = await _counts(engine.settings)
    no_source = {k: v for k, v in CONSENT.items() if k != "source"}
    resp = await engine.http.post("/uploadCampaignDataAndRun", headers=h, json=_body(
        [rows(1, start=70)[0], {**rows(1, start=71)[0], "consent": no_source}]))
    out = assert_error(resp, 422, "INVALID_CONSENT")
    assert out["details"][0] == {"row": 1, "field": "contacts[1].consent.source", "message": "Field required"}, out
    assert "contacts[1].consent.source" in out["message"]

    bad_date = {**CONSENT, "obtained_at": "2026-13-01T00:00:00Z"}
    resp = await engine.http.post("/uploadCampaignData", headers=h, json={
        "campaign_name": "Bad", "agent_id": "a1", "contacts": [rows(1, start=72)[0], {**rows(1, start=73)[0],
                                                                                       "consent": bad_date}]})
    out = assert_error(resp, 422, "INVALID_CONSENT")
    assert out["details"][0]["row"] == 1 and out["details"][0]["field"] == "contacts[1].consent.obtained_at", out

    resp = await engine.http.post("/uploadCampaignDataAndRun", headers={**h, "Content-Type": "text/csv"},
                                  params={"campaignName": "Bad CSV", "agentId": "a1"},
                                  content=_csv(f"{phone(74)},A,web,2026-01-01T00:00:00Z,ok,",
                                               f"{phone(75)},B,web,not a date,ok,"))
    out = assert_error(resp, 422, "INVALID_CONSENT")
    assert out["details"][0]["row"] == 3 and out["details"][0]["field"] == "consent_obtained_at", out
    assert out["message"].startswith("row 3, consent_obtained_at:"), out
    # Nothing written by any of them.
    assert await _counts(engine.settings) == before


async def test_consent_required_refuses_every_upload_without_it(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, CONSENT_REQUIRED="true") as engine:
        h = engine.headers()
        # A draft with consent, to append to.
        draft = await engine.http.post("/uploadCampaignData", headers=h, json={
            "campaign_name": "Required", "agent_id": "a1",
            "contacts": [{**rows(1, start=80, scheduledCallDateTime=FAR)[0], "consent": CONSENT}]})
        assert draft.status_code == 200, draft.text
        did = draft.json()["campaign_id"]
        before = await _counts(engine.settings)

        without = [{**rows(1, start=81)[0], "consent": CONSENT}, rows(1, start=82)[0]]
        refusals = [
            await engine.http.post("/uploadCampaignDataAndRun", headers=h, json=_body(without)),
            await engine.http.post("/uploadCampaignData", headers=h, json={
                "campaign_name": "R", "agent_id": "a1", "contacts": without}),
            await engine.http.post(f"/campaigns/{did}/contacts", headers=h, json={"contacts": without}),
            await engine.http.post("/uploadCampaignData", headers=h, json={"campaign_id": did, "contacts": without}),
        ]
        for resp in refusals:
            out = assert_error(resp, 422, "CONSENT_REQUIRED")
            assert out["details"] == [{"row": 1, "field": "contacts[1].consent", "message": out["details"][0]["message"]}]
            assert "contacts[1].consent" in out["message"] and "CONSENT_REQUIRED" in out["message"], out
        file = _csv(f"{phone(83)},A,web,2026-01-01T00:00:00Z,ok,", f"{phone(84)},B,,,,")
        for params in ({"campaignName": "R", "agentId": "a1"}, {"campaign_name": "R", "agent_id": "a1"},
                       {"campaign_id": did}):
            path = "/uploadCampaignDataAndRun" if "campaignName" in params else "/uploadCampaignData"
            resp = await engine.http.post(path, headers={**h, "Content-Type": "text/csv"}, params=params,
                                          content=file)
            out = assert_error(resp, 422, "CONSENT_REQUIRED")
            assert out["details"][0]["row"] == 3 and out["message"].startswith("row 3, consent_source:"), out
        assert await _counts(engine.settings) == before  # nothing written by any refusal

        # With consent everywhere it is taken.
        ok = await engine.http.post("/uploadCampaignDataAndRun", headers=h, json=_body(
            [{**r, "consent": REFERENCED} for r in rows(2, start=85)]))
        assert ok.status_code == 200, ok.text
        assert ok.json()["data"]["contacts"]["accepted"] == 2
