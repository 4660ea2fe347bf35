"""Legal calling hours by default (issue 14): the table (country, US state from the area
code), the narrowing of a campaign's window, and a Florida campaign with a 07:00-22:00 window
called only between 08:00 and 20:00 its local time over a day of redials (time-skipping
server), while the same campaign without legal hours calls outside them (the control)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from campaign_engine.models import CampaignState, CampaignStatus, Contact, LaunchRow, Outcome, RedialPolicy
from campaign_engine.phones import mask_phone
from campaign_engine.policy.legal_hours import DEFAULT, narrowed, rule_for, summary
from campaign_engine.policy.windows import CallingWindow, is_open, resolve_time_zones
from campaign_engine.settings import Settings
from tests.conftest import running_engine
from tests.helpers import launch_campaign, make_config, wait_for
from worker import running_worker
from workflows.admission import Admission
from workflows.contact_call import ContactCallWorkflow

FLORIDA = "+13055550123"  # Miami: area code 305


def test_rules_by_country_and_us_state():
    assert (rule_for(FLORIDA).name, rule_for(FLORIDA).start, rule_for(FLORIDA).end) == ("US-FL", time(8), time(20))
    assert rule_for(FLORIDA).max_calls_per_24h == 3
    assert rule_for("+14055550123").name == "US-OK" and rule_for("+14105550123").name == "US-MD"
    ca = rule_for("+14155550123")  # "San Francisco, CA": the federal hours
    assert (ca.name, ca.start, ca.end, ca.max_calls_per_24h) == ("US", time(8), time(21), None)
    india = rule_for("+919876543210")
    assert (india.name, india.start, india.end) == ("IN", time(9), time(21))
    assert rule_for("+447911123456") == DEFAULT and (DEFAULT.start, DEFAULT.end) == (time(9), time(20))
    assert "OFF" in summary("off") and "simulated" in summary("on") and "twilio" in summary("auto")


def test_settings_apply_legal_hours_to_real_providers_unless_off():
    auto = Settings()
    assert auto.legal_hours_apply("twilio") and auto.legal_hours_apply("http") and not auto.legal_hours_apply("simulated")
    assert Settings(LEGAL_HOURS="on").legal_hours_apply("simulated")
    assert not Settings(LEGAL_HOURS="off").legal_hours_apply("twilio")


clock = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(clock, clock, st.datetimes(timezones=st.just(ZoneInfo("UTC"))))
def test_a_narrowed_window_is_open_only_when_both_are(start, end, at):
    if start == end:
        return
    campaign = CallingWindow.model_validate({"startTime": start.strftime("%H:%M"), "endTime": end.strftime("%H:%M")})
    legal = rule_for(FLORIDA).window()
    zones = ["America/New_York"]
    window = narrowed(campaign, legal)
    if is_open(at, window, zones):
        assert is_open(at, campaign, zones) and is_open(at, legal, zones)


def test_no_window_means_the_legal_hours():
    legal = rule_for(FLORIDA).window()
    assert narrowed(None, legal) == legal
    wide = CallingWindow.model_validate({"startTime": "07:00", "endTime": "22:00", "days": ["mon", "tue"]})
    n = narrowed(wide, legal)
    assert (n.start_time, n.end_time, n.days) == (time(8), time(20), ["mon", "tue"])
    never = narrowed(CallingWindow.model_validate({"startTime": "21:00", "endTime": "23:00"}), legal)
    assert never.days == []


def florida_contacts(n: int) -> list[Contact]:
    numbers = [f"+1305555{i:04d}" for i in range(100, 100 + n)]
    return [Contact(key=i, phone=p, masked=mask_phone(p), zones=list(resolve_time_zones(p, None, None)))
            for i, p in enumerate(numbers)]


async def _local_call_times(ts_env, carrier_db, task_queue, *, legal: bool) -> list:
    settings = Settings(TEMPORAL_TASK_QUEUE=task_queue, SIMULATED_CARRIER_DB=carrier_db, SIMULATED_OUTCOMES="busy=1",
                        SIMULATED_RING_SECONDS="0", SIMULATED_TALK_SECONDS="0")
    config = make_config(
        f"CAMP-LH-{uuid.uuid4().hex[:6]}", legal_hours=legal,
        calling_window=CallingWindow.model_validate({"startTime": "07:00", "endTime": "22:00"}),
        redial=RedialPolicy(enabled=True, max_attempts=6, retry_intervals=[5 * 3600]),
    )
    contacts = florida_contacts(2)
    assert contacts[0].zones == ["America/New_York"]
    async with running_worker(ts_env.client, settings):
        handle = await launch_campaign(ts_env.client, config, contacts, task_queue=task_queue)
        summary = await handle.result()
        assert summary.status == CampaignStatus.COMPLETED and summary.by_disposition == {Outcome.BUSY.value: 2}
        times = []
        for key in range(2):
            status = await ts_env.client.get_workflow_handle(f"{handle.id}/contact/{key}").query(
                ContactCallWorkflow.status)
            assert len(status.attempts) == 6
            times += [a.placed_at.astimezone(ZoneInfo("America/New_York")) for a in status.attempts]
    return times


async def test_a_florida_number_is_called_only_between_8_and_20_local(ts_env, carrier_db, task_queue):
    times = await _local_call_times(ts_env, carrier_db, task_queue, legal=True)
    assert all(time(8) <= t.time() < time(20) for t in times), sorted(times)
    # Six calls five hours apart do not fit in one 08:00-20:00 day: the law's hours held some.
    assert max(times) - min(times) > timedelta(hours=20), sorted(times)


async def test_without_legal_hours_the_same_campaign_calls_outside_them(ts_env, carrier_db, task_queue):
    """The control: the campaign's own 07:00-22:00 window alone lets calls through that the
    assertion above refuses."""
    times = await _local_call_times(ts_env, carrier_db, task_queue, legal=False)
    assert all(time(7) <= t.time() < time(22) for t in times), sorted(times)
    assert any(not time(8) <= t.time() < time(20) for t in times), sorted(times)


async def test_preflight_names_the_rule_and_opens_with_it(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, LEGAL_HOURS="on") as engine:
        resp = await engine.http.post("/campaigns/preflight", headers=engine.headers(), json={
            "campaignName": "FL", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "callingWindow": {"startTime": "07:00", "endTime": "22:00"},
            "contacts": [{"phone_number": FLORIDA}, {"phone_number": "+919876543210"}]})
        assert resp.status_code == 200, resp.text
        fl, india = resp.json()["contacts"]
        assert fl["legal_rule"].startswith("US-FL 08:00-20:00") and india["legal_rule"].startswith("IN 09:00-21:00")
        first = datetime.fromisoformat(fl["first_call_at"]).astimezone(ZoneInfo("America/New_York"))
        assert time(8) <= first.time() < time(20), first
        # Without a callingWindow of its own: the legal hours, in the number's own zone.
        resp = await engine.http.post("/campaigns/preflight", headers=engine.headers(), json={
            "campaignName": "FL", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "contacts": [{"phone_number": FLORIDA}]})
        assert resp.status_code == 200, resp.text
        fl = resp.json()["contacts"][0]
        first = datetime.fromisoformat(fl["first_call_at"]).astimezone(ZoneInfo("America/New_York"))
        assert time(8) <= first.time() < time(20) and fl["legal_rule"].startswith("US-FL"), fl


def test_a_contact_without_zones_from_upload_launches_with_its_numbers_zones():
    from types import SimpleNamespace

    from campaign_engine.store.roster import _launch_row

    row = _launch_row(SimpleNamespace(key=0, phone=FLORIDA, scheduled_at=None, zones=[]))
    assert row.zones == ["America/New_York"] and row.legal_rule == "US-FL"
    assert row.legal_window.start_time == time(8) and row.legal_window.end_time == time(20)


async def test_get_campaign_names_the_rule_that_holds_contacts_and_when_it_opens(dev_env, task_queue, carrier_db):
    # Two Indian numbers under a calling window that is closed now (and the legal hours,
    # IN 09:00-21:00): GET /campaigns/{id} says the window holds both, naming the legal hours,
    # and when the first is called.
    now = datetime.now(ZoneInfo("Asia/Kolkata"))
    # Inside the legal hours (a window outside them never opens), and closed now.
    window = ("18:00", "19:00") if now.hour < 15 else ("10:00", "11:00")
    async with running_engine(dev_env, task_queue, carrier_db, LEGAL_HOURS="on") as engine:
        resp = await engine.http.post("/uploadCampaignDataAndRun", headers=engine.headers(), json={
            "campaignName": "Held", "agentId": "agent-1", "isScheduledCall": False, "isContextBasedCall": False,
            "callingWindow": {"startTime": window[0], "endTime": window[1], "timeZone": "Asia/Kolkata"},
            "contacts": [{"phone_number": "+919876543210"}, {"phone_number": "+919876543211"}]})
        assert resp.status_code == 200, resp.text
        cid = resp.json()["data"]["campaign"]["campaignId"]

        async def held():
            out = (await engine.http.get(f"/campaigns/{cid}", headers=engine.headers())).json()
            return out["held"], out["by_state"]

        groups, _ = await wait_for(held, lambda h: sum(g["contacts"] for g in h[0]) == 2, timeout=30,
                                   what="both contacts held")
        assert {g["state"] for g in groups} == {"outside_window"}
        assert all("legal hours IN " in g["reason"] for g in groups), groups
        opens = min(datetime.fromisoformat(g["opens_at"]) for g in groups).astimezone(ZoneInfo("Asia/Kolkata"))
        assert opens > now and opens.strftime("%H:%M") == window[0], opens


def test_a_contact_with_legal_hours_never_gets_its_first_call_with_its_start():
    """Without a calling window the first call could go with the contact's start, skipping
    the window check: with legal hours that dialled outside them (seen at night in India)."""
    row = LaunchRow(key=0, label="+9197xxxx01", zones=["Asia/Kolkata"], legal_rule="IN",
                    legal_window=CallingWindow.model_validate({"startTime": "09:00", "endTime": "21:00"}))
    legal = Admission(CampaignState(), make_config("CAMP-LH-START", legal_hours=True))
    assert not legal.may_grant_with_start(row)
    assert legal.may_grant_with_start(row.model_copy(update={"legal_window": None}))  # no rule for the number
    assert Admission(CampaignState(), make_config("CAMP-LH-OFF", legal_hours=False)).may_grant_with_start(row)
