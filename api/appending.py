"""Appending contacts to a campaign, as the JSON and the file uploads both do it: the rows go
to the store first (campaign_engine.store.roster.append_contacts), then the campaign is told
how far its keys now go; a campaign that finished meanwhile refuses, and the rows go again."""

from __future__ import annotations

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.campaign_calls import _FINISHED, CampaignClosed, campaign_handle, final_status, not_found, update
from api.errors import ApiError, state_error
from campaign_engine.ids import is_safe_id
from campaign_engine.models import AppendNotice
from campaign_engine.store import repo, roster
from workflows.campaign import CampaignWorkflow


async def campaign_to_append(db: AsyncEngine, tenant_id: str, campaign_id: str) -> Row:
    """The campaign's row (404 when this tenant has no such campaign)."""
    row = await repo.get_campaign(db, tenant_id, campaign_id) if is_safe_id(campaign_id) else None
    if row is None:
        raise not_found(campaign_id)
    return row


def refuse_finished(row: Row) -> None:
    if row.status in _FINISHED:
        raise state_error("INVALID_CAMPAIGN_STATE", f"campaign is {row.status}: contacts can no longer be added")


def other_body(campaign_id: str) -> ApiError:
    return state_error("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request body",
                       [{"field": "Idempotency-Key", "message": "already used with another body to "
                         f"append contacts to campaign {campaign_id}"}])


async def tell_campaign(client: Client, tenant_id: str, campaign_id: str, appended: roster.Appended) -> bool:
    """Tell the campaign how far its contacts go; False when it had finished (it refused)."""
    handle = campaign_handle(client, tenant_id, campaign_id)
    try:
        await update(handle, campaign_id, CampaignWorkflow.contacts_appended,
                     AppendNotice(total_contacts=appended.total, duplicates=appended.duplicates_total))
    except (CampaignClosed, ApiError) as err:
        if isinstance(err, ApiError) and err.code != "INVALID_CAMPAIGN_STATE":
            raise
        return False
    return True


async def finished_error(client: Client, tenant_id: str, campaign_id: str) -> ApiError:
    status, _ = await final_status(campaign_handle(client, tenant_id, campaign_id), campaign_id)
    return state_error("INVALID_CAMPAIGN_STATE", f"campaign is {status}: contacts can no longer be added")


async def status_and_total(client: Client, tenant_id: str, campaign_id: str) -> tuple[str, int]:
    """The campaign's status and contacts once it has taken the append."""
    status, progress = await final_status(campaign_handle(client, tenant_id, campaign_id), campaign_id)
    return status, progress.total_contacts
