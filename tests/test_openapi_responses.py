"""The OpenAPI lists the error statuses each operation can answer (issue 16; schemathesis'
status_code_conformance in tests/test_schemathesis.py holds the answers to them)."""

from __future__ import annotations

from api.main import create_app
from campaign_engine.settings import Settings

BODY_OPERATIONS = {("post", "/uploadCampaignDataAndRun"), ("post", "/uploadCampaignData"),
                   ("post", "/campaigns/{campaign_id}/contacts"), ("put", "/updateCampaignData/{campaign_id}"),
                   ("post", "/campaigns/preflight")}


def spec() -> dict:
    return create_app(Settings(campaign_api_keys="acme:k")).openapi()


def operations():
    for path, ops in spec()["paths"].items():
        for method, op in ops.items():
            yield method, path, set(op["responses"])


def test_every_authenticated_operation_documents_its_errors():
    seen = 0
    for method, path, statuses in operations():
        if path.startswith("/callbacks/"):
            assert {"200", "400", "403", "413"} <= statuses, (method, path, statuses)
            continue
        if path == "/metrics":  # its own auth (METRICS_TOKEN or a key), no input, not rate-limited
            assert {"200", "401", "503"} <= statuses, (method, path, statuses)
            continue
        assert {"200", "400", "401", "429", "503"} <= statuses, (method, path, statuses)
        if (method, path) in BODY_OPERATIONS:
            assert {"408", "413", "415"} <= statuses, (method, path, statuses)
        if "{campaign_id}" in path:
            assert "404" in statuses, (method, path, statuses)
        seen += 1
    assert seen >= 18


def test_updating_a_campaign_documents_not_found_and_a_finished_campaign():
    statuses = {(m, p): s for m, p, s in operations()}[("put", "/updateCampaignData/{campaign_id}")]
    assert {"404", "409"} <= statuses


def test_no_operation_documents_the_422_it_never_answers():
    """A body or parameter that does not validate is 400 BAD_REQUEST in the envelope (api.errors),
    never FastAPI's 422: the 422 and its HTTPValidationError schema are gone from the document.
    The one 422 answered is the contacts' consent (CONSENT_REQUIRED, INVALID_CONSENT, issue 14),
    documented in the envelope on the operations that take contacts."""
    document = spec()
    seen = 0
    consent = set()
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if "422" in op["responses"]:
                assert "CONSENT_REQUIRED" in op["responses"]["422"]["description"], (method, path)
                assert "ErrorEnvelope" in str(op["responses"]["422"]["content"]), (method, path)
                consent.add(path)
            if path != "/metrics":  # (it takes no input but its credentials)
                assert "400" in op["responses"], (method, path)  # every operation reads input it may refuse
            seen += 1
    assert seen >= 20
    assert consent == {"/uploadCampaignDataAndRun", "/uploadCampaignData", "/campaigns/{campaign_id}/contacts",
                       "/campaigns/preflight"}, consent
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "HTTPValidationError" not in str(document)


def test_every_error_is_documented_in_the_envelope():
    document = spec()
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["required"]) == {"success", "message", "error"}
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status[0] in "45":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)


async def test_a_refused_body_is_a_400_in_the_documented_envelope(engine):
    """What the document says is what the API answers: a body that does not validate (a wrong
    type, a field missing) is 400 BAD_REQUEST, and the answer is an ErrorEnvelope."""
    from api.errors import ErrorEnvelope

    for body in ({"campaignName": 5, "agentId": "a", "contacts": []}, {"agentId": "a"},
                 {"campaignName": "x", "agentId": "a", "contacts": [{"phone_number": "12345"}]}):
        resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
        assert resp.status_code == 400, resp.text
        answer = ErrorEnvelope.model_validate(resp.json())
        assert answer.error == "BAD_REQUEST" and answer.details
    resp = await engine.http.get("/campaigns/nope/contacts?status=bogus", headers=engine.headers())
    assert resp.status_code in (400, 404), resp.text
    ErrorEnvelope.model_validate(resp.json())
