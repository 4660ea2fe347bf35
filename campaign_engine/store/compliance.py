"""Compliance in the store (issue 14): the tenant's suppression (do-not-call) list and the
audit trail.

The dial activity reads the contact with the entry that suppresses its number, if any
(`contact_for_dial`, one statement), right before every call; a failed read raises, so the
activity is retried and nobody is dialled (fail closed). Opt-outs heard on calls are added by
the campaign's flush (`suppress_opt_outs`, same transaction as the attempt rows), with the
call's idempotency key as their source: idempotent, a retry or a replay adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, func, literal, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from campaign_engine.policy.frequency_cap import FrequencyCap, held_until
from campaign_engine.store.records import PlacedAttempt
from campaign_engine.store.tables import attempts, audit_events, contacts, daily_calls, suppressions

SOURCES = ("api", "opt_out", "import")


def _now() -> datetime:
    return datetime.now(UTC)


def _in_force(at: datetime):
    return or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > at)


# --- the suppression list --------------------------------------------------------------------


async def add_suppressions(conn: AsyncConnection, tenant_id: str, phones: Sequence[str], *, source: str,
                           reason: str | None = None, expires_at: datetime | None = None,
                           source_ref: str | None = None) -> list[str]:
    """Add numbers (E.164 already); a number already listed is updated (reason, expiry,
    source). Answers the numbers that were new."""
    assert source in SOURCES
    if not phones:
        return []
    now = _now()
    stmt = insert(suppressions).values([
        {"tenant_id": tenant_id, "phone": p, "reason": reason, "source": source, "source_ref": source_ref,
         "expires_at": expires_at, "created_at": now} for p in dict.fromkeys(phones)])
    rows = await conn.execute(stmt.on_conflict_do_update(
        index_elements=[suppressions.c.tenant_id, suppressions.c.phone],
        set_={"reason": stmt.excluded.reason, "source": stmt.excluded.source, "source_ref": stmt.excluded.source_ref,
              "expires_at": stmt.excluded.expires_at},
    ).returning(suppressions.c.phone, literal_column("xmax = 0").label("new")))
    return [r.phone for r in rows if r.new]


async def remove_suppression(conn: AsyncConnection, tenant_id: str, phone: str) -> bool:
    result = await conn.execute(delete(suppressions).where(
        suppressions.c.tenant_id == tenant_id, suppressions.c.phone == phone))
    return result.rowcount > 0


async def suppression_page(db: AsyncEngine, tenant_id: str, *, phone: str | None = None, after: str = "",
                           limit: int = 100) -> tuple[list[Row], int]:
    """One keyset page by number (`phone > after`), and how many entries match."""
    where = [suppressions.c.tenant_id == tenant_id]
    if phone is not None:
        where.append(suppressions.c.phone == phone)
    async with db.connect() as conn:
        rows = (await conn.execute(select(suppressions).where(*where, suppressions.c.phone > after)
                                   .order_by(suppressions.c.phone).limit(limit))).all()
        total = (await conn.execute(select(func.count()).select_from(suppressions).where(*where))).scalar_one()
    return list(rows), int(total)


async def contact_for_dial(db: AsyncEngine, tenant_id: str, campaign_id: str, key: int) -> Row | None:
    """The contact's row, with `suppressed_source` and `suppressed_reason` of the entry that
    suppresses its number now (both None when none does): one statement before every dial."""
    entry = select(suppressions.c.source, suppressions.c.reason).where(
        suppressions.c.tenant_id == contacts.c.tenant_id, suppressions.c.phone == contacts.c.phone,
        _in_force(_now())).limit(1).lateral("entry")
    query = (select(contacts, entry.c.source.label("suppressed_source"), entry.c.reason.label("suppressed_reason"))
             .outerjoin(entry, literal(True))
             .where(contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id, contacts.c.key == key))
    async with db.connect() as conn:
        return (await conn.execute(query)).first()


async def suppressed_among(db: AsyncEngine, tenant_id: str, phones: Sequence[str]) -> set[str]:
    """Which of these numbers the tenant's list suppresses now (one statement)."""
    if not phones:
        return set()
    async with db.connect() as conn:
        rows = await conn.execute(select(suppressions.c.phone).where(
            suppressions.c.tenant_id == tenant_id, suppressions.c.phone.in_(list(set(phones))), _in_force(_now())))
        return {r.phone for r in rows}


async def suppress_opt_outs(conn: AsyncConnection, tenant_id: str, campaign_id: str,
                            opt_outs: Sequence[tuple[int, str]]) -> None:
    """Add the numbers of contacts whose call was an opt-out: (contact key, the call's
    idempotency key). Inside the flush's transaction; an entry already there is kept as it is
    (the first source wins, and a retry adds nothing)."""
    now = _now()
    for key, call_ref in opt_outs:
        phone = select(contacts.c.phone).where(
            contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id, contacts.c.key == key
        ).scalar_subquery()
        await conn.execute(insert(suppressions).from_select(
            ["tenant_id", "phone", "reason", "source", "source_ref", "created_at"],
            select(literal(tenant_id), phone, literal("opted out on a call"), literal("opt_out"), literal(call_ref),
                   literal(now, suppressions.c.created_at.type)).where(phone.is_not(None)),
        ).on_conflict_do_nothing())


# --- the audit trail -------------------------------------------------------------------------


async def audit(conn: AsyncConnection, tenant_id: str, key_id: str | None, action: str, *,
                campaign_id: str | None = None, subject: str | None = None, details: dict | None = None) -> None:
    await conn.execute(audit_events.insert().values(
        tenant_id=tenant_id, key_id=key_id, action=action, campaign_id=campaign_id, subject=subject,
        details=details, at=_now()))


async def record_audit(db: AsyncEngine, tenant_id: str, key_id: str | None, action: str, **kw) -> None:
    async with db.begin() as conn:
        await audit(conn, tenant_id, key_id, action, **kw)


async def audit_page(db: AsyncEngine, tenant_id: str, *, after: int = 0, limit: int = 100,
                     action: str | None = None, campaign_id: str | None = None) -> list[Row]:
    where = [audit_events.c.tenant_id == tenant_id, audit_events.c.seq > after]
    if action is not None:
        where.append(audit_events.c.action == action)
    if campaign_id is not None:
        where.append(audit_events.c.campaign_id == campaign_id)
    async with db.connect() as conn:
        return list((await conn.execute(select(audit_events).where(and_(*where))
                                        .order_by(audit_events.c.seq).limit(limit))).all())


async def suppressed_in_campaign(db: AsyncEngine, tenant_id: str, campaign_id: str) -> int:
    """How many of a campaign's contacts the tenant's list suppresses now (one statement)."""
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(contacts.join(suppressions, and_(
            suppressions.c.tenant_id == contacts.c.tenant_id, suppressions.c.phone == contacts.c.phone))).where(
            contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id, _in_force(_now())))).scalar_one())


# --- the frequency cap -----------------------------------------------------------------------


async def reserve_attempt(db: AsyncEngine, placed: PlacedAttempt, phone: str,
                          caps: Sequence[FrequencyCap]) -> datetime | None:
    """Decide a dial under the caps, atomically for the tenant's number: under an advisory
    lock on (tenant, number), count the number's attempts across the tenant's campaigns and,
    if the caps allow one more, write this attempt's row (and its day's count) in the same
    transaction, so a concurrent dial of the number counts it. Answers None when the dial may
    go ahead (a retried activity finds its own row and goes ahead), else when the caps next
    allow a call. The row is written without a call id; record_placed completes it."""
    longest = timedelta(seconds=max(c.window_seconds for c in caps))
    at = placed.placed_at
    async with db.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                           {"k": f"frequency-cap|{placed.tenant_id}|{phone}"})
        own = (await conn.execute(select(attempts.c.idempotency_key).where(
            attempts.c.idempotency_key == placed.idempotency_key))).first()
        if own is not None:
            return None
        placed_times = (await conn.execute(
            select(attempts.c.placed_at).select_from(attempts.join(contacts, and_(
                contacts.c.tenant_id == attempts.c.tenant_id, contacts.c.campaign_id == attempts.c.campaign_id,
                contacts.c.key == attempts.c.contact_key)))
            .where(contacts.c.tenant_id == placed.tenant_id, contacts.c.phone == phone,
                   attempts.c.placed_at > at - longest))).scalars().all()
        until = held_until(at, list(placed_times), caps)
        if until is not None:
            return until
        await conn.execute(insert(attempts).values(
            idempotency_key=placed.idempotency_key, tenant_id=placed.tenant_id, campaign_id=placed.campaign_id,
            contact_key=placed.contact_key, attempt=placed.attempt, provider=placed.provider,
            from_number=placed.from_number, placed_at=at))
        count = insert(daily_calls).values(tenant_id=placed.tenant_id, campaign_id=placed.campaign_id,
                                           day=at.astimezone(UTC).date(), calls=1)
        await conn.execute(count.on_conflict_do_update(
            index_elements=[daily_calls.c.tenant_id, daily_calls.c.day, daily_calls.c.campaign_id],
            set_={"calls": daily_calls.c.calls + 1}))
    return None
