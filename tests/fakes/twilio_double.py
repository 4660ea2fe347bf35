"""A test double of Twilio's Calls REST API, speaking the real wire format.

Serve ``TwilioDouble().app`` with `tests.fakes.serve.serve_asgi` and point the provider's
``api_base_url`` at it. Endpoints (Basic auth with the account SID + Auth Token, or an API
key + secret; a wrong one gets Twilio's 401 ``{"code": 20003, ...}``):

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (form-encoded): creates a call,
  201 with the Call resource (no StatusCallback or Url in it: Twilio does not return them).
- ``GET  /2010-04-01/Accounts/{AccountSid}/Calls.json``: filters ``To``, ``From``, ``Status``,
  ``StartTime``, ``StartTime>`` (on the wire ``StartTime>=YYYY-MM-DD``: the key is
  ``StartTime>``), ``StartTime<``, the same for ``EndTime``; ``PageSize``/``Page``/
  ``PageToken``; Twilio's paging envelope (``calls``, ``page``, ``page_size``, ``start``,
  ``end``, ``uri``, ``first_page_uri``, ``next_page_uri``, ``previous_page_uri``), newest
  first. A StartTime filter never matches a call that has not been dialed (no start time).
- ``GET  /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``: the Call resource, or 404
  ``{"code": 20404, ...}``.

Each call follows the scenario of its destination number (``scenarios`` / `set_scenario`,
else ``default_scenario``):

=====================  =========================================================
answered               initiated -> ringing -> in-progress -> completed (42 s)
machine                as answered, AnsweredBy machine_end_beep (when AMD asked)
busy                   initiated -> ringing -> busy (SIP 486)
no-answer              initiated -> ringing -> no-answer (SIP 487)
failed                 initiated -> failed (SIP 503)
unallocated            initiated -> failed (SIP 404)
canceled               canceled before dialing
invalid                the create is refused: 400 {"code": 21211}
rate-limited-once      the first create to the number gets 429 {"code": 20429}, then answered
server-error-once      the first create gets 500 {"code": 20500}, then answered
timeout-once           the first create creates the call but answers only after
                       ``slow_response_seconds`` (a client with a shorter timeout gives
                       up: "the answer was lost"), then answered
=====================  =========================================================

The test drives calls with ``await double.advance(call_sid)`` (one step) or
``run_to_end``; with ``auto_advance_seconds`` set, calls advance by themselves. Every step
that the create subscribed to with ``StatusCallbackEvent`` (the final one always) POSTs a
status callback to the call's ``StatusCallback`` URL, signed like Twilio: ``X-Twilio-Signature``
= base64(HMAC-SHA1(auth token, URL + each POST parameter name and value, sorted by name)),
with CallSid, AccountSid, From, To, CallStatus, Direction, ApiVersion, CallbackSource,
Timestamp, SequenceNumber, and AnsweredBy / CallDuration / SipResponseCode when known.

Everything is recorded: ``requests`` (every API request), ``calls``, ``callbacks``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MACHINE_DETECTION_VALUES = {"Enable", "DetectMessageEnd"}

SCENARIOS = (
    "answered",
    "machine",
    "busy",
    "no-answer",
    "failed",
    "unallocated",
    "canceled",
    "invalid",
    "rate-limited-once",
    "server-error-once",
    "timeout-once",
)


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | list[tuple[str, str]]) -> str:
    """X-Twilio-Signature of a POST to ``url`` with form ``params``, computed like Twilio does
    (written out here, independently of twilio-python's RequestValidator)."""
    items = params.items() if isinstance(params, dict) else params
    data = url + "".join(name + value for name, value in sorted(items))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def rfc2822(dt: datetime | None) -> str | None:
    return format_datetime(dt.astimezone(timezone.utc).replace(microsecond=0)) if dt else None


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: dict[str, str]
    status: int = 0
    at: float = field(default_factory=time.time)

    def form_value(self, name: str) -> str | None:
        values = [v for k, v in self.form if k == name]
        return values[-1] if values else None

    def form_values(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]

    @property
    def is_create(self) -> bool:
        return self.method == "POST" and self.path.endswith("/Calls.json")

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and self.path.endswith("/Calls.json")

    def callback_query(self) -> dict[str, str]:
        """Query parameters of the StatusCallback URL this create asked for."""
        url = self.form_value("StatusCallback") or ""
        return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Step:
    status: str  # the Call resource's status after the step
    event: str  # StatusCallbackEvent it belongs to: initiated, ringing, answered, completed
    callback_status: str  # CallStatus in the callback
    answered_by: str | None = None
    sip: int | None = None
    duration: int | None = None


@dataclass
class DeliveredCallback:
    url: str
    params: dict[str, str]
    signature: str
    status_code: int | None = None
    error: str | None = None


@dataclass
class FakeCall:
    sid: str
    account_sid: str
    to: str
    from_: str
    scenario: str
    status: str
    date_created: datetime
    date_updated: datetime
    order: int
    params: list[tuple[str, str]]
    steps: list[Step]
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    answered_by: str | None = None
    sip_response_code: int | None = None
    sequence: int = 0
    callbacks: list[DeliveredCallback] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        values = [v for k, v in self.params if k == name]
        return values[-1] if values else None

    @property
    def status_callback(self) -> str | None:
        return self.param("StatusCallback")

    @property
    def subscribed_events(self) -> set[str]:
        events: set[str] = set()
        for k, v in self.params:
            if k == "StatusCallbackEvent":
                events.update(e for e in re.split(r"[\s,]+", v) if e)
        return events

    @property
    def machine_detection(self) -> str | None:
        return self.param("MachineDetection")

    @property
    def is_final(self) -> bool:
        return self.status in ("completed", "busy", "no-answer", "failed", "canceled")

    def callback_query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.status_callback or "").query).items()}

    def resource(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": "PN" + hashlib.md5(self.from_.encode()).hexdigest(),
            "status": self.status,
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "duration": str(self.duration) if self.duration is not None else None,
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": f"{uri}.json",
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
                "events": f"{uri}/Events.json",
            },
        }


def _plan(scenario: str, amd: bool) -> list[Step]:
    initiated = Step("queued", "initiated", "initiated")
    ringing = Step("ringing", "ringing", "ringing")
    if scenario == "machine":
        who = "machine_end_beep" if amd else None
        return [
            initiated,
            ringing,
            Step("in-progress", "answered", "in-progress", answered_by=who),
            Step("completed", "completed", "completed", answered_by=who, sip=200, duration=17),
        ]
    if scenario == "busy":
        return [initiated, ringing, Step("busy", "completed", "busy", sip=486, duration=0)]
    if scenario == "no-answer":
        return [initiated, ringing, Step("no-answer", "completed", "no-answer", sip=487, duration=0)]
    if scenario == "failed":
        return [initiated, Step("failed", "completed", "failed", sip=503, duration=0)]
    if scenario == "unallocated":
        return [initiated, Step("failed", "completed", "failed", sip=404, duration=0)]
    if scenario == "canceled":
        return [Step("canceled", "completed", "canceled", duration=0)]
    who = "human" if amd else None
    return [
        initiated,
        ringing,
        Step("in-progress", "answered", "in-progress", answered_by=who),
        Step("completed", "completed", "completed", answered_by=who, sip=200, duration=42),
    ]


def _parse_bound(value: str) -> tuple[datetime, bool]:
    """A filter value: (instant, date_only)."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        d = date.fromisoformat(value)
        return datetime(d.year, d.month, d.day, tzinfo=timezone.utc), True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)), False


def _time_filter(op: str, value: str, t: datetime | None) -> bool:
    if t is None:
        return False
    bound, date_only = _parse_bound(value)
    if op == ">":  # on or after
        return t >= bound
    if op == "<":  # on or before (the whole day for a date)
        return t < bound + timedelta(days=1) if date_only else t <= bound
    return bound <= t < bound + timedelta(days=1) if date_only else t == bound


class TwilioDouble:
    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        api_keys: dict[str, str] | None = None,
        scenarios: dict[str, str] | None = None,
        default_scenario: str = "answered",
        auto_advance_seconds: float | None = None,
        slow_response_seconds: float = 2.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.api_keys = dict(api_keys or {})
        self.scenarios: dict[str, str] = dict(scenarios or {})
        self.default_scenario = default_scenario
        self.auto_advance_seconds = auto_advance_seconds
        self.slow_response_seconds = slow_response_seconds
        # Shift the double's clock (e.g. make a call look an hour old): `time_offset`.
        self.time_offset = timedelta(0)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self.callbacks: list[DeliveredCallback] = []
        self._once_used: set[tuple[str, str]] = set()
        self._order = itertools.count()
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.RLock()
        self.app = Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{account_sid}/Calls.json", self._calls_endpoint, methods=["GET", "POST"]),
                Route("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json", self._call_endpoint, methods=["GET"]),
            ]
        )

    # --- test API -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock() + self.time_offset

    def set_scenario(self, number: str, scenario: str) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self.scenarios[number] = scenario

    def create_requests(self, to: str | None = None) -> list[RecordedRequest]:
        """Every POST to Calls.json (refused ones included), optionally for one number."""
        with self._lock:
            return [r for r in self.requests if r.is_create and (to is None or r.form_value("To") == to)]

    def list_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.is_list]

    def created_calls(
        self, *, to: str | None = None, wf: str | None = None, attempt: int | None = None
    ) -> list[FakeCall]:
        """Calls the double created, oldest first, filtered by destination and by the
        contact workflow id / attempt found in their StatusCallback URL."""
        with self._lock:
            calls = sorted(self.calls.values(), key=lambda c: c.order)
        out = []
        for call in calls:
            query = call.callback_query()
            if to is not None and call.to != to:
                continue
            if wf is not None and query.get("wf") != wf:
                continue
            if attempt is not None and query.get("attempt") != str(attempt):
                continue
            out.append(call)
        return out

    async def advance(self, call_sid: str) -> FakeCall:
        """Move the call one step along its scenario and deliver the step's callback."""
        with self._lock:
            call = self.calls[call_sid]
            if not call.steps:
                raise ValueError(f"{call_sid} is already {call.status}")
            step = call.steps.pop(0)
            now = self.now()
            call.status = step.status
            call.date_updated = now
            if step.event == "initiated" or (step.status not in ("queued", "canceled") and call.start_time is None):
                call.start_time = call.start_time or now
            if step.answered_by is not None:
                call.answered_by = step.answered_by
            if step.sip is not None:
                call.sip_response_code = step.sip
            final = call.is_final
            if final:
                call.end_time = now
                call.duration = step.duration if step.duration is not None else 0
            deliver = call.status_callback and (final or step.event in call.subscribed_events)
            params: dict[str, str] = {}
            if deliver:
                params = {
                    "CallSid": call.sid,
                    "AccountSid": call.account_sid,
                    "From": call.from_,
                    "To": call.to,
                    "CallStatus": step.callback_status,
                    "Direction": "outbound-api",
                    "ApiVersion": API_VERSION,
                    "CallbackSource": "call-progress-events",
                    "Timestamp": rfc2822(now) or "",
                    "SequenceNumber": str(call.sequence),
                }
                call.sequence += 1
                if call.answered_by and call.machine_detection:
                    params["AnsweredBy"] = call.answered_by
                if final:
                    params["CallDuration"] = str(call.duration or 0)
                    if call.sip_response_code is not None:
                        params["SipResponseCode"] = str(call.sip_response_code)
            url = call.status_callback
        if deliver and url:
            await self._deliver(call, url, params)
        return call

    async def run_to_end(self, call_sid: str) -> FakeCall:
        call = self.calls[call_sid]
        while call.steps:
            await self.advance(call_sid)
        return call

    @staticmethod
    async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> None:
        """Wait (bounded) until ``predicate()`` holds; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)

    def sign(self, url: str, params: dict[str, str]) -> str:
        return twilio_signature(self.auth_token, url, params)

    # --- callbacks --------------------------------------------------------------------------

    async def _deliver(self, call: FakeCall, url: str, params: dict[str, str]) -> None:
        signature = self.sign(url, params)
        delivered = DeliveredCallback(url=url, params=params, signature=signature)
        try:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
                response = await client.post(
                    url,
                    content=urlencode(params).encode("utf-8"),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                        "User-Agent": "TwilioProxy/1.1",
                    },
                )
            delivered.status_code = response.status_code
        except httpx.HTTPError as exc:
            delivered.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            call.callbacks.append(delivered)
            self.callbacks.append(delivered)

    async def _auto_advance(self, call_sid: str) -> None:
        assert self.auto_advance_seconds is not None
        while self.calls[call_sid].steps:
            await asyncio.sleep(self.auto_advance_seconds)
            await self.advance(call_sid)

    # --- HTTP -------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if user == self.account_sid:
            return hmac.compare_digest(password, self.auth_token)
        if user in self.api_keys:
            return hmac.compare_digest(password, self.api_keys[user])
        return False

    async def _record(self, request: Request) -> RecordedRequest:
        body = await request.body()
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True) if request.method == "POST" else []
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=parse_qsl(request.url.query, keep_blank_values=True),
            form=form,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def _guard(self, request: Request) -> JSONResponse | None:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if request.path_params["account_sid"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        return None

    async def _calls_endpoint(self, request: Request) -> Response:
        recorded = await self._record(request)
        response = self._guard(request) or (
            await self._create(request, recorded) if request.method == "POST" else self._list(request, recorded)
        )
        recorded.status = response.status_code
        return response

    async def _call_endpoint(self, request: Request) -> Response:
        recorded = await self._record(request)
        response = self._guard(request)
        if response is None:
            with self._lock:
                call = self.calls.get(request.path_params["call_sid"])
                resource = call.resource() if call else None
            if resource is None:
                response = _error(404, 20404, f"The requested resource {request.url.path} was not found")
            else:
                response = JSONResponse(resource)
        recorded.status = response.status_code
        return response

    def _once(self, to: str, scenario: str) -> bool:
        """True the first time a *-once scenario is hit for `to`."""
        with self._lock:
            if (to, scenario) in self._once_used:
                return False
            self._once_used.add((to, scenario))
            return True

    async def _create(self, request: Request, recorded: RecordedRequest) -> Response:
        to = recorded.form_value("To")
        from_ = recorded.form_value("From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not (recorded.form_value("Url") or recorded.form_value("Twiml") or recorded.form_value("ApplicationSid")):
            return _error(400, 21205, "Url parameter is required.")
        md = recorded.form_value("MachineDetection")
        if md is not None and md not in MACHINE_DETECTION_VALUES:
            return _error(400, 21215, f"Invalid MachineDetection {md}")
        scenario = self.scenarios.get(to, self.default_scenario)
        if scenario == "invalid" or not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if scenario == "rate-limited-once" and self._once(to, scenario):
            return _error(429, 20429, "Too Many Requests")
        if scenario == "server-error-once" and self._once(to, scenario):
            return _error(500, 20500, "An internal server error has occurred")
        slow = scenario == "timeout-once" and self._once(to, scenario)
        behaviour = (
            scenario
            if scenario in ("answered", "machine", "busy", "no-answer", "failed", "unallocated", "canceled")
            else "answered"
        )
        now = self.now()
        with self._lock:
            call = FakeCall(
                sid="CA" + secrets.token_hex(16),
                account_sid=self.account_sid,
                to=to,
                from_=from_,
                scenario=scenario,
                status="queued",
                date_created=now,
                date_updated=now,
                order=next(self._order),
                params=list(recorded.form),
                steps=_plan(behaviour, amd=md is not None),
            )
            self.calls[call.sid] = call
            resource = call.resource()
        if self.auto_advance_seconds is not None:
            task = asyncio.get_running_loop().create_task(self._auto_advance(call.sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if slow:
            await asyncio.sleep(self.slow_response_seconds)
        return JSONResponse(resource, status_code=201)

    def _list(self, request: Request, recorded: RecordedRequest) -> Response:
        query = recorded.query
        params = dict(query)
        try:
            page_size = max(1, min(1000, int(params.get("PageSize", "50"))))
            page = max(0, int(params.get("Page", "0")))
        except ValueError:
            return _error(400, 20001, "Invalid paging parameters")
        try:
            with self._lock:
                calls = list(self.calls.values())
            selected = []
            for call in calls:
                keep = True
                for name, value in query:
                    if name == "To":
                        keep &= call.to == value
                    elif name == "From":
                        keep &= call.from_ == value
                    elif name == "Status":
                        keep &= call.status == value
                    elif name.startswith("StartTime"):
                        keep &= _time_filter(name[len("StartTime") :].rstrip("="), value, call.start_time)
                    elif name.startswith("EndTime"):
                        keep &= _time_filter(name[len("EndTime") :].rstrip("="), value, call.end_time)
                if keep:
                    selected.append(call)
        except ValueError as exc:
            return _error(400, 20001, f"Invalid filter: {exc}")
        selected.sort(key=lambda c: (c.date_created, c.order), reverse=True)
        start = page * page_size
        chunk = selected[start : start + page_size]
        filters = [(k, v) for k, v in query if k not in ("PageSize", "Page", "PageToken")]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"

        def page_uri(n: int, token: str | None = None) -> str:
            q = filters + [("PageSize", str(page_size)), ("Page", str(n))]
            if token:
                q.append(("PageToken", token))
            return f"{base}?{urlencode(q)}"

        has_next = start + page_size < len(selected)
        body = {
            "calls": [c.resource() for c in chunk],
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, "PA" + chunk[-1].sid) if has_next and chunk else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1, "PB" + chunk[0].sid) if page > 0 and chunk else None,
            "start": start,
            "uri": page_uri(page),
        }
        return JSONResponse(body)
