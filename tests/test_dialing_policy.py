"""Dialing policy in the running engine: calling windows and blackout dates (time-skipping),
concurrency and pacing with two workers, rule-based redials on a running campaign, preflight."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.providers.simulated import CarrierLedger
from campaign_engine.models import CampaignStatus, Outcome, RedialPolicy
from campaign_engine.policy.windows import CallingWindow
from tests.conftest import running_engine
from tests.helpers import launch_campaign, make_config, make_contacts
from tests.test_contact_timers import sim_settings
from worker import running_worker
from workflows.campaign import CampaignWorkflow
from workflows.contact_call import ContactCallWorkflow

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def test_contact_waits_over_closed_days_and_a_blackout_date(ts_env, carrier_db, task_queue):
    # The config below dials through the carrier account's dial task queue, which only a
    # worker with CARRIER_CALLS_PER_SECOND polls.
    settings = sim_settings(carrier_db, task_queue, "no-answer=1").model_copy(update={"carrier_calls_per_second": 100.0})
    start = await ts_env.get_current_time()
    d1 = start.date() + timedelta(days=1)  # the window's first day, blacked out
    d2 = d1 + timedelta(days=1)
    window = CallingWindow(start_time=time(9), end_time=time(17), days=[DAYS[d1.weekday()], DAYS[d2.weekday()]],
                           time_zone="UTC")
    contacts = make_contacts(1, zones=["UTC"])
    config = make_config(
        f"CAMP-WIN-{uuid.uuid4().hex[:6]}", calling_window=window, blackout_dates=[d1],
        # Second call 1 h after the first (inside the window); third 8 h later: past 17:00,
        # so it waits for the next open day, a week on (d1's weekday, no longer blacked out).
        redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[3600, 8 * 3600]),
        dial_task_queue=settings.dial_task_queue("simulated"),
    )
    wf_id = f"campaign/acme/{config.campaign_id}"
    async with running_worker(ts_env.client, settings):
        handle = await launch_campaign(ts_env.client, config, contacts, id=wf_id, task_queue=task_queue)
        summary = await handle.result()
        status = await ts_env.client.get_workflow_handle(f"{wf_id}/contact/0").query(ContactCallWorkflow.status)
    assert summary.status == CampaignStatus.COMPLETED
    placed = [a.placed_at for a in status.attempts]
    expected = [
        datetime.combine(d2, time(9), UTC),
        datetime.combine(d2, time(10), UTC),
        datetime.combine(d1 + timedelta(days=7), time(9), UTC),
    ]
    assert len(placed) == 3
    for got, want in zip(placed, expected, strict=True):
        assert want <= got < want + timedelta(minutes=1), (placed, expected)


def overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def intervals_of(calls: list[dict]) -> list[tuple[float, float]]:
    out = []
    for c in calls:
        start = datetime.fromisoformat(c["placed_at"]).timestamp()
        out.append((start, start + c["ring_seconds"] + c["talk_seconds"]))
    return out


async def test_concurrency_cap_and_pacing_hold_with_two_workers(dev_env, task_queue, carrier_db):
    overrides = dict(SIMULATED_RING_SECONDS="0.2-0.4", SIMULATED_TALK_SECONDS="0.3-0.6")
    async with running_engine(dev_env, task_queue, carrier_db, **overrides) as engine:
        # The second worker has its own connection, as a second process would.
        second = await Client.connect(engine.settings.temporal_address, data_converter=pydantic_data_converter)
        async with running_worker(second, engine.settings):
            capped = {
                "campaignName": "capped", "agentId": "a", "maxConcurrentCalls": 3,
                "contacts": [{"phone_number": f"+9198{i:08d}"} for i in range(24)],
            }
            paced = {
                "campaignName": "paced", "agentId": "a", "callsPerSecond": 4,
                "contacts": [{"phone_number": f"+9197{i:08d}"} for i in range(16)],
            }
            r1 = await engine.http.post("/uploadCampaignDataAndRun", json=capped, headers=engine.headers())
            r2 = await engine.http.post("/uploadCampaignDataAndRun", json=paced, headers=engine.headers())
            assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
            ids = [r.json()["data"]["campaign"]["campaignId"] for r in (r1, r2)]
            for cid in ids:
                handle = engine.client.get_workflow_handle_for(CampaignWorkflow.run, f"campaign/acme/{cid}")
                assert (await asyncio.wait_for(handle.result(), 120)).status == CampaignStatus.COMPLETED

    ledger = CarrierLedger(carrier_db)
    capped_calls, paced_calls = ledger.calls(ids[0]), ledger.calls(ids[1])
    assert len(capped_calls) == 24 and len(paced_calls) == 16
    # Never more than 3 live calls, and the slots were used (all 3 at once at some point; a
    # loaded machine can delay a grant, so the peak is checked, not a steady 3).
    peak = overlap(intervals_of(capped_calls))
    assert 2 <= peak <= 3, peak
    # Pacing of 4 calls/s with a one-second bucket: any 8 dials span at least a second, in
    # the engine's own clock (when each dial was decided, as the carrier recorded it) ...
    decided = sorted(datetime.fromisoformat(c["requested_at"]).timestamp() for c in paced_calls)
    for i in range(len(decided) - 8):
        assert decided[i + 8] - decided[i] >= 1.0 - 0.01, decided
    # ... and at the carrier, give or take the scheduling jitter of two busy workers.
    placed = sorted(datetime.fromisoformat(c["placed_at"]).timestamp() for c in paced_calls)
    assert placed[-1] - placed[0] >= (16 - 4) / 4 - 1.0, placed
    ledger.close()


async def test_rule_based_redial_update_applies_to_a_running_campaign(dev_env, task_queue, carrier_db):
    overrides = dict(SIMULATED_OUTCOMES="busy=1", SIMULATED_RING_SECONDS="0.5", SIMULATED_TALK_SECONDS="0")
    async with running_engine(dev_env, task_queue, carrier_db, **overrides) as engine:
        body = {"campaignName": "rules", "agentId": "a",
                "redialConfig": {"enabled": True, "maxAttempts": 6, "retryIntervals": [1]},
                "contacts": [{"phone_number": f"+9196{i:08d}"} for i in range(4)]}
        resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
        cid = resp.json()["data"]["campaign"]["campaignId"]
        update = {"redialConfig": {"enabled": True, "maxAttempts": 2,
                                   "callStatus": [{"match": "busy", "intervalMinutes": 0.02, "maxAttempts": 2}]}}
        put = await engine.http.put(f"/updateCampaignData/{cid}", json=update, headers=engine.headers())
        assert put.status_code == 200, put.text
        assert "waiting to redial re-plan" in put.json()["message"]
        handle = engine.client.get_workflow_handle_for(CampaignWorkflow.run, f"campaign/acme/{cid}")
        summary = await asyncio.wait_for(handle.result(), 60)
        # Decided by the new rules: two calls each, not six.
        assert summary.calls_placed == 8
        assert summary.by_disposition == {Outcome.BUSY.value: 4}
        bad = await engine.http.put(f"/updateCampaignData/{cid}", json=update, headers=engine.headers())
        assert bad.status_code == 409 and bad.json()["error"] == "INVALID_CAMPAIGN_STATE"
        invalid = {"redialConfig": {"enabled": True, "callStatus": [{"match": "completed", "intervalMinutes": 5}]}}
        resp = await engine.http.put(f"/updateCampaignData/{cid}", json=invalid, headers=engine.headers())
        assert resp.status_code == 400 and "redialConfig" in resp.json()["message"]
        other = await engine.http.put(f"/updateCampaignData/{cid}", json=update, headers=engine.headers("test-key-globex"))
        assert other.status_code == 404


async def test_preflight_reports_without_starting_anything(engine):
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    body = {
        "campaignName": "preflight", "agentId": "a", "isScheduledCall": True,
        "callingWindow": {"startTime": "09:00", "endTime": "10:00", "timeZone": "Asia/Kolkata"},
        "blackoutDates": ["2026-12-25"],
        "contacts": [
            {"phone_number": "+919876543210", "scheduledCallDateTime": future},
            {"phone_number": "12345", "scheduledCallDateTime": future},
            {"phone_number": "+91 98765 43210", "scheduledCallDateTime": future},
            {"phone_number": "+12125550123", "scheduledCallDateTime": past},
            {"phone_number": "+18005550100", "scheduledCallDateTime": future},
            {"phone_number": "+919123456789", "scheduledCallDateTime": "2030-01-01T10:00:00"},
        ],
    }
    resp = await engine.http.post("/campaigns/preflight", json=body, headers=engine.headers())
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["total_rows"], out["valid"], out["invalid"], out["duplicates"]) == (6, 3, 2, 1)
    assert {r["row"] for r in out["invalid_rows"]} == {1, 5}
    assert out["duplicate_rows"] == [{"row": 2, "duplicate_of_row": 0}]
    assert out["scheduled_in_past"] == 1
    assert out["outside_every_window"] == 1  # a toll-free number spans 40+ zones: 09-10 never holds in all
    by_row = {c["row"]: c for c in out["contacts"]}
    # The number's own zone wins over the window's fallback.
    assert by_row[0]["zones"] == ["Asia/Calcutta"] and by_row[3]["zones"] == ["America/New_York"]
    ny_first = datetime.fromisoformat(by_row[3]["first_call_at"])
    assert ny_first.astimezone(ZoneInfo("America/New_York")).hour == 9
    assert by_row[4]["first_call_at"] is None
    # The note agrees with first_call_at: a past time outside the window waits for it.
    waits = ny_first > datetime.now(UTC)
    assert by_row[3]["note"] == ("scheduled time is in the past: called when its calling window opens" if waits
                                 else "scheduled time is in the past: called at once")
    assert datetime.fromisoformat(out["estimated_completion"]) > datetime.now(UTC)
    assert "+919876543210" not in resp.text  # numbers are masked in the report
    assert engine.ledger.calls() == []
    query = f"TaskQueue = '{engine.settings.temporal_task_queue}'"
    assert [wf async for wf in engine.client.list_workflows(query)] == []


async def test_a_campaigns_own_call_length_sets_its_eta_and_preflight_agrees_with_the_upload(engine):
    """expectedCallSeconds is the campaign's own call length for the ETA; preflight and the
    upload estimate the same body alike."""
    def body(seconds: float) -> dict:
        return {"campaignName": "eta", "agentId": "a", "maxConcurrentCalls": 1, "expectedCallSeconds": seconds,
                "contacts": [{"phone_number": f"+9198{i:08d}"} for i in range(20)]}

    async def eta(path: str, seconds: float) -> datetime:
        resp = await engine.http.post(path, json=body(seconds), headers=engine.headers())
        assert resp.status_code == 200, resp.text
        out = resp.json()
        value = out["estimated_completion"] if "estimated_completion" in out else \
            out["data"]["execution_status"]["estimated_completion"]
        return datetime.fromisoformat(value)

    now = datetime.now(UTC)
    short, long = await eta("/campaigns/preflight", 30), await eta("/campaigns/preflight", 3000)
    # 20 calls one at a time: the ETA grows with the call length given.
    assert long - short > timedelta(hours=10)
    assert short - now < timedelta(hours=1)
    uploaded = await eta("/uploadCampaignDataAndRun", 3000)
    assert abs(uploaded - long) < timedelta(minutes=1)
    refused = await engine.http.post("/campaigns/preflight", json=body(0), headers=engine.headers())
    assert refused.status_code == 400 and "expectedCallSeconds" in refused.text
