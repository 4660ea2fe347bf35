"""schemathesis over the whole OpenAPI, with a valid key, against a real engine (issue 16).

The engine (API over real HTTP, a worker, real Temporal, real PostgreSQL) runs for the whole
module in a thread with its own event loop: schemathesis' tests are synchronous and call the
server with `requests`, so the session's loop does not run while they do, and a worker on it
would not answer the queries the API makes.

Every operation gets a bounded, derandomized number of examples; every answer must be no 5xx,
a documented status code and content type, and conform to the documented schema. Path
parameters are often pointed at campaigns seeded for the module (pointed_at_seeded), so the
operations meet a draft and a started (soon finished) campaign, not only unknown ids.

The provider callbacks are run too, but only their refusals can be reached: schemathesis cannot
sign a body (X-Twilio-Signature, the HTTP agent's HMAC), so their success paths are covered by
tests/test_twilio_provider.py and tests/test_http_provider.py; what is checked here is that
whatever arrives unsigned is a documented 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oas_checks

from api.main import create_app
from tests.conftest import API_KEY, engine_settings, fresh_database
from tests.fakes.serve import serve_asgi
from worker import running_worker
from campaign_engine.settings import Settings
from campaign_engine.temporal import connect

# Each operation's examples take a few seconds; the whole module about 40 s on 2 cores. A
# deadline per operation (not per example: hypothesis' deadline would flake on a loaded machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

CHECKS = [
    st_checks.not_a_server_error,
    oas_checks.status_code_conformance,
    oas_checks.content_type_conformance,
    oas_checks.response_schema_conformance,
]


class EngineThread:
    """A whole engine in a thread of its own; `start()` returns the API's base URL."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.base_url: str | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # surfaced by start()
            self._error = err
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = await connect(self.settings)
        async with running_worker(client, self.settings):
            async with serve_asgi(create_app(self.settings), lifespan="on") as base_url:
                self.base_url = base_url
                self._ready.set()
                await self._stop.wait()

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"the engine did not start: {self._error!r}")
        return self.base_url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


SEEDED_PHONES = [f"+9198{i:08d}" for i in range(3)]


@dataclass
class Seeded:
    base_url: str
    campaign_ids: list[str]


@pytest.fixture(scope="module")
def engine(dev_env, tmp_path_factory):
    """The engine, with campaigns of the key's tenant that path parameters are pointed at."""
    carrier_db: Path = tmp_path_factory.mktemp("schemathesis") / "carrier.sqlite3"
    served = EngineThread(engine_settings(dev_env, "tq-schemathesis", carrier_db,
                                          DATABASE_URL=fresh_database("st")))
    base_url = served.start()
    ids = []
    with httpx.Client(base_url=base_url, headers={"x-api-key": API_KEY}, timeout=30) as http:
        for name in ("draft", "started"):
            resp = http.post("/uploadCampaignData", json={
                "campaign_name": f"schemathesis {name}", "agent_id": "agent-1",
                "contacts": [{"phone_number": p} for p in SEEDED_PHONES]})
            assert resp.status_code == 200, resp.text
            ids.append(resp.json()["campaign_id"])
        assert http.post(f"/startCampaignv2/{ids[1]}").status_code == 200
    yield Seeded(base_url, ids)
    served.stop()


def pointed_at_seeded(case, seeded: Seeded) -> None:
    """Point about two cases in three at a seeded campaign (and contact), chosen from what was
    generated (crc32: the same every run), so the operations meet real campaigns, not only 404s."""
    params = case.path_parameters or {}
    if "campaign_id" in params:
        pick = zlib.crc32(repr(sorted(params.items())).encode()) % 3
        if pick < 2:
            params["campaign_id"] = seeded.campaign_ids[pick]
            if "phone" in params:
                params["phone"] = SEEDED_PHONES[zlib.crc32(str(params["phone"]).encode()) % 3]


# The document the app serves at /openapi.json (it does not depend on the settings); loaded at
# import so pytest can parametrize by operation (schemathesis.pytest.from_fixture does not
# work with pytest 9).
schema = schemathesis.openapi.from_dict(create_app(Settings(CAMPAIGN_API_KEYS=f"acme:{API_KEY}")).openapi())


# Derandomized by conftest's "ci" profile (HYPOTHESIS_PROFILE=explore searches afresh).
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(engine, case):
    pointed_at_seeded(case, engine)
    case.call_and_validate(base_url=engine.base_url, headers={"x-api-key": API_KEY}, checks=CHECKS, timeout=30)
