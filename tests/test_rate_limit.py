"""Rate limits per API key and route class, over real HTTP, counted in the real store.

Windows here are an hour long so that a test does not straddle two windows by chance; the
sequences that must fall in one window check that every answer named the same Reset.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from api.main import create_app
from campaign_engine.rate_limits import Rate, decide, parse_rate, window_start
from campaign_engine.settings import Settings
from campaign_engine.store.db import create_engine
from tests.conftest import API_KEY, OTHER_TENANT_KEY, engine_settings, running_engine
from tests.fakes.serve import serve_asgi

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


# --- the pure part ------------------------------------------------------------------------


@pytest.mark.parametrize("text_, rate", [
    ("60/minute", Rate(60, 60)), ("600/minute", Rate(600, 60)), ("10/second", Rate(10, 1)),
    ("600 per hour", Rate(600, 3600)), ("100/5 minutes", Rate(100, 300)), ("1/day", Rate(1, 86400)),
    (" 7 / Minutes ", Rate(7, 60)), ("5/2hours", Rate(5, 7200)),
])
def test_parse_rate(text_, rate):
    assert parse_rate(text_) == rate


@pytest.mark.parametrize("bad", ["", "60", "minute", "60/fortnight", "0/minute", "-1/minute", "60/0 minutes",
                                 "1.5/minute", "60/minute;10/second", "60/minute extra"])
def test_parse_rate_refuses(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_decide():
    rate = Rate(2, 60)
    start = window_start(1000.5, 60)
    assert start == 960
    first = decide(rate, 1, start, 1000.5)
    assert first.allowed and first.remaining == 1 and first.reset == 1020
    assert "Retry-After" not in first.headers()
    third = decide(rate, 3, start, 1000.5)
    assert not third.allowed and third.remaining == 0
    assert third.headers() == {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": "1020", "Retry-After": "20"}
    assert decide(rate, 3, start, 1019.99).retry_after == 1  # never 0


@pytest.mark.parametrize("name", ["RATE_LIMIT_UPLOADS", "RATE_LIMIT_CONTROL", "RATE_LIMIT_READS"])
def test_a_bad_rate_setting_names_its_variable(name):
    with pytest.raises(ValidationError) as err:
        Settings(**{name: "lots"})
    assert name in str(err.value)


# --- over HTTP ------------------------------------------------------------------------------


def _same_window(responses: list[httpx.Response]) -> bool:
    return len({r.headers["X-RateLimit-Reset"] for r in responses}) == 1


async def _clear_of_window_edge(window: int = 3600, margin: float = 10.0) -> None:
    """Sleep past the end of the current window if it is less than `margin` seconds away."""
    left = window - time.time() % window
    if left < margin:
        await asyncio.sleep(left + 0.5)


async def _statuses(http: httpx.AsyncClient, key: str = API_KEY) -> httpx.Response:
    return await http.get("/getCampaignStatuses", headers={"x-api-key": key})


async def test_headers_count_down_then_429(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="3/hour") as eng:
        await _clear_of_window_edge()
        seen = [await _statuses(eng.http) for _ in range(4)]
        assert _same_window(seen)
        assert [r.status_code for r in seen] == [200, 200, 200, 429], [r.text for r in seen]
        assert [r.headers["X-RateLimit-Limit"] for r in seen] == ["3"] * 4
        assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
        reset = int(seen[0].headers["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 3600 + 1
        assert reset % 3600 == 0  # the end of the fixed window
        over = seen[3]
        assert over.json()["success"] is False and over.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert 1 <= int(over.headers["Retry-After"]) <= 3600
        assert "Retry-After" not in seen[0].headers

        # Another key (another tenant) has a count of its own.
        other = await _statuses(eng.http, OTHER_TENANT_KEY)
        assert other.status_code == 200 and other.headers["X-RateLimit-Remaining"] == "2"

        # Another route class too: control and uploads are not reads.
        pause = await eng.http.post("/pauseTheCampaign/nope", headers=eng.headers())
        assert pause.status_code == 404 and pause.headers["X-RateLimit-Limit"] == "100000", pause.text
        # ... and an error answer carries the headers as well as a success does.
        assert int(pause.headers["X-RateLimit-Remaining"]) == 99999
        preflight = await eng.http.post("/campaigns/preflight", headers=eng.headers(), json={})
        assert preflight.status_code == 400 and preflight.headers["X-RateLimit-Remaining"] == "99999"

        # The key itself is stored nowhere: its SHA-256 is.
        db = create_engine(eng.settings.database_url.get_secret_value(), pool_size=1)
        try:
            async with db.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT key_hash, route_class, n FROM rate_limit_windows ORDER BY route_class, key_hash"))).all()
        finally:
            await db.dispose()
        digest = hashlib.sha256(API_KEY.encode()).digest()
        assert {(bytes(k), c) for k, c, _ in rows} >= {(digest, "reads"), (digest, "control"), (digest, "uploads")}
        assert all(API_KEY.encode() not in bytes(k) for k, _, _ in rows)


async def test_exempt_and_unauthenticated_answers_carry_no_limit(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="1/hour",
                              RATE_LIMIT_CONTROL="1/hour", RATE_LIMIT_UPLOADS="1/hour") as eng:
        for _ in range(3):
            callback = await eng.http.post("/callbacks/twilio", headers=eng.headers(), data={"CallSid": "CA1"})
            assert callback.status_code in (400, 403), callback.text
            assert not any(h in callback.headers for h in HEADERS)
            agent = await eng.http.post("/callbacks/http-agent", headers=eng.headers(), json={})
            assert agent.status_code in (400, 403) and not any(h in agent.headers for h in HEADERS)
            for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
                meta = await eng.http.get(path, headers=eng.headers())
                assert meta.status_code == 200, (path, meta.status_code)
                assert not any(h in meta.headers for h in HEADERS), path
            unauthenticated = await eng.http.get("/getCampaignStatuses", headers={"x-api-key": "wrong"})
            assert unauthenticated.status_code == 401 and "X-RateLimit-Limit" not in unauthenticated.headers
        # None of that was counted: the key's one read is still there.
        first = await _statuses(eng.http)
        assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "0"


async def test_two_api_processes_share_one_limit(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="4/hour") as eng:
        second_app = create_app(eng.settings)  # the same DATABASE_URL: another API process
        async with serve_asgi(second_app, lifespan="on") as second_url:
            async with httpx.AsyncClient(base_url=second_url, timeout=30) as second:
                await _clear_of_window_edge()
                seen = [await _statuses(eng.http if i % 2 == 0 else second) for i in range(5)]
                assert _same_window(seen)
                assert [r.status_code for r in seen] == [200, 200, 200, 200, 429]
                assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["3", "2", "1", "0", "0"]
                assert (await _statuses(second)).status_code == 429
                assert (await _statuses(eng.http)).status_code == 429

                # Windows that have ended are deleted now and then (here: on the next count).
                db = create_engine(eng.settings.database_url.get_secret_value(), pool_size=1)
                try:
                    async with db.begin() as conn:
                        await conn.execute(text(
                            "INSERT INTO rate_limit_windows VALUES (:k, 'reads', 60, now() - interval '2 hours', 9)"),
                            {"k": b"\x00" * 32})
                    second_app.state.rate_limit_sweeper.last = 0.0
                    await _statuses(second, OTHER_TENANT_KEY)
                    async with db.connect() as conn:
                        left = (await conn.execute(text(
                            "SELECT count(*) FROM rate_limit_windows WHERE key_hash = :k"), {"k": b"\x00" * 32})).scalar()
                        live = (await conn.execute(text("SELECT count(*) FROM rate_limit_windows"))).scalar()
                finally:
                    await db.dispose()
                assert left == 0 and live >= 2  # the live windows stay


async def test_disabled(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_ENABLED="false",
                              RATE_LIMIT_READS="1/hour") as eng:
        for _ in range(3):
            resp = await _statuses(eng.http)
            assert resp.status_code == 200 and "X-RateLimit-Limit" not in resp.headers


async def test_the_store_down_fails_closed(dev_env, task_queue, carrier_db):
    """No count, no answer: 503 SERVICE_UNAVAILABLE with Retry-After (the API serves nothing
    without its store anyway), never a request let through uncounted."""
    settings = engine_settings(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="1000/hour",
                               DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    async with serve_asgi(create_app(settings), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            resp = await _statuses(http)
            pause = await http.post("/pauseTheCampaign/nope", headers={"x-api-key": API_KEY})
    for answer in (resp, pause):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "SERVICE_UNAVAILABLE" and answer.headers["Retry-After"]
        assert "X-RateLimit-Limit" not in answer.headers



EXPECTED_CLASS = {
    ("post", "/uploadCampaignDataAndRun"): "uploads", ("post", "/uploadCampaignData"): "uploads",
    ("post", "/campaigns/preflight"): "uploads",
    **{(m, p): "reads" for m, p in [("get", "/getCampaignStatuses"), ("get", "/getCampaignStats/{campaign_id}"),
                                    ("get", "/downloadCampaignStats"), ("get", "/campaigns/{campaign_id}"),
                                    ("get", "/campaigns/{campaign_id}/contacts")]},
}


async def test_every_authenticated_operation_is_counted_in_its_class(dev_env, task_queue, carrier_db):
    """Each operation of the OpenAPI but the callbacks answers with its class's limit (a route
    that needs a key and that no limit covers would be a hole); the rest are control."""
    limits = {"uploads": "1001", "control": "1002", "reads": "1003"}
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_UPLOADS="1001/hour",
                              RATE_LIMIT_CONTROL="1002/hour", RATE_LIMIT_READS="1003/hour") as eng:
        spec = (await eng.http.get("/openapi.json")).json()
        seen = 0
        for path, operations in spec["paths"].items():
            for method in operations:
                url = path.replace("{campaign_id}", "nope").replace("{phone}", "+14155550100")
                resp = await eng.http.request(method.upper(), url, headers=eng.headers(),
                                              params={"campaign_id": "nope"})
                if path.startswith("/callbacks/"):
                    assert "X-RateLimit-Limit" not in resp.headers, path
                    continue
                expected = limits[EXPECTED_CLASS.get((method, path), "control")]
                assert resp.headers.get("X-RateLimit-Limit") == expected, (method, path, resp.status_code)
                seen += 1
        assert seen >= 18
