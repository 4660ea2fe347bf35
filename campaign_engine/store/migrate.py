"""Schema migrations (Alembic): `campaign-engine migrate`, and at start-up under `up` and in
the tests. The environment (migrations/env.py) runs over asyncpg in its own event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from campaign_engine.store.db import StoreUnreachable, create_engine, describe_url, one_line

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """From async code: Alembic's environment starts an event loop of its own, so in a thread."""
    await asyncio.to_thread(upgrade, url)


def head_revision() -> str | None:
    """The newest revision the code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None: never migrated). Raises
    StoreUnreachable, in one line, when it cannot be reached."""
    try:
        engine = create_engine(url, pool_size=1)
    except Exception as err:  # noqa: BLE001 - an unparsable URL or unknown driver
        raise StoreUnreachable(f"DATABASE_URL is not a PostgreSQL URL SQLAlchemy can use ({one_line(err)})") from None
    try:
        async with engine.connect() as conn:
            if not await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
                return None
            return await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as err:  # noqa: BLE001 - refused, unknown host, bad password, no database
        raise StoreUnreachable(f"cannot reach the store at DATABASE_URL ({describe_url(url)}): "
                               f"{one_line(err)}") from None
    finally:
        await engine.dispose()
