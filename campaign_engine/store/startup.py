"""The store as `campaign-engine up` runs it: DATABASE_URL when set, else an embedded
PostgreSQL in $CAMPAIGN_DATA_DIR/postgres; migrated to head either way before anything uses it."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import SecretStr

from campaign_engine.store.db import describe_url
from campaign_engine.store.migrate import current_revision, upgrade_async

if TYPE_CHECKING:
    from campaign_engine.settings import Settings
    from campaign_engine.store.embedded import EmbeddedPostgres


@dataclass
class RunningStore:
    url: str
    embedded: "EmbeddedPostgres | None"
    revision: str | None

    def describe(self) -> str:
        """What `up` prints: where the store is, never a password."""
        if self.embedded is not None:
            return f"PostgreSQL (embedded) {self.embedded.data_dir}"
        return f"PostgreSQL {describe_url(self.url)}"

    async def stop(self) -> None:
        """Stop the embedded server (a DATABASE_URL server is not ours to stop)."""
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def _start_embedded(settings: "Settings") -> "EmbeddedPostgres":
    with warnings.catch_warnings():  # platformdirs warns at import where XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from campaign_engine.store.embedded import start_embedded

        return start_embedded(settings.data_dir / "postgres")


async def start_store(settings: "Settings") -> tuple["Settings", RunningStore]:
    """The store, running and migrated, and `settings` with its DATABASE_URL. A DATABASE_URL
    that cannot be reached raises StoreUnreachable (one line) and starts nothing."""
    url = settings.database_url.get_secret_value()
    embedded = None
    if not url:
        embedded = await asyncio.to_thread(_start_embedded, settings)
        url = embedded.url
        settings = settings.model_copy(update={"database_url": SecretStr(url)})
    try:
        await current_revision(url)  # reachable, or one line saying why not
        await upgrade_async(url)
        revision = await current_revision(url)
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    return settings, RunningStore(url, embedded, revision)
