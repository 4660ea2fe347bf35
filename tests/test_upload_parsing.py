"""The upload's fast path, without a server: body parsing, phone numbers parsed once, contacts
released as they are converted, chunk sizes, the OpenAPI document. The same for the bodies of
the lifecycle uploads and the preflight."""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
import weakref
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import campaigns, contact_validation, idempotency
from api.errors import install_error_handlers
from api.json_body import openapi_body, parse_json_body, read_body
from api.lifecycle_schemas import AppendContactsIn, UploadCampaignDataIn, UploadTarget
from api.main import create_app, document_body_models
from api.openapi_refine import refine
from api.routes.policy import PreflightIn
from api.schemas import CampaignIn, ContactIn
from campaign_engine import phones
from campaign_engine.models import Contact
from campaign_engine.phones import InvalidPhoneNumber, mask_phone, normalize_e164, parse_phone
from campaign_engine.policy.windows import resolve_time_zones
from campaign_engine.settings import Settings
from tests.test_upload_and_run import SEED_JSON

# --- the body: pydantic's JSON parser, FastAPI's errors --------------------------------------


def _twin_apps(model: type[BaseModel] = CampaignIn) -> tuple[TestClient, TestClient]:
    """The same route twice: FastAPI parsing `body: model`, and parse_json_body."""
    classic, fast = FastAPI(), FastAPI()
    for app in (classic, fast):
        install_error_handlers(app)

    async def classic_route(body) -> dict:
        return {"model": repr(body)}

    classic_route.__annotations__["body"] = model  # (annotations are strings in this module)
    classic.post("/u")(classic_route)

    @fast.post("/u", openapi_extra=openapi_body(model))
    async def fast_route(request: Request) -> dict:
        raw = await read_body(request)
        return {"model": repr(parse_json_body(model, raw, request.headers.get("content-type")))}

    document_body_models(fast, [model])
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
        **{name: (raw, content_type) for name, (raw, content_type, *_) in BAD_INPUT.items()},
    }


def _seed(change=None) -> bytes:
    body = copy.deepcopy(SEED_JSON)
    if change:
        change(body)
    return json.dumps(body).encode()


def _rule(**rule) -> dict:
    return {"enabled": True, "callStatus": [{"match": "busy", "intervalMinutes": 10, **rule}]}


# Bad input of every kind (issue 17), each refused with its status, code and the field it
# names: (body, content type, status, code, field). (Numbers are checked after the body is
# parsed, row by row: see test_rows_of_an_upload_are_refused_for_letters_...)
JS = "application/json"
BAD_INPUT: dict[str, tuple[bytes, str | None, int, str, str]] = {
    "misspelt redialConfig key": (_seed(lambda b: b["redialConfig"].update(maxAtempts=50)), JS,
                                  400, "BAD_REQUEST", "redialConfig.maxAtempts"),
    "unknown top-level key": (_seed(lambda b: b.update(maxConcurentCalls=5)), JS,
                              400, "BAD_REQUEST", "maxConcurentCalls"),
    "unknown callingWindow key": (_seed(lambda b: b.update(callingWindow={
        "startTime": "09:00", "endTime": "20:00", "timezone": "Asia/Kolkata"})), JS,
        400, "BAD_REQUEST", "callingWindow.timezone"),
    "unknown key in a rule": (_seed(lambda b: b.update(redialConfig=_rule(maxAtempts=2))), JS,
                              400, "BAD_REQUEST", "redialConfig.callStatus[0].maxAtempts"),
    "retryIntervals beside rules": (_seed(lambda b: b.update(redialConfig={**_rule(), "retryIntervals": [60]})), JS,
                                    400, "BAD_REQUEST", "redialConfig.retryIntervals"),
    "bad third retry interval": (_seed(lambda b: b["redialConfig"].update(retryIntervals=[3600, 7200, -1])), JS,
                                 400, "BAD_REQUEST", "redialConfig.retryIntervals[2]"),
    "retry interval over 30 days": (_seed(lambda b: b["redialConfig"].update(retryIntervals=[60, 10**8])), JS,
                                    400, "BAD_REQUEST", "redialConfig.retryIntervals[1]"),
    "email that is no address": (_seed(lambda b: b["contacts"][1].update(email="jane at example")), JS,
                                 400, "BAD_REQUEST", "contacts[1].email"),
    "NUL in a contact's name": (_seed(lambda b: b["contacts"][0].update(name="John\u0000Doe")), JS,
                                400, "BAD_REQUEST", "contacts[0].name"),
    "escape in the campaign name": (_seed(lambda b: b.update(campaignName="Q1\u001b[31m")), JS,
                                    400, "BAD_REQUEST", "campaignName"),
    "not JSON at all": (b"campaignName=Q1", JS, 400, "INVALID_JSON", "body"),
    "JSON 5,000 arrays deep": (b"[" * 5000 + b"]" * 5000, JS, 400, "INVALID_JSON", "body"),
    "valid JSON sent as text/plain": (_seed(), "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type"),
    "valid JSON sent as a form": (_seed(), "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE",
                                  "Content-Type"),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_is_refused_with_its_code_naming_the_field(name):
    raw, content_type, status, code, field = BAD_INPUT[name]
    _, fast = _twin_apps()
    resp = fast.post("/u", content=raw, headers={"content-type": content_type or ""})
    out = resp.json()
    assert (resp.status_code, out["error"], out["success"]) == (status, code, False), (name, out)
    assert out["details"] and all(d["message"] for d in out["details"]), out
    assert any(d["field"] == field for d in out["details"]), (name, out)
    assert out["message"].startswith(f"{out['details'][0]['field']}: ") or code != "BAD_REQUEST", out
    assert "[0]" != out["details"][0]["field"] and "{{" not in out["message"], out


def _post_both(model: type[BaseModel], raw: bytes, content_type: str | None):
    classic, fast = _twin_apps(model)
    headers = {"content-type": content_type} if content_type else {}
    if content_type is None:  # TestClient would add one
        headers["content-type"] = ""
    return classic.post("/u", content=raw, headers=headers), fast.post("/u", content=raw, headers=headers)


@pytest.mark.parametrize("name", list(_bodies()))
def test_body_parsing_answers_exactly_as_fastapi_does(name):
    want, got = _post_both(CampaignIn, *_bodies()[name])
    assert (got.status_code, got.json()) == (want.status_code, want.json()), name


def _lifecycle_bodies() -> dict[str, tuple[bytes, str | None]]:
    """The upload-and-run bodies, and bodies of the lifecycle uploads' own shapes."""
    def upload(**change) -> bytes:
        body = {"campaign_name": "Lifecycle", "agent_id": "agent-7",
                "contacts": [{"phone_number": "+919800000000", "custom_fields": {"plan": "gold"}}], **change}
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    js = "application/json"
    many = [{"phone_number": f"+9198{i:08d}"} for i in range(1001)]
    return {
        **_bodies(),
        "upload": (upload(), js),
        "append by camelCase campaignId, scheduleTime with an offset": (
            upload(campaign_name=None, agent_id=None, campaignId="CAMP-2026-X",
                   scheduleTime="2030-01-17T14:00:00+05:30"), js),
        "campaign settings as extra fields, NaN among them": (upload(
            callsPerSecond=2, fromNumbers=["+14155550100"], blackoutDates=["2026-12-25"],
            callingWindow={"startTime": "09:00", "endTime": "18:00", "timeZone": "Asia/Kolkata"},
        ).replace(b'"callsPerSecond": 2', b'"callsPerSecond": NaN, "weights": [1e400, -0.0]'), js),
        "rows of every kind (checked one by one later)": (upload(contacts=[
            {"phone_number": "12345"}, {"name": "no number"}, "not an object", None, 7, [],
            {"phone_number": "+919800000005", "scheduledCallDateTime": "soon"}]), js),
        "exactly 1000 contacts": (upload(contacts=many[:1000]), js),
        "1001 contacts": (upload(contacts=many), js),
        "1001 contacts, a bad schedule_time and no campaign name": (
            upload(contacts=many, schedule_time="whenever", campaign_name=None), js),
        "naive schedule_time": (upload(schedule_time="2030-01-17T14:00:00"), js),
        "contacts not a list": (upload(contacts={"phone_number": "+919800000000"}), js),
        "contacts null": (upload(contacts=None).replace(b"{", b'{"contacts": null, ', 1), js),
        "campaign_id a number": (upload(campaign_id=5), js),
        "campaign_id twice": (upload().replace(b"{", b'{"campaign_id": "A", "campaign_id": null, ', 1), js),
        "empty campaign name, bad pacing and redial": (upload(
            campaign_name="", maxConcurrentCalls=0, redialConfig={"enabled": True, "maxAttempts": 0},
            isScheduledCall="perhaps"), js),
        "string body": (b'"contacts"', js),
        "null body": (b"null", js),
        "whitespace body": (b"  \n", js),
    }


LIFECYCLE_BODY_MODELS = {"upload": UploadCampaignDataIn, "append": AppendContactsIn, "preflight": PreflightIn}


@pytest.mark.parametrize("name", list(_lifecycle_bodies()))
@pytest.mark.parametrize("model", list(LIFECYCLE_BODY_MODELS))
def test_lifecycle_and_preflight_bodies_answer_exactly_as_fastapi_does(model, name):
    """POST /uploadCampaignData, /campaigns/{id}/contacts and /campaigns/preflight read their
    bodies with parse_json_body now: every answer is the one a `body: Model` parameter gave
    (status, code, message, fields, rows; the model itself when the body is valid)."""
    want, got = _post_both(LIFECYCLE_BODY_MODELS[model], *_lifecycle_bodies()[name])
    assert (got.status_code, got.json()) == (want.status_code, want.json()), name


def test_lifecycle_limits_answer_with_their_own_413():
    for model in (UploadCampaignDataIn, AppendContactsIn):
        _, resp = _post_both(model, *_lifecycle_bodies()["1001 contacts, a bad schedule_time and no campaign name"])
        assert resp.status_code == 413 and resp.json()["error"] == "PAYLOAD_TOO_LARGE"
        assert resp.json()["message"] == ("1001 contacts in one request; the limit is 1000 (send the rest in "
                                          "further requests with campaign_id)")
    _, resp = _post_both(PreflightIn, *_lifecycle_bodies()["1001 contacts"])
    assert resp.status_code == 413 and resp.json()["message"].startswith("1001 contacts in one request")


@pytest.mark.parametrize("name", list(_lifecycle_bodies()))
def test_upload_target_reads_campaign_id_as_the_upload_body_does(name):
    """/uploadCampaignData decides whether to fingerprint before parsing from UploadTarget:
    wherever both read a body, they read the same campaign_id."""
    raw, content_type = _lifecycle_bodies()[name]
    try:
        body = UploadCampaignDataIn.model_validate_json(raw)
        target = UploadTarget.model_validate_json(raw)
    except ValueError:
        return
    assert target.campaign_id == body.campaign_id, name


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
    # ... with what api.openapi_refine adds (formats, patterns, the deployment's providers).
    refine(want, ["simulated"])
    assert schemas["CampaignIn"] == want["components"]["schemas"]["CampaignIn"]
    assert schemas["CampaignIn"]["properties"]["contacts"]["maxItems"] == 1000
    assert "ContactIn" in schemas


@pytest.mark.parametrize(("path", "model"), [("/uploadCampaignData", UploadCampaignDataIn),
                                             ("/campaigns/{campaign_id}/contacts", AppendContactsIn),
                                             ("/campaigns/preflight", PreflightIn)])
def test_openapi_documents_the_lifecycle_and_preflight_bodies_as_before(path, model):
    classic, _ = _twin_apps(model)
    want = classic.get("/openapi.json").json()
    spec = create_app(Settings(campaign_api_keys="acme:k")).openapi()
    # (The upload routes also take CSV and xlsx files: their JSON body is the one compared.)
    got_body, want_body = spec["paths"][path]["post"]["requestBody"], want["paths"]["/u"]["post"]["requestBody"]
    assert got_body["required"] == want_body["required"]
    assert got_body["content"]["application/json"] == want_body["content"]["application/json"]
    schemas = spec["components"]["schemas"]
    refine(want, ["simulated"])  # what api.openapi_refine adds (formats, patterns, providers)
    for name, schema in want["components"]["schemas"].items():
        if name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, never answered: removed
            assert name not in schemas
            continue
        if name == "UploadCampaignDataIn":  # it also lists CampaignIn's other settings (they are read)
            assert {k: schemas[name]["properties"][k] for k in schema["properties"]} == schema["properties"]
            assert schemas[name]["additionalProperties"] is False
            continue
        assert schemas[name] == schema, name


def test_every_schema_the_openapi_document_refers_to_is_in_it():
    """A body documented by openapi_body refers to its model: api.main must add each one."""
    spec = create_app(Settings(campaign_api_keys="acme:k")).openapi()
    refs: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            refs.update([node["$ref"]] if isinstance(node.get("$ref"), str) else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert {"#/components/schemas/UploadCampaignDataIn", "#/components/schemas/AppendContactsIn",
            "#/components/schemas/PreflightIn", "#/components/schemas/CampaignIn"} <= refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref


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
    out = contact_validation.validate_contacts(rows, scheduled=False, zones_for=contact_validation.zone_resolver(body))
    assert len(parses) == 51  # zones and masks included: one parse per number
    assert rows == []  # consumed: the input rows are not kept alongside the Contacts
    assert out.received == 52 and len(out.contacts) == 50
    assert out.duplicates == [{"row": 50, "duplicate_of_row": 3}]
    assert [e["row"] for e in out.errors] == [51] and out.errors[0]["field"] == "contacts[51].phone_number"
    first = out.contacts[0]
    assert (first.phone, first.masked, first.zones) == ("+919800000000", "+91 98xxxxxx00", ["Asia/Calcutta"])


def test_validate_rows_still_reports_row_errors_in_order():
    out = contact_validation.validate_rows([{"phone_number": "+919800000001"}, {"name": "no phone"}, "not a row",
                                   {"phone_number": "bad"}, {"phone_number": "+919800000001"}], scheduled=False)
    assert [c.phone for c in out.contacts] == ["+919800000001"]
    assert [e["row"] for e in out.errors] == [1, 2, 3]
    assert out.duplicates == [{"row": 4, "duplicate_of_row": 0}]


class _Row(dict):
    """A JSON row that can be watched (a weak reference) to see when it is let go."""


def test_validate_rows_releases_each_row_once_it_is_converted_and_reports_by_row(monkeypatch):
    default = datetime(2035, 1, 17, 14, 0, tzinfo=UTC)
    raw_rows = [
        _Row(phone_number="+919800000000", name="A", custom_fields={"plan": "gold"}),
        _Row(phoneNumber="+91 98000 00001", scheduledCallDateTime="2035-02-01T09:00:00+05:30"),
        _Row(phone_number="12345"),                                         # 2: not E.164
        _Row(name="no number"),                                             # 3: no phone at all
        _Row(phone_number="+919800000000"),                                 # 4: duplicate of row 0
        "not an object",                                                    # 5
        _Row(phone_number="+919800000005", scheduledCallDateTime="soon"),   # 6: bad date
        _Row(phone_number="+919800000007", timezone="Mars/Base"),           # 7: bad zone
        *[_Row(phone_number=f"+9198000001{i:02d}") for i in range(20)],     # 8-27
    ]
    watched = {i: weakref.ref(row) for i, row in enumerate(raw_rows) if isinstance(row, _Row)}
    alive_behind: dict[int, list[int]] = {}
    real_parse = contact_validation.parse_phone

    def parse_phone(text: str):
        # Converting row `i`: every row before it is gone already (from the list and from memory).
        i = next(i for i, ref in watched.items() if ref() is not None and ref().get("phone_number",
                 ref().get("phoneNumber")) == text and i not in alive_behind)
        alive_behind[i] = [j for j, ref in watched.items() if j < i and ref() is not None]
        assert all(row is None for row in raw_rows[:i])
        return real_parse(text)

    monkeypatch.setattr(contact_validation, "parse_phone", parse_phone)
    out = contact_validation.validate_rows(raw_rows, scheduled=True, default_time=default)
    assert raw_rows == []  # consumed
    assert alive_behind and all(behind == [] for behind in alive_behind.values()), alive_behind
    assert all(ref() is None for ref in watched.values())
    assert out.received == 28 and len(out.contacts) == 22
    assert [(e["row"], e["field"]) for e in out.errors] == [
        (2, "contacts[2].phone_number"), (3, "contacts[3].phone_number"), (5, "contacts[5]"),
        (6, "contacts[6].scheduledCallDateTime"), (7, "contacts[7].timezone")]
    assert all(e["message"] for e in out.errors)
    assert out.duplicates == [{"row": 4, "duplicate_of_row": 0}]
    first, second = out.contacts[:2]
    assert (first.phone, first.custom_data, first.scheduled_at) == ("+919800000000", {"plan": "gold"}, default)
    assert second.scheduled_at == datetime(2035, 2, 1, 3, 30, tzinfo=UTC)
    assert [c.key for c in out.contacts] == list(range(22))


def _upload_bytes(n: int, settings: bool = True) -> bytes:
    """A body of `n` rows; with the campaign's settings, or without them (an append's body,
    which refuses them)."""
    campaign = {"campaign_name": "Memory", "agent_id": "a", "isScheduledCall": False} if settings else {}
    return json.dumps({**campaign, "contacts": [
        {"phone_number": f"+9198{i:08d}", "name": f"Contact {i}", "email": f"c{i}@example.com",
         "custom_data": {"plan": "gold", "i": i}} for i in range(n)]}).encode()


@pytest.mark.parametrize("model", list(LIFECYCLE_BODY_MODELS))
def test_a_parsed_upload_is_held_in_one_form_at_a_time(model):
    """tracemalloc over parse_json_body (the bytes dropped once parsed) and validate_rows of a
    1000-row body: at its peak, memory holds little besides the Contacts it ends with (about
    a tenth of the parsed rows' size). When validate_rows kept the parsed rows and made a
    whole list of ContactIn before the Contacts, the excess was more than the parsed rows'
    size (1.1 times)."""
    body_model = LIFECYCLE_BODY_MODELS[model]
    contact_validation.validate_rows([{"phone_number": "+919800000000"}], scheduled=False)  # phone metadata loaded
    gc.collect()
    tracemalloc.start()
    try:
        raw = [_upload_bytes(1000, settings=model != "append")]
        before = tracemalloc.get_traced_memory()[0]
        parsed_rows = json.loads(raw[0])["contacts"]
        one_form = tracemalloc.get_traced_memory()[0] - before  # the rows as parsed JSON
        del parsed_rows
        start = tracemalloc.get_traced_memory()[0] - len(raw[0])
        tracemalloc.reset_peak()
        body = parse_json_body(body_model, raw.pop(), "application/json")
        out = contact_validation.validate_rows(body.contacts, scheduled=False)
        _, peak = tracemalloc.get_traced_memory()
        del body
        kept = tracemalloc.get_traced_memory()[0] - start  # the Contacts (and the report)
    finally:
        tracemalloc.stop()
    assert len(out.contacts) == 1000 and out.received == 1000
    assert peak - start - kept < one_form / 2, (peak - start, kept, one_form)


# --- chunks -----------------------------------------------------------------------------------


def test_eta_is_computed_from_the_contacts_due_times():
    body = CampaignIn.model_validate(SEED_JSON)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    config = campaigns.build_config(body, "acme", Settings(campaign_api_keys="acme:k"), now)
    later = [Contact(key=i, phone="+919800000001", scheduled_at=now + timedelta(hours=i)) for i in range(3)]
    assert campaigns.eta_for(config, later, now) > campaigns.eta_for(config, later[:1], now) > now


def test_a_contact_with_too_much_custom_data_is_refused_by_row():
    rows = [{"phone_number": "+919800000001", "custom_data": {"notes": "x" * 20_000}},
            {"phone_number": "+919800000002", "custom_data": {"notes": "x" * 15_000}}]
    validated = contact_validation.validate_rows(rows, scheduled=False)
    assert [c.phone for c in validated.contacts] == ["+919800000002"]  # 15 KB is within the limit
    [error] = validated.errors
    assert error["row"] == 0 and error["field"] == "contacts[0].custom_data"
    assert "16384" in error["message"]


def _fingerprint_in_one_piece(raw: bytes) -> str:
    """body_fingerprint as it was first written: the canonical text of the whole body at once."""
    import hashlib

    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(body=_json_values, indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_the_fingerprint_hashed_piece_by_piece_is_the_one_of_the_whole_canonical_text(body, indent, ascii_only):
    raw = json.dumps(body, indent=indent, ensure_ascii=ascii_only).encode()
    assert idempotency.body_fingerprint(raw) == _fingerprint_in_one_piece(raw)


def test_the_fingerprint_of_a_real_upload_and_of_bytes_that_are_not_json():
    from bench.engine_bench import campaign_body

    raw = json.dumps(campaign_body("fingerprint", 0, 300), indent=2).encode()
    assert idempotency.body_fingerprint(raw) == _fingerprint_in_one_piece(raw)
    assert idempotency.body_fingerprint(b"\xff\xfe not json") == _fingerprint_in_one_piece(b"\xff\xfe not json")
    # Its peak is the parsed body and little more: the old canonical text (json.dumps of the
    # whole body) doubled it.
    tracemalloc.start()
    body_bytes = len(raw)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    json.loads(raw)
    tree = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    idempotency.body_fingerprint(raw)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak < tree + body_bytes // 4, (peak, tree)

