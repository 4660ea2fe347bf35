"""The upload's fast path, without a server: body parsing, phone numbers parsed once, contacts
released as they are converted, chunk sizes, the OpenAPI document."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic_core import to_json

from api import campaigns
from api.errors import install_error_handlers
from api.json_body import openapi_body, parse_json_body, read_body
from api.main import create_app, document_body_models
from api.schemas import CampaignIn, ContactIn
from campaign_engine import phones
from campaign_engine.models import Contact
from campaign_engine.packing import unpack_contacts
from campaign_engine.phones import InvalidPhoneNumber, mask_phone, normalize_e164, parse_phone
from campaign_engine.policy.windows import resolve_time_zones
from campaign_engine.settings import Settings
from tests.test_upload_and_run import SEED_JSON

# --- the body: pydantic's JSON parser, FastAPI's errors --------------------------------------


def _twin_apps() -> tuple[TestClient, TestClient]:
    """The same route twice: FastAPI parsing `body: CampaignIn`, and parse_json_body."""
    classic, fast = FastAPI(), FastAPI()
    for app in (classic, fast):
        install_error_handlers(app)

    @classic.post("/u")
    async def classic_route(body: CampaignIn) -> dict:
        return {"model": repr(body)}

    @fast.post("/u", openapi_extra=openapi_body(CampaignIn))
    async def fast_route(request: Request) -> dict:
        raw = await read_body(request)
        return {"model": repr(parse_json_body(CampaignIn, raw, request.headers.get("content-type")))}

    document_body_models(fast, [CampaignIn])
    return TestClient(classic), TestClient(fast)


def _bodies() -> dict[str, tuple[bytes, str | None]]:
    def seed(change=None) -> bytes:
        body = copy.deepcopy(SEED_JSON)
        if change:
            change(body)
        return json.dumps(body).encode()

    js = "application/json"
    return {
        "valid": (seed(), js),
        "valid, +json content type": (seed(), "application/vnd.campaign+json; charset=utf-8"),
        "valid, compact, UTF-16": (json.dumps(SEED_JSON).encode("utf-16"), js),
        "lone surrogate in custom_data": (seed().replace(b'"Acme Corp"', b'"\\ud800"'), js),
        "NaN and huge floats in custom_data": (seed().replace(b'"Acme Corp"', b'[NaN, 1e400, 1.5]'), js),
        "duplicate keys": (seed().replace(b'{"campaignName"', b'{"campaignName": "first", "campaignName"'), js),
        "malformed": (b'{"campaignName": "x", "contacts": [', js),
        "not UTF-8": (b'{"campaignName": "\xff\xfe\xfa"}', js),
        "empty": (b"", js),
        "array": (b"[1, 2]", js),
        "text/plain": (seed(), "text/plain"),
        "no content type": (seed(), None),
        "missing agent": (seed(lambda b: b.pop("agentId")), js),
        "naive datetime": (seed(lambda b: (b.update(isScheduledCall=True), [
            c.update(scheduledCallDateTime="2030-01-17T14:00:00") for c in b["contacts"]])), js),
        "negative interval": (seed(lambda b: b["redialConfig"].update(retryIntervals=[3600, -5])), js),
        "bad window and blackout": (seed(lambda b: b.update(callingWindow={"startTime": "25:00", "endTime": "x"},
                                                            blackoutDates=["2026-02-30"])), js),
        "bad contact row fields": (seed(lambda b: b["contacts"][1].update(name="x" * 500, timezone="Mars/Base")), js),
        "empty contacts": (seed(lambda b: b.update(contacts=[])), js),
        "too many": (seed(lambda b: b.update(contacts=[{"phone_number": f"+9198{i:08d}"} for i in range(1001)])), js),
        "too many and missing agent": (seed(lambda b: (b.pop("agentId"), b.update(
            contacts=[{"phone_number": f"+9198{i:08d}"} for i in range(1500)]))), js),
    }


@pytest.mark.parametrize("name", list(_bodies()))
def test_body_parsing_answers_exactly_as_fastapi_does(name):
    classic, fast = _twin_apps()
    raw, content_type = _bodies()[name]
    headers = {"content-type": content_type} if content_type else {}
    if content_type is None:  # TestClient would add one
        headers["content-type"] = ""
    want = classic.post("/u", content=raw, headers=headers)
    got = fast.post("/u", content=raw, headers=headers)
    assert (got.status_code, got.json()) == (want.status_code, want.json()), name


def test_too_many_contacts_is_413_with_the_count():
    _, fast = _twin_apps()
    raw, _ = _bodies()["too many"]
    resp = fast.post("/u", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert resp.json()["message"].startswith("1001 contacts in one request; the limit is 1000")


def test_fast_path_gives_the_same_model_as_json_loads():
    raw = _bodies()["valid"][0]
    assert parse_json_body(CampaignIn, raw, "application/json") == CampaignIn.model_validate(json.loads(raw))


def test_openapi_documents_the_upload_body_as_before():
    """The route reads its body itself; the docs still show the CampaignIn body, with the same
    schemas a `body: CampaignIn` parameter produces."""
    classic, fast = _twin_apps()
    want, got = classic.get("/openapi.json").json(), fast.get("/openapi.json").json()
    assert got["paths"]["/u"]["post"]["requestBody"] == want["paths"]["/u"]["post"]["requestBody"]
    # (The fast route has no parameter at all, hence no 422 response and its two schemas.)
    del want["components"]["schemas"]["HTTPValidationError"], want["components"]["schemas"]["ValidationError"]
    assert got["components"]["schemas"] == want["components"]["schemas"]

    spec = create_app(Settings(campaign_api_keys="acme:k")).openapi()
    body = spec["paths"]["/uploadCampaignDataAndRun"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CampaignIn"}
    assert body["required"] is True
    schemas = spec["components"]["schemas"]
    assert schemas["CampaignIn"] == want["components"]["schemas"]["CampaignIn"]
    assert schemas["CampaignIn"]["properties"]["contacts"]["maxItems"] == 1000
    assert "ContactIn" in schemas


# --- phone numbers: one parse each -------------------------------------------------------------


def test_parse_phone_is_normalize_and_mask_from_one_parse(monkeypatch):
    calls = []
    real_parse = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *a, **k: calls.append(a[0]) or real_parse(*a, **k))
    parsed = parse_phone(" +91 98765 43210 ")
    assert calls == ["+91 98765 43210"]
    assert (parsed.e164, parsed.masked) == ("+919876543210", "+91 98xxxxxx10")
    assert parsed.number.country_code == 91


def test_parse_phone_agrees_with_normalize_and_mask():
    numbers = [phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
               for region in sorted(phonenumbers.SUPPORTED_REGIONS)
               for n in [phonenumbers.example_number_for_type(region, t) for t in range(11)] if n]
    assert len(numbers) > 1000
    for text in numbers:
        parsed = parse_phone(text)
        assert parsed.e164 == normalize_e164(text)
        assert parsed.masked == mask_phone(parsed.e164)
        assert resolve_time_zones(None, None, None, number=parsed.number) == resolve_time_zones(parsed.e164, None, None)
    for bad in ("9876543210", "+91 123", "", "+abc"):
        with pytest.raises(InvalidPhoneNumber):
            parse_phone(bad)


def _rows(n: int, **extra) -> list[ContactIn]:
    return [ContactIn(phone_number=f"+9198{i:08d}", name=f"C {i}", custom_data={"i": i}, **extra) for i in range(n)]


def test_validate_contacts_parses_each_number_once_and_releases_the_rows(monkeypatch):
    parses = []
    real = phones.phonenumbers.parse
    monkeypatch.setattr(phones.phonenumbers, "parse", lambda *a, **k: parses.append(a[0]) or real(*a, **k))
    rows = _rows(50)
    rows.append(ContactIn(phone_number="+91 98000 00003"))  # a duplicate
    rows.append(ContactIn(phone_number="12345"))  # invalid, never parsed
    window = {"startTime": "09:00", "endTime": "20:00", "timeZone": "Asia/Kolkata"}
    body = CampaignIn.model_validate({**SEED_JSON, "callingWindow": window})
    out = campaigns.validate_contacts(rows, scheduled=False, zones_for=campaigns.zone_resolver(body))
    assert len(parses) == 51  # zones and masks included: one parse per number
    assert rows == []  # consumed: the input rows are not kept alongside the Contacts
    assert out.received == 52 and len(out.contacts) == 50
    assert out.duplicates == [{"row": 50, "duplicate_of_row": 3}]
    assert [e["row"] for e in out.errors] == [51] and out.errors[0]["field"] == "contacts[51].phone_number"
    first = out.contacts[0]
    assert (first.phone, first.masked, first.zones) == ("+919800000000", "+91 98xxxxxx00", ["Asia/Calcutta"])


def test_validate_rows_still_reports_row_errors_in_order():
    out = campaigns.validate_rows([{"phone_number": "+919800000001"}, {"name": "no phone"}, "not a row",
                                   {"phone_number": "bad"}, {"phone_number": "+919800000001"}], scheduled=False)
    assert [c.phone for c in out.contacts] == ["+919800000001"]
    assert [e["row"] for e in out.errors] == [1, 2, 3]
    assert out.duplicates == [{"row": 4, "duplicate_of_row": 0}]


# --- chunks -----------------------------------------------------------------------------------


def _contacts(n: int, note_bytes: int) -> list[Contact]:
    return [Contact(key=i, phone=f"+9198{i:08d}", masked="+91 98xxxxxx00", custom_data={"notes": "x" * note_bytes})
            for i in range(n)]


def test_contacts_travel_compressed_in_pieces_of_at_most_chunk_bytes_in_order():
    small = _contacts(1000, 300)
    pieces = campaigns.packed_chunks(small)
    assert len(pieces) == 1 and unpack_contacts(pieces[0]) == small
    # Compressed, far below the JSON it stands for (what the workflow's history stores).
    assert len(pieces[0]) * 5 < len(to_json(small))
    assert [unpack_contacts(p) for p in campaigns.packed_chunks([])] == [[]]
    # Incompressible custom data: several pieces, each within the limit, nothing lost or reordered.
    rng = random.Random(3)
    big = [Contact(key=i, phone=f"+9198{i:08d}",
                   custom_data={"blob": "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(3000))})
           for i in range(1000)]
    pieces = campaigns.packed_chunks(big)
    assert len(pieces) > 1
    assert all(len(p) <= campaigns.CHUNK_BYTES for p in pieces)
    assert [c for p in pieces for c in unpack_contacts(p)] == big
    # One contact larger than the limit on its own is still one piece (never dropped).
    huge = [Contact(key=0, phone="+919800000000",
                    custom_data={"blob": "".join(rng.choice("0123456789abcdef") for _ in range(2_500_000))})]
    assert [unpack_contacts(p) for p in campaigns.packed_chunks(huge)] == [huge]


def test_eta_is_computed_from_the_contacts_due_times():
    body = CampaignIn.model_validate(SEED_JSON)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    config = campaigns.build_config(body, "acme", Settings(campaign_api_keys="acme:k"), now)
    later = [Contact(key=i, phone="+919800000001", scheduled_at=now + timedelta(hours=i)) for i in range(3)]
    assert campaigns.eta_for(config, later, now) > campaigns.eta_for(config, later[:1], now) > now
