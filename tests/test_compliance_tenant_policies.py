"""Per-tenant overrides of the compliance defaults (issue 14, TENANT_POLICIES): validated at
start-up with one line naming the tenant and field; a tenant's frequency cap and legal hours
replace the deployment's in its campaigns' configuration (a campaign's own cap still adds a
stricter one); a widening is written to the audit trail for each campaign created under it;
`up` prints the overrides."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from campaign_engine.config_errors import one_line
from campaign_engine.models import CampaignConfig
from campaign_engine.policy.frequency_cap import parse_cap
from campaign_engine.policy.tenant_policies import (
    TenantPolicy,
    parse_tenant_policies,
    summary,
    wider_cap,
    wider_legal_hours,
)
from campaign_engine.settings import Settings
from campaign_engine.store.db import store_engine
from campaign_engine.store.tables import campaigns
from tests.conftest import OTHER_TENANT_KEY, running_engine
from tests.test_lifecycle_api import FAR, get, rows


def test_tenant_policies_parse_and_name_the_tenant_and_field_when_wrong():
    policies = parse_tenant_policies('{"acme": {"frequency_cap": "5/24h", "legal_hours": "off"}, '
                                     '"globex": {"frequency_cap": ""}, "initech": {}}')
    assert policies == {"acme": TenantPolicy("5/24h", "off"), "globex": TenantPolicy("", None),
                        "initech": TenantPolicy()}
    assert parse_tenant_policies("") == {} and parse_tenant_policies("  ") == {}
    for text, said in (
        ('{"acme": {"frequency_cap": "5/24x"}}', "tenant 'acme': frequency_cap '5/24x' is not N/<duration>"),
        ('{"acme": {"legal_hours": "sometimes"}}', "tenant 'acme': legal_hours 'sometimes' is not auto, on or off"),
        ('{"acme": {"cap": "3/24h"}}', "tenant 'acme': unknown field 'cap'"),
        ('{"acme": {"frequency_cap": 5}}', "tenant 'acme': frequency_cap must be text"),
        ('{"acme": "strict"}', "tenant 'acme': must be an object"),
        ('{"bad tenant!": {}}', "tenant 'bad tenant!': not a tenant id"),
        ('["acme"]', "must be a JSON object"),
        ("{acme", "not JSON"),
    ):
        with pytest.raises(ValueError, match="") as raised:
            parse_tenant_policies(text)
        assert said in str(raised.value), (text, str(raised.value))
        # At start-up: one line naming the variable, the tenant and the field.
        with pytest.raises(ValidationError) as invalid:
            Settings(TENANT_POLICIES=text)
        found = one_line(invalid.value)
        assert found is not None and found[1] == 2
        line = found[0]
        assert line.startswith("TENANT_POLICIES: ") and said in line and "\n" not in line, line


def test_what_widens_the_deployment_rules():
    three = parse_cap("3/24h")
    assert wider_cap(None, three) and wider_cap(parse_cap("5/24h"), three) and wider_cap(parse_cap("3/12h"), three)
    assert wider_cap(parse_cap("1/1h"), three)  # 24 a day
    assert not wider_cap(parse_cap("2/24h"), three) and not wider_cap(parse_cap("3/7d"), three)
    assert not wider_cap(None, None) and not wider_cap(three, None)
    assert wider_legal_hours("off", "auto") and wider_legal_hours("auto", "on")
    assert not wider_legal_hours("on", "auto") and not wider_legal_hours("off", "off")


def test_settings_give_each_tenant_its_rules():
    s = Settings(FREQUENCY_CAP="3/24h", LEGAL_HOURS="auto", TENANT_POLICIES=json.dumps({
        "acme": {"frequency_cap": "5/24h", "legal_hours": "on"}, "globex": {"frequency_cap": "", "legal_hours": "off"},
        "initech": {"frequency_cap": "2/24h"}}))
    assert s.frequency_cap_for("acme") == "5/24h" and s.frequency_cap_for("globex") == ""
    assert s.frequency_cap_for("initech") == "2/24h" and s.frequency_cap_for("other") == "3/24h"
    assert s.legal_hours_apply("simulated", "acme") and not s.legal_hours_apply("twilio", "globex")
    assert s.legal_hours_apply("twilio", "initech") and not s.legal_hours_apply("simulated", "other")
    assert [w["action"] for w in s.widenings("acme")] == ["frequency_cap.override"]
    assert [w["action"] for w in s.widenings("globex")] == ["legal_hours.override", "frequency_cap.override"]
    assert s.widenings("initech") == [] and s.widenings("other") == []


def test_up_prints_the_overrides():
    line = summary(parse_tenant_policies('{"globex": {"frequency_cap": ""}, "acme": {"legal_hours": "off"}}'))
    assert line == ("tenant rules   2 tenants override the defaults (TENANT_POLICIES): acme (legal hours off); "
                    "globex (frequency cap none)")
    assert summary({}) is None


async def _config(settings: Settings, tenant: str, campaign_id: str) -> CampaignConfig:
    db = store_engine(settings)
    try:
        async with db.connect() as conn:
            row = (await conn.execute(select(campaigns.c.config).where(
                campaigns.c.tenant_id == tenant, campaigns.c.campaign_id == campaign_id))).one()
    finally:
        await db.dispose()
    return CampaignConfig.model_validate(row.config)


async def test_a_tenants_overrides_replace_the_defaults_and_widenings_are_audited(dev_env, task_queue, carrier_db):
    policies = {"acme": {"frequency_cap": "5/24h", "legal_hours": "on"},
                "globex": {"frequency_cap": "", "legal_hours": "off"}}
    async with running_engine(dev_env, task_queue, carrier_db, FREQUENCY_CAP="3/24h", LEGAL_HOURS="auto",
                              TENANT_POLICIES=json.dumps(policies)) as engine:
        made = {}
        for tenant, key in (("acme", None), ("globex", OTHER_TENANT_KEY)):
            resp = await engine.http.post("/uploadCampaignData", headers=engine.headers(*([key] if key else [])),
                                          json={"campaign_name": f"Rules {tenant}", "agent_id": "a1",
                                                "isScheduledCall": True, "frequencyCap": "4/24h",
                                                "contacts": rows(1, start=110, scheduledCallDateTime=FAR)})
            assert resp.status_code == 200, resp.text
            made[tenant] = resp.json()["campaign_id"]

        acme = await _config(engine.settings, "acme", made["acme"])
        # The tenant's looser cap replaces the deployment's 3/24h; the campaign's 4/24h still holds.
        assert [c.describe() for c in acme.frequency_caps] == ["5/24h", "4/24h"]
        assert acme.legal_hours is True  # "on": the simulated carrier too
        globex = await _config(engine.settings, "globex", made["globex"])
        assert [c.describe() for c in globex.frequency_caps] == ["4/24h"] and globex.legal_hours is False

        events = (await get(engine, "/audit", campaign_id=made["acme"]))["events"]
        assert [e["action"] for e in events] == ["campaign.created", "frequency_cap.override"], events
        assert events[1]["details"]["TENANT_POLICIES"] == {"frequency_cap": "5/24h"}
        assert events[1]["details"]["FREQUENCY_CAP"] == "3/24h"
        events = (await get(engine, "/audit", OTHER_TENANT_KEY, campaign_id=made["globex"]))["events"]
        assert [e["action"] for e in events] == ["campaign.created", "legal_hours.override",
                                                 "frequency_cap.override"], events
        assert events[1]["details"]["TENANT_POLICIES"] == {"legal_hours": "off"}
        assert events[2]["details"]["TENANT_POLICIES"] == {"frequency_cap": "none"}

        # A narrowing override is no widening: nothing more is audited.
        narrow = Settings(FREQUENCY_CAP="3/24h", TENANT_POLICIES='{"acme": {"frequency_cap": "2/24h"}}')
        assert narrow.widenings("acme") == []
