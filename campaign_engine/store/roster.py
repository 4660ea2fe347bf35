"""A campaign's contacts in the store, as its workflow and the API work through them.

The campaign workflow keeps no list of its contacts: it launches them in key order from here
(a keyset cursor), writes what changes for them in batches, and asks here which of them are
open (to stop them, or send them new rules) and which have been silent too long. Appends
write rows here first, then tell the campaign how far its keys now go.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, case, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from campaign_engine.models import Contact, ContactState, LaunchPageRequest, LaunchRow, reported_disposition
from campaign_engine.phones import mask_phone
from campaign_engine.policy import legal_hours
from campaign_engine.policy.redial_rules import is_opt_out
from campaign_engine.policy.windows import resolve_time_zones
from campaign_engine.store.compliance import suppress_opt_outs
from campaign_engine.store.records import CampaignChanges, ContactChange
from campaign_engine.store.tables import appends, attempts, campaigns, contacts

INSERT_PAGE = 1_000
OPEN_STATES = [s.value for s in ContactState if not s.is_final and s != ContactState.PENDING]
# Contacts waiting on a timer of their own: each says, at the latest by its next_call_at, that
# it asks to dial.
WAITING_STATES = [ContactState.SCHEDULED.value, ContactState.REDIAL_WAIT.value, ContactState.OUTSIDE_WINDOW.value,
                  ContactState.CAPPED.value]


def _of(tenant_id: str, campaign_id: str):
    return and_(contacts.c.tenant_id == tenant_id, contacts.c.campaign_id == campaign_id)


# --- launching ------------------------------------------------------------------------------


async def launch_page(db: AsyncEngine, req: LaunchPageRequest) -> list[LaunchRow]:
    """The next contacts to launch: pending rows after the cursor, in key order."""
    query = (select(contacts.c.key, contacts.c.phone, contacts.c.scheduled_at, contacts.c.zones)
             .where(_of(req.tenant_id, req.campaign_id), contacts.c.key > req.after_key,
                    contacts.c.key < req.below_key, contacts.c.state == ContactState.PENDING.value)
             .order_by(contacts.c.key).limit(req.limit))
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_launch_row(r) for r in rows]


def _launch_row(r) -> LaunchRow:
    legal = legal_hours.rule_for(r.phone)
    # A campaign without a calling window resolved no zones at upload; legal hours still apply
    # in the contact's local time, so its number's zones are taken here.
    zones = list(r.zones or []) or list(resolve_time_zones(r.phone, None, None))
    return LaunchRow(key=r.key, label=mask_phone(r.phone), scheduled_at=r.scheduled_at, zones=zones,
                     legal_rule=legal.name, legal_window=legal.window())


async def open_contact_keys(db: AsyncEngine, tenant_id: str, campaign_id: str, after_key: int,
                            limit: int) -> list[int]:
    """Keys of launched contacts that have not ended, after `after_key`."""
    query = (select(contacts.c.key).where(_of(tenant_id, campaign_id), contacts.c.key > after_key,
                                          contacts.c.state.in_(OPEN_STATES))
             .order_by(contacts.c.key).limit(limit))
    async with db.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def silent_contacts(db: AsyncEngine, tenant_id: str, campaign_id: str, *, now: datetime,
                          grace: timedelta, call_bound: timedelta, limit: int = 500) -> list[int]:
    """Open contacts that should have spoken by now: waiting ones past their next call time,
    and ones on a call longer than a call can last. (Queued ones wait for the campaign.)"""
    overdue = and_(contacts.c.state.in_(WAITING_STATES), contacts.c.next_call_at < now - grace)
    stuck = and_(contacts.c.state == ContactState.DIALING.value, contacts.c.updated_at < now - call_bound)
    query = (select(contacts.c.key).where(_of(tenant_id, campaign_id), overdue | stuck)
             .order_by(contacts.c.key).limit(limit))
    async with db.connect() as conn:
        return list((await conn.execute(query)).scalars())


# --- appends --------------------------------------------------------------------------------


@dataclass
class Appended:
    added: int
    duplicates: int
    total: int
    first_key: int
    duplicates_total: int = 0  # the campaign's merged duplicates, this append included
    replayed: bool = False
    other_body: bool = False  # the Idempotency-Key was used with another body


async def append_contacts(db: AsyncEngine, tenant_id: str, campaign_id: str, rows: Sequence[Contact], *,
                          key_hash: str | None = None, fingerprint: str | None = None) -> Appended:
    """New rows after the campaign's last key (duplicates of its numbers merged), in one
    transaction that holds the campaign's row: concurrent appends get keys one after the
    other. Under an Idempotency-Key a retry adds nothing and answers what the first did."""
    now = datetime.now(UTC)
    async with db.begin() as conn:
        total, merged = (await conn.execute(select(campaigns.c.total_contacts, campaigns.c.duplicates_merged).where(
            campaigns.c.tenant_id == tenant_id, campaigns.c.campaign_id == campaign_id).with_for_update())).one()
        if key_hash is not None:
            done = (await conn.execute(select(appends).where(
                appends.c.tenant_id == tenant_id, appends.c.campaign_id == campaign_id,
                appends.c.key_hash == key_hash))).first()
            if done is not None:
                return Appended(done.added, done.duplicates, total, done.first_key, duplicates_total=merged,
                                replayed=True, other_body=done.fingerprint != fingerprint)
        phones = [c.phone for c in rows]
        known = set((await conn.execute(select(contacts.c.phone).where(
            _of(tenant_id, campaign_id), contacts.c.phone.in_(phones)))).scalars()) if phones else set()
        fresh: list[Contact] = []
        seen = set(known)
        for contact in rows:
            if contact.phone not in seen:
                seen.add(contact.phone)
                fresh.append(contact.model_copy(update={"key": total + len(fresh)}))
        await insert_contacts(conn, tenant_id, campaign_id, fresh)
        await conn.execute(update(campaigns).where(
            campaigns.c.tenant_id == tenant_id, campaigns.c.campaign_id == campaign_id).values(
            total_contacts=total + len(fresh),
            duplicates_merged=campaigns.c.duplicates_merged + len(rows) - len(fresh),
            received_contacts=campaigns.c.received_contacts + len(rows)))
        if key_hash is not None:
            await conn.execute(insert(appends).values(
                tenant_id=tenant_id, campaign_id=campaign_id, key_hash=key_hash, fingerprint=fingerprint or "",
                first_key=total, added=len(fresh), duplicates=len(rows) - len(fresh), created_at=now))
    return Appended(len(fresh), len(rows) - len(fresh), total + len(fresh), total,
                    duplicates_total=merged + len(rows) - len(fresh))


async def withdraw_append(db: AsyncEngine, tenant_id: str, campaign_id: str, appended: Appended,
                          key_hash: str | None) -> None:
    """Undo an append the campaign refused (it had finished meanwhile): rows are removed only
    if they are still the campaign's last ones and nobody launched them."""
    async with db.begin() as conn:
        total = (await conn.execute(select(campaigns.c.total_contacts).where(
            campaigns.c.tenant_id == tenant_id, campaigns.c.campaign_id == campaign_id).with_for_update())).scalar_one()
        if total != appended.first_key + appended.added:
            return
        await conn.execute(delete(contacts).where(_of(tenant_id, campaign_id), contacts.c.key >= appended.first_key))
        await conn.execute(update(campaigns).where(
            campaigns.c.tenant_id == tenant_id, campaigns.c.campaign_id == campaign_id).values(
            total_contacts=appended.first_key))
        if key_hash is not None:
            await conn.execute(delete(appends).where(
                appends.c.tenant_id == tenant_id, appends.c.campaign_id == campaign_id, appends.c.key_hash == key_hash))


async def insert_contacts(conn: AsyncConnection, tenant_id: str, campaign_id: str, rows: Sequence[Contact]) -> None:
    pending = ContactState.PENDING.value
    for start in range(0, len(rows), INSERT_PAGE):
        page = [{"tenant_id": tenant_id, "campaign_id": campaign_id, "key": c.key, "phone": c.phone, "name": c.name,
                 "email": c.email, "custom_data": c.custom_data, "scheduled_at": c.scheduled_at,
                 "timezone": c.timezone, "zones": c.zones, "state": pending, "next_call_at": c.scheduled_at,
                 "consent": c.consent.stored() if c.consent is not None else None}
                for c in rows[start:start + INSERT_PAGE]]
        await conn.execute(insert(contacts).on_conflict_do_nothing(), page)


async def contact_by_phone(db: AsyncEngine, tenant_id: str, campaign_id: str, phone: str):
    async with db.connect() as conn:
        return (await conn.execute(select(contacts).where(_of(tenant_id, campaign_id),
                                                          contacts.c.phone == phone))).first()


async def contact_by_key(db: AsyncEngine, tenant_id: str, campaign_id: str, key: int):
    async with db.connect() as conn:
        return (await conn.execute(select(contacts).where(_of(tenant_id, campaign_id),
                                                          contacts.c.key == key))).first()


async def due_counts(db: AsyncEngine, tenant_id: str, campaign_id: str, at: datetime) -> tuple[int, int]:
    """(scheduled after `at`, due by then) among the contacts not final."""
    later = func.count().filter(contacts.c.next_call_at > at)
    query = select(later, func.count()).where(_of(tenant_id, campaign_id), contacts.c.state.in_(
        OPEN_STATES + [ContactState.PENDING.value]))
    async with db.connect() as conn:
        scheduled, open_ = (await conn.execute(query)).one()
    return int(scheduled), int(open_) - int(scheduled)


# --- the campaign's flush -------------------------------------------------------------------


async def write_changes(conn: AsyncConnection, changes: CampaignChanges) -> None:
    tenant, cid = changes.tenant_id, changes.campaign_id
    now = datetime.now(UTC)
    for start in range(0, len(changes.attempts), INSERT_PAGE):
        page = [{
            "idempotency_key": a.idempotency_key, "tenant_id": tenant, "campaign_id": cid,
            "contact_key": a.key, "attempt": a.record.attempt, "call_id": a.record.call_id,
            "placed_at": a.record.placed_at, "ended_at": a.record.ended_at,
            "outcome": a.record.outcome.value if a.record.outcome else None,
            "hangup_cause": a.record.hangup_cause, "reason": a.record.reason,
            "duration_seconds": a.record.duration_seconds, "recording_url": a.record.recording_url,
            "analysis": a.record.analysis or None,
        } for a in changes.attempts[start:start + INSERT_PAGE]]
        stmt = insert(attempts)
        ended = ("ended_at", "outcome", "hangup_cause", "reason", "duration_seconds", "recording_url", "analysis")
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=[attempts.c.idempotency_key],
            set_={**{c: stmt.excluded[c] for c in ended},
                  "call_id": func.coalesce(attempts.c.call_id, stmt.excluded.call_id),
                  "placed_at": func.coalesce(attempts.c.placed_at, stmt.excluded.placed_at)},
        ), page)
    # Opt-outs heard on these calls join the tenant's suppression list, in this transaction.
    opt_outs = [(a.key, a.idempotency_key) for a in changes.attempts
                if a.record.outcome is not None and is_opt_out(a.record.hangup_cause, a.record.analysis)]
    if opt_outs:
        await suppress_opt_outs(conn, tenant, cid, opt_outs)
    where = and_(_of(tenant, cid), contacts.c.key == bindparam("k"))
    full = [c for c in changes.contacts if c.report is not None]
    if full:
        await conn.execute(update(contacts).where(where).values(
            state=bindparam("s"), disposition=bindparam("d"), attempts=bindparam("a"), last_outcome=bindparam("lo"),
            next_call_at=bindparam("n"), reason=bindparam("r"), talk_seconds=bindparam("t"), updated_at=now,
        ), [_full_row(c) for c in full])
    partial = [c for c in changes.contacts if c.report is None]
    if partial:
        await conn.execute(update(contacts).where(where).values(
            state=bindparam("s"), disposition=func.coalesce(bindparam("d"), contacts.c.disposition),
            reason=func.coalesce(bindparam("r"), contacts.c.reason),
            next_call_at=case((bindparam("c"), None), else_=contacts.c.next_call_at), updated_at=now,
        ), [{"k": c.key, "s": c.current_state.value, "d": c.disposition.value if c.disposition else None,
             "r": c.reason, "c": c.clear_next_call} for c in partial])
    if changes.cancel_from_key is not None:
        await conn.execute(update(contacts).where(
            _of(tenant, cid), contacts.c.key >= changes.cancel_from_key,
            contacts.c.state == ContactState.PENDING.value,
        ).values(state=ContactState.CANCELED.value, reason="campaign canceled", next_call_at=None, updated_at=now))


def _full_row(change: ContactChange) -> dict:
    r = change.report
    assert r is not None
    state = change.current_state
    disposition = change.disposition or r.disposition
    return {"k": change.key, "s": state.value, "d": disposition.value if disposition else None,
            "a": r.attempts, "lo": r.last_outcome.value if r.last_outcome else None,
            "n": None if change.clear_next_call else r.next_call_at, "r": change.reason or r.reason,
            "t": r.talk_seconds}


@dataclass
class RowFigures:
    by_state: dict[str, int] = field(default_factory=dict)
    by_disposition: dict[str, int] = field(default_factory=dict)
    redials_made: int = 0
    pending_redials: int = 0
    next_redial_at: datetime | None = None


async def row_figures(conn: AsyncConnection, tenant_id: str, campaign_id: str) -> RowFigures:
    """Counts by state and disposition, redials made, the next redial: one grouped scan."""
    redial = ContactState.REDIAL_WAIT.value
    query = select(
        contacts.c.state, contacts.c.disposition, func.count(),
        func.sum(func.greatest(contacts.c.attempts - 1, 0)),
        func.min(contacts.c.next_call_at).filter(contacts.c.state == redial),
    ).where(_of(tenant_id, campaign_id)).group_by(contacts.c.state, contacts.c.disposition)
    figures = RowFigures()
    for state, disposition, n, redials, next_redial in (await conn.execute(query)).all():
        figures.by_state[state] = figures.by_state.get(state, 0) + n
        figures.redials_made += int(redials or 0)
        if (shown := reported_disposition(state, disposition)) is not None:
            figures.by_disposition[shown] = figures.by_disposition.get(shown, 0) + n
        if state == redial:
            figures.pending_redials += n
            if next_redial is not None and (figures.next_redial_at is None or next_redial < figures.next_redial_at):
                figures.next_redial_at = next_redial
    return figures


async def eta_rows(conn: AsyncConnection, tenant_id: str, campaign_id: str) -> list[tuple]:
    """(due minute, attempts made, zones, how many) of every contact still to call."""
    minute = func.date_trunc("minute", contacts.c.next_call_at)
    waiting = WAITING_STATES + [ContactState.PENDING.value, ContactState.QUEUED.value]
    query = (select(minute, contacts.c.attempts, text("contacts.zones::text"), func.count())
             .where(_of(tenant_id, campaign_id), contacts.c.state.in_(waiting))
             .group_by(minute, contacts.c.attempts, text("contacts.zones::text")))
    return [(m, a, json.loads(z) if z else [], n) for m, a, z, n in (await conn.execute(query)).all()]
