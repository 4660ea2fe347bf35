"""Schema migrations (Alembic): `campaign-engine migrate`, and at start-up under `up` and in
the tests. The environment (migrations/env.py) runs over asyncpg in its own event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

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
