"""The store's figures that the API's /metrics reports (campaign_engine.metrics.StoreFigures):
three grouped counts per scrape, for one tenant or all of them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from campaign_engine.metrics import StoreFigures
from campaign_engine.store.tables import attempts, campaigns, contacts


async def store_figures(db: AsyncEngine, tenant_id: str | None) -> StoreFigures:
    placed = (select(attempts.c.provider, attempts.c.outcome, func.count())
              .where(attempts.c.placed_at.is_not(None)).group_by(attempts.c.provider, attempts.c.outcome))
    by_status = (select(campaigns.c.status, func.count()).where(campaigns.c.launched_at.is_not(None))
                 .group_by(campaigns.c.status).order_by(campaigns.c.status))
    suppressed = select(func.count()).select_from(contacts).where(contacts.c.disposition == "suppressed")
    if tenant_id is not None:
        placed = placed.where(attempts.c.tenant_id == tenant_id)
        by_status = by_status.where(campaigns.c.tenant_id == tenant_id)
        suppressed = suppressed.where(contacts.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows = (await conn.execute(placed)).all()
        statuses = (await conn.execute(by_status)).all()
        n_suppressed = (await conn.execute(suppressed)).scalar_one()
    return StoreFigures([(p, o, n) for p, o, n in rows], [(s, n) for s, n in statuses], n_suppressed)
