"""Inputs schemathesis' positive-data check found answered 500 or left a campaign stuck: each is
now a 400 naming its field (the store's PostgreSQL cannot hold a NUL; a pacing of 5e-324 calls
a second made its wait infinite; an empty Idempotency-Key is in tests/test_edge_limits.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.schemas import CampaignIn

BASE = {"campaignName": "x", "agentId": "a", "contacts": [{"phone_number": "+14155550100"}]}


@pytest.mark.parametrize(("extra", "field"), [
    ({"agentId": "agent\x00"}, "agentId"),
    ({"contacts": [{"phone_number": "+14155550100", "custom_data": {"k": ["v\x00"]}}]}, "custom_data"),
    ({"contacts": [{"phone_number": "+14155550100", "custom_data": {"k\x00": 1}}]}, "custom_data"),
    ({"contacts": [{"phone_number": "+14155550100", "email": "a\x00@b.co"}]}, "email"),
    ({"redialConfig": {"enabled": True, "callStatus": [{"match": "busy", "intervalMinutes": 1}],
                       "terminalConditions": ["x\x00"]}}, "redialConfig"),
    ({"callsPerSecond": 5e-324}, "callsPerSecond"),
])
def test_refused_naming_the_field(extra, field):
    with pytest.raises(ValidationError) as caught:
        CampaignIn.model_validate({**BASE, **extra})
    assert field in str(caught.value)


def test_what_is_near_them_is_accepted():
    CampaignIn.model_validate({**BASE, "callsPerSecond": 0.001, "agentId": "agent-1",
                               "contacts": [{"phone_number": "+14155550100", "custom_data": {"k": ["v\u00e9"]},
                                             "email": "a@b.co"}]})


async def test_a_nul_in_custom_data_is_a_400_not_a_500(engine):
    body = {**BASE, "contacts": [{"phone_number": "+14155550100", "custom_data": {"note": "a\u0000b"}}]}
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code == 400, resp.text
    assert resp.json()["details"][0]["field"] == "contacts[0].custom_data", resp.text
    resp = await engine.http.post("/uploadCampaignDataAndRun", json={**BASE, "agentId": "a\u0000"},
                                  headers=engine.headers())
    assert resp.status_code == 400 and "agentId" in resp.text, resp.text
