"""A campaign's status as users see it (API, CLI): the one its workflow recorded, unless the
workflow ended without recording one (terminated by an operator, failed, timed out)."""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus

from campaign_engine.models import CampaignStatus

# Execution statuses of a campaign workflow that ended without its own final status.
FAILED_EXECUTIONS = (
    WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED, WorkflowExecutionStatus.TIMED_OUT,
)


def campaign_status(recorded: CampaignStatus, execution: WorkflowExecutionStatus | None) -> CampaignStatus:
    """`recorded` is the progress query's status; `execution`, the workflow's (describe)."""
    if execution in FAILED_EXECUTIONS:
        return CampaignStatus.FAILED
    if execution == WorkflowExecutionStatus.CANCELED:
        return CampaignStatus.CANCELED
    return recorded
