"""Calls from the API to a campaign's workflow: its handle, queries and updates with their
timeouts and error mapping (the workflow's ApplicationError types are the API's codes), and
what a closed campaign is."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import STATUS_OF_CODE, ApiError, echo
from api.lifecycle_schemas import CampaignTotals, ConfigurationOut
from campaign_engine.ids import campaign_workflow_id, is_safe_id
from campaign_engine.models import CampaignConfig, CampaignProgress, CampaignStatus
from campaign_engine.status import campaign_status
from workflows.campaign import CampaignWorkflow

# How long a query or an update may take before the API answers 503 (no worker answering).
QUERY_TIMEOUT = timedelta(seconds=20)
UPDATE_TIMEOUT = timedelta(seconds=60)

# The campaign workflow's ApplicationError types, as HTTP statuses (one per code: the state
# errors are 409 wherever they are met).
ERROR_STATUS = {code: STATUS_OF_CODE[code] for code in (
    "CAMPAIGN_ALREADY_RUNNING", "CAMPAIGN_NOT_RUNNING", "INVALID_CAMPAIGN_STATE", "NOT_FOUND",
    "CONTACT_ALREADY_FINAL")}
_FINISHED = (CampaignStatus.COMPLETED.value, CampaignStatus.CANCELED.value, CampaignStatus.FAILED.value)


class CampaignClosed(Exception):
    """The campaign's workflow has ended: it answers queries but takes no update."""


def not_found(campaign_id: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"campaign {echo(campaign_id)} not found")


def campaign_handle(client: Client, tenant_id: str, campaign_id: str) -> WorkflowHandle:
    if not is_safe_id(campaign_id):
        raise not_found(campaign_id)
    return client.get_workflow_handle(campaign_workflow_id(tenant_id, campaign_id))


def _rpc_error(err: RPCError, campaign_id: str) -> ApiError | RPCError:
    if err.status == RPCStatusCode.NOT_FOUND:
        return not_found(campaign_id)
    if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.CANCELLED,
                      RPCStatusCode.RESOURCE_EXHAUSTED):
        return ApiError(503, "SERVICE_UNAVAILABLE",
                        "the campaign engine did not answer in time (are its workers running?)")
    return err


async def query(handle: WorkflowHandle, campaign_id: str, q: Any, *args: Any) -> Any:
    """A query of the campaign workflow; 404 when the campaign does not exist.

    A campaign busy with a burst of work (a cancel signalling a thousand contacts) can have
    its query buffer full for a moment: ask again a few times before answering 503.
    """
    for delay in (0.2, 0.5, 1.0, 2.0, None):
        try:
            return await handle.query(q, *args, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            if err.status == RPCStatusCode.RESOURCE_EXHAUSTED and delay is not None:
                await asyncio.sleep(delay)
                continue
            raise _rpc_error(err, campaign_id) from None


async def update(handle: WorkflowHandle, campaign_id: str, u: Any, *args: Any) -> Any:
    """An update of the campaign workflow, its rejections as API errors.

    Raises CampaignClosed when the workflow has ended (the caller knows what that means for
    its operation). An update that met a continue-as-new is sent again to the new run.
    """
    for _ in range(3):
        try:
            return await handle.execute_update(u, *args, rpc_timeout=UPDATE_TIMEOUT)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in ERROR_STATUS:
                raise ApiError(ERROR_STATUS[cause.type], cause.type, cause.message) from None
            raise
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise ApiError(503, "SERVICE_UNAVAILABLE",
                           "the campaign engine did not answer in time (are its workers running?)") from None
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise _rpc_error(err, campaign_id) from None
            try:
                desc = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
            except RPCError as err2:
                raise _rpc_error(err2, campaign_id) from None
            if desc.status != WorkflowExecutionStatus.RUNNING:
                raise CampaignClosed() from None
            # The run it reached had just continued as new: the current run takes it.
    raise ApiError(503, "SERVICE_UNAVAILABLE", "the campaign is busy; try again")


async def execution_status(handle: WorkflowHandle, campaign_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await handle.describe(rpc_timeout=QUERY_TIMEOUT)).status
    except RPCError as err:
        raise _rpc_error(err, campaign_id) from None


def api_status(progress: CampaignProgress, execution: WorkflowExecutionStatus | None) -> str:
    """The campaign's status as the API reports it (campaign_engine.status)."""
    return campaign_status(progress.status, execution).value


async def final_status(handle: WorkflowHandle, campaign_id: str) -> tuple[str, CampaignProgress]:
    progress, execution = await asyncio.gather(
        query(handle, campaign_id, CampaignWorkflow.progress), execution_status(handle, campaign_id))
    return api_status(progress, execution), progress


def configuration(config: CampaignConfig) -> ConfigurationOut:
    return ConfigurationOut(
        agent_id=config.agent_id,
        is_scheduled_call=config.is_scheduled,
        is_context_based_call=config.is_context_based,
        redial_config={"enabled": config.redial.enabled, "maxAttempts": config.redial.max_attempts,
                       "retryIntervals": config.redial.retry_intervals},
        max_concurrent_calls=config.max_concurrent_calls,
        provider=config.provider,
        notification_webhook_url=config.notification_webhook_url,
    )


def totals(progress: CampaignProgress) -> CampaignTotals:
    return CampaignTotals(total_contacts=progress.total_contacts, by_state=progress.by_state,
                          by_disposition=progress.by_disposition, calls_placed=progress.calls_placed)
