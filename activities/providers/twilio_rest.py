"""Twilio's REST API over httpx, and its errors in the engine's terms.

`TwilioHttpxClient` is twilio-python's asynchronous HTTP client interface built on httpx, so
activities never block the worker's event loop. `error_info` reads (HTTP status, Twilio error
code, message) from any exception twilio-python raises; `raise_mapped` raises the engine's error
for a failure that is not about the destination:

- HTTP 429 (20429), 5xx, network errors and timeouts: `ProviderError` (retry the activity).
- HTTP 401 / 20003: `ProviderAuthError`; account or configuration errors (bad From number, bad
  Url, account suspended, 403): `ProviderConfigError`. No call of the campaign can succeed until
  someone fixes the configuration.

A refusal of the destination itself (`INVALID_NUMBER_CODES`, other 4xx) is not an exception: the
provider turns it into a failed call (see `activities.providers.twilio_provider`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse

from activities.http_client import LoopBoundClient
from activities.providers.base import ProviderAuthError, ProviderError
from activities.providers.twilio_status import to_int

logger = logging.getLogger(__name__)

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


class ProviderConfigError(ProviderAuthError):
    """Twilio refused our account or request configuration (not the destination)."""


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


def error_info(exc: Exception) -> tuple[int | None, int | None, str]:
    """(HTTP status, Twilio error code, message) of an exception raised by twilio-python."""
    if isinstance(exc, TwilioServiceException):
        return to_int(exc.status), to_int(exc.code), str(exc.detail or exc.title)
    if isinstance(exc, TwilioRestException):
        msg = str(exc.msg or "")
        for prefix in ("Unable to create record: ", "Unable to fetch record: "):
            msg = msg.removeprefix(prefix)
        return to_int(exc.status), to_int(exc.code), msg
    if isinstance(exc, TwilioException) and len(exc.args) > 1 and hasattr(exc.args[1], "status_code"):
        # Page.process_response raises TwilioException("Unable to fetch page", response).
        response = exc.args[1]
        code, message = None, str(exc.args[0])
        try:
            payload = json.loads(response.text)
            code = to_int(payload.get("code"))
            message = str(payload.get("message") or message)
        except (ValueError, AttributeError):
            pass
        return to_int(response.status_code), code, message
    return None, None, str(exc)


def raise_mapped(exc: Exception, what: str) -> None:
    """Raise the engine's error for a Twilio failure that is not about the destination."""
    status, code, message = error_info(exc)
    text = f"twilio {what}: HTTP {status} code {code}: {message}"
    if status == 401 or code == 20003:
        raise ProviderAuthError(text) from exc
    if code in CONFIG_ERROR_CODES or status in (403, 404):
        # 404 here: the account in the URL does not exist (fetching a call handles its own 404).
        raise ProviderConfigError(text) from exc
    raise ProviderError(text) from exc


def is_retryable(status: int | None, code: int | None) -> bool:
    return status is None or status == 429 or status >= 500 or code in RETRYABLE_CODES
