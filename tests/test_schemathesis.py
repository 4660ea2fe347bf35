"""schemathesis over the whole OpenAPI, with a valid key, against a real engine (issue 16).

The engine (API over real HTTP, a worker, real Temporal, real PostgreSQL) runs for the whole
module in a thread with its own event loop: schemathesis' tests are synchronous and call the
server with `requests`, so the session's loop does not run while they do, and a worker on it
would not answer the queries the API makes.

Every operation gets a bounded, derandomized number of examples; every answer must be no 5xx,
a documented status code and content type, and conform to the documented schema, and a request
the document calls valid must not be refused (positive_data_acceptance: the document says what
the API accepts beyond the types, api.openapi_refine; its named formats are generated below). Path
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
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import httpx
import phonenumbers
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oas_checks

from api.main import create_app
from campaign_engine.policy.windows import validate_time_zone
from campaign_engine.settings import Settings
from campaign_engine.temporal import connect
from tests.conftest import API_KEY, engine_settings, fresh_database
from tests.fakes.serve import serve_asgi
from worker import running_worker

# Each operation's examples take a few seconds; the whole module about 40 s on 2 cores. A
# deadline per operation (not per example: hypothesis' deadline would flake on a loaded machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

# A request the document calls valid is not refused (no 400/408/413/415): the document says what
# the API accepts (api.openapi_refine), its named formats generated below.
POSITIVE = oas_checks.positive_data_acceptance
CHECKS = [
    st_checks.not_a_server_error,
    oas_checks.status_code_conformance,
    oas_checks.content_type_conformance,
    oas_checks.response_schema_conformance,
    POSITIVE,
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
    generated (crc32: the same every run), so the operations meet real campaigns, not only 404s.

    A generated `cursor` is dropped: a cursor is opaque, valid only as the `next_cursor` of the
    page before (what it encodes is not the client's to write, so no schema can describe the
    valid ones); a made-up one is a 400 `invalid cursor`, tested in test_store_records."""
    if case.query and "cursor" in case.query:
        case.query.pop("cursor")
    params = case.path_parameters or {}
    if "campaign_id" in params:
        pick = zlib.crc32(repr(sorted(params.items())).encode()) % 3
        if pick < 2:
            params["campaign_id"] = seeded.campaign_ids[pick]
            if "phone" in params:
                params["phone"] = SEEDED_PHONES[zlib.crc32(str(params["phone"]).encode()) % 3]


# The formats the document names for what JSON Schema cannot say (api.openapi_refine): a
# generator each, of values the format's description calls valid.
def _valid_numbers() -> list[str]:
    numbers = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and phonenumbers.is_valid_number(example):
                numbers.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(numbers)


def _known_zones() -> list[str]:
    def known(name: str) -> bool:
        try:
            return validate_time_zone(name) == name
        except ValueError:
            return False

    return sorted(z for z in zoneinfo.available_timezones() if known(z))


schemathesis.openapi.format("e164", st.sampled_from(_valid_numbers()))
schemathesis.openapi.format("iana-time-zone", st.sampled_from(_known_zones()))
schemathesis.openapi.format("webhook-url", st.builds(
    "https://{}.example.com/{}".format, st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/_-]{0,30}", fullmatch=True)))


# The document the app serves at /openapi.json (it does not depend on the settings); loaded at
# import so pytest can parametrize by operation (schemathesis.pytest.from_fixture does not
# work with pytest 9).
schema = schemathesis.openapi.from_dict(create_app(Settings(CAMPAIGN_API_KEYS=f"acme:{API_KEY}")).openapi())


# The rules of a valid body that JSON Schema cannot state (each compares values of two fields
# or items): a calling window's startTime and endTime differ (a window needs a length), no
# two redial rules match the same status, and a voicemail rule goes with redialVoicemail not
# false. A body breaking one is held to every check but
# positive_data_acceptance (test_policy_windows and test_policy_redial_rules hold the API to
# refusing it).
def _meets_the_rules_json_schema_cannot_state(body) -> bool:
    if not isinstance(body, dict):
        return True
    window = body.get("callingWindow")
    if isinstance(window, dict) and window.get("startTime") is not None \
            and window.get("startTime") == window.get("endTime"):
        return False
    redial = body.get("redialConfig")
    rules = redial.get("callStatus") if isinstance(redial, dict) else None
    if isinstance(rules, list):
        matches = [repr(r.get("match")) for r in rules if isinstance(r, dict)]
        if len(matches) != len(set(matches)):
            return False
        if "'voicemail'" in matches and redial.get("redialVoicemail") is False:
            return False
    return True


# Derandomized by conftest's "ci" profile (HYPOTHESIS_PROFILE=explore searches afresh).
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(engine, case):
    pointed_at_seeded(case, engine)
    # A text/csv body is documented as a string, a multipart upload's file and an xlsx body as
    # binary: what makes a valid file (a phone_number column, E.164 rows) is the CSV upload's
    # own tests' to hold (tests/test_csv_upload.py).
    positive = _meets_the_rules_json_schema_cannot_state(case.body) and case.media_type in (
        None, "application/json")
    checks = CHECKS if positive else [c for c in CHECKS if c is not POSITIVE]
    case.call_and_validate(base_url=engine.base_url, headers={"x-api-key": API_KEY}, checks=checks, timeout=30)
