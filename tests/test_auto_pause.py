"""A campaign whose carrier fails every call pauses itself (issue 15, workflows/auto_pause.py):
after the window of ended calls, with pause_reason saying why and a campaign.paused webhook;
resume works as after a manual pause and gives a fresh window; {"enabled": false} turns it off."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaign_engine.models import AutoPausePolicy, CampaignState, Outcome
from tests.conftest import running_engine
from tests.fakes.serve import serve_asgi
from tests.helpers import wait_for
from workflows import auto_pause


@given(st.lists(st.sampled_from(list(Outcome)), max_size=200), st.integers(2, 30), st.floats(0.05, 0.95))
def test_the_ring_stays_bounded_and_trips_exactly_over_the_threshold(outcomes, window, threshold):
    state, policy = CampaignState(), AutoPausePolicy(window=window, threshold=threshold)
    calls: list[int] = []
    for outcome in outcomes:
        reason = auto_pause.observe(state, policy, outcome)
        if outcome not in auto_pause.NOT_CALLS:
            calls.append(int(outcome == Outcome.FAILED))
        last = calls[-window:]
        assert state.recent_failures == last and len(state.recent_failures) <= window
        trips = outcome not in auto_pause.NOT_CALLS and len(last) == window and sum(last) > threshold * window
        assert (reason is not None) == trips
    assert auto_pause.observe(CampaignState(recent_failures=[1] * 5), AutoPausePolicy(enabled=False, window=5),
                              Outcome.FAILED) is None


def _receiver(documents: list[dict]) -> Starlette:
    async def hook(request: Request) -> Response:
        documents.append(json.loads(await request.body()))
        return Response(status_code=204)
    return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])


async def test_a_campaign_whose_carrier_fails_every_call_pauses_itself(dev_env, task_queue, carrier_db, monkeypatch):
    for name, value in {"WEBHOOK_SECRETS": "acme:whsec-auto-pause", "WEBHOOK_ALLOW_HTTP": "true",
                        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}.items():
        monkeypatch.setenv(name, value)
    documents: list[dict] = []
    async with serve_asgi(_receiver(documents)) as hooks_url, \
            running_engine(dev_env, task_queue, carrier_db, SIMULATED_OUTCOMES="failed=1") as eng:
        body = {"campaignName": "Broken carrier", "agentId": "a", "redialConfig": {"enabled": False},
                "maxConcurrentCalls": 1, "notificationWebhookUrl": f"{hooks_url}/hooks",
                "autoPause": {"window": 6, "threshold": 0.5},
                "contacts": [{"phone_number": f"+1415555{i:04d}"} for i in range(20)]}
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers=eng.headers(), json=body)
        assert resp.status_code == 200, resp.text
        campaign_id = resp.json()["data"]["campaign"]["campaignId"]

        async def campaign():
            return (await eng.http.get(f"/campaigns/{campaign_id}", headers=eng.headers())).json()

        paused = await wait_for(campaign, lambda d: d.get("status") == "paused", timeout=60, what="auto-pause")
        assert paused["pause_reason"].startswith(
            "paused automatically: 6 of the last 6 ended calls failed for carrier reasons (more than 50%)")
        # one call at a time: exactly the window was dialled, nobody after the pause
        assert paused["outcome_counts"] == {"failed": 6} and paused["calls_placed"] == 6, paused
        assert paused["live_calls"] == 0
        hook = await wait_for(lambda: _async(documents), lambda d: any(x["event"] == "campaign.paused" for x in d),
                              timeout=60, what="campaign.paused webhook")
        doc = next(x for x in hook if x["event"] == "campaign.paused")
        assert doc["campaignId"] == campaign_id and doc["automatic"] is True and "carrier" in doc["reason"]

        # resume as after a manual pause: a fresh window, paused again after 6 more calls
        resumed = await eng.http.post(f"/startCampaign/{campaign_id}", headers=eng.headers())
        assert resumed.status_code == 200, resumed.text
        again = await wait_for(campaign, lambda d: d.get("status") == "paused" and d["calls_placed"] == 12,
                               timeout=60, what="paused again after 12 calls")
        assert again["outcome_counts"] == {"failed": 12} and "6 of the last 6" in again["pause_reason"]
        await wait_for(lambda: _async(documents), lambda d: sum(x["event"] == "campaign.paused" for x in d) == 2,
                       timeout=60, what="second campaign.paused webhook")

        # turned off: every call fails and the campaign runs to its end
        body.update(campaignName="No auto-pause", autoPause={"enabled": False},
                    contacts=[{"phone_number": f"+1415556{i:04d}"} for i in range(8)])
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers=eng.headers(), json=body)
        assert resp.status_code == 200, resp.text
        other = resp.json()["data"]["campaign"]["campaignId"]

        async def other_campaign():
            return (await eng.http.get(f"/campaigns/{other}", headers=eng.headers())).json()
        done = await wait_for(other_campaign, lambda d: d.get("status") == "completed", timeout=60, what="completed")
        assert done["calls_placed"] == 8 and done["outcome_counts"] == {"failed": 8} and done["pause_reason"] is None
        # an unknown key of autoPause is refused, naming it
        body.update(autoPause={"window": 5, "treshold": 0.2})
        refused = await eng.http.post("/uploadCampaignDataAndRun", headers=eng.headers(), json=body)
        assert refused.status_code == 400 and "autoPause.treshold" in refused.text, refused.text


async def _async(value):
    return list(value)
