"""Twilio Programmable Voice as a telephony provider.

Uses the official `twilio` package (``twilio.rest.Client``) with an asynchronous HTTP client
built on httpx (`TwilioHttpxClient`), so activities never block the worker's event loop. The
REST base URL is configurable (``api_base_url``; Twilio's is ``https://api.twilio.com``) so tests
can point the provider at a local double of the API.

Twilio's ``POST /Calls.json`` has no idempotency key, and an activity runs at least once: so
`place_call` first looks for the call an earlier try of the same attempt created, and adopts it
(`activities.providers.twilio_adoption` says how, and why that is sound for this engine).

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

The HTTP client and the mapping of Twilio's errors are `activities.providers.twilio_rest`; the
status callbacks Twilio posts are read by `activities.providers.twilio`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape as xml_escape

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from activities.providers.base import ProviderError
from activities.providers.twilio import build_status_callback_url
from activities.providers.twilio_adoption import find_existing_call
from activities.providers.twilio_rest import (
    CONFIG_ERROR_CODES,
    INVALID_NUMBER_CODES,
    ProviderConfigError,
    TwilioHttpxClient,
    error_info,
    is_retryable,
    raise_mapped,
)
from activities.providers.twilio_settings import TwilioSettings
from activities.providers.twilio_status import map_twilio_status, parse_rfc2822, status_reason, to_float
from campaign_engine.models import CallOutcome, CallProgress, CallRequest, Outcome, PlacedCall

logger = logging.getLogger(__name__)

PROVIDER_NAME = "twilio"
DEFAULT_API_BASE_URL = "https://api.twilio.com"
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
REJECTED_PREFIX = "rejected:"


def _stable_index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n


def _rest_credentials(
    account_sid: str, auth_token: str | None, api_key: str | None, api_secret: str | None
) -> tuple[str, str]:
    """(username, password) of the REST API: the API key and secret if given, else the account's."""
    if not account_sid:
        raise ValueError("Twilio: account_sid is required (TWILIO_ACCOUNT_SID)")
    if api_key or api_secret:
        if not (api_key and api_secret):
            raise ValueError("Twilio: api_key and api_secret go together")
        return api_key, api_secret
    if auth_token:
        return account_sid, auth_token
    raise ValueError("Twilio: auth_token or api_key + api_secret is required")


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


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
        username, password = _rest_credentials(account_sid, auth_token, api_key, api_secret)
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
            status, code, message = error_info(exc)
            if status == 404:
                return CallOutcome(
                    call_id=call_id,
                    attempt=request.attempt,
                    outcome=Outcome.FAILED,
                    reason=f"twilio {code or 20404}: call not found: {message}",
                )
            raise_mapped(exc, f"fetch call {call_id}")
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

    async def _find_existing_call(self, request: CallRequest, from_number: str) -> Any | None:
        return await find_existing_call(
            self._calls(),
            request,
            from_number,
            our_numbers=self.from_numbers,
            clock_skew=self.adopt_clock_skew,
            page_size=self.list_page_size,
            max_pages=self.max_list_pages,
        )

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
            duration_seconds=to_float(call.duration) if outcome is not None else None,
            hangup_cause=hangup,
            reason=status_reason(call.status, None, call.answered_by),
            answered_by=call.answered_by or None,
            ended_at=parse_rfc2822(call.end_time or call.date_updated) if outcome is not None else None,
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
        status, code, message = error_info(exc)
        if status == 401 or code == 20003 or code in CONFIG_ERROR_CODES or status == 403 or status == 404:
            raise_mapped(exc, "create call")
        if is_retryable(status, code):
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
