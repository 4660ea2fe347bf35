"""One call of a contact, from inside its workflow: the request, the dial, the final outcome.

The dial is the `place_call` activity (it reads the number from the store, checks the
suppression list and the frequency caps, then calls the provider once per idempotency key).
The outcome comes by the provider's callback (a signal the contact workflow keeps in
`outcomes`), or, when none comes, by asking the provider, less and less often, until the
call's longest possible length has passed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import Activity
    from campaign_engine.ids import idempotency_key
    from campaign_engine.models import (
        AttemptRecord,
        CallOutcome,
        CallRequest,
        CampaignConfig,
        ContactCallInput,
        Outcome,
        PlacedCall,
    )
    from campaign_engine.policy.redial import describe_wait

# Placing a call is one short HTTP request; retry transient provider errors for a while.
PLACE_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["ProviderAuthError"],
)
PLACE_CALL_TIMEOUT = timedelta(seconds=30)
PLACE_CALL_GIVE_UP = timedelta(hours=1)
MAX_POLL_INTERVAL_SECONDS = 900.0


class CredentialsRefused(Exception):
    """The provider refused our credentials: no call was made."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def call_request(input: ContactCallInput, wf_id: str, attempt: int, exclude_call_ids: list[str], *,
                 started_at: datetime, due_at: datetime | None) -> CallRequest:
    cfg = input.config
    return CallRequest(
        idempotency_key=idempotency_key(wf_id, attempt),
        contact_workflow_id=wf_id,
        attempt=attempt,
        campaign_id=cfg.campaign_id,
        tenant_id=cfg.tenant_id,
        agent_id=cfg.agent_id,
        contact_key=input.contact.key,
        exclude_call_ids=exclude_call_ids,
        from_numbers=cfg.from_numbers,
        caller_id_strategy=cfg.caller_id_strategy,
        context_based=cfg.is_context_based,
        # Tell a machine from a person (the provider's deployment setting can turn it off).
        detect_voicemail=True,
        attempt_started_at=started_at,
        due_at=due_at,
        provider=cfg.provider,
        frequency_caps=cfg.frequency_caps,
        legal_hours=cfg.legal_hours,
    )


async def place(request: CallRequest, dial_task_queue: str | None, summary: str) -> PlacedCall:
    """The dial. A provider that kept failing for an hour gives a failed call; refused
    credentials raise CredentialsRefused."""
    try:
        if dial_task_queue:
            # A carrier account with a calls-per-second cap: its own task queue, which the
            # server rate-limits across every worker and campaign.
            return await workflow.execute_activity(
                Activity.PLACE_CALL, request, result_type=PlacedCall, task_queue=dial_task_queue,
                start_to_close_timeout=PLACE_CALL_TIMEOUT, schedule_to_close_timeout=PLACE_CALL_GIVE_UP,
                retry_policy=PLACE_CALL_RETRY, summary=summary,
            )
        # No shared cap: a local activity, run by this worker inside the workflow task. It
        # saves the activity task's round trip and three history events per call, so a freed
        # slot is redialled sooner. A retry after a crash is as safe as an activity's: the
        # provider dials once per idempotency key.
        return await workflow.execute_local_activity(
            Activity.PLACE_CALL, request, result_type=PlacedCall,
            start_to_close_timeout=PLACE_CALL_TIMEOUT, schedule_to_close_timeout=PLACE_CALL_GIVE_UP,
            retry_policy=PLACE_CALL_RETRY, summary=summary,
        )
    except FailureError as err:
        # A local activity's failure can arrive as the activity's own error, unwrapped.
        cause = err.cause if isinstance(err, ActivityError) else err
        if isinstance(cause, ApplicationError) and cause.type == "ProviderAuthError":
            raise CredentialsRefused(cause.message) from None
        unplaced = f"unplaced:{request.idempotency_key}"
        return PlacedCall(call_id=unplaced, provider=request.provider, outcome=CallOutcome(
            call_id=unplaced, attempt=request.attempt, outcome=Outcome.FAILED, hangup_cause="NETWORK_ERROR",
            reason=f"the call could not be placed: {err.cause or err}"))


async def await_outcome(cfg: CampaignConfig, attempt: int, placed: PlacedCall, request: CallRequest,
                        outcomes: dict[int, CallOutcome]) -> CallOutcome:
    """The call's final outcome: its callback (in `outcomes`, filled by the contact's signal
    handler), else the provider's answer when asked, else failed once the call cannot last
    any longer."""
    wait = max(1.0, min(placed.poll_after_seconds, cfg.call_outcome_timeout_seconds))
    give_up_at = request.attempt_started_at + timedelta(seconds=cfg.call_max_seconds)
    # A callback that came before the call id was known must be for this call.
    early = outcomes.get(attempt)
    if early is not None and early.call_id != placed.call_id:
        del outcomes[attempt]
    while True:
        try:
            await workflow.wait_condition(lambda: attempt in outcomes, timeout=timedelta(seconds=wait),
                                          timeout_summary=f"no callback for call {attempt}: ask the provider")
            return outcomes[attempt]
        except asyncio.TimeoutError:
            pass
        status = await _ask_provider(attempt, placed, request)
        if status.is_final:
            status.attempt = attempt
            outcomes.setdefault(attempt, status)
            return outcomes[attempt]
        if workflow.now() >= give_up_at:
            return CallOutcome(
                call_id=placed.call_id, attempt=attempt, outcome=Outcome.FAILED, hangup_cause="NETWORK_ERROR",
                reason=f"no final outcome from the provider within {describe_wait(cfg.call_max_seconds)}")
        wait = min(wait * 2, MAX_POLL_INTERVAL_SECONDS)


async def _ask_provider(attempt: int, placed: PlacedCall, request: CallRequest) -> CallOutcome:
    try:
        return await workflow.execute_activity(
            Activity.FETCH_CALL_STATUS, request.model_copy(update={"call_id": placed.call_id}),
            result_type=CallOutcome, start_to_close_timeout=PLACE_CALL_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=60), maximum_attempts=10),
            summary=f"status of call {attempt}",
        )
    except ActivityError as err:  # the provider is unreachable: keep waiting, ask later
        workflow.logger.warning("status of call %s unknown: %s", attempt, err.cause or err)
        return CallOutcome(call_id=placed.call_id, attempt=attempt)


def record_outcome(record: AttemptRecord, outcome: CallOutcome) -> None:
    record.outcome = outcome.outcome
    record.ended_at = outcome.ended_at or workflow.now()
    record.duration_seconds = outcome.duration_seconds
    record.hangup_cause = outcome.hangup_cause
    record.reason = outcome.reason or record.reason
    record.recording_url = outcome.recording_url
    record.analysis = outcome.analysis
