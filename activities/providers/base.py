"""What every telephony provider offers the engine.

A provider places a call and returns at once with the call's id; the outcome comes later,
through the provider's callback (which the API or the provider itself turns into the
`call_outcome` signal of the contact workflow) or through `fetch_call_status` when the
callback is late or lost. Activities call providers; workflows never do.
"""

from __future__ import annotations

from typing import Protocol

from campaign_engine.models import CallOutcome, CallRequest, PlacedCall


class ProviderError(Exception):
    """A provider failure worth retrying (network error, 429, 5xx)."""


class ProviderAuthError(Exception):
    """The provider refused our credentials: no call of this campaign can succeed."""


class InvalidDestinationError(Exception):
    """The provider refused the destination number: never worth a redial."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TelephonyProvider(Protocol):
    name: str

    async def place_call(self, request: CallRequest) -> PlacedCall:
        """Place the call for `request.idempotency_key`, or adopt the one already placed.

        Must never create two calls for one idempotency key, even when called again after a
        crash that lost the first answer.
        """
        ...

    async def fetch_call_status(self, call_id: str, request: CallRequest) -> CallOutcome:
        """The call's current status: final (`outcome` set) or still going (`progress`)."""
        ...

    async def aclose(self) -> None: ...
