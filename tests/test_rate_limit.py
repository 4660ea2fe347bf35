"""Rate limits per API key and route class: the sliding-window policy (pure, with hypothesis
properties: no span of the window's length admits more than the limit), and over real HTTP,
counted in the real store.

Windows over HTTP are an hour long, so that a test's requests all lie in one window.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import math
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import text

from api.main import create_app
from campaign_engine.rate_limits import (
    BUCKETS_PER_WINDOW,
    Rate,
    bucket_seconds,
    bucket_start,
    decide,
    parse_rate,
)
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
    rate = Rate(2, 60)  # buckets of one second
    assert bucket_seconds(rate) == 1.0 and bucket_start(1000.5, rate) == 1000
    first = decide(rate, [], 1000.5)
    assert first.allowed and first.remaining == 1 and first.reset == 1061  # its bucket leaves then
    assert "Retry-After" not in first.headers()
    second = decide(rate, [(1000.0, 1)], 1010.2)
    assert second.allowed and second.remaining == 0 and second.reset == 1071
    third = decide(rate, [(1000.0, 1), (1010.0, 1)], 1030.0)
    assert not third.allowed and third.remaining == 0
    # Admitted again once the oldest bucket has left the window: at 1000 + 1 + 60.
    assert third.headers() == {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": "1071", "Retry-After": "32"}
    assert decide(rate, [(1000.0, 1), (1010.0, 1)], 1060.999).retry_after == 1  # never 0
    assert decide(rate, [(1000.0, 1), (1010.0, 1)], 1061.01).allowed
    # A fixed window would start afresh at 1020 (its boundary): the sliding one does not.
    assert not decide(rate, [(1019.0, 2)], 1020.5).allowed
    assert not decide(rate, [(1019.0, 2)], 1079.5).allowed and decide(rate, [(1019.0, 2)], 1080.01).allowed


RATES = st.builds(Rate, st.integers(1, 12), st.sampled_from([1, 2, 60, 3600, 86400]))


def simulate(rate: Rate, times: list[float]) -> tuple[list[float], list[tuple[float, int]]]:
    """Requests at `times` (ascending) through the policy, counted as the store counts them:
    the admitted times, and each request's (time, retry_after) when refused."""
    buckets: dict[float, int] = {}
    admitted, refused = [], []
    for now in times:
        decision = decide(rate, buckets.items(), now)
        assert decision.limit == rate.limit and 0 <= decision.remaining < rate.limit
        if decision.allowed:
            start = bucket_start(now, rate)
            buckets[start] = buckets.get(start, 0) + 1
            admitted.append(now)
            assert decision.reset >= now + rate.window_seconds
        else:
            assert decision.retry_after >= 1 and decision.remaining == 0
            refused.append((now, decision.retry_after))
    return admitted, refused


def request_times(window: int):
    """Bursts and trickles over a few windows, boundaries of fixed windows included."""
    step = st.one_of(st.just(0.0), st.floats(0, window / 50), st.floats(0, window * 1.2),
                     st.sampled_from([window / BUCKETS_PER_WINDOW, window / 2, float(window)]))
    return st.lists(step, min_size=1, max_size=120).map(
        lambda steps: [window * 1000 - window / 3 + sum(steps[:i + 1]) for i in range(len(steps))])


@hsettings(max_examples=300, deadline=None)
@given(data=st.data(), rate=RATES)
def test_no_span_of_the_window_admits_more_than_the_limit(data, rate):
    times = data.draw(request_times(rate.window_seconds))
    admitted, refused = simulate(rate, times)
    window = rate.window_seconds
    # Every span [t, t + window) that holds admitted requests starts at one of them at its latest.
    for i, t in enumerate(admitted):
        assert bisect.bisect_left(admitted, t + window) - i <= rate.limit, (rate, admitted[i:i + rate.limit + 2])
    # ... and the window is not much stricter than that: a refused request had `limit`
    # admitted within the window and one bucket before it.
    for now, _ in refused:
        since = bisect.bisect_right(admitted, now - window - bucket_seconds(rate) - 1e-3)
        assert bisect.bisect_right(admitted, now) - since >= rate.limit, (rate, now, admitted)


@hsettings(max_examples=200, deadline=None)
@given(data=st.data(), rate=RATES)
def test_retry_after_is_when_a_request_is_admitted_again(data, rate):
    """A refused client that waits Retry-After seconds (and sends nothing meanwhile) is admitted."""
    times = data.draw(request_times(rate.window_seconds))
    buckets: dict[float, int] = {}
    for now in times:
        decision = decide(rate, buckets.items(), now)
        if decision.allowed:
            start = bucket_start(now, rate)
            buckets[start] = buckets.get(start, 0) + 1
            continue
        later = decide(rate, buckets.items(), now + decision.retry_after)
        assert later.allowed, (rate, now, decision, sorted(buckets.items()))
        # Not long before, either: a second earlier it would still have been refused (whole
        # seconds, so only when the wait is over a second).
        if decision.retry_after > 1:
            assert not decide(rate, buckets.items(), now + decision.retry_after - 1).allowed


def test_a_steady_client_at_the_limit_loses_at_most_a_bucket():
    """A client spacing its requests evenly at exactly the limit's rate is refused at most one
    request per window's worth (the oldest bucket counted whole)."""
    rate = Rate(60, 60)
    times = [1_000_000 + i * 1.0 + 0.5 for i in range(600)]
    _, refused = simulate(rate, times)
    assert len(refused) <= math.ceil(len(times) / rate.limit), len(refused)


@pytest.mark.parametrize("name", ["RATE_LIMIT_UPLOADS", "RATE_LIMIT_CONTROL", "RATE_LIMIT_READS"])
def test_a_bad_rate_setting_names_its_variable(name):
    with pytest.raises(ValidationError) as err:
        Settings(**{name: "lots"})
    assert name in str(err.value)


# --- over HTTP ------------------------------------------------------------------------------


async def _statuses(http: httpx.AsyncClient, key: str = API_KEY) -> httpx.Response:
    return await http.get("/getCampaignStatuses", headers={"x-api-key": key})


async def test_headers_count_down_then_429(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="3/hour") as eng:
        seen = [await _statuses(eng.http) for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429], [r.text for r in seen]
        assert [r.headers["X-RateLimit-Limit"] for r in seen] == ["3"] * 4
        assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
        reset = int(seen[0].headers["X-RateLimit-Reset"])
        # When the requests counted have left the window: an hour and a bucket (a minute) on.
        assert time.time() + 3600 - 5 < reset <= time.time() + 3600 + 60 + 1
        over = seen[3]
        assert over.json()["success"] is False and over.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert 3600 - 5 <= int(over.headers["Retry-After"]) <= 3600 + 60 + 1  # when the first leaves
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


async def test_requests_spent_in_the_last_window_still_count_after_a_fixed_boundary(dev_env, task_queue,
                                                                                    carrier_db):
    """The window slides: requests admitted half an hour ago (in the previous hour, for a fixed
    window that started afresh on the hour) still count against a limit per hour, until an hour
    after them; the 429's Retry-After says when that is."""
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="3/hour") as eng:
        digest = hashlib.sha256(API_KEY.encode()).digest()
        db = create_engine(eng.settings.database_url.get_secret_value(), pool_size=1)
        try:
            async with db.begin() as conn:  # three reads admitted 30 minutes ago, in one bucket
                await conn.execute(text(
                    "INSERT INTO rate_limit_windows VALUES (:k, 'reads', 3600, "
                    "to_timestamp(floor(extract(epoch FROM now() - interval '30 minutes') / 60) * 60), 3)"),
                    {"k": digest})
        finally:
            await db.dispose()
        refused = await _statuses(eng.http)
        assert refused.status_code == 429, refused.text
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert 30 * 60 - 5 <= int(refused.headers["Retry-After"]) <= 31 * 60 + 1, refused.headers
        assert abs(int(refused.headers["X-RateLimit-Reset"]) - (time.time() + int(refused.headers["Retry-After"]))) <= 2
        # Another class of the same key, and another key, are not touched.
        assert (await _statuses(eng.http, OTHER_TENANT_KEY)).status_code == 200


async def test_concurrent_requests_through_two_processes_admit_exactly_the_limit(dev_env, task_queue, carrier_db):
    """Requests racing through two API apps on one store are decided one after the other (an
    advisory lock per key and class): exactly `limit` of them are admitted."""
    async with running_engine(dev_env, task_queue, carrier_db, RATE_LIMIT_READS="5/hour") as eng:
        async with serve_asgi(create_app(eng.settings), lifespan="on") as second_url, \
                httpx.AsyncClient(base_url=second_url, timeout=30) as second:
            answers = await asyncio.gather(*(_statuses(eng.http if i % 2 else second) for i in range(14)))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] * 5 + [429] * 9, [r.text for r in answers if r.status_code not in (200, 429)]
        assert sorted(r.headers["X-RateLimit-Remaining"] for r in answers if r.status_code == 200) == \
            ["0", "1", "2", "3", "4"]


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
                seen = [await _statuses(eng.http if i % 2 == 0 else second) for i in range(5)]
                assert [r.status_code for r in seen] == [200, 200, 200, 200, 429]
                assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["3", "2", "1", "0", "0"]
                assert (await _statuses(second)).status_code == 429
                assert (await _statuses(eng.http)).status_code == 429

                # Buckets no window counts are deleted now and then (here: on the next count).
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
                                    ("get", "/campaigns/{campaign_id}/contacts"), ("get", "/suppressions"),
                                    ("get", "/audit")]},
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
                if path.startswith("/callbacks/") or path == "/metrics":  # exempt (a scraper's, api.metrics)
                    assert "X-RateLimit-Limit" not in resp.headers, path
                    continue
                expected = limits[EXPECTED_CLASS.get((method, path), "control")]
                assert resp.headers.get("X-RateLimit-Limit") == expected, (method, path, resp.status_code)
                seen += 1
        assert seen >= 18
