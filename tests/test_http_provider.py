"""HttpAgentProvider against a small fake voice-agent platform, over real HTTP on loopback.

The platform honours Idempotency-Key, answers status requests, and posts HMAC-signed
callbacks to the callbackUrl it was given; a receiver (standing in for the API's callback
route) verifies them with `verify_hmac_callback` and parses them.
"""

from __future__ import annotations

import itertools
import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activities.providers.base import ProviderAuthError, ProviderError
from activities.providers.http_agent import (
    CALLBACK_PATH,
    parse_http_agent_callback,
    parse_reference_id,
    verify_hmac_callback,
)
from activities.providers.http_agent_provider import HttpAgentProvider
from activities.providers.http_agent_settings import HttpAgentSettings
from campaign_engine import signing
from campaign_engine.models import CallOutcome, CallProgress, CallRequest, Outcome
from tests.fakes.serve import serve_asgi

SECRET = "whsec_" + "a" * 24
TOKEN = "platform-token"
_numbers = itertools.count(1)


def new_number() -> str:
    return f"+4420795{next(_numbers):05d}"


@dataclass
class FakePlatform:
    """A voice-agent platform: POST /v1/calls, GET /v1/calls/{id}, signed callbacks."""

    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    scenarios: dict[str, str] = field(default_factory=dict)  # phone -> invalid | blocked | rate-limited

    def app(self) -> Starlette:
        async def create(request: Request) -> Response:
            raw = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append((headers, raw))
            if headers.get("authorization") != f"Bearer {TOKEN}":
                return JSONResponse({"success": False, "error": "UNAUTHORIZED", "message": "bad key"}, 401)
            body = json.loads(raw)
            key = headers.get("idempotency-key", "")
            if key in self.by_key:
                call_id = self.by_key[key]
                return JSONResponse(
                    {"callId": call_id, "status": self.calls[call_id]["status"]},
                    200,
                    headers={"Idempotent-Replayed": "true"},
                )
            scenario = self.scenarios.get(body["phoneNumber"])
            if scenario == "invalid":
                return JSONResponse(
                    {"success": False, "error": "INVALID_NUMBER", "message": "phoneNumber is not a valid number"}, 422
                )
            if scenario == "blocked":
                return JSONResponse(
                    {"success": False, "error": "DNC", "message": "number is on a do-not-call list"}, 400
                )
            if scenario == "rate-limited":
                return JSONResponse({"success": False, "error": "RATE_LIMIT_EXCEEDED", "message": "slow down"}, 429)
            call_id = "call_" + secrets.token_hex(8)
            self.calls[call_id] = {"body": body, "key": key, "status": "queued"}
            self.by_key[key] = call_id
            return JSONResponse({"data": {"call_id": call_id, "status": "queued"}}, 201)

        async def status(request: Request) -> Response:
            call = self.calls.get(request.path_params["call_id"])
            if call is None:
                return JSONResponse({"error": "NOT_FOUND"}, 404)
            return JSONResponse(
                {"call_id": request.path_params["call_id"], **call.get("report", {}), "status": call["status"]}
            )

        return Starlette(
            routes=[
                Route("/v1/calls", create, methods=["POST"]),
                Route("/v1/calls/{call_id}", status, methods=["GET"]),
            ]
        )

    async def post_callback(
        self,
        call_id: str,
        status: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> int:
        call = self.calls[call_id]
        call["status"] = status
        payload = {"callId": call_id, "referenceId": call["body"]["referenceId"], "callStatus": status, **extra}
        raw = json.dumps(payload).encode()
        signed = signing.signature_headers(secret, raw, timestamp)
        async with httpx.AsyncClient() as client:
            response = await client.post(
                call["body"]["callbackUrl"],
                content=body if body is not None else raw,
                headers={"Content-Type": "application/json", **(signed if headers is None else headers)},
            )
        return response.status_code


@dataclass
class Receiver:
    accepted: list[tuple[str, CallOutcome]] = field(default_factory=list)
    rejected: int = 0

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            raw = await request.body()
            if not verify_hmac_callback(
                SECRET,
                raw,
                request.headers.get("X-Signature-Timestamp"),
                request.headers.get("X-Signature"),
                now=time.time(),
            ):
                self.rejected += 1
                return Response(status_code=401)
            self.accepted.append(parse_http_agent_callback(json.loads(raw)))
            return Response(status_code=204)

        return Starlette(routes=[Route(CALLBACK_PATH, callback, methods=["POST"])])


@dataclass
class Env:
    platform: FakePlatform
    platform_url: str
    receiver: Receiver
    public_url: str


@pytest_asyncio.fixture(scope="module")
async def env():
    platform, receiver = FakePlatform(), Receiver()
    async with serve_asgi(platform.app()) as platform_url, serve_asgi(receiver.app()) as public_url:
        yield Env(platform, platform_url, receiver, public_url)


def make_provider(env: Env, **overrides: Any) -> HttpAgentProvider:
    params: dict[str, Any] = dict(
        url=f"{env.platform_url}/v1/calls",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Tenant": "acme"},
        status_url=f"{env.platform_url}/v1/calls/{{call_id}}",
        secret=SECRET,
        public_base_url=env.public_url,
    )
    params.update(overrides)
    return HttpAgentProvider(**params)


@pytest_asyncio.fixture
async def provider(env: Env):
    p = make_provider(env)
    yield p
    await p.aclose()


def make_request(to: str, attempt: int = 1, **overrides: Any) -> CallRequest:
    wf = f"campaign-9/contact-{to[-5:]}"
    params: dict[str, Any] = dict(
        idempotency_key=f"{wf}/attempt-{attempt}",
        contact_workflow_id=wf,
        attempt=attempt,
        campaign_id="campaign-9",
        tenant_id="tenant-b",
        agent_id="agent-3",
        contact_key=0,
        to=to,
        from_number="+442079460000",
        variables={"name": "Ada", "balance": 12.5},
        detect_voicemail=True,
        attempt_started_at=datetime.now(timezone.utc),
    )
    params.update(overrides)
    return CallRequest(**params)


# --- placing calls -----------------------------------------------------------------------------


async def test_place_call_sends_idempotency_key_headers_and_body(env: Env, provider: HttpAgentProvider) -> None:
    to = new_number()
    request = make_request(to)
    placed = await provider.place_call(request)
    assert placed.provider == "http" and placed.call_id.startswith("call_") and not placed.adopted
    assert placed.outcome is None
    headers, raw = env.platform.requests[-1]
    assert headers["idempotency-key"] == request.idempotency_key
    assert headers["authorization"] == f"Bearer {TOKEN}" and headers["x-tenant"] == "acme"
    assert json.loads(raw) == {
        "agentId": "agent-3",
        "phoneNumber": to,
        "fromNumber": "+442079460000",
        "variables": {"name": "Ada", "balance": 12.5},
        "callbackUrl": f"{env.public_url}{CALLBACK_PATH}",
        "referenceId": request.idempotency_key,
        "detectVoicemail": True,
    }
    # Our request is signed with the shared secret too.
    assert signing.verify_signature(SECRET, raw, headers["x-signature-timestamp"], headers["x-signature"])


async def test_retry_sends_the_same_key_and_adopts_the_call(env: Env, provider: HttpAgentProvider) -> None:
    to = new_number()
    request = make_request(to)
    first = await provider.place_call(request)
    second = await provider.place_call(request)
    assert second.adopted and second.call_id == first.call_id
    assert [c for c in env.platform.calls.values() if c["body"]["phoneNumber"] == to] == [
        env.platform.calls[first.call_id]
    ]
    other = await provider.place_call(make_request(to, attempt=2))
    assert not other.adopted and other.call_id != first.call_id


async def test_invalid_and_refused_numbers_are_final_failures(env: Env, provider: HttpAgentProvider) -> None:
    invalid, blocked = new_number(), new_number()
    env.platform.scenarios.update({invalid: "invalid", blocked: "blocked"})
    placed = await provider.place_call(make_request(invalid))
    assert placed.call_id == f"rejected:{make_request(invalid).idempotency_key}"
    assert placed.outcome is not None and placed.outcome.outcome == Outcome.FAILED
    assert placed.outcome.hangup_cause == "INVALID_NUMBER" and "422" in (placed.outcome.reason or "")
    refused = await provider.place_call(make_request(blocked))
    assert refused.outcome is not None and refused.outcome.hangup_cause == "CALL_REJECTED"
    assert "do-not-call" in (refused.outcome.reason or "")
    assert await provider.fetch_call_status(placed.call_id, make_request(invalid)) == placed.outcome


async def test_rate_limit_and_network_errors_are_retryable(env: Env, provider: HttpAgentProvider) -> None:
    to = new_number()
    env.platform.scenarios[to] = "rate-limited"
    with pytest.raises(ProviderError, match="429") as info:
        await provider.place_call(make_request(to))
    assert not isinstance(info.value, ProviderAuthError)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = make_provider(env, url=f"http://127.0.0.1:{port}/v1/calls")
    try:
        with pytest.raises(ProviderError, match="ConnectError"):
            await dead.place_call(make_request(new_number()))
    finally:
        await dead.aclose()


async def test_bad_credentials_raise_auth_error(env: Env) -> None:
    p = make_provider(env, headers={"Authorization": "Bearer wrong"})
    try:
        with pytest.raises(ProviderAuthError, match="401"):
            await p.place_call(make_request(new_number()))
    finally:
        await p.aclose()


async def test_fetch_call_status_reads_any_spelling(env: Env, provider: HttpAgentProvider) -> None:
    request = make_request(new_number())
    placed = await provider.place_call(request)
    status = await provider.fetch_call_status(placed.call_id, request)
    assert status.progress == CallProgress.QUEUED and not status.is_final
    env.platform.calls[placed.call_id]["status"] = "in_progress"
    assert (await provider.fetch_call_status(placed.call_id, request)).progress == CallProgress.IN_PROGRESS
    env.platform.calls[placed.call_id]["status"] = "no_answer"
    env.platform.calls[placed.call_id]["report"] = {"call_duration": "0"}
    final = await provider.fetch_call_status(placed.call_id, request)
    assert final.outcome == Outcome.NO_ANSWER and final.hangup_cause == "NO_ANSWER"
    assert final.duration_seconds == 0.0 and final.attempt == 1
    missing = await provider.fetch_call_status("call_unknown", request)
    assert missing.outcome == Outcome.FAILED
    no_status_url = make_provider(env, status_url=None)
    try:
        unknown = await no_status_url.fetch_call_status(placed.call_id, request)
        assert not unknown.is_final and unknown.progress is None
    finally:
        await no_status_url.aclose()


# --- callbacks ---------------------------------------------------------------------------------


async def test_signed_callback_is_accepted_and_parsed(env: Env, provider: HttpAgentProvider) -> None:
    request = make_request(new_number(), attempt=2)
    placed = await provider.place_call(request)
    code = await env.platform.post_callback(
        placed.call_id,
        "completed",
        callDuration=63,
        recordingUrl="https://rec.example.com/r/1.mp3",
        postCallAnalysisResults={"interested": True, "callback_at": "Thursday 3pm"},
    )
    assert code == 204
    reference_id, outcome = env.receiver.accepted[-1]
    assert reference_id == request.idempotency_key
    assert parse_reference_id(reference_id) == (request.contact_workflow_id, 2)
    assert outcome.call_id == placed.call_id and outcome.attempt == 2
    assert outcome.outcome == Outcome.COMPLETED and outcome.hangup_cause == "NORMAL_CLEARING"
    assert outcome.duration_seconds == 63.0 and outcome.recording_url == "https://rec.example.com/r/1.mp3"
    assert outcome.analysis == {"interested": True, "callback_at": "Thursday 3pm"}


async def test_forged_tampered_replayed_and_unsigned_callbacks_are_rejected(
    env: Env, provider: HttpAgentProvider
) -> None:
    placed = await provider.place_call(make_request(new_number()))
    accepted, rejected = len(env.receiver.accepted), env.receiver.rejected
    now = int(time.time())
    forged = await env.platform.post_callback(placed.call_id, "busy", secret="not-the-secret")
    good_sig = signing.signature_headers(SECRET, b'{"callStatus": "busy"}', now)
    tampered = await env.platform.post_callback(placed.call_id, "completed", headers=good_sig)
    replayed = await env.platform.post_callback(placed.call_id, "busy", timestamp=now - 301)
    future = await env.platform.post_callback(placed.call_id, "busy", timestamp=now + 400)
    unsigned = await env.platform.post_callback(placed.call_id, "busy", headers={})
    assert (forged, tampered, replayed, future, unsigned) == (401, 401, 401, 401, 401)
    assert len(env.receiver.accepted) == accepted and env.receiver.rejected == rejected + 5
    # Inside the window it is accepted.
    assert await env.platform.post_callback(placed.call_id, "busy", timestamp=now - 200) == 204
    assert env.receiver.accepted[-1][1].outcome == Outcome.BUSY


def test_verify_signature_rules() -> None:
    body = b'{"callId":"c1","callStatus":"failed"}'
    ts = 1_700_000_000
    header = signing.sign_payload(SECRET, body, ts)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert verify_hmac_callback(SECRET, body, str(ts), header, now=ts + 10)
    assert verify_hmac_callback(SECRET, body, str(ts), header, now=datetime.fromtimestamp(ts, timezone.utc))
    assert not verify_hmac_callback(SECRET, body + b" ", str(ts), header, now=ts)
    assert not verify_hmac_callback(SECRET, body, str(ts + 1), header, now=ts)
    assert not verify_hmac_callback(SECRET, body, str(ts), header, now=ts + 301)
    assert verify_hmac_callback(SECRET, body, str(ts), header, now=ts + 301, tolerance_seconds=600)
    assert not verify_hmac_callback(SECRET, body, str(ts), header.removeprefix("v1="), now=ts)  # no scheme
    assert not verify_hmac_callback(SECRET, body, str(ts), "v0=" + header[3:], now=ts)
    assert not verify_hmac_callback(SECRET, body, "yesterday", header, now=ts)
    assert not verify_hmac_callback(SECRET, body, None, header, now=ts)
    assert not verify_hmac_callback("", body, str(ts), header, now=ts)
    # Rotation: the sender signs with the old and the new secret.
    rotated = f"{signing.sign_payload('old-secret', body, ts)}, {header}"
    assert verify_hmac_callback(SECRET, body, str(ts), rotated, now=ts)
    assert signing.compute_digest(SECRET, body, ts) == header[3:]


CALLBACKS = [
    ({"callStatus": "no-answer"}, Outcome.NO_ANSWER, None, "NO_ANSWER"),
    ({"callStatus": "no_answer"}, Outcome.NO_ANSWER, None, "NO_ANSWER"),
    ({"status": "No Answer"}, Outcome.NO_ANSWER, None, "NO_ANSWER"),
    ({"callStatus": "completed"}, Outcome.COMPLETED, None, "NORMAL_CLEARING"),
    ({"callStatus": "busy"}, Outcome.BUSY, None, "USER_BUSY"),
    ({"callStatus": "failed", "hangupCause": "invalid_number"}, Outcome.FAILED, None, "INVALID_NUMBER"),
    ({"callStatus": "failed"}, Outcome.FAILED, None, None),
    ({"callStatus": "voicemail"}, Outcome.VOICEMAIL, None, "NORMAL_CLEARING"),
    ({"callStatus": "canceled"}, Outcome.CANCELED, None, "ORIGINATOR_CANCEL"),
    ({"call_status": "cancelled"}, Outcome.CANCELED, None, "ORIGINATOR_CANCEL"),
    ({"callStatus": "ringing"}, None, CallProgress.RINGING, None),
    ({"callStatus": "in-progress"}, None, CallProgress.IN_PROGRESS, None),
]


@pytest.mark.parametrize(("fields", "outcome", "progress", "hangup"), CALLBACKS)
def test_parse_http_agent_callback_spellings(
    fields: dict[str, Any], outcome: Outcome | None, progress: CallProgress | None, hangup: str | None
) -> None:
    reference_id, parsed = parse_http_agent_callback({"callId": "c-1", "referenceId": "wf-a/attempt-3", **fields})
    assert reference_id == "wf-a/attempt-3"
    assert (parsed.outcome, parsed.progress, parsed.hangup_cause) == (outcome, progress, hangup)
    assert parsed.call_id == "c-1" and parsed.attempt == 3


def test_parse_http_agent_callback_fields_and_errors() -> None:
    ref, outcome = parse_http_agent_callback(
        {
            "data": {
                "call_id": "c-2",
                "reference_id": "campaign-1/contact-4/attempt-1",
                "status": "completed",
                "duration": "12.5",
                "callRecordingUrl": "https://rec/2",
                "analysis": "positive",
                "answeredBy": "human",
                "endedAt": "2024-01-17T14:00:00Z",
            }
        }
    )
    assert ref == "campaign-1/contact-4/attempt-1" and outcome.call_id == "c-2" and outcome.attempt == 1
    assert outcome.duration_seconds == 12.5 and outcome.recording_url == "https://rec/2"
    assert outcome.analysis == {"value": "positive"} and outcome.answered_by == "human"
    assert outcome.ended_at == datetime(2024, 1, 17, 14, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="referenceId"):
        parse_http_agent_callback({"callId": "c", "callStatus": "completed"})
    with pytest.raises(ValueError, match="unknown"):
        parse_http_agent_callback({"referenceId": "w/attempt-1", "callStatus": "teleported"})
    with pytest.raises(ValueError):
        parse_reference_id("no-attempt-here")


# --- configuration -------------------------------------------------------------------------------


async def test_from_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch, env: Env) -> None:
    monkeypatch.setenv("HTTP_PROVIDER_URL", f"{env.platform_url}/v1/calls")
    monkeypatch.setenv("HTTP_PROVIDER_HEADERS", json.dumps({"Authorization": f"Bearer {TOKEN}"}))
    monkeypatch.setenv("HTTP_PROVIDER_STATUS_URL", f"{env.platform_url}/v1/calls/{{call_id}}")
    monkeypatch.setenv("HTTP_PROVIDER_SECRET", SECRET)
    monkeypatch.setenv("PUBLIC_BASE_URL", env.public_url + "/")
    monkeypatch.delenv("HTTP_PROVIDER_CALLBACK_URL", raising=False)
    p = HttpAgentProvider.from_settings()
    try:
        assert p.callback_url == f"{env.public_url}{CALLBACK_PATH}"
        request = make_request(new_number())
        placed = await p.place_call(request)
        assert (await p.fetch_call_status(placed.call_id, request)).progress == CallProgress.QUEUED
    finally:
        await p.aclose()
    monkeypatch.setenv("HTTP_PROVIDER_HEADERS", "[1, 2]")
    with pytest.raises(ValueError):
        HttpAgentSettings()
