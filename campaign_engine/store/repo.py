"""Data access: every statement the engine runs against its store, in one layer.

Writes are idempotent (inserts that do nothing twice, upserts by natural keys), so a retried
activity, a replayed workflow or a retried request never makes a second row or a wrong count.
Reads cost a fixed number of statements whatever the campaign's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, date, datetime

from sqlalchemy import Date, and_, func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from campaign_engine.models import CampaignConfig, CampaignStatus, Contact, ContactState
from campaign_engine.store.contact_copy import copy_contacts
from campaign_engine.store.records import PlacedAttempt
from campaign_engine.store.tables import attempts, campaigns, contacts, daily_calls



def _now() -> datetime:
    return datetime.now(UTC)


# --- campaigns ------------------------------------------------------------------------------


async def create_campaign(
    db: AsyncEngine, config: CampaignConfig, rows: Iterable[Contact], *, status: CampaignStatus,
    counts: Callable[[], tuple[int, int]], idempotency_key: str | None = None, fingerprint: str | None = None,
) -> Row | None:
    """The campaign and its contacts in one transaction. With an Idempotency-Key already
    used by this tenant nothing is written, and the existing row comes back instead (None:
    this call created it).

    `rows` may be lazy (an upload's validation): each page is validated while the one before
    is written. `counts()`, once every row is written, gives the contacts received and the
    duplicates merged, or raises (bad input), which rolls everything back."""
    now = _now()
    async with db.begin() as conn:
        inserted = await conn.execute(
            insert(campaigns).values(
                tenant_id=config.tenant_id, campaign_id=config.campaign_id, object_id=config.object_id,
                name=config.name, agent_id=config.agent_id, status=status.value,
                config=config.model_dump(mode="json"), total_contacts=0, received_contacts=0,
                duplicates_merged=0, idempotency_key=idempotency_key, fingerprint=fingerprint,
                created_at=config.created_at, updated_at=now,
            ).on_conflict_do_nothing().returning(campaigns.c.campaign_id)
        )
        if inserted.first() is None:
            existing = await conn.execute(select(campaigns).where(
                campaigns.c.tenant_id == config.tenant_id,
                (campaigns.c.idempotency_key == idempotency_key) if idempotency_key
                else (campaigns.c.campaign_id == config.campaign_id),
            ))
            return existing.one()
        total = await copy_contacts(conn, config.tenant_id, config.campaign_id, rows)
        received, duplicates = counts()
        await conn.execute(update(campaigns).where(_campaign(config.tenant_id, config.campaign_id)).values(
            total_contacts=total, received_contacts=received, duplicates_merged=duplicates))
    return None


async def mark_launched(db: AsyncEngine, tenant_id: str, campaign_id: str) -> None:
    async with db.begin() as conn:
        await conn.execute(update(campaigns).where(_campaign(tenant_id, campaign_id), campaigns.c.launched_at.is_(None))
                           .values(launched_at=_now()))


async def set_status(db: AsyncEngine, tenant_id: str, campaign_id: str, status: str) -> None:
    async with db.begin() as conn:
        await conn.execute(update(campaigns).where(_campaign(tenant_id, campaign_id)).values(
            status=status, updated_at=_now()))


def _campaign(tenant_id: str, campaign_id: str):
    return and_(campaigns.c.tenant_id == tenant_id, campaigns.c.campaign_id == campaign_id)


async def get_campaign(db: AsyncEngine, tenant_id: str, campaign_id: str) -> Row | None:
    """A campaign whose workflow was started (a row committed by a request that broke off
    before the start is not a campaign yet: its retry starts it)."""
    async with db.connect() as conn:
        result = await conn.execute(select(campaigns).where(
            _campaign(tenant_id, campaign_id), campaigns.c.launched_at.is_not(None)))
        return result.first()


async def list_campaigns(db: AsyncEngine, tenant_id: str, status: CampaignStatus | None = None) -> list[Row]:
    query = select(campaigns).where(campaigns.c.tenant_id == tenant_id, campaigns.c.launched_at.is_not(None))
    if status is not None:
        query = query.where(campaigns.c.status == status.value)
    async with db.connect() as conn:
        return list((await conn.execute(query.order_by(campaigns.c.created_at, campaigns.c.campaign_id))).all())


async def calls_on(db: AsyncEngine, tenant_id: str, day: date, campaign_ids: Sequence[str] | None = None) -> int:
    """Calls placed on `day` (UTC) over the tenant's campaigns (or those given): one counter
    row per campaign, whatever the number of calls."""
    query = select(func.coalesce(func.sum(daily_calls.c.calls), 0)).where(
        daily_calls.c.tenant_id == tenant_id, daily_calls.c.day == day)
    if campaign_ids is not None:
        query = query.where(daily_calls.c.campaign_id.in_(list(campaign_ids)))
    async with db.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def calls_since(db: AsyncEngine, tenant_id: str, since: datetime) -> int:
    """Calls placed since any instant, from the attempt rows (operators' reports)."""
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(attempts).where(
            attempts.c.tenant_id == tenant_id, attempts.c.placed_at >= since))).scalar_one())


# --- what the workflows and activities write ------------------------------------------------


async def record_placed(db: AsyncEngine, placed: PlacedAttempt) -> bool:
    """The attempt's row once the provider has the call (a retry adopts the same call).
    True when this write is the first to record the call (not a retry's), so a counter of
    calls placed counts it once."""
    # One statement (one round trip at every dial): the row as it was (every part of a
    # statement reads the same snapshot, taken before the upsert); the upsert; the day's
    # counter, only for a new row (a retry's update is not a second call).
    before = select(attempts.c.call_id).where(attempts.c.idempotency_key == placed.idempotency_key).cte("before")
    row = insert(attempts).values(**placed.model_dump())
    upserted = row.on_conflict_do_update(
        index_elements=[attempts.c.idempotency_key],
        set_={"call_id": row.excluded.call_id, "provider": row.excluded.provider,
              "from_number": row.excluded.from_number,
              "placed_at": func.coalesce(attempts.c.placed_at, row.excluded.placed_at)},
    ).returning(literal_column("xmax = 0").label("new")).cte("upserted")
    day = placed.placed_at.astimezone(UTC).date()
    count = insert(daily_calls).from_select(
        ["tenant_id", "campaign_id", "day", "calls"],
        select(literal(placed.tenant_id), literal(placed.campaign_id), literal(day, Date), literal(1))
        .where(upserted.c.new))
    counted = count.on_conflict_do_update(
        index_elements=[daily_calls.c.tenant_id, daily_calls.c.day, daily_calls.c.campaign_id],
        set_={"calls": daily_calls.c.calls + 1}).cte("counted")
    stmt = select(select(before.c.call_id).scalar_subquery()).add_cte(counted)
    async with db.begin() as conn:
        was = (await conn.execute(stmt)).scalar_one_or_none()
    return not was  # no row yet, or one reserved by the frequency cap without a call id


# --- contacts and attempts, read -------------------------------------------------------------


async def held_contacts(db: AsyncEngine, tenant_id: str, campaign_id: str, limit: int = 20) -> list[Row]:
    """Contacts a rule holds now (outside their calling window, or a frequency cap), grouped
    by state and reason (which names the rule): how many, and when the first is called."""
    held = [ContactState.OUTSIDE_WINDOW.value, ContactState.CAPPED.value]
    query = (select(contacts.c.state, contacts.c.reason, func.count().label("contacts"),
                    func.min(contacts.c.next_call_at).label("opens_at"))
             .where(contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id,
                    contacts.c.state.in_(held))
             .group_by(contacts.c.state, contacts.c.reason)
             .order_by(func.count().desc(), contacts.c.reason).limit(limit))
    async with db.connect() as conn:
        return list((await conn.execute(query)).all())


async def contacts_page(db: AsyncEngine, tenant_id: str, campaign_id: str, *, state: str | None = None,
                        disposition: str | None = None, after_key: int = -1, limit: int = 100) -> tuple[list[Row], int]:
    """One keyset page (`key > after_key`), and how many rows match the filter."""
    where = [contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id]
    if state is not None:
        where.append(contacts.c.state == state)
    if disposition is not None:
        where.append(contacts.c.disposition == disposition)
    async with db.connect() as conn:
        rows = (await conn.execute(select(contacts).where(*where, contacts.c.key > after_key)
                                   .order_by(contacts.c.key).limit(limit))).all()
        total = (await conn.execute(select(func.count()).select_from(contacts).where(*where))).scalar_one()
    return list(rows), int(total)


async def export_rows(db: AsyncEngine, tenant_id: str, campaign_id: str) -> AsyncIterator[Row]:
    """Every contact with each of its attempts (one row per attempt; a contact never called
    has one row without attempt), from a server-side cursor: memory stays flat."""
    query = (
        select(contacts, attempts.c.attempt, attempts.c.call_id, attempts.c.provider, attempts.c.from_number,
               attempts.c.placed_at, attempts.c.ended_at, attempts.c.outcome, attempts.c.hangup_cause,
               attempts.c.reason.label("attempt_reason"), attempts.c.duration_seconds, attempts.c.recording_url,
               attempts.c.analysis)
        .select_from(contacts.outerjoin(attempts, and_(
            attempts.c.tenant_id == contacts.c.tenant_id, attempts.c.campaign_id == contacts.c.campaign_id,
            attempts.c.contact_key == contacts.c.key)))
        .where(contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id)
        .order_by(contacts.c.key, attempts.c.attempt)
    )
    async with db.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=1_000))
        async for row in result:
            yield row


async def custom_data_keys(db: AsyncEngine, tenant_id: str, campaign_id: str) -> list[str]:
    """Every key of the campaign's contacts' custom_data (the workbook's extra columns)."""
    keys = func.jsonb_object_keys(contacts.c.custom_data).label("k")
    async with db.connect() as conn:
        result = await conn.execute(select(keys).where(
            contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id).distinct().order_by("k"))
        return [r.k for r in result]
