"""Twilio Programmable Voice as a telephony provider.

Uses the official `twilio` package (``twilio.rest.Client``) with an asynchronous HTTP client
built on httpx (`TwilioHttpxClient`), so activities never block the worker's event loop. The
REST base URL is configurable (``api_base_url``; Twilio's is ``https://api.twilio.com``) so tests
can point the provider at a local double of the API.

Placing a call without ever dialing twice
-----------------------------------------
Twilio's ``POST /Calls.json`` has no idempotency key, and an activity runs at least once: a
worker that crashes (or times out) after Twilio accepted the create but before the answer
was recorded retries the same attempt. So `place_call` first looks for the call an earlier
try of the same attempt created, and adopts it:

- Each attempt is made identifiable: its StatusCallback URL is
  ``{public_base_url}/callbacks/twilio?wf=<contact workflow id>&attempt=<n>`` and the agent
  Url carries the same identifiers. Twilio, however, does not return a call's StatusCallback
  or Url in the Call resource (nor in the list of calls), and its Call Events subresource
  (which does show the URLs Twilio requested) is only readable 15 minutes after the call
  ends. So the marker cannot be read back while it matters.
- The fallback, used always: a call counts as this attempt's call when it is outbound, was
  placed **to** ``request.to`` **from** one of our numbers, and was created at or after
  ``request.attempt_started_at`` (minus ``adopt_clock_skew_seconds``: Twilio's timestamps
  have whole-second precision and its clock is not ours). Why this is sound for this engine:
  the contact workflow runs one attempt at a time and decides ``attempt_started_at`` (its
  deterministic workflow time) before the activity first runs; the previous attempt's call
  was created before that attempt ended, which is before the redial wait began. The residual
  risk is another of our campaigns dialing the same number from the same caller ID at the
  same time (that call would be adopted instead of dialing again: a missed call, never a
  double one).
- Two list queries cover every state: ``To``/``From`` with ``StartTime>=<day of the
  threshold>`` finds calls that were dialed, and ``To``/``From`` with ``Status=queued`` finds
  calls still waiting in Twilio's queue (they have no start time yet, so a StartTime filter
  may not return them). A call that failed or was canceled before it was ever dialed has no
  start time either and is not found: the retry then dials once more. Twilio's list may also
  lag a create by a moment; a retry that comes within that lag could dial again. Both are
  narrow windows that only a worker crash in the middle of a create can open.

Errors
------
- HTTP 429 (20429), 5xx, network errors and timeouts: `ProviderError` (retry the activity).
- HTTP 401 / 20003 and account or configuration errors (bad From number, bad Url, account
  suspended, 403): `ProviderAuthError` (`ProviderConfigError` for the latter): no call of the
  campaign can succeed until someone fixes the configuration.
- The destination refused at creation (21211, 21214, 21217, 21401, 21407, 21612, 21614,
  13223, 13224): not an exception but a `PlacedCall` whose `outcome` is already final:
  FAILED with hangup cause INVALID_NUMBER (never redialed). Other 4xx refusals (geo
  permissions, blocked or unverified destinations, unknown codes) are FAILED with
  CALL_REJECTED. The call id is synthetic: ``rejected:<idempotency key>``.

Callbacks
---------
`verify_twilio_signature` checks ``X-Twilio-Signature`` (Twilio signs the exact public URL it
requested, query included, plus the sorted POST parameters, with the account's Auth Token —
even when the REST calls use an API key). `parse_twilio_callback` turns the form into a
`CallOutcome`; `parse_callback_query` recovers the contact workflow id and attempt from the
callback URL; `parse_form_body` decodes a form body without python-multipart. Twilio may
deliver status callbacks out of order (``SequenceNumber`` orders them): a final outcome must
win over a later-arriving progress event.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, AsyncIterator, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape as xml_escape

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from activities.http_client import LoopBoundClient
from activities.providers.base import ProviderAuthError, ProviderError
from activities.providers.twilio_settings import TwilioSettings
from campaign_engine.models import CallOutcome, CallProgress, CallRequest, Outcome, PlacedCall

logger = logging.getLogger(__name__)

PROVIDER_NAME = "twilio"
CALLBACK_PATH = "/callbacks/twilio"
DEFAULT_API_BASE_URL = "https://api.twilio.com"
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
REJECTED_PREFIX = "rejected:"

# Twilio error codes, https://www.twilio.com/docs/api/errors/<code>
# The destination itself is unusable: never worth a redial.
INVALID_NUMBER_CODES = frozenset(
    {
        21211,  # Invalid 'To' Phone Number
        21214,  # 'To' phone number cannot be reached
        21217,  # Phone number does not appear to be valid
        21401,  # Invalid Phone Number
        21407,  # This Phone Number type does not support Voice
        21612,  # The 'To' phone number is not currently reachable
        21614,  # 'To' number is not a valid mobile number
        13223,  # Dial: Invalid phone number format
        13224,  # Dial: Twilio does not support calling this number or the number is invalid
    }
)
# The destination is valid but this account may not call it (geo permissions, blocklists,
# trial accounts): a failed attempt, fixable by configuration.
REJECTED_DESTINATION_CODES = frozenset({21215, 21216, 21219, 13227})
# Our account or request configuration is wrong: every call would fail the same way.
CONFIG_ERROR_CODES = frozenset(
    {
        20003,  # Authenticate (bad credentials)
        20005,  # Account not active
        20008,  # Cannot access this resource with Test Credentials
        20403,  # Forbidden
        21205,  # Url is not a valid URL
        21210,  # 'From' phone number not verified
        21212,  # Invalid 'From' / caller ID
        21213,  # Caller phone number is required
    }
)
RETRYABLE_CODES = frozenset({20429, 20500, 20503, 22005})

_MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax", "machine"}
)
_INVALID_SIP = frozenset({404, 410, 484, 604})
_REJECTED_SIP = frozenset({403, 603, 607, 608})
_BUSY_SIP = frozenset({486, 600})
_NO_ANSWER_SIP = frozenset({408, 480, 487})


class ProviderConfigError(ProviderAuthError):
    """Twilio refused our account or request configuration (not the destination)."""


# --- pure helpers ----------------------------------------------------------------------------


def _to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _parse_rfc2822(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _failed_hangup_cause(sip: int | None) -> str | None:
    if sip is None:
        return None
    if sip in _INVALID_SIP:
        return "INVALID_NUMBER"
    if sip in _REJECTED_SIP:
        return "CALL_REJECTED"
    if sip in _BUSY_SIP:
        return "USER_BUSY"
    if sip in _NO_ANSWER_SIP:
        return "NO_ANSWER"
    if 500 <= sip < 600:
        return "NETWORK_ERROR"
    return None


def map_twilio_status(
    call_status: str | None,
    answered_by: str | None = None,
    sip_response_code: int | str | None = None,
    duration: float | str | None = None,
) -> tuple[Outcome | None, CallProgress | None, str | None]:
    """Map Twilio's CallStatus (of a callback or of the Call resource) to the engine's terms.

    Returns ``(outcome, progress, hangup_cause)``: exactly one of outcome/progress is set for
    a known status; ``(None, None, None)`` for a status this engine does not know.

    - queued / initiated -> QUEUED, ringing -> RINGING, in-progress / answered -> IN_PROGRESS
    - completed -> COMPLETED (answered by a person, or ``AnsweredBy`` human / unknown / absent),
      VOICEMAIL when ``AnsweredBy`` is ``machine_*`` or ``fax``; hangup NORMAL_CLEARING
    - busy -> BUSY (USER_BUSY), no-answer -> NO_ANSWER (NO_ANSWER),
      canceled -> CANCELED (ORIGINATOR_CANCEL)
    - failed -> FAILED; the hangup cause comes from the SIP response code: 404/410/484/604
      INVALID_NUMBER, 403/603/607/608 CALL_REJECTED, 486/600 USER_BUSY, 408/480/487
      NO_ANSWER, 5xx NETWORK_ERROR, otherwise none.

    ``duration`` is accepted so callers can pass a callback through unchanged; Twilio's
    status alone decides (a completed call was answered whatever its length).
    """
    del duration
    status = (call_status or "").strip().lower()
    if status in ("queued", "initiated"):
        return None, CallProgress.QUEUED, None
    if status == "ringing":
        return None, CallProgress.RINGING, None
    if status in ("in-progress", "answered"):
        return None, CallProgress.IN_PROGRESS, None
    if status == "completed":
        if (answered_by or "").strip().lower() in _MACHINE_ANSWERS:
            return Outcome.VOICEMAIL, None, "NORMAL_CLEARING"
        return Outcome.COMPLETED, None, "NORMAL_CLEARING"
    if status == "busy":
        return Outcome.BUSY, None, "USER_BUSY"
    if status == "no-answer":
        return Outcome.NO_ANSWER, None, "NO_ANSWER"
    if status == "canceled":
        return Outcome.CANCELED, None, "ORIGINATOR_CANCEL"
    if status == "failed":
        return Outcome.FAILED, None, _failed_hangup_cause(_to_int(sip_response_code))
    return None, None, None


def _reason(status: str | None, sip: int | None = None, answered_by: str | None = None) -> str:
    parts = [f"twilio status={status or 'unknown'}"]
    if answered_by:
        parts.append(f"answered_by={answered_by}")
    if sip is not None:
        parts.append(f"sip={sip}")
    return " ".join(parts)


def _first(form: Mapping[str, Any], key: str) -> str | None:
    value = form.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value)
    return value if value != "" else None


def parse_twilio_callback(form: Mapping[str, Any], attempt: int = 0) -> CallOutcome:
    """Turn a Twilio status callback (its form parameters) into a `CallOutcome`.

    ``attempt`` is the attempt number from the callback URL's query (see
    `parse_callback_query`). Raises ValueError when CallSid or a known CallStatus is missing.
    """
    call_sid = _first(form, "CallSid")
    status = _first(form, "CallStatus")
    if not call_sid:
        raise ValueError("Twilio callback without CallSid")
    answered_by = _first(form, "AnsweredBy")
    sip = _to_int(_first(form, "SipResponseCode"))
    outcome, progress, hangup = map_twilio_status(status, answered_by, sip, _first(form, "CallDuration"))
    if outcome is None and progress is None:
        raise ValueError(f"Twilio callback with unknown CallStatus {status!r}")
    return CallOutcome(
        call_id=call_sid,
        attempt=attempt,
        outcome=outcome,
        progress=progress,
        duration_seconds=_to_float(_first(form, "CallDuration")) if outcome is not None else None,
        hangup_cause=hangup,
        reason=_reason(status, sip, answered_by),
        answered_by=answered_by,
        recording_url=_first(form, "RecordingUrl"),
        ended_at=_parse_rfc2822(_first(form, "Timestamp")) if outcome is not None else None,
    )


def verify_twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any] | None,
    signature: str | None,
    *,
    signature_settings: str | None = None,
) -> bool:
    """True when ``signature`` (the X-Twilio-Signature header) signs this request.

    ``url`` must be the exact public URL Twilio requested, query string included (the route
    rebuilds it as PUBLIC_BASE_URL + path + "?" + the raw query string); ``params`` the POST
    form parameters. ``signature_settings`` is the X-Twilio-Webhooks-Signature-Settings
    header when the webhook is signed with a shared key (then ``auth_token`` is that secret).
    """
    if not auth_token or not signature:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    try:
        return bool(RequestValidator(auth_token).validate(url, dict(params or {}), signature, algorithm))
    except Exception:  # noqa: BLE001 - a malformed request is simply not valid
        return False


def build_status_callback_url(public_base_url: str, contact_workflow_id: str, attempt: int) -> str:
    """``{public_base_url}/callbacks/twilio?wf=<contact_workflow_id>&attempt=<n>``, url-encoded."""
    query = urlencode({"wf": contact_workflow_id, "attempt": str(attempt)}, quote_via=quote)
    return f"{public_base_url.rstrip('/')}{CALLBACK_PATH}?{query}"


def parse_callback_query(query: Mapping[str, Any]) -> tuple[str, int]:
    """``(contact_workflow_id, attempt)`` from a callback URL's query parameters."""
    wf = _first(query, "wf")
    attempt = _to_int(_first(query, "attempt"))
    if not wf or attempt is None:
        raise ValueError("callback URL without wf/attempt")
    return wf, attempt


def parse_form_body(body: bytes) -> dict[str, str]:
    """Decode an application/x-www-form-urlencoded body (the last value of a repeated key wins).

    Starlette's ``request.form()`` needs python-multipart even for url-encoded forms.
    """
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def _stable_index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


# --- HTTP ------------------------------------------------------------------------------------


class TwilioHttpxClient(AsyncHttpClient):
    """twilio-python's asynchronous HTTP client interface, on httpx.

    Network errors and timeouts become `ProviderError`. One httpx client per event loop.
    """

    def __init__(self, timeout: float = 15.0) -> None:
        super().__init__(logger, True, timeout)
        self._client = LoopBoundClient(timeout=timeout, trust_env=False)

    def _http(self) -> httpx.AsyncClient:
        return self._client.get()

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        try:
            response = await self._http().request(
                method.upper(),
                url,
                params=params or None,
                data=data or None,
                headers=headers,
                auth=auth,
                timeout=timeout or self.timeout,
                follow_redirects=allow_redirects,
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"twilio: {method.upper()} {url}: {type(exc).__name__}: {exc}") from exc
        return TwilioResponse(response.status_code, response.text, response.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_info(exc: Exception) -> tuple[int | None, int | None, str]:
    """(HTTP status, Twilio error code, message) of an exception raised by twilio-python."""
    if isinstance(exc, TwilioServiceException):
        return _to_int(exc.status), _to_int(exc.code), str(exc.detail or exc.title)
    if isinstance(exc, TwilioRestException):
        msg = str(exc.msg or "")
        for prefix in ("Unable to create record: ", "Unable to fetch record: "):
            msg = msg.removeprefix(prefix)
        return _to_int(exc.status), _to_int(exc.code), msg
    if isinstance(exc, TwilioException) and len(exc.args) > 1 and hasattr(exc.args[1], "status_code"):
        # Page.process_response raises TwilioException("Unable to fetch page", response).
        response = exc.args[1]
        code, message = None, str(exc.args[0])
        try:
            payload = json.loads(response.text)
            code = _to_int(payload.get("code"))
            message = str(payload.get("message") or message)
        except (ValueError, AttributeError):
            pass
        return _to_int(response.status_code), code, message
    return None, None, str(exc)


def _raise_mapped(exc: Exception, what: str) -> None:
    """Raise the engine's error for a Twilio failure that is not about the destination."""
    status, code, message = _error_info(exc)
    text = f"twilio {what}: HTTP {status} code {code}: {message}"
    if status == 401 or code == 20003:
        raise ProviderAuthError(text) from exc
    if code in CONFIG_ERROR_CODES or status in (403, 404):
        # 404 here: the account in the URL does not exist (fetching a call handles its own 404).
        raise ProviderConfigError(text) from exc
    raise ProviderError(text) from exc


def _is_retryable(status: int | None, code: int | None) -> bool:
    return status is None or status == 429 or status >= 500 or code in RETRYABLE_CODES


# --- the provider ------------------------------------------------------------------------------


class TwilioProvider:
    """`TelephonyProvider` on Twilio's Calls REST API."""

    name = PROVIDER_NAME

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        from_numbers: list[str] | tuple[str, ...] = (),
        public_base_url: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        agent_url: str | None = None,
        twiml_template: str | None = None,
        machine_detection: str | None = "DetectMessageEnd",
        ring_timeout_seconds: int | None = None,
        poll_after_seconds: float = 300.0,
        http_timeout_seconds: float = 15.0,
        adopt_clock_skew_seconds: float = 5.0,
        max_list_pages: int = 5,
        list_page_size: int = 50,
    ) -> None:
        if not account_sid:
            raise ValueError("Twilio: account_sid is required (TWILIO_ACCOUNT_SID)")
        if api_key or api_secret:
            if not (api_key and api_secret):
                raise ValueError("Twilio: api_key and api_secret go together")
            username, password = api_key, api_secret
        elif auth_token:
            username, password = account_sid, auth_token
        else:
            raise ValueError("Twilio: auth_token or api_key + api_secret is required")
        if not public_base_url:
            raise ValueError("Twilio: public_base_url is required (PUBLIC_BASE_URL): status callbacks go there")
        if not agent_url and not twiml_template:
            raise ValueError("Twilio: agent_url (TWILIO_AGENT_URL) or twiml_template is required")
        self.account_sid = account_sid
        self.auth_token = auth_token or ""
        self.from_numbers = [n for n in from_numbers if n]
        self.public_base_url = public_base_url.rstrip("/")
        self.api_base_url = (api_base_url or DEFAULT_API_BASE_URL).rstrip("/")
        self.agent_url = agent_url or None
        self.twiml_template = twiml_template or None
        md = (machine_detection or "").strip()
        self.machine_detection = None if md.lower() in ("", "off", "false", "none", "0") else md
        self.ring_timeout_seconds = ring_timeout_seconds
        self.poll_after_seconds = poll_after_seconds
        self.adopt_clock_skew = timedelta(seconds=adopt_clock_skew_seconds)
        self.max_list_pages = max_list_pages
        self.list_page_size = list_page_size
        self._http = TwilioHttpxClient(timeout=http_timeout_seconds)
        # A non-empty environment mapping keeps twilio-python from reading TWILIO_EDGE /
        # TWILIO_REGION (which would rewrite the host of a configured base URL).
        self._client = Client(
            username=username,
            password=password,
            account_sid=account_sid,
            http_client=self._http,
            environment={"CAMPAIGN_ENGINE": "1"},
        )
        self._client.api.base_url = self.api_base_url
        self._rejections: dict[str, CallOutcome] = {}

    @classmethod
    def from_settings(cls, settings: Any = None) -> "TwilioProvider":
        """Build from `TwilioSettings` (read from the environment when not given).

        Also accepts the engine's `Settings`: the Twilio fields are then read from the
        environment, and its PUBLIC_BASE_URL is used when TwilioSettings has none.
        """
        ts = settings if isinstance(settings, TwilioSettings) else TwilioSettings()
        public_base_url = ts.public_base_url or getattr(settings, "public_base_url", "") or ""
        return cls(
            account_sid=ts.account_sid,
            auth_token=ts.auth_token.get_secret_value() or None,
            api_key=ts.api_key or None,
            api_secret=ts.api_secret.get_secret_value() or None,
            from_numbers=ts.from_number_list(),
            public_base_url=public_base_url,
            api_base_url=ts.api_base_url,
            agent_url=ts.agent_url or None,
            twiml_template=ts.twiml_template or None,
            machine_detection=ts.machine_detection,
            ring_timeout_seconds=ts.ring_timeout_seconds,
            poll_after_seconds=ts.poll_after_seconds,
            http_timeout_seconds=ts.http_timeout_seconds,
            adopt_clock_skew_seconds=ts.adopt_clock_skew_seconds,
        )

    # --- TelephonyProvider -------------------------------------------------------------------

    async def place_call(self, request: CallRequest) -> PlacedCall:
        from_number = self.from_number_for(request)
        existing = await self._find_existing_call(request, from_number)
        if existing is not None:
            logger.info(
                "twilio: adopting call %s for %s (created %s)",
                existing.sid,
                request.idempotency_key,
                existing.date_created,
            )
            return self._placed(existing, request, adopted=True)
        try:
            call = await self._calls().create_async(**self.create_params(request, from_number))
        except ProviderError:
            raise
        except TwilioException as exc:
            return self._on_create_error(exc, request)
        return self._placed(call, request, adopted=False)

    async def fetch_call_status(self, call_id: str, request: CallRequest) -> CallOutcome:
        if call_id.startswith(REJECTED_PREFIX):
            known = self._rejections.get(call_id)
            if known is not None:
                return known
            return CallOutcome(
                call_id=call_id,
                attempt=request.attempt,
                outcome=Outcome.FAILED,
                hangup_cause="CALL_REJECTED",
                reason="twilio refused the call when it was created",
            )
        try:
            call = await self._calls().get(call_id).fetch_async()
        except ProviderError:
            raise
        except TwilioException as exc:
            status, code, message = _error_info(exc)
            if status == 404:
                return CallOutcome(
                    call_id=call_id,
                    attempt=request.attempt,
                    outcome=Outcome.FAILED,
                    reason=f"twilio {code or 20404}: call not found: {message}",
                )
            _raise_mapped(exc, f"fetch call {call_id}")
            raise  # unreachable
        return self._outcome_from_call(call, request.attempt)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- building the create request -------------------------------------------------------

    def from_number_for(self, request: CallRequest) -> str:
        """The caller ID: the request's, else one of ours chosen by a stable hash of the
        contact workflow id (so every attempt to a contact shows the same number)."""
        if request.from_number:
            return request.from_number
        if not self.from_numbers:
            raise ProviderConfigError("twilio: no From number (TWILIO_FROM_NUMBERS) and none in the request")
        return self.from_numbers[_stable_index(request.contact_workflow_id, len(self.from_numbers))]

    def status_callback_url(self, request: CallRequest) -> str:
        return build_status_callback_url(self.public_base_url, request.contact_workflow_id, request.attempt)

    def _placeholders(self, request: CallRequest, quote_value) -> _Placeholders:
        values = {
            "agent_id": request.agent_id,
            "campaign_id": request.campaign_id,
            "tenant_id": request.tenant_id,
            "attempt": str(request.attempt),
            "contact_workflow_id": request.contact_workflow_id,
            "idempotency_key": request.idempotency_key,
            "to": request.to,
            "variables_json": json.dumps(
                request.variables, separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False
            ),
        }
        return _Placeholders({k: quote_value(v) for k, v in values.items()})

    def agent_url_for(self, request: CallRequest) -> str:
        """The TwiML Url: the configured agent URL (placeholders filled) plus, in its query,
        agentId, campaignId, tenantId, wf, attempt, referenceId and ``vars`` (the contact's
        variables as compact JSON; omitted with ``varsOmitted=1`` past 2,000 characters, then
        the agent must fetch them from the engine)."""
        assert self.agent_url is not None
        base = self.agent_url
        if "{" in base:
            base = base.format_map(self._placeholders(request, lambda v: quote(v, safe="")))
        parts = urlsplit(base)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [
            ("agentId", request.agent_id),
            ("campaignId", request.campaign_id),
            ("tenantId", request.tenant_id),
            ("wf", request.contact_workflow_id),
            ("attempt", str(request.attempt)),
            ("referenceId", request.idempotency_key),
        ]
        if request.variables:
            encoded = json.dumps(
                request.variables, separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False
            )
            if len(encoded) <= 2000:
                query.append(("vars", encoded))
            else:
                query.append(("varsOmitted", "1"))
        return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))

    def twiml_for(self, request: CallRequest) -> str:
        assert self.twiml_template is not None
        return self.twiml_template.format_map(
            self._placeholders(request, lambda v: xml_escape(v, {'"': "&quot;", "'": "&apos;"}))
        )

    def create_params(self, request: CallRequest, from_number: str | None = None) -> dict[str, Any]:
        """Keyword arguments of ``CallList.create_async`` for this request."""
        params: dict[str, Any] = {
            "to": request.to,
            "from_": from_number or self.from_number_for(request),
            "status_callback": self.status_callback_url(request),
            "status_callback_event": list(STATUS_CALLBACK_EVENTS),
            "status_callback_method": "POST",
        }
        if self.agent_url:
            params["url"] = self.agent_url_for(request)
            params["method"] = "POST"
        else:
            params["twiml"] = self.twiml_for(request)
        if request.detect_voicemail and self.machine_detection:
            params["machine_detection"] = self.machine_detection
        if self.ring_timeout_seconds:
            params["timeout"] = self.ring_timeout_seconds
        return params

    # --- adoption ----------------------------------------------------------------------------

    def _calls(self):
        return self._client.api.v2010.accounts(self.account_sid).calls

    async def _iter_calls(self, **filters: Any) -> AsyncIterator[Any]:
        try:
            page = await self._calls().page_async(page_size=self.list_page_size, **filters)
            pages = 1
            while page is not None:
                for call in page:
                    yield call
                if pages >= self.max_list_pages:
                    if page.next_page_url:
                        logger.warning("twilio: stopped listing calls after %d pages (%s)", pages, filters)
                    return
                page = await page.next_page_async()
                pages += 1
        except ProviderError:
            raise
        except TwilioException as exc:
            _raise_mapped(exc, "list calls")

    async def _find_existing_call(self, request: CallRequest, from_number: str) -> Any | None:
        started = request.attempt_started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=timezone.utc)
        threshold = started.astimezone(timezone.utc) - self.adopt_clock_skew
        ours = set(self.from_numbers) | {from_number}
        filters: dict[str, Any] = {"to": request.to}
        if len(ours) == 1:
            filters["from_"] = from_number
        found: dict[str, Any] = {}
        rank: dict[str, int] = {}  # position in Twilio's newest-first list: breaks ties
        for extra in ({"start_time_after": threshold.date().isoformat()}, {"status": "queued"}):
            position = 0
            async for call in self._iter_calls(**filters, **extra):
                position += 1
                created = call.date_created
                if not call.sid or not isinstance(created, datetime) or created < threshold:
                    continue
                if call.sid in request.exclude_call_ids:
                    continue  # an earlier attempt's call: a redial must dial again
                if call._from not in ours or call.to != request.to:
                    continue
                if call.direction and not str(call.direction).startswith("outbound"):
                    continue
                found[call.sid] = call
                rank.setdefault(call.sid, position)
        if not found:
            return None
        # Earliest first; Twilio's timestamps have whole seconds, so within one second the
        # call listed last (lists are newest first) is the earliest.
        ordered = sorted(found.values(), key=lambda c: (c.date_created, -rank[c.sid]))
        if len(ordered) > 1:
            logger.warning(
                "twilio: %d calls match attempt %s: adopting the first, %s",
                len(ordered),
                request.idempotency_key,
                [c.sid for c in ordered],
            )
        return ordered[0]

    # --- results -----------------------------------------------------------------------------

    def _outcome_from_call(self, call: Any, attempt: int) -> CallOutcome:
        outcome, progress, hangup = map_twilio_status(call.status, call.answered_by, None, call.duration)
        if outcome is None and progress is None:
            progress = CallProgress.QUEUED  # a status unknown to us: not final
        return CallOutcome(
            call_id=call.sid,
            attempt=attempt,
            outcome=outcome,
            progress=progress,
            duration_seconds=_to_float(call.duration) if outcome is not None else None,
            hangup_cause=hangup,
            reason=_reason(call.status, None, call.answered_by),
            answered_by=call.answered_by or None,
            ended_at=_parse_rfc2822(call.end_time or call.date_updated) if outcome is not None else None,
        )

    def _placed(self, call: Any, request: CallRequest, *, adopted: bool) -> PlacedCall:
        outcome = self._outcome_from_call(call, request.attempt)
        return PlacedCall(
            call_id=call.sid,
            provider=self.name,
            adopted=adopted,
            outcome=outcome if outcome.is_final else None,
            poll_after_seconds=self.poll_after_seconds,
        )

    def _on_create_error(self, exc: TwilioException, request: CallRequest) -> PlacedCall:
        status, code, message = _error_info(exc)
        if status == 401 or code == 20003 or code in CONFIG_ERROR_CODES or status == 403 or status == 404:
            _raise_mapped(exc, "create call")
        if _is_retryable(status, code):
            raise ProviderError(f"twilio create call: HTTP {status} code {code}: {message}") from exc
        hangup = "INVALID_NUMBER" if code in INVALID_NUMBER_CODES else "CALL_REJECTED"
        call_id = f"{REJECTED_PREFIX}{request.idempotency_key}"
        outcome = CallOutcome(
            call_id=call_id,
            attempt=request.attempt,
            outcome=Outcome.FAILED,
            hangup_cause=hangup,
            reason=f"twilio {code if code is not None else status}: {message}",
            ended_at=datetime.now(timezone.utc),
        )
        self._rejections[call_id] = outcome
        logger.info("twilio: refused %s: %s", request.idempotency_key, outcome.reason)
        return PlacedCall(call_id=call_id, provider=self.name, outcome=outcome, poll_after_seconds=0.0)
