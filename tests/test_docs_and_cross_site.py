"""/docs works offline (Swagger UI from the installed package), and the GET forms of the
state-changing Dialer API endpoints refuse cross-site browser requests (issue 17)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.main import create_app
from campaign_engine.settings import Settings
from tests.test_lifecycle_api import (
    FAR,
    assert_error,
    create,
    get,
    rows,
    until_finished,
)


def test_docs_reference_only_assets_the_api_serves_itself():
    client = TestClient(create_app(Settings(campaign_api_keys="acme:k")))
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?["']([^"']+)["']""", html)
    assert urls, html
    assert not [u for u in urls if "//" in u], urls  # nothing from a CDN, nothing absolute
    assert "cdn" not in html.lower()
    kinds = {}
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, url
        kinds[url.rsplit(".", 1)[-1]] = resp.headers["content-type"]
        if url.endswith(".js"):
            assert "SwaggerUIBundle" in resp.text and len(resp.content) > 100_000
    assert kinds["js"].startswith(("text/javascript", "application/javascript"))
    assert kinds["css"].startswith("text/css")
    assert kinds["json"].startswith("application/json")  # the OpenAPI document itself
    # The OpenAPI document is 3.1, which the packaged Swagger UI (5.x) renders.
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # (ReDoc would load from a CDN: not offered)


async def test_get_forms_of_state_changes_refuse_cross_site_browser_requests(engine):
    cid = (await create(engine, rows(2, start=900), schedule_time=FAR))["campaign_id"]
    key = engine.headers()
    refused = [
        ("GET", f"/startCampaignv2/{cid}", {"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site"),
        ("GET", f"/startCampaignv2/{cid}", {"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site"),
        ("GET", f"/startCampaign/{cid}", {"Origin": "https://evil.example"}, "Origin"),
        ("GET", f"/pauseTheCampaign/{cid}", {"Origin": "null"}, "Origin"),
    ]
    for method, path, headers, field in refused:
        out = assert_error(await engine.http.request(method, path, headers={**key, **headers}), 403,
                           "CROSS_SITE_REQUEST")
        assert out["details"][0]["field"] == field and f"POST {path}" in out["message"], out
    assert (await get(engine, f"/campaigns/{cid}"))["status"] == "draft"  # nothing was started

    # The API's own pages, a URL typed by the user, and clients that send neither header.
    own = engine.base_url
    start = await engine.http.get(f"/startCampaignv2/{cid}", headers={
        **key, "Sec-Fetch-Site": "same-origin", "Origin": own})
    assert start.status_code == 200 and start.json()["status"] == "in_progress", start.text
    pause = await engine.http.get(f"/pauseTheCampaign/{cid}", headers={**key, "Sec-Fetch-Site": "none"})
    assert pause.status_code == 200 and pause.json()["status"] == "paused", pause.text
    # POST, the documented form, is not a browser's navigation: it is not refused.
    resume = await engine.http.post(f"/startCampaign/{cid}", headers={**key, "Sec-Fetch-Site": "cross-site"})
    assert resume.status_code == 200, resume.text
    again = await engine.http.get(f"/pauseTheCampaign/{cid}", headers=key)
    assert again.status_code == 200 and again.json()["status"] == "paused", again.text
    await engine.http.post(f"/campaigns/{cid}/cancel", headers=key)
    await until_finished(engine, cid)


async def test_a_huge_campaign_id_is_not_echoed_back_whole(engine):
    resp = await engine.http.get(f"/campaigns/{'C' * 8000}", headers=engine.headers())
    out = assert_error(resp, 404, "NOT_FOUND")
    assert len(resp.content) < 500 and "8000 characters" in out["message"], out


async def test_removing_a_contact_named_by_a_slash_is_400_not_a_redirect(engine):
    cid = (await create(engine, rows(1, start=950), schedule_time=FAR))["campaign_id"]
    for phone in ("%2F", "%2F%2F", "+91%2F98"):
        resp = await engine.http.delete(f"/campaigns/{cid}/contacts/{phone}", headers=engine.headers())
        out = assert_error(resp, 400, "BAD_REQUEST")
        assert out["details"][0]["field"] == "phone", out
    await engine.http.post(f"/campaigns/{cid}/cancel", headers=engine.headers())
    await until_finished(engine, cid)
