"""Activities that touch the telephony provider: place a call, ask for a call's status."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import (
    InvalidDestinationError,
    ProviderAuthError,
    ProviderError,
    TelephonyProvider,
)
from campaign_engine import metrics
from campaign_engine.models import CallOutcome, CallRequest, Outcome, PlacedCall
from campaign_engine.phones import mask_phone
from campaign_engine.policy import legal_hours
from campaign_engine.policy.caller_id import choose_caller_id
from campaign_engine.policy.frequency_cap import FrequencyCap
from campaign_engine.store import compliance, repo, roster
from campaign_engine.store.records import PlacedAttempt


class TelephonyActivities:
    def __init__(self, providers: dict[str, TelephonyProvider], db: AsyncEngine) -> None:
        self.providers = providers
        self.db = db

    def _provider(self, name: str) -> TelephonyProvider:
        provider = self.providers.get(name)
        if provider is None:
            raise ApplicationError(
                f"telephony provider '{name}' is not configured on this worker",
                type="ProviderNotConfigured", non_retryable=True,
            )
        return provider

    @activity.defn
    async def place_call(self, request: CallRequest) -> PlacedCall:
        """Read the contact's number and data from the store, place the call, then write its
        attempt row. If the write fails the activity is retried, and the provider hands back
        the same call for the same idempotency key."""
        row = await compliance.contact_for_dial(self.db, request.tenant_id, request.campaign_id,
                                                request.contact_key)
        request = self._addressed(request, row)  # ContactNotFound when there is no row
        if row is not None and row.suppressed_source is not None:
            return self._held(request, row.suppressed_source, row.suppressed_reason)
        capped = await self._capped(request)
        if capped is not None:
            return capped
        placed = await self._place(request)
        first = await repo.record_placed(self.db, PlacedAttempt(
            idempotency_key=request.idempotency_key, tenant_id=request.tenant_id, campaign_id=request.campaign_id,
            contact_key=request.contact_key, attempt=request.attempt, provider=placed.provider,
            call_id=placed.call_id, from_number=request.from_number, placed_at=request.attempt_started_at,
        ))
        if first:  # a retried dial adopts the same call: counted once
            metrics.call_placed(placed.provider, request.due_at or request.attempt_started_at)
        return placed

    def _held(self, request: CallRequest, source: str, why: str | None) -> PlacedCall:
        """Compliance, right before the dial, from the store (issue 14): a number on the
        tenant's suppression list is not dialled (an answer with outcome `suppressed`, no
        attempt row). A store that cannot be read raised before this: the activity is
        retried and nobody is dialled meanwhile (fail closed)."""
        activity.logger.info("not dialling %s: suppressed (%s)", mask_phone(request.to), source)
        call_id = f"suppressed:{request.idempotency_key}"
        reason = f"on the suppression list ({source}{': ' + why if why else ''})"
        return PlacedCall(call_id=call_id, provider=request.provider, outcome=CallOutcome(
            call_id=call_id, attempt=request.attempt, outcome=Outcome.SUPPRESSED, hangup_cause="SUPPRESSED",
            reason=reason))

    async def _capped(self, request: CallRequest) -> PlacedCall | None:
        """The frequency caps (policy/frequency_cap.py), decided under an advisory lock on the
        tenant's number, with this attempt's row written in the same transaction when the
        caps allow it. A held dial answers when they next allow one: no call, no attempt."""
        caps = list(request.frequency_caps)
        if request.legal_hours:
            rule = legal_hours.rule_for(request.to)
            if rule.max_calls_per_24h:
                caps.append(FrequencyCap(max_calls=rule.max_calls_per_24h, window_seconds=86400))
        if not caps:
            return None
        until = await compliance.reserve_attempt(self.db, PlacedAttempt(
            idempotency_key=request.idempotency_key, tenant_id=request.tenant_id, campaign_id=request.campaign_id,
            contact_key=request.contact_key, attempt=request.attempt, provider=request.provider, call_id="",
            from_number=request.from_number, placed_at=request.attempt_started_at,
        ), request.to, caps)
        if until is None:
            return None
        shown = ", ".join(c.describe() for c in caps)
        activity.logger.info("not dialling %s before %s: frequency cap %s", mask_phone(request.to), until, shown)
        return PlacedCall(call_id=f"capped:{request.idempotency_key}", provider=request.provider, capped_until=until,
                          capped_reason=f"frequency cap {shown} on this number: next call at {until.isoformat()}")

    @staticmethod
    def _addressed(request: CallRequest, row) -> CallRequest:
        """The request with the number, the caller id and the agent's variables, from the
        contact's row (the workflow never carries them)."""
        if row is None:
            raise ApplicationError(f"contact {request.contact_key} of campaign {request.campaign_id} is not in the "
                                   "store", type="ContactNotFound", non_retryable=True)
        variables = ({"name": row.name, "email": row.email, **(row.custom_data or {})}
                     if request.context_based else {})
        from_number = choose_caller_id(request.from_numbers, request.caller_id_strategy, row.phone,
                                       row.key + request.attempt, request.contact_workflow_id) \
            if request.from_numbers else None
        return request.model_copy(update={"to": row.phone, "variables": variables, "from_number": from_number})

    async def _place(self, request: CallRequest) -> PlacedCall:
        provider = self._provider(request.provider)
        activity.logger.info("placing call %s to %s", request.idempotency_key, mask_phone(request.to))
        try:
            return await provider.place_call(request)
        except ProviderAuthError as err:
            raise ApplicationError(str(err), type="ProviderAuthError", non_retryable=True) from None
        except InvalidDestinationError as err:
            call_id = f"rejected:{request.idempotency_key}"
            return PlacedCall(call_id=call_id, provider=request.provider, outcome=CallOutcome(
                call_id=call_id, attempt=request.attempt, outcome=Outcome.FAILED,
                hangup_cause="INVALID_NUMBER", reason=str(err)))
        except ProviderError as err:
            raise ApplicationError(str(err), type="ProviderError") from None

    @activity.defn
    async def fetch_call_status(self, request: CallRequest) -> CallOutcome:
        provider = self._provider(request.provider)
        row = await roster.contact_by_key(self.db, request.tenant_id, request.campaign_id, request.contact_key)
        request = self._addressed(request, row)
        assert request.call_id is not None
        try:
            outcome = await provider.fetch_call_status(request.call_id, request)
        except ProviderAuthError as err:
            raise ApplicationError(str(err), type="ProviderAuthError", non_retryable=True) from None
        except ProviderError as err:
            raise ApplicationError(str(err), type="ProviderError") from None
        outcome.attempt = request.attempt
        return outcome
