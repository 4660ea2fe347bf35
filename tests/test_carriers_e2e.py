"""Real carriers end to end: the API on real HTTP, a worker, the Temporal dev server, and the
Twilio REST double (tests/fakes/twilio_double.py) served on loopback.

The engine runs with TELEPHONY_PROVIDER=twilio and TWILIO_API_BASE_URL pointing at the double;
PUBLIC_BASE_URL is the API's own address (its socket is bound before anything starts), so the
double's signed status callbacks reach our /callbacks/twilio exactly as Twilio's would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.main import create_app
from campaign_engine.ids import campaign_workflow_id, contact_workflow_id
from campaign_engine.models import CampaignStatus, ContactState, Outcome
from campaign_engine.signing import signature_headers, verify_signature
from tests.conftest import API_KEY, engine_settings
from tests.fakes.serve import base_url_of, bind_loopback, serve_asgi
from tests.fakes.twilio_double import TwilioDouble, twilio_signature
from tests.helpers import campaign_rows, wait_for
from worker import running_worker
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow

REPO = Path(__file__).resolve().parents[1]
FROM = "+15005550006"
AGENT_URL = "https://agent.example.com/twiml/{agent_id}"
WEBHOOK_SECRET = "whsec-acme-e2e"


def number(block: int, n: int) -> str:
    """Valid Indian mobile numbers (the API validates them), one block per test."""
    return f"+9197{block:03d}{n:05d}"


# --- the engine on the double --------------------------------------------------------------------


@dataclass
class CarrierEngine:
    base_url: str
    http: httpx.AsyncClient
    client: object
    settings: object
    double: TwilioDouble

    def campaign(self, campaign_id: str):
        return self.client.get_workflow_handle_for(CampaignWorkflow.run, campaign_workflow_id("acme", campaign_id))

    def contact(self, campaign_id: str, key: int):
        wf = contact_workflow_id(campaign_workflow_id("acme", campaign_id), key)
        return self.client.get_workflow_handle_for(ContactCallWorkflow.run, wf)

    async def upload(self, phones: list[str], **extra) -> str:
        body = {
            "campaignName": "Carrier e2e",
            "agentId": "agent-7",
            "contacts": [
                {"phone_number": p, "name": f"Person {i}", "custom_data": {"row": i, "plan": "gold"}}
                for i, p in enumerate(phones)
            ],
            **extra,
        }
        resp = await self.http.post("/uploadCampaignDataAndRun", json=body, headers={"x-api-key": API_KEY})
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]["campaign"]["campaignId"]

    async def progress(self, campaign_id: str):
        return await self.campaign(campaign_id).query(CampaignWorkflow.progress)

    async def wait_status(self, campaign_id: str, status: CampaignStatus, timeout: float = 30):
        return await wait_for(lambda: self.progress(campaign_id), lambda p: p.status == status,
                              timeout=timeout, what=f"campaign {status.value}")


@asynccontextmanager
async def served_double(**options):
    double = TwilioDouble(**options)
    async with serve_asgi(double.app) as url:
        yield double, url


@asynccontextmanager
async def carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double: TwilioDouble, double_url: str,
                         *, worker: bool = True, **env: str):
    """API (+ worker) with TELEPHONY_PROVIDER=twilio on the double. Twilio's settings come from
    the process environment (TwilioSettings), hence monkeypatch."""
    sock = bind_loopback()
    public_url = base_url_of(sock)
    values = {
        "TELEPHONY_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": double.account_sid,
        "TWILIO_AUTH_TOKEN": double.auth_token,
        "TWILIO_FROM_NUMBERS": FROM,
        "TWILIO_API_BASE_URL": double_url,
        "TWILIO_AGENT_URL": AGENT_URL,
        "TWILIO_POLL_AFTER_SECONDS": "300",
        "PUBLIC_BASE_URL": public_url,
        "WEBHOOK_SECRETS": f"acme:{WEBHOOK_SECRET},globex:other-secret",
        # The test receivers listen on loopback over plain http: allowed here, never by default.
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        # A real carrier calls only inside the numbers' legal hours: off here, or these tests
        # would pass only in the daytime of India (tests/test_compliance_legal_hours.py has them).
        "LEGAL_HOURS": "off",
        **env,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = engine_settings(dev_env, task_queue, carrier_db,
                               TELEPHONY_PROVIDER=values["TELEPHONY_PROVIDER"], PUBLIC_BASE_URL=public_url,
                               LEGAL_HOURS=values["LEGAL_HOURS"])
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        if worker:
            await stack.enter_async_context(running_worker(dev_env.client, settings))
        await stack.enter_async_context(serve_asgi(create_app(settings), lifespan="on", sock=sock))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=public_url, timeout=30))
        yield CarrierEngine(public_url, http, dev_env.client, settings, double)


def fetches(double: TwilioDouble) -> list:
    """GET Calls/{sid}.json: the engine asking for a call's status (polling)."""
    return [r for r in double.requests if r.method == "GET" and "/Calls/" in r.path]


def closed_port_url() -> str:
    sock = bind_loopback()
    url = base_url_of(sock)
    sock.close()
    return f"{url}/hooks"


# --- (a) every outcome through signed status callbacks ---------------------------------------------

# scenario -> (disposition, hangup cause, calls with redial on: 2 calls at most, 1 s apart).
# (1 s: sooner than the adapter's clock-skew window; the redial still dials, because
# the earlier attempt's call id is excluded from adoption.)
SCENARIOS = {
    "answered": (Outcome.COMPLETED, "NORMAL_CLEARING", 1),
    "machine": (Outcome.VOICEMAIL, "NORMAL_CLEARING", 1),  # voicemail is not redialled
    "busy": (Outcome.BUSY, "USER_BUSY", 2),
    "no-answer": (Outcome.NO_ANSWER, "NO_ANSWER", 2),
    "failed": (Outcome.FAILED, "NETWORK_ERROR", 2),  # SIP 503
    "unallocated": (Outcome.FAILED, "INVALID_NUMBER", 1),  # SIP 404: never redialled
    "invalid": (Outcome.FAILED, "INVALID_NUMBER", 0),  # create refused, 21211: no call at all
}


async def test_twilio_outcomes_arrive_by_signed_callbacks(dev_env, task_queue, carrier_db, monkeypatch):
    async with served_double(auto_advance_seconds=0.05) as (double, url):
        phones = {name: number(1, i) for i, name in enumerate(SCENARIOS)}
        for name, phone in phones.items():
            double.set_scenario(phone, name)
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url) as eng:
            # The customer's webhook receiver is down for good: nothing waits on it.
            cid = await eng.upload(
                list(phones.values()),
                redialConfig={"enabled": True, "maxAttempts": 2, "retryIntervals": [1]},
                notificationWebhookUrl=closed_port_url(),
            )
            progress = await eng.wait_status(cid, CampaignStatus.COMPLETED)

            for key, (name, phone) in enumerate(phones.items()):
                disposition, hangup, calls = SCENARIOS[name]
                summary = (await campaign_rows("acme", cid))[key]
                assert (summary.state, summary.disposition) == (ContactState.DONE, disposition), name
                assert summary.attempts == max(calls, 1), name
                status = await eng.contact(cid, key).query(ContactCallWorkflow.status)
                created = double.created_calls(to=phone)
                assert len(created) == calls, name
                for record, call in zip(status.attempts, created, strict=False):
                    # The outcome is the one of the call we placed for that attempt.
                    assert call.callback_query()["attempt"] == str(record.attempt)
                    assert record.call_id == call.sid and record.outcome == disposition, name
                    assert record.hangup_cause == hangup, name
                    assert call.machine_detection == "DetectMessageEnd"
                if name == "invalid":
                    assert [r.status for r in double.create_requests(phone)] == [400]
                    assert "21211" in (status.attempts[0].reason or "")

            # Every outcome came from a callback (no status was polled), every callback was
            # accepted, ringing and answered progress included.
            assert fetches(double) == []
            assert double.callbacks and {c.status_code for c in double.callbacks} == {200}
            answered = double.created_calls(to=phones["answered"])[0]
            assert [c.params["CallStatus"] for c in answered.callbacks] == [
                "initiated", "ringing", "in-progress", "completed"]
            machine = double.created_calls(to=phones["machine"])[0]
            assert machine.callbacks[-1].params["AnsweredBy"] == "machine_end_beep"
            assert progress.outcome_counts == {"completed": 1, "voicemail": 1, "busy": 2, "no-answer": 2,
                                               "failed": 4}


# --- (b) forged and replayed callbacks --------------------------------------------------------------


async def test_forged_and_replayed_callbacks_are_rejected(dev_env, task_queue, carrier_db, monkeypatch):
    agent_secret = "agent-shared-secret"
    async with served_double() as (double, url):  # calls move only when the test says so
        phone = number(2, 1)
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url,
                                  HTTP_PROVIDER_SECRET=agent_secret) as eng:
            cid = await eng.upload([phone])
            await double.wait_until(lambda: bool(double.created_calls(to=phone)), timeout=20)
            call = double.created_calls(to=phone)[0]
            wf, attempt = call.callback_query()["wf"], call.callback_query()["attempt"]
            callback_url = call.status_callback
            await wait_for(lambda: eng.contact(cid, 0).query(ContactCallWorkflow.status),
                           lambda s: bool(s.attempts), timeout=10, what="the attempt recorded")
            assert callback_url.startswith(eng.base_url) and attempt == "1"
            path = callback_url[len(eng.base_url):]
            forged = {"CallSid": call.sid, "AccountSid": double.account_sid, "From": FROM, "To": phone,
                      "CallStatus": "busy", "CallDuration": "0", "Direction": "outbound-api"}

            async def post_twilio(target: str, params: dict, signature: str | None):
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                if signature is not None:
                    headers["X-Twilio-Signature"] = signature
                return await eng.http.post(target, content=urlencode(params), headers=headers)

            other_url = callback_url.replace("attempt=1", "attempt=2")
            rejected = [
                await post_twilio(path, forged, None),  # unsigned
                await post_twilio(path, forged, twilio_signature("not-the-token", callback_url, forged)),
                # signed for another URL (another attempt) and replayed on this one
                await post_twilio(path, forged, twilio_signature(double.auth_token, other_url, forged)),
            ]
            # The HTTP-agent route: a wrong secret, and a correctly signed callback replayed
            # an hour later (outside the 5 minute window).
            agent_body = json.dumps({"referenceId": f"{wf}/attempt-1", "callId": call.sid,
                                     "callStatus": "busy"}).encode()
            for secret, ts in (("wrong-secret", None), (agent_secret, int(time.time()) - 3600)):
                rejected.append(await eng.http.post(
                    "/callbacks/http-agent", content=agent_body,
                    headers={"Content-Type": "application/json", **signature_headers(secret, agent_body, ts)}))
            assert [r.status_code for r in rejected] == [403] * 5, [r.text for r in rejected]
            # A correctly signed progress event passes (the route and its secret work).
            ringing = json.dumps({"referenceId": f"{wf}/attempt-1", "callId": call.sid,
                                  "callStatus": "ringing"}).encode()
            ok = await eng.http.post("/callbacks/http-agent", content=ringing,
                                     headers={"Content-Type": "application/json",
                                              **signature_headers(agent_secret, ringing)})
            assert ok.status_code == 200, ok.text

            # No effect: the contact still waits for its call's real outcome.
            status = await eng.contact(cid, 0).query(ContactCallWorkflow.status)
            assert status.state == ContactState.DIALING and status.attempts[0].outcome is None
            assert (await eng.progress(cid)).outcome_counts == {}

            await double.run_to_end(call.sid)  # the real, signed callbacks
            progress = await eng.wait_status(cid, CampaignStatus.COMPLETED)
            assert (await campaign_rows("acme", cid))[0].disposition == Outcome.COMPLETED

            # The real final callback, tampered with: 403. Replayed as is: a duplicate, 200
            # (so Twilio stops retrying) and no effect.
            final = call.callbacks[-1]
            assert final.params["CallStatus"] == "completed" and final.status_code == 200
            tampered = dict(final.params, CallStatus="no-answer")
            assert (await post_twilio(path, tampered, final.signature)).status_code == 403
            again = await post_twilio(path, final.params, final.signature)
            assert again.status_code == 200, again.text
            progress = await eng.progress(cid)
            assert progress.outcome_counts == {"completed": 1} and (await campaign_rows("acme", cid))[0].attempts == 1
            status = await eng.contact(cid, 0).query(ContactCallWorkflow.status)
            assert [(a.call_id, a.outcome) for a in status.attempts] == [(call.sid, Outcome.COMPLETED)]


# --- (c) lost callbacks --------------------------------------------------------------------------


async def test_lost_callbacks_are_recovered_by_polling(dev_env, task_queue, carrier_db, monkeypatch):
    async with served_double(auto_advance_seconds=0.05) as (double, url):
        lost: list[dict] = []

        async def lose(call, url, params):  # the double's callbacks never leave it
            lost.append(params)

        monkeypatch.setattr(double, "_deliver", lose)
        phones = {number(3, 1): ("answered", Outcome.COMPLETED), number(3, 2): ("busy", Outcome.BUSY)}
        for phone, (scenario, _) in phones.items():
            double.set_scenario(phone, scenario)
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url,
                                  TWILIO_POLL_AFTER_SECONDS="1") as eng:
            cid = await eng.upload(list(phones))
            await eng.wait_status(cid, CampaignStatus.COMPLETED, timeout=30)
            assert lost and double.callbacks == []
            for key, (phone, (_, outcome)) in enumerate(phones.items()):
                assert (await campaign_rows("acme", cid))[key].disposition == outcome
                (call,) = double.created_calls(to=phone)
                assert any(r.path.endswith(f"/Calls/{call.sid}.json") for r in fetches(double))
                status = await eng.contact(cid, key).query(ContactCallWorkflow.status)
                assert status.attempts[0].call_id == call.sid


# --- (d) a worker killed between the create and its answer -----------------------------------------


async def test_worker_killed_after_create_dials_once(dev_env, task_queue, carrier_db, monkeypatch, tmp_path):
    # The double creates the call at once but answers the create only after 8 s: the worker
    # is SIGKILLed in between. The activity's 30 s start-to-close timeout then lets the
    # retry run on a fresh worker, which must adopt the call instead of dialing again.
    async with served_double(auto_advance_seconds=0.05, slow_response_seconds=8) as (double, url):
        phone = number(4, 1)
        double.set_scenario(phone, "timeout-once")
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url, worker=False) as eng:
            env = dict(os.environ)
            env.update(TEMPORAL_ADDRESS=eng.settings.resolved_temporal_address,
                       TEMPORAL_TASK_QUEUE=task_queue, SIMULATED_CARRIER_DB=str(carrier_db),
                       CAMPAIGN_DATA_DIR=str(tmp_path))
            log = open(tmp_path / "worker.log", "wb")
            proc = subprocess.Popen([sys.executable, "worker.py"], cwd=REPO, env=env, stdout=log, stderr=log)
            try:
                cid = await eng.upload([phone])
                await double.wait_until(lambda: bool(double.created_calls(to=phone)), timeout=30)
                os.kill(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait, 10)
            finally:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                log.close()
            (create,) = double.create_requests(phone)
            assert create.status == 0  # the worker died before Twilio's answer reached it
            (call,) = double.created_calls(to=phone)
            lists_before = len(double.list_requests())

            # (Queries would wait on the dead worker's sticky queue: wait on the results.)
            async with running_worker(eng.client, eng.settings):
                summary = await asyncio.wait_for(eng.campaign(cid).result(), 60)
                status = await asyncio.wait_for(eng.contact(cid, 0).result(), 10)

            assert len(double.create_requests(phone)) == 1  # never dialed twice
            assert double.created_calls(to=phone) == [call]
            assert len(double.list_requests()) > lists_before  # the retry looked for the call
            assert summary.by_disposition == {"completed": 1} and summary.calls_placed == 1
            assert [(a.attempt, a.call_id, a.outcome) for a in status.attempts] == [(1, call.sid, Outcome.COMPLETED)]


# --- (e) customer webhooks ---------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """A customer's endpoint that fails the first two tries of every delivery."""

    secret: str
    fail_first: int = 2
    requests: list[dict] = field(default_factory=list)
    processed: dict[str, dict] = field(default_factory=dict)  # X-Webhook-Id -> document (deduped)
    tries: Counter = field(default_factory=Counter)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            hid = request.headers.get("X-Webhook-Id", "")
            ts, sig = request.headers.get("X-Signature-Timestamp"), request.headers.get("X-Signature")
            valid = verify_signature(self.secret, body, ts, sig)
            self.tries[hid] += 1
            status = 500 if self.tries[hid] <= self.fail_first else 200
            self.requests.append({"id": hid, "event": request.headers.get("X-Webhook-Event"), "valid": valid,
                                  "status": status, "at": time.time(), "body": body, "ts": ts, "sig": sig,
                                  "try": request.headers.get("X-Webhook-Attempt")})
            if status == 200 and valid and hid not in self.processed:
                self.processed[hid] = json.loads(body)
            return Response(status_code=status)

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])


async def test_customer_webhooks_signed_retried_and_deduplicable(dev_env, task_queue, carrier_db, monkeypatch):
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    async with served_double(auto_advance_seconds=0.05) as (double, url), \
            serve_asgi(receiver.app()) as hooks_url:
        answered, busy = number(5, 1), number(5, 2)
        double.set_scenario(busy, "busy")
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url) as eng:
            cid = await eng.upload(
                [answered, busy],
                redialConfig={"enabled": True, "maxAttempts": 2, "retryIntervals": [1]},
                notificationWebhookUrl=f"{hooks_url}/hooks",
            )
            camp_wf = campaign_workflow_id("acme", cid)
            ids = {
                f"{contact_workflow_id(camp_wf, 0)}/attempt-1",
                f"{contact_workflow_id(camp_wf, 1)}/attempt-1",
                f"{contact_workflow_id(camp_wf, 1)}/attempt-2",
                f"{camp_wf}/completed",
            }
            async def delivered() -> set[str]:
                return set(receiver.processed)

            await wait_for(delivered, lambda got: got == ids, timeout=30, what="every webhook delivered")
            progress = await eng.progress(cid)
            assert progress.status == CampaignStatus.COMPLETED

        # Signed, retried after two failures, and one document per id for the receiver.
        assert all(r["valid"] for r in receiver.requests)
        sample = receiver.requests[-1]
        assert not verify_signature("another-secret", sample["body"], sample["ts"], sample["sig"])
        assert receiver.tries == Counter({i: 3 for i in ids})
        for hid in ids:
            tries = [r for r in receiver.requests if r["id"] == hid]
            assert [(r["status"], r["try"]) for r in tries] == [(500, "1"), (500, "2"), (200, "3")]
            assert len({r["body"] for r in tries}) == 1  # the same document every time

        calls = {(c.to, c.callback_query()["attempt"]): c.sid for c in double.created_calls()}
        first = receiver.processed[f"{contact_workflow_id(camp_wf, 0)}/attempt-1"]
        assert first["event"] == "call.ended" and first["callStatus"] == "completed"
        assert first["callId"] == calls[(answered, "1")] and first["callDuration"] == 42
        assert first["customerSpecificdetails"] == {
            "name": "Person 0", "phoneNumber": answered, "email": None,
            "customData": {"row": 0, "plan": "gold"}, "campaignId": cid}
        assert first["conversationLogs"] == [] and first["postCallAnalysisResults"] == {}
        assert (first["attempt"], first["campaignId"], first["isFinalAttempt"]) == (1, cid, True)
        assert first["referenceId"] == f"{contact_workflow_id(camp_wf, 0)}/attempt-1"
        for n in (1, 2):
            doc = receiver.processed[f"{contact_workflow_id(camp_wf, 1)}/attempt-{n}"]
            assert (doc["callStatus"], doc["attempt"], doc["callId"]) == ("busy", n, calls[(busy, str(n))])
            assert doc["isFinalAttempt"] is (n == 2) and (doc["nextCallAt"] is None) is (n == 2)
        done = receiver.processed[f"{camp_wf}/completed"]
        assert done["event"] == "campaign.completed" and done["status"] == "completed"
        assert (done["campaignId"], done["totalContacts"], done["callsPlaced"]) == (cid, 2, 3)
        assert done["byDisposition"] == {"completed": 1, "busy": 1}
        assert done["outcomeCounts"] == {"completed": 1, "busy": 2}
        assert {r["event"] for r in receiver.requests} == {"call.ended", "campaign.completed"}

        # Never blocking: the campaign was final before its own webhook got through (and in
        # the outcomes test a receiver that never answers changes nothing).
        completed_ok = next(r["at"] for r in receiver.requests if r["id"] == f"{camp_wf}/completed"
                            and r["status"] == 200)
        assert progress.finished_at is not None and progress.finished_at.timestamp() < completed_ok


# --- (f) bad credentials ----------------------------------------------------------------------------


async def test_bad_credentials_pause_the_campaign_without_burning_attempts(
        dev_env, task_queue, carrier_db, monkeypatch):
    async with served_double(auto_advance_seconds=0.05) as (double, url):
        phones = [number(6, i) for i in range(3)]
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url,
                                  TWILIO_AUTH_TOKEN="not-the-auth-token") as eng:
            cid = await eng.upload(phones, redialConfig={"enabled": True, "maxAttempts": 3, "retryIntervals": [1]})
            progress = await wait_for(
                lambda: eng.progress(cid),
                lambda p: p.status == CampaignStatus.PAUSED and p.by_state.get("queued") == len(phones),
                timeout=20, what="campaign paused by the provider")
            assert "credentials" in progress.pause_reason and "20003" in progress.pause_reason
            assert progress.calls_placed == 0 and progress.outcome_counts == {}
            assert all(c.attempts == 0 for c in await campaign_rows("acme", cid))
            for key in range(len(phones)):
                status = await eng.contact(cid, key).query(ContactCallWorkflow.status)
                assert status.attempts == []
            assert double.create_requests() == []  # nothing was dialed
            assert {r.status for r in double.requests} == {401}


# --- the API's checks ----------------------------------------------------------------------------------


async def test_campaign_provider_and_webhook_url_are_validated(dev_env, task_queue, carrier_db, monkeypatch):
    async with served_double() as (double, url):
        monkeypatch.delenv("HTTP_PROVIDER_URL", raising=False)
        async with carrier_engine(dev_env, task_queue, carrier_db, monkeypatch, double, url) as eng:
            body = {"campaignName": "Checks", "agentId": "agent-7", "contacts": [{"phone_number": number(7, 1)}]}
            for extra, field_name in (({"provider": "http"}, "provider"), ({"provider": "simulated"}, "provider"),
                                      ({"notificationWebhookUrl": "ftp://example.com/x"}, "notificationWebhookUrl"),
                                      ({"notificationWebhookUrl": "hooks.example.com"}, "notificationWebhookUrl")):
                resp = await eng.http.post("/uploadCampaignDataAndRun", json={**body, **extra},
                                           headers={"x-api-key": API_KEY})
                assert resp.status_code == 400, resp.text
                assert resp.json()["details"][0]["field"] == field_name, resp.text
            ok = await eng.http.post("/uploadCampaignDataAndRun", headers={"x-api-key": API_KEY},
                                     json={**body, "provider": "Twilio", "notificationWebhookUrl": "https://h.example/x"})
            assert ok.status_code == 200, ok.text
            config = await eng.campaign(ok.json()["data"]["campaign"]["campaignId"]).query(CampaignWorkflow.config)
            assert config.provider == "twilio" and config.notification_webhook_url == "https://h.example/x"
