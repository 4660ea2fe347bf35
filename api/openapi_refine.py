"""The OpenAPI document says what the API accepts, not only the types pydantic sees.

The request models validate much of their input in code (a phone number is checked with
`phonenumbers`, a time zone against the IANA database, a webhook URL against the outbound-URL
policy, redial rules against each other); the schema FastAPI derives from them then says
"string" where the API means "E.164 number". Here each such field gets what can be said in
JSON Schema: a `pattern` for the syntax, an `enum` where the values are a closed set (the
deployment's providers included), `anyOf` for the requirements that depend on another
field (scheduled uploads; with `anyOf`), and a named `format` for the rest (`e164`, `iana-time-zone`,
`webhook-url`), whose meaning the description gives. tests/test_schemathesis.py registers a
generator for each named format and holds the API to its document: a request the document
calls valid must not be refused (schemathesis' positive_data_acceptance).

Applied by api.main to the generated document, so the models (and their validation) stay as
they are; a rule added to a model without its line here is found by that test.
"""

from __future__ import annotations

from typing import Any

from campaign_engine.models import CampaignStatus, ContactState, Outcome

# The syntax the API reads: `+`, the country code and the number; spaces, dashes, dots and
# parentheses are removed first (api.schemas, campaign_engine.phones).
PHONE_PATTERN = r"^[ ().-]*\+[0-9][0-9 ().-]*$"
# Format `e164` alone, not with PHONE_PATTERN: a generator given both follows the pattern (whose
# shortest matches, `+0`, are no numbers) and never the format.
PHONE = {"format": "e164",
         "description": "E.164: `+`, the country code and the number; spaces, dashes, dots and parentheses are "
                        f"removed first (the syntax: {PHONE_PATTERN}). It must be a valid number of its country "
                        "(format `e164`, checked with the phonenumbers library), else 400 naming the field"}
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
EMAIL_PATTERN = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$"
# Any JSON value without a NUL in its keys and strings (PostgreSQL's jsonb cannot hold one).
NO_NUL = r"^[^\x00]*$"
CONDITION = r"^[^\x00]*[^\s\x00][^\x00]*$"
JSON_WITHOUT_NUL = {
    "description": "Any JSON value with no NUL character (\\u0000) in its keys and strings",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonWithoutNul"}},
        {"type": "object", "propertyNames": {"pattern": NO_NUL},
         "additionalProperties": {"$ref": "#/components/schemas/JsonWithoutNul"}},
    ],
}
TIME_ZONE = {"format": "iana-time-zone",
             "description": "An IANA time zone name known to the server, such as America/New_York"}
CLOCK = {"pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "description": "HH:MM on the 24-hour clock"}
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
REDIAL_MATCHES = [Outcome.NO_ANSWER.value, Outcome.BUSY.value, Outcome.FAILED.value, Outcome.VOICEMAIL.value]
MAX_RETRY_INTERVAL_SECONDS = 30 * 86400
WEBHOOK_URL = {"format": "webhook-url",
               "description": "An https URL (http only where WEBHOOK_ALLOW_HTTP is set) without credentials whose "
                              "host is a public name or address (not loopback, private, link-local, multicast or "
                              "reserved, in any spelling); receives a signed JSON document after every call attempt "
                              "and when the campaign completes"}


def _string(node: dict, **extra: Any) -> None:
    """Add `extra` to the string branch of `node` ({type: string} or anyOf [string, null])."""
    branches = node.get("anyOf")
    target = next((b for b in branches if b.get("type") == "string"), None) if branches else node
    if target is None:
        return
    description = extra.pop("description", None)
    if "pattern" in extra or "enum" in extra:
        target.pop("format", None)  # e.g. `time`: its own syntax is not the one the API reads
    target.update(extra)
    if description and not node.get("description"):
        node["description"] = description


def _array_items(node: dict) -> dict | None:
    branches = node.get("anyOf")
    target = next((b for b in branches if b.get("type") == "array"), None) if branches else node
    return target.get("items") if target is not None else None


def _contact(schema: dict) -> None:
    props = schema["properties"]
    _string(props["phone_number"], **PHONE)
    _string(props["name"], pattern=NO_CONTROL_CHARACTERS)
    _string(props["email"], format="email", pattern=EMAIL_PATTERN)
    _string(props["timezone"], **TIME_ZONE)
    props["custom_data"].update(propertyNames={"pattern": NO_NUL},
                                additionalProperties={"$ref": "#/components/schemas/JsonWithoutNul"},
                                description="Up to 16 KiB as JSON; no NUL character (\\u0000) in any key or string")


def _consent(schema: dict) -> None:
    """A contact's consent: a source that is not blank, and a text or a reference (or both)
    that is not blank, none with a NUL (models.Consent)."""
    props = schema["properties"]
    _string(props["source"], pattern=CONDITION)
    for name in ("text", "reference"):
        _string(props[name], pattern=CONDITION)
    schema.setdefault("allOf", []).append({"anyOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
        {"required": ["reference"], "properties": {"reference": {"type": "string"}}}]})


def _campaign_settings(schema: dict, providers: list[str]) -> None:
    """The campaign settings CampaignIn, PreflightIn and UploadCampaignDataIn share."""
    props = schema["properties"]
    for name in ("campaignName", "campaign_name", "agentId", "agent_id"):
        if name in props:
            _string(props[name], pattern=NO_CONTROL_CHARACTERS)
    if "notificationWebhookUrl" in props:
        _string(props["notificationWebhookUrl"], **WEBHOOK_URL)
    if "provider" in props:
        _string(props["provider"], enum=list(providers))
    if "callerIdStrategy" in props:
        _string(props["callerIdStrategy"], enum=["round_robin", "random", "local_presence"])
    if "fromNumbers" in props:
        props["fromNumbers"]["items"] = {"type": "string", **PHONE}
    if "blackoutDates" in props:
        props["blackoutDates"]["items"] = {"type": "string", "format": "date"}
    if "contacts" in props:
        props["contacts"]["items"] = {"$ref": "#/components/schemas/ContactIn"}


# With isScheduledCall true, every contact needs its time (UploadCampaignDataIn: unless
# schedule_time gives one to the rows without their own). Said with anyOf, not if/then, which
# generators (schemathesis' coverage phase) do not follow.
def _scheduled_needs_times(schema: dict, *, unless: str | None = None) -> None:
    branches: list[dict[str, Any]] = [
        {"properties": {"isScheduledCall": {"enum": [False]}}},
        {"properties": {"contacts": {"items": {
            "required": ["scheduledCallDateTime"],
            "properties": {"scheduledCallDateTime": {"type": "string", "format": "date-time"}}}}}},
    ]
    if unless:
        branches.append({"required": [unless], "properties": {unless: {"type": "string", "format": "date-time"}}})
    schema.setdefault("allOf", []).append({"anyOf": branches})


def _calling_window(schema: dict) -> None:
    props = schema["properties"]
    for name in ("startTime", "endTime"):
        _string(props[name], **CLOCK)
    props["days"]["items"] = {"type": "string", "enum": DAYS}
    props["days"]["minItems"] = 1
    schema["additionalProperties"] = False  # unknown keys are refused (api.schemas.reject_unknown_keys)
    _string(props["timeZone"], **TIME_ZONE)


def _redial(schema: dict) -> None:
    for form in schema.get("anyOf", []):
        props = form["properties"]
        if "retryIntervals" in props:
            items = _array_items(props["retryIntervals"])
            if items is not None:
                items.update(minimum=1, maximum=MAX_RETRY_INTERVAL_SECONDS)
        if "backoff" in props:
            _string(props["backoff"], enum=["fixed", "exponential"])
        if "terminalConditions" in props:  # not blank, no NUL (campaign_engine.policy.redial_rules)
            node = props["terminalConditions"]
            _string(node, pattern=CONDITION)
            items = _array_items(node)
            if items is not None:
                items.update(pattern=CONDITION)


def _redial_rule(schema: dict) -> None:
    _string(schema["properties"]["match"], enum=REDIAL_MATCHES)


# Query parameters the routes check in code: (method, path, parameter) -> accepted values.
def _query_values() -> dict[tuple[str, str, str], list[str]]:
    states = [s.value for s in ContactState]
    contact_status = states + [o.value for o in Outcome if o.value not in states]
    return {
        ("get", "/getCampaignStatuses", "status"): [s.value for s in CampaignStatus],
        ("get", "/downloadCampaignStats", "format"): ["csv", "xlsx"],
        ("get", "/campaigns/{campaign_id}/contacts", "status"): contact_status,
    }


def refine(document: dict, providers: list[str]) -> None:
    """Refine the generated `document` in place (`providers`: those this deployment has)."""
    schemas = document.get("components", {}).get("schemas", {})
    if "ContactIn" in schemas:
        schemas["JsonWithoutNul"] = JSON_WITHOUT_NUL
        _contact(schemas["ContactIn"])
    if "Consent" in schemas:
        _consent(schemas["Consent"])
    for name in ("CampaignIn", "PreflightIn", "UploadCampaignDataIn", "AppendContactsIn"):
        if name in schemas:
            _campaign_settings(schemas[name], providers)
    for name in ("CampaignIn", "PreflightIn"):
        if name in schemas:
            _scheduled_needs_times(schemas[name])
    if "UploadCampaignDataIn" in schemas:
        _upload_campaign_data(schemas["UploadCampaignDataIn"], schemas.get("CampaignIn"), providers)
    if "SuppressionsIn" in schemas:
        numbers = schemas["SuppressionsIn"]["properties"].get("phone_numbers")
        if numbers is not None:
            numbers["items"] = {"type": "string", **PHONE}
    if "CallingWindow" in schemas:
        _calling_window(schemas["CallingWindow"])
    if "RedialConfigIn" in schemas:
        _redial(schemas["RedialConfigIn"])
    for name in ("RedialRule", "RedialRuleIn"):
        if name in schemas:
            _redial_rule(schemas[name])
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name", "").lower() == "idempotency-key":
                    _string(parameter["schema"], minLength=1)  # empty: 400 (api.edge)
                if parameter.get("in") in ("path", "query") and parameter.get("name") in ("phone", "phone_number"):
                    _string(parameter["schema"], **PHONE)
    for (method, path, name), values in _query_values().items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        for parameter in (operation or {}).get("parameters", []):
            if parameter.get("in") == "query" and parameter.get("name") == name:
                _string(parameter["schema"], enum=values)


def _upload_campaign_data(schema: dict, campaign: dict | None, providers: list[str]) -> None:
    """POST /uploadCampaignData reads CampaignIn's other settings too, and refuses any other
    key: they are listed, and nothing else is allowed. Creating (no campaign_id) needs the
    campaign's name and agent."""
    if campaign is not None:
        for name, prop in campaign["properties"].items():
            if name not in schema["properties"] and name not in ("campaignName", "agentId", "contacts"):
                schema["properties"][name] = prop
    schema["additionalProperties"] = False
    _campaign_settings(schema, providers)
    schema.setdefault("allOf", []).append({"anyOf": [
        {"required": ["campaign_id"], "properties": {"campaign_id": {"type": "string"}}},
        {"required": ["campaign_name", "agent_id"],
         "properties": {"campaign_name": {"type": "string"}, "agent_id": {"type": "string"}}}]})
    _scheduled_needs_times(schema, unless="schedule_time")
