"""notificationWebhookUrl is refused at upload when it points where webhooks may not go."""

from __future__ import annotations

import pytest

BODY = {"campaignName": "SSRF", "agentId": "agent-1", "contacts": [{"phone_number": "+14155550101"}]}

FORBIDDEN = [
    "http://hooks.example.com/x",
    "https://user:pass@hooks.example.com/x",
    "https://127.0.0.1:7233/",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://127.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/",
    "https://localhost:8000/uploadCampaignDataAndRun",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
]


@pytest.mark.parametrize("route", ["/uploadCampaignDataAndRun", "/uploadCampaignData"])
async def test_forbidden_webhook_urls_are_refused_naming_the_field(engine, route, monkeypatch):
    monkeypatch.delenv("WEBHOOK_ALLOW_HTTP", raising=False)
    monkeypatch.delenv("WEBHOOK_ALLOWED_NETWORKS", raising=False)
    for url in FORBIDDEN:
        resp = await engine.http.post(route, headers=engine.headers(),
                                      json={**BODY, "notificationWebhookUrl": url})
        assert resp.status_code == 400, (url, resp.text)
        body = resp.json()
        assert body["error"] == "BAD_REQUEST"
        assert body["details"][0]["field"] == "notificationWebhookUrl", (url, body)
        assert "user:pass@" not in resp.text  # the credentials are not echoed


async def test_allowed_networks_and_http_let_a_self_hosted_receiver_in(engine, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8")
    resp = await engine.http.post("/uploadCampaignData", headers=engine.headers(),
                                  json={**BODY, "notificationWebhookUrl": "http://10.0.0.5:9000/hooks"})
    assert resp.status_code == 200, resp.text
    resp = await engine.http.post("/uploadCampaignData", headers=engine.headers(),
                                  json={**BODY, "notificationWebhookUrl": "http://192.168.0.5/hooks"})
    assert resp.status_code == 400, resp.text
