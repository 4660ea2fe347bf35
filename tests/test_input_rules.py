"""Input rules of issue 17 beyond the bad-input table of test_upload_parsing.py: unknown keys
in every body, a rule without maxAttempts, rows refused for letters, bad emails and control
characters, capped echoes, the 413 message, one status per state error, and redialConfig
documented as the union of its two forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from api import contact_validation
from api.errors import STATUS_OF_CODE, envelope, validation_details
from api.lifecycle_schemas import AppendContactsIn, UploadCampaignDataIn
from api.main import create_app
from api.campaign_calls import ERROR_STATUS, not_found
from api.upload_settings import campaign_settings
from api.routes.policy import PreflightIn, UpdateCampaignDataIn
from api.schemas import ContactIn, RedialConfigIn, too_many_contacts_message
from campaign_engine.phones import InvalidPhoneNumber, normalize_e164
from campaign_engine.policy.redial_rules import decide_next_call
from campaign_engine.settings import Settings
from tests.test_upload_and_run import SEED_JSON
from tests.test_upload_parsing import _rule, _twin_apps


def test_unknown_keys_are_refused_by_the_lifecycle_bodies_and_the_redial_update():
    upload = {"campaign_name": "x", "agent_id": "a", "contacts": [{"phone_number": "+919800000000"}]}
    cases = [(UploadCampaignDataIn, {**upload, "scheduleTme": "2030-01-01T00:00:00Z"}, "scheduleTme"),
             (AppendContactsIn, {"contacts": [{"phone_number": "+919800000000"}], "campaign_name": "x"},
              "campaign_name"),
             (PreflightIn, {**SEED_JSON, "redialConfig": {"enabled": True, "retryInterval": [60]}},
              "redialConfig.retryInterval"),
             (UpdateCampaignDataIn, {"redialConfig": _rule(intervalMinute=5)}, "redialConfig.callStatus[0].intervalMinute")]
    for model, body, field in cases:
        _, fast = _twin_apps(model)
        out = fast.post("/u", json=body).json()
        assert out["error"] == "BAD_REQUEST" and out["details"][0] == {"field": field, "message": "unknown field"}, out
    # A create's settings are checked as the upload-and-run body's, unknown keys inside them too.
    body = UploadCampaignDataIn.model_validate({**upload, "callsPerSecond": 2, "callingWindow": {
        "startTime": "09:00", "endTime": "18:00", "zone": "UTC"}})
    with pytest.raises(RequestValidationError) as err:
        campaign_settings(body, scheduled=False)
    assert validation_details(err.value.errors()) == [{"field": "callingWindow.zone", "message": "unknown field"}]
    # Contact rows keep ignoring keys of their own.
    assert ContactIn.model_validate({"phone_number": "+919800000000", "crm_id": 7}).phone_number == "+919800000000"


def test_a_rule_without_max_attempts_is_capped_by_the_overall_max_attempts():
    config = RedialConfigIn.model_validate({"enabled": True, "maxAttempts": 4, "callStatus": [
        {"match": "busy", "intervalMinutes": 10, "maxAttempts": 3}, {"match": "no-answer", "intervalMinutes": 30}]})
    rules = config.rules()
    assert [rule.max_attempts for rule in rules.call_status] == [3, None]
    assert [rules.rule_cap(rule) for rule in rules.call_status] == [3, 4]
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    history = []
    for call in range(1, 5):
        history.append((call, "no-answer", None))
        decision = decide_next_call(rules, history, now, "wf", ["UTC"])
        assert decision.redial is (call < 4), (call, decision)


def test_rows_of_an_upload_are_refused_for_letters_bad_emails_and_control_characters():
    out = contact_validation.validate_rows([{"phone_number": "+1415555ABCD"}, {"phone_number": "+919800000001", "email": "@x"},
                                   {"phone_number": "+91 98765 43210 x12"},
                                   {"phone_number": "+919800000002", "name": "A\x00B"},
                                   {"phone_number": "+1 (415) 555-0100", "email": "ops@example.co.uk"}],
                                  scheduled=False)
    assert [c.phone for c in out.contacts] == ["+14155550100"]
    assert [e["field"] for e in out.errors] == ["contacts[0].phone_number", "contacts[1].email",
                                                "contacts[2].phone_number", "contacts[3].name"]
    assert "letters are refused" in out.errors[0]["message"]


def test_echoed_input_is_capped():
    assert len(not_found("C" * 100_000).message) < 200
    with pytest.raises(InvalidPhoneNumber) as err:
        normalize_e164("+" + "9" * 100_000)
    assert len(str(err.value)) < 200
    out = json.loads(envelope(400, "BAD_REQUEST", "x" * 100_000, [{"field": "f", "message": "y" * 100_000}]).body)
    assert len(out["message"]) < 1100 and len(out["details"][0]["message"]) < 1100


def test_the_413_message_names_the_append_endpoint_literally():
    assert too_many_contacts_message(1001) == ("1001 contacts in one request; the limit is 1000 (append the rest "
                                               "with POST /campaigns/{id}/contacts)")


def test_every_state_error_code_has_one_status():
    assert {code: STATUS_OF_CODE[code] for code in ERROR_STATUS} == ERROR_STATUS
    assert {STATUS_OF_CODE[c] for c in ("CAMPAIGN_ALREADY_RUNNING", "CAMPAIGN_NOT_RUNNING", "INVALID_CAMPAIGN_STATE",
                                        "CONTACT_ALREADY_FINAL", "IDEMPOTENCY_KEY_REUSED")} == {409}


def test_openapi_documents_redial_config_as_the_union_of_its_two_forms():
    """/openapi.json (README: "/docs describe every field"): redialConfig is the simple form
    or the rule-based one, every field of both is documented, unknown ones are refused."""
    app = create_app(Settings(campaign_api_keys="acme:k"))
    spec = TestClient(app).get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    redial = schemas["RedialConfigIn"]
    simple, rules = redial["anyOf"]
    assert set(simple["properties"]) == {"enabled", "maxAttempts", "retryIntervals"}
    assert {"callStatus", "backoff", "jitterRatio", "redialVoicemail", "terminalConditions",
            "backoffMultiplier", "maxIntervalMinutes", "honorCallbacks", "maxCallbacks"} <= set(rules["properties"])
    assert set(simple["properties"]) | set(rules["properties"]) == set(RedialConfigIn.model_fields)
    assert simple["additionalProperties"] is False and rules["additionalProperties"] is False
    item = rules["properties"]["callStatus"]["anyOf"][0]["items"]
    rule = schemas[item["$ref"].rsplit("/", 1)[1]]
    assert set(rule["properties"]) == {"match", "intervalMinutes", "maxAttempts"}
    assert set(rule["required"]) == {"match", "intervalMinutes"} and rule["additionalProperties"] is False
    for body in ("CampaignIn", "UploadCampaignDataIn", "UpdateCampaignDataIn"):
        assert "RedialConfigIn" in json.dumps(schemas[body]["properties"]["redialConfig"]), body
    assert schemas["CampaignIn"]["additionalProperties"] is False
