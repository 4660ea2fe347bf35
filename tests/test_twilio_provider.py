"""TwilioProvider against a double of Twilio's REST API, over real HTTP on loopback.

The double (tests/fakes/twilio_double.py) and a callback receiver (standing in for the API's
``POST /callbacks/twilio`` route) run under uvicorn; the provider talks to the double with the
official twilio package. Every test dials its own numbers, so the shared double's calls
never meet.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activities.providers.base import ProviderAuthError, ProviderError
from activities.providers.twilio import (
    build_status_callback_url,
    parse_callback_query,
    parse_form_body,
    parse_twilio_callback,
    verify_twilio_signature,
)
from activities.providers.twilio_provider import TwilioProvider
from activities.providers.twilio_rest import ProviderConfigError
from activities.providers.twilio_settings import TwilioSettings
from activities.providers.twilio_status import map_twilio_status
from campaign_engine.models import CallOutcome, CallProgress, CallRequest, Outcome
from tests.fakes.serve import serve_asgi
from tests.fakes.twilio_double import TwilioDouble, twilio_signature

FROM = "+15005550006"
API_KEY, API_SECRET = "SK" + "1" * 32, "api-secret"
_numbers = itertools.count(1)


def new_number() -> str:
    return f"+1415555{next(_numbers):04d}"


# --- the callback receiver (what the API route does) ------------------------------------------


@dataclass
class Received:
    valid: bool
    form: dict[str, str]
    wf: str | None = None
    attempt: int | None = None
    outcome: CallOutcome | None = None


@dataclass
class CallbackReceiver:
    tokens: dict[str, str] = field(default_factory=dict)  # AccountSid -> Auth Token
    public_base_url: str = ""
    received: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            form = parse_form_body(await request.body())
            url = f"{self.public_base_url}{request.url.path}?{request.url.query}"
            token = self.tokens.get(form.get("AccountSid", ""), "")
            if not verify_twilio_signature(token, url, form, request.headers.get("X-Twilio-Signature")):
                self.received.append(Received(valid=False, form=form))
                return Response(status_code=403)
            wf, attempt = parse_callback_query(request.query_params)
            outcome = parse_twilio_callback(form, attempt)
            self.received.append(Received(True, form, wf, attempt, outcome))
            return Response(status_code=204)

        return Starlette(routes=[Route("/callbacks/twilio", callback, methods=["POST"])])

    def for_call(self, call_sid: str) -> list[Received]:
        return [r for r in self.received if r.form.get("CallSid") == call_sid]


@dataclass
class Env:
    double: TwilioDouble
    api_url: str
    receiver: CallbackReceiver


@pytest_asyncio.fixture(scope="module")
async def env():
    double = TwilioDouble(api_keys={API_KEY: API_SECRET})
    receiver = CallbackReceiver(tokens={double.account_sid: double.auth_token})
    async with serve_asgi(double.app) as api_url, serve_asgi(receiver.app()) as public_url:
        receiver.public_base_url = public_url
        yield Env(double, api_url, receiver)


def make_provider(env: Env, **overrides: Any) -> TwilioProvider:
    params: dict[str, Any] = dict(
        account_sid=env.double.account_sid,
        auth_token=env.double.auth_token,
        from_numbers=[FROM],
        public_base_url=env.receiver.public_base_url,
        api_base_url=env.api_url,
        agent_url="https://agent.example.com/twiml/{agent_id}",
        http_timeout_seconds=5.0,
    )
    params.update(overrides)
    return TwilioProvider(**params)


@pytest_asyncio.fixture
async def provider(env: Env):
    p = make_provider(env)
    yield p
    await p.aclose()


def make_request(to: str, attempt: int = 1, wf: str | None = None, **overrides: Any) -> CallRequest:
    wf = wf or f"campaign-1/contact-{to[-4:]}"
    params: dict[str, Any] = dict(
        idempotency_key=f"{wf}/attempt-{attempt}",
        contact_workflow_id=wf,
        attempt=attempt,
        campaign_id="campaign-1",
        tenant_id="tenant-a",
        agent_id="agent-7",
        contact_key=0,
        to=to,
        variables={"name": "Zoë", "plan": "gold"},
        attempt_started_at=datetime.now(timezone.utc),
    )
    params.update(overrides)
    return CallRequest(**params)


def successful_creates(double: TwilioDouble, to: str) -> list:
    return [r for r in double.create_requests(to) if r.status == 201]


# --- every scenario, end to end -----------------------------------------------------------------

SCENARIOS = {
    # name: (scenario, detect_voicemail, progress seen after each step, final outcome,
    #        hangup from the callback, hangup from the status fetch, answered_by, callback statuses)
    "answered": (
        "answered",
        False,
        [CallProgress.QUEUED, CallProgress.RINGING, CallProgress.IN_PROGRESS, Outcome.COMPLETED],
        Outcome.COMPLETED,
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
        None,
        ["initiated", "ringing", "in-progress", "completed"],
    ),
    "answered-amd": (
        "answered",
        True,
        [CallProgress.QUEUED, CallProgress.RINGING, CallProgress.IN_PROGRESS, Outcome.COMPLETED],
        Outcome.COMPLETED,
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
        "human",
        ["initiated", "ringing", "in-progress", "completed"],
    ),
    "machine": (
        "machine",
        True,
        [CallProgress.QUEUED, CallProgress.RINGING, CallProgress.IN_PROGRESS, Outcome.VOICEMAIL],
        Outcome.VOICEMAIL,
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
        "machine_end_beep",
        ["initiated", "ringing", "in-progress", "completed"],
    ),
    # Without answering machine detection a machine cannot be told from a person.
    "machine-without-amd": (
        "machine",
        False,
        [CallProgress.QUEUED, CallProgress.RINGING, CallProgress.IN_PROGRESS, Outcome.COMPLETED],
        Outcome.COMPLETED,
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
        None,
        ["initiated", "ringing", "in-progress", "completed"],
    ),
    "busy": (
        "busy",
        False,
        [CallProgress.QUEUED, CallProgress.RINGING, Outcome.BUSY],
        Outcome.BUSY,
        "USER_BUSY",
        "USER_BUSY",
        None,
        ["initiated", "ringing", "busy"],
    ),
    "no-answer": (
        "no-answer",
        False,
        [CallProgress.QUEUED, CallProgress.RINGING, Outcome.NO_ANSWER],
        Outcome.NO_ANSWER,
        "NO_ANSWER",
        "NO_ANSWER",
        None,
        ["initiated", "ringing", "no-answer"],
    ),
    # The Call resource has no SIP code: only the callback knows the cause.
    "failed": (
        "failed",
        False,
        [CallProgress.QUEUED, Outcome.FAILED],
        Outcome.FAILED,
        "NETWORK_ERROR",
        None,
        None,
        ["initiated", "failed"],
    ),
    "unallocated": (
        "unallocated",
        False,
        [CallProgress.QUEUED, Outcome.FAILED],
        Outcome.FAILED,
        "INVALID_NUMBER",
        None,
        None,
        ["initiated", "failed"],
    ),
    "canceled": (
        "canceled",
        False,
        [Outcome.CANCELED],
        Outcome.CANCELED,
        "ORIGINATOR_CANCEL",
        "ORIGINATOR_CANCEL",
        None,
        ["canceled"],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario_create_progress_and_callbacks(env: Env, provider: TwilioProvider, name: str) -> None:
    scenario, amd, seen_expected, outcome, cb_hangup, fetch_hangup, answered_by, cb_statuses = SCENARIOS[name]
    to = new_number()
    env.double.set_scenario(to, scenario)
    request = make_request(to, detect_voicemail=amd)

    placed = await provider.place_call(request)
    assert placed.provider == "twilio"
    assert placed.call_id.startswith("CA") and not placed.adopted and placed.outcome is None

    # The create, as Twilio received it.
    (create,) = env.double.create_requests(to)
    assert create.form_value("To") == to and create.form_value("From") == FROM
    assert create.form_value("StatusCallback") == build_status_callback_url(
        env.receiver.public_base_url, request.contact_workflow_id, 1
    )
    assert create.form_values("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    assert create.form_value("StatusCallbackMethod") == "POST"
    assert create.form_value("MachineDetection") == ("DetectMessageEnd" if amd else None)
    auth = base64.b64decode(create.headers["authorization"].split()[1]).decode()
    assert auth == f"{env.double.account_sid}:{env.double.auth_token}"

    status = await provider.fetch_call_status(placed.call_id, request)
    assert status.progress == CallProgress.QUEUED and not status.is_final

    seen = []
    call = env.double.calls[placed.call_id]
    while call.steps:
        await env.double.advance(placed.call_id)
        status = await provider.fetch_call_status(placed.call_id, request)
        seen.append(status.outcome or status.progress)
    assert seen == seen_expected
    assert status.outcome == outcome and status.hangup_cause == fetch_hangup
    assert status.answered_by == answered_by
    assert status.attempt == 1 and status.ended_at is not None
    assert status.duration_seconds == {"answered": 42.0, "machine": 17.0}.get(scenario, 0.0)

    await env.double.wait_until(lambda: len(env.receiver.for_call(placed.call_id)) == len(cb_statuses))
    received = env.receiver.for_call(placed.call_id)
    assert all(r.valid for r in received)
    assert [r.form["CallStatus"] for r in received] == cb_statuses
    assert [r.form["SequenceNumber"] for r in received] == [str(i) for i in range(len(cb_statuses))]
    assert {(r.wf, r.attempt) for r in received} == {(request.contact_workflow_id, 1)}
    last = received[-1].outcome
    assert last is not None and last.outcome == outcome and last.hangup_cause == cb_hangup
    assert last.answered_by == answered_by and last.call_id == placed.call_id and last.ended_at is not None
    assert all(r.outcome is not None and not r.outcome.is_final for r in received[:-1])


# --- adopting the call of an earlier try -------------------------------------------------------


async def test_retry_adopts_a_queued_call(env: Env, provider: TwilioProvider) -> None:
    to = new_number()
    request = make_request(to)
    first = await provider.place_call(request)
    # The worker crashed before recording `first`: the activity runs again.
    second = await provider.place_call(request)
    assert second.adopted and second.call_id == first.call_id
    assert len(successful_creates(env.double, to)) == 1
    assert len(env.double.created_calls(wf=request.contact_workflow_id, attempt=1)) == 1


async def test_retry_adopts_a_ringing_call_and_a_finished_one(env: Env, provider: TwilioProvider) -> None:
    to = new_number()
    env.double.set_scenario(to, "busy")
    request = make_request(to)
    first = await provider.place_call(request)
    await env.double.advance(first.call_id)  # initiated
    await env.double.advance(first.call_id)  # ringing
    ringing = await provider.place_call(request)
    assert ringing.adopted and ringing.call_id == first.call_id and ringing.outcome is None

    await env.double.run_to_end(first.call_id)
    done = await provider.place_call(request)
    assert done.adopted and done.call_id == first.call_id
    assert done.outcome is not None and done.outcome.outcome == Outcome.BUSY  # no wait needed
    assert len(successful_creates(env.double, to)) == 1


async def test_lost_answer_after_timeout_is_adopted_on_retry(env: Env) -> None:
    to = new_number()
    env.double.set_scenario(to, "timeout-once")
    env.double.slow_response_seconds = 1.5
    provider = make_provider(env, http_timeout_seconds=0.3)
    try:
        request = make_request(to)
        with pytest.raises(ProviderError):
            await provider.place_call(request)  # Twilio created the call; we never heard
        assert len(env.double.created_calls(to=to)) == 1
        retry = await provider.place_call(request)
        assert retry.adopted and retry.call_id == env.double.created_calls(to=to)[0].sid
        assert len(env.double.created_calls(to=to)) == 1
        assert len(env.double.create_requests(to)) == 1
    finally:
        await provider.aclose()


async def test_next_attempt_is_not_taken_for_the_previous_one(env: Env, provider: TwilioProvider) -> None:
    to = new_number()
    wf = "campaign-1/contact-redial"
    env.double.time_offset = timedelta(hours=-1)  # attempt 1 was an hour ago
    try:
        one = await provider.place_call(make_request(to, 1, wf, attempt_started_at=env.double.now()))
    finally:
        env.double.time_offset = timedelta(0)
    two_request = make_request(to, 2, wf)
    two = await provider.place_call(two_request)
    assert not two.adopted and two.call_id != one.call_id
    two_again = await provider.place_call(two_request)
    assert two_again.adopted and two_again.call_id == two.call_id
    assert [len(env.double.created_calls(wf=wf, attempt=n)) for n in (1, 2)] == [1, 1]


async def test_adoption_pages_through_the_list_and_takes_the_earliest(env: Env) -> None:
    to = new_number()
    provider = make_provider(env, list_page_size=1)
    try:
        request = make_request(to)
        first = await provider.place_call(request)
        async with httpx.AsyncClient(auth=(env.double.account_sid, env.double.auth_token)) as client:
            for _ in range(2):  # two later calls to the same number
                r = await client.post(
                    f"{env.api_url}/2010-04-01/Accounts/{env.double.account_sid}/Calls.json",
                    data={"To": to, "From": FROM, "Url": "https://agent.example.com/x"},
                )
                assert r.status_code == 201
        before = len(env.double.list_requests())
        again = await provider.place_call(request)
        assert again.adopted and again.call_id == first.call_id
        paged = [r for r in env.double.list_requests()[before:] if dict(r.query).get("Page", "0") != "0"]
        assert len(paged) >= 2  # the earliest call was on the third page of one
    finally:
        await provider.aclose()


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["rate-limited-once", "server-error-once"])
async def test_429_and_5xx_are_retryable(env: Env, provider: TwilioProvider, scenario: str) -> None:
    to = new_number()
    env.double.set_scenario(to, scenario)
    request = make_request(to)
    with pytest.raises(ProviderError) as info:
        await provider.place_call(request)
    assert not isinstance(info.value, ProviderAuthError)
    assert ("20429" in str(info.value)) == (scenario == "rate-limited-once")
    placed = await provider.place_call(request)
    assert not placed.adopted and placed.call_id.startswith("CA")
    assert [r.status for r in env.double.create_requests(to)] == [429 if "rate" in scenario else 500, 201]
    assert len(env.double.created_calls(to=to)) == 1


async def test_invalid_number_is_a_final_failed_outcome(env: Env, provider: TwilioProvider) -> None:
    to = new_number()
    env.double.set_scenario(to, "invalid")
    request = make_request(to)
    placed = await provider.place_call(request)
    assert placed.call_id == f"rejected:{request.idempotency_key}"
    outcome = placed.outcome
    assert outcome is not None and outcome.outcome == Outcome.FAILED
    assert outcome.hangup_cause == "INVALID_NUMBER"
    assert outcome.reason is not None and outcome.reason.startswith("twilio 21211:")
    assert to in outcome.reason
    assert env.double.created_calls(to=to) == []
    n = len(env.double.requests)
    assert await provider.fetch_call_status(placed.call_id, request) == outcome
    assert len(env.double.requests) == n  # answered without asking Twilio


async def test_non_e164_destination_is_refused_by_twilio(env: Env, provider: TwilioProvider) -> None:
    placed = await provider.place_call(make_request("5551234"))
    assert placed.outcome is not None and placed.outcome.hangup_cause == "INVALID_NUMBER"


async def test_bad_credentials_raise_auth_error(env: Env) -> None:
    provider = make_provider(env, auth_token="not-the-token")
    to = new_number()
    try:
        with pytest.raises(ProviderAuthError, match="20003"):
            await provider.place_call(make_request(to))
        with pytest.raises(ProviderAuthError):
            await provider.fetch_call_status("CA" + "0" * 32, make_request(to))
    finally:
        await provider.aclose()
    assert env.double.create_requests(to) == []
    assert env.double.requests[-1].status == 401


async def test_api_key_credentials(env: Env) -> None:
    provider = make_provider(env, auth_token=None, api_key=API_KEY, api_secret=API_SECRET)
    to = new_number()
    try:
        placed = await provider.place_call(make_request(to))
    finally:
        await provider.aclose()
    (create,) = env.double.create_requests(to)
    assert create.status == 201 and placed.call_id == env.double.created_calls(to=to)[0].sid
    assert base64.b64decode(create.headers["authorization"].split()[1]).decode() == f"{API_KEY}:{API_SECRET}"


async def test_unknown_account_is_a_configuration_error(env: Env) -> None:
    provider = make_provider(env, account_sid="AC" + "f" * 32, auth_token=None, api_key=API_KEY, api_secret=API_SECRET)
    try:
        with pytest.raises(ProviderConfigError):
            await provider.place_call(make_request(new_number()))
    finally:
        await provider.aclose()


async def test_network_error_is_retryable(env: Env) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = make_provider(env, api_base_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ProviderError, match="ConnectError"):
            await provider.place_call(make_request(new_number()))
    finally:
        await provider.aclose()


async def test_unknown_call_sid_reads_as_failed(env: Env, provider: TwilioProvider) -> None:
    status = await provider.fetch_call_status("CA" + "0" * 32, make_request(new_number()))
    assert status.outcome == Outcome.FAILED and "20404" in (status.reason or "")


# --- what the call carries ---------------------------------------------------------------------


async def test_agent_url_carries_the_attempt_and_variables(env: Env, provider: TwilioProvider) -> None:
    to = new_number()
    request = make_request(to, attempt=3, wf="campaign-1/contact 9")
    await provider.place_call(request)
    (create,) = env.double.create_requests(to)
    url = urlsplit(create.form_value("Url") or "")
    assert (url.scheme, url.netloc, url.path) == ("https", "agent.example.com", "/twiml/agent-7")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["wf"] == "campaign-1/contact 9" and query["attempt"] == "3"
    assert query["referenceId"] == "campaign-1/contact 9/attempt-3"
    assert query["campaignId"] == "campaign-1" and query["agentId"] == "agent-7"
    assert json.loads(query["vars"]) == {"name": "Zoë", "plan": "gold"}
    callback = create.form_value("StatusCallback") or ""
    assert "wf=campaign-1%2Fcontact%209&attempt=3" in callback
    assert parse_callback_query({k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}) == (
        "campaign-1/contact 9",
        3,
    )


async def test_twiml_template_is_escaped(env: Env) -> None:
    template = (
        '<Response><Connect><Stream url="wss://agent.example.com/{agent_id}">'
        '<Parameter name="vars" value="{variables_json}"/>'
        '<Parameter name="ref" value="{idempotency_key}"/>'
        "</Stream></Connect></Response>"
    )
    provider = make_provider(env, agent_url=None, twiml_template=template)
    to = new_number()
    variables = {"note": "say \"hi\" <loud> & 'clear'"}
    try:
        await provider.place_call(make_request(to, variables=variables))
    finally:
        await provider.aclose()
    (create,) = env.double.create_requests(to)
    assert create.form_value("Url") is None
    root = ET.fromstring(create.form_value("Twiml") or "")
    params = {p.get("name"): p.get("value") for p in root.iter("Parameter")}
    assert json.loads(params["vars"] or "") == variables
    assert params["ref"] == f"campaign-1/contact-{to[-4:]}/attempt-1"
    assert root.find("Connect/Stream").get("url") == "wss://agent.example.com/agent-7"


async def test_from_number_is_stable_per_contact(env: Env) -> None:
    numbers = ["+15005550001", "+15005550002", "+15005550003"]
    provider = make_provider(env, from_numbers=numbers)
    try:
        picks = {provider.from_number_for(make_request("+14155550000", wf=f"c/contact-{i}")) for i in range(30)}
        assert picks <= set(numbers) and len(picks) > 1
        r1 = make_request("+14155550000", 1, "c/contact-x")
        r2 = make_request("+14155550000", 2, "c/contact-x")
        assert provider.from_number_for(r1) == provider.from_number_for(r2)
        assert provider.from_number_for(make_request("+14155550000", from_number="+15005559999")) == "+15005559999"
    finally:
        await provider.aclose()


async def test_auto_advancing_double_delivers_signed_callbacks(env: Env) -> None:
    double = TwilioDouble(auto_advance_seconds=0.02, default_scenario="no-answer")
    env.receiver.tokens[double.account_sid] = double.auth_token
    async with serve_asgi(double.app) as api_url:
        provider = make_provider(
            env, account_sid=double.account_sid, auth_token=double.auth_token, api_base_url=api_url
        )
        try:
            placed = await provider.place_call(make_request(new_number()))
            await double.wait_until(
                lambda: any(r.outcome is not None and r.outcome.is_final for r in env.receiver.for_call(placed.call_id))
            )
            final = env.receiver.for_call(placed.call_id)[-1]
            assert final.valid and final.outcome is not None and final.outcome.outcome == Outcome.NO_ANSWER
            status = await provider.fetch_call_status(placed.call_id, make_request("+14155550000"))
            assert status.outcome == Outcome.NO_ANSWER
        finally:
            await provider.aclose()


# --- the double's list endpoint on the wire ------------------------------------------------------


async def test_double_list_filters_and_envelope(env: Env, provider: TwilioProvider) -> None:
    to = new_number()
    queued = await provider.place_call(make_request(to, 1, "c/list"))
    later = datetime.now(timezone.utc) + timedelta(seconds=30)  # so attempt 2 does not adopt attempt 1's call
    dialed = await provider.place_call(make_request(to, 2, "c/list", attempt_started_at=later))
    await env.double.advance(dialed.call_id)  # initiated: now it has a start time
    today = datetime.now(timezone.utc).date()
    base = f"{env.api_url}/2010-04-01/Accounts/{env.double.account_sid}/Calls.json"
    async with httpx.AsyncClient(auth=(env.double.account_sid, env.double.auth_token)) as client:
        # Twilio's documented spelling: StartTime>=YYYY-MM-DD (the key is "StartTime>").
        r = await client.get(f"{base}?To={to.replace('+', '%2B')}&StartTime>={today.isoformat()}")
        assert r.status_code == 200
        body = r.json()
        assert [c["sid"] for c in body["calls"]] == [dialed.call_id]
        assert {"page", "page_size", "start", "end", "uri", "first_page_uri", "next_page_uri"} <= set(body)
        r = await client.get(base, params={"To": to, "StartTime>": (today + timedelta(days=1)).isoformat()})
        assert r.json()["calls"] == []
        r = await client.get(base, params={"To": to, "Status": "queued", "PageSize": "1"})
        assert [c["sid"] for c in r.json()["calls"]] == [dialed.call_id]  # newest first
        assert r.json()["next_page_uri"] is not None
        r2 = await client.get(env.api_url + r.json()["next_page_uri"])
        assert [c["sid"] for c in r2.json()["calls"]] == [queued.call_id]
        assert r2.json()["next_page_uri"] is None
        r = await client.get(base, auth=(env.double.account_sid, "wrong"))
        assert r.status_code == 401 and r.json()["code"] == 20003


# --- signatures ----------------------------------------------------------------------------------


def test_signature_known_vector() -> None:
    # The example of Twilio's webhook security docs.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert verify_twilio_signature("12345", url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_signature_valid_forged_missing() -> None:
    token = "secret-token"
    url = "https://engine.example.com/callbacks/twilio?wf=c%2Fcontact-1&attempt=2"
    form = {"CallSid": "CA1", "CallStatus": "completed", "AnsweredBy": "human", "CallDuration": "12"}
    good = twilio_signature(token, url, form)
    assert verify_twilio_signature(token, url, form, good)
    assert not verify_twilio_signature("other-token", url, form, good)
    assert not verify_twilio_signature(token, url, {**form, "CallStatus": "busy"}, good)
    assert not verify_twilio_signature(token, url.replace("attempt=2", "attempt=3"), form, good)
    assert not verify_twilio_signature(token, url, form, twilio_signature("other-token", url, form))
    assert not verify_twilio_signature(token, url, form, None)
    assert not verify_twilio_signature(token, url, form, "")
    assert not verify_twilio_signature("", url, form, good)


async def test_receiver_rejects_forged_and_unsigned_callbacks(env: Env) -> None:
    url = build_status_callback_url(env.receiver.public_base_url, "c/forged", 1)
    form = {"CallSid": "CA" + "9" * 32, "AccountSid": env.double.account_sid, "CallStatus": "completed"}
    async with httpx.AsyncClient() as client:
        forged = await client.post(url, data=form, headers={"X-Twilio-Signature": twilio_signature("guess", url, form)})
        unsigned = await client.post(url, data=form)
        signed = await client.post(url, data=form, headers={"X-Twilio-Signature": env.double.sign(url, form)})
    assert (forged.status_code, unsigned.status_code, signed.status_code) == (403, 403, 204)
    mine = env.receiver.for_call(form["CallSid"])
    assert [r.valid for r in mine] == [False, False, True]
    assert mine[-1].outcome is not None and mine[-1].outcome.outcome == Outcome.COMPLETED


# --- pure mapping --------------------------------------------------------------------------------

MAPPING = [
    ("queued", None, None, (None, CallProgress.QUEUED, None)),
    ("initiated", None, None, (None, CallProgress.QUEUED, None)),
    ("ringing", None, None, (None, CallProgress.RINGING, None)),
    ("in-progress", "human", None, (None, CallProgress.IN_PROGRESS, None)),
    ("answered", None, None, (None, CallProgress.IN_PROGRESS, None)),
    ("completed", None, None, (Outcome.COMPLETED, None, "NORMAL_CLEARING")),
    ("completed", "human", 200, (Outcome.COMPLETED, None, "NORMAL_CLEARING")),
    ("completed", "unknown", None, (Outcome.COMPLETED, None, "NORMAL_CLEARING")),
    ("completed", "machine_start", None, (Outcome.VOICEMAIL, None, "NORMAL_CLEARING")),
    ("completed", "machine_end_beep", None, (Outcome.VOICEMAIL, None, "NORMAL_CLEARING")),
    ("completed", "machine_end_silence", None, (Outcome.VOICEMAIL, None, "NORMAL_CLEARING")),
    ("completed", "machine_end_other", None, (Outcome.VOICEMAIL, None, "NORMAL_CLEARING")),
    ("completed", "fax", None, (Outcome.VOICEMAIL, None, "NORMAL_CLEARING")),
    ("busy", None, 486, (Outcome.BUSY, None, "USER_BUSY")),
    ("no-answer", None, 487, (Outcome.NO_ANSWER, None, "NO_ANSWER")),
    ("canceled", None, None, (Outcome.CANCELED, None, "ORIGINATOR_CANCEL")),
    ("failed", None, None, (Outcome.FAILED, None, None)),
    ("failed", None, 404, (Outcome.FAILED, None, "INVALID_NUMBER")),
    ("failed", None, "484", (Outcome.FAILED, None, "INVALID_NUMBER")),
    ("failed", None, 604, (Outcome.FAILED, None, "INVALID_NUMBER")),
    ("failed", None, 603, (Outcome.FAILED, None, "CALL_REJECTED")),
    ("failed", None, 503, (Outcome.FAILED, None, "NETWORK_ERROR")),
    ("FAILED", None, 404, (Outcome.FAILED, None, "INVALID_NUMBER")),
    ("something-new", None, None, (None, None, None)),
    (None, None, None, (None, None, None)),
]


@pytest.mark.parametrize(("status", "answered_by", "sip", "expected"), MAPPING)
def test_map_twilio_status(status: str | None, answered_by: str | None, sip: Any, expected: tuple) -> None:
    assert map_twilio_status(status, answered_by, sip) == expected


def test_parse_twilio_callback() -> None:
    form = {
        "CallSid": "CA123",
        "AccountSid": "AC1",
        "CallStatus": "completed",
        "AnsweredBy": "machine_end_beep",
        "CallDuration": "31",
        "SipResponseCode": "200",
        "RecordingUrl": "https://api.twilio.com/rec/RE1",
        "Timestamp": "Tue, 10 Aug 2010 08:02:17 +0000",
        "SequenceNumber": "3",
    }
    outcome = parse_twilio_callback(form, attempt=2)
    assert outcome.model_dump() == {
        "call_id": "CA123",
        "attempt": 2,
        "outcome": Outcome.VOICEMAIL,
        "progress": None,
        "duration_seconds": 31.0,
        "hangup_cause": "NORMAL_CLEARING",
        "reason": "twilio status=completed answered_by=machine_end_beep sip=200",
        "answered_by": "machine_end_beep",
        "recording_url": "https://api.twilio.com/rec/RE1",
        "analysis": {},
        "ended_at": datetime(2010, 8, 10, 8, 2, 17, tzinfo=timezone.utc),
    }
    ringing = parse_twilio_callback({"CallSid": ["CA9"], "CallStatus": ["ringing"]})
    assert ringing.progress == CallProgress.RINGING and ringing.ended_at is None and not ringing.is_final
    with pytest.raises(ValueError):
        parse_twilio_callback({"CallStatus": "completed"})
    with pytest.raises(ValueError):
        parse_twilio_callback({"CallSid": "CA1", "CallStatus": "teleported"})
    with pytest.raises(ValueError):
        parse_callback_query({"wf": "x"})
    assert parse_form_body(b"A=1&B=%2B1+2&C=") == {"A": "1", "B": "+1 2", "C": ""}


# --- configuration -------------------------------------------------------------------------------


async def test_from_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch, env: Env) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", env.double.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", env.double.auth_token)
    monkeypatch.setenv("TWILIO_FROM_NUMBERS", f" {FROM} , +15005550007,")
    monkeypatch.setenv("TWILIO_API_BASE_URL", env.api_url + "/")
    monkeypatch.setenv("TWILIO_AGENT_URL", "https://agent.example.com/twiml")
    monkeypatch.setenv("PUBLIC_BASE_URL", env.receiver.public_base_url)
    monkeypatch.setenv("TWILIO_MACHINE_DETECTION", "Enable")
    monkeypatch.setenv("TWILIO_RING_TIMEOUT_SECONDS", "25")
    settings = TwilioSettings()
    assert settings.from_number_list() == [FROM, "+15005550007"]
    provider = TwilioProvider.from_settings(settings)
    to = new_number()
    try:
        placed = await provider.place_call(make_request(to, detect_voicemail=True))
    finally:
        await provider.aclose()
    (create,) = env.double.create_requests(to)
    assert placed.call_id == env.double.created_calls(to=to)[0].sid
    assert create.form_value("MachineDetection") == "Enable" and create.form_value("Timeout") == "25"
    assert create.form_value("From") in (FROM, "+15005550007")


def test_default_api_base_url_and_required_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_API_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert TwilioSettings().api_base_url == "https://api.twilio.com"
    with pytest.raises(ValueError, match="account_sid"):
        TwilioProvider.from_settings(TwilioSettings())
    with pytest.raises(ValueError, match="public_base_url"):
        TwilioProvider(account_sid="AC1", auth_token="t", public_base_url="", agent_url="https://a")
