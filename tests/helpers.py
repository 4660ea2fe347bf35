"""Small helpers for tests: waiting on conditions (never sleeps-and-hope), building inputs."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from campaign_engine.phones import mask_phone
from campaign_engine.models import CampaignConfig, CampaignInput, Contact, ContactSummary, RedialPolicy

T = TypeVar("T")

# Below Linux's ephemeral range (32768-60999): a port the OS hands out for bind(0) or an
# outgoing connection, or that the Temporal dev server picks for its internal services,
# can be taken between our check and the server's bind. CI once lost a run that way.
_LISTEN_PORTS = range(20000, 32000)


def free_port() -> int:
    """A port nobody listens on now, for a server a test starts."""
    for _ in range(200):
        port = random.choice(_LISTEN_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


async def wait_for(
    probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], *, timeout: float = 60, what: str = "condition"
) -> T:
    """Poll `probe` until `until(value)` holds; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.1)
        value = await probe()
    return value


def make_config(campaign_id: str = "CAMP-TEST-1", **overrides) -> CampaignConfig:
    base = dict(
        campaign_id=campaign_id,
        object_id="0" * 24,
        tenant_id="acme",
        name="Test campaign",
        agent_id="agent-1",
        created_at=datetime.now(UTC),
        redial=RedialPolicy(),
        expected_call_seconds=1.0,
        call_outcome_timeout_seconds=30.0,
    )
    base.update(overrides)
    return CampaignConfig(**base)


def make_contacts(n: int, start: int = 0, **extra) -> list[Contact]:
    # Valid Indian mobile numbers: +91 98xxxxxxxx.
    return [
        Contact(key=i, phone=f"+9198{(start + i):08d}", masked=mask_phone(f"+9198{(start + i):08d}"),
                name=f"Contact {start + i}", **extra)
        for i in range(n)
    ]


async def launch_campaign(client, config: CampaignConfig, contacts: list[Contact], *, task_queue: str,
                          start_paused: bool = False, **start_options):
    """What an upload does, without the API: the rows into the store (this module's
    DATABASE_URL), then the campaign's workflow. Returns its handle."""
    from campaign_engine.models import CampaignStatus
    from campaign_engine.settings import Settings
    from campaign_engine.store import repo
    from campaign_engine.store.db import store_engine
    from workflows.campaign import CampaignWorkflow

    db = store_engine(Settings())
    try:
        status = CampaignStatus.DRAFT if start_paused else CampaignStatus.IN_PROGRESS
        await repo.create_campaign(db, config, contacts, status=status, counts=lambda: (len(contacts), 0))
        await repo.mark_launched(db, config.tenant_id, config.campaign_id)
    finally:
        await db.dispose()
    return await client.start_workflow(
        CampaignWorkflow.run, CampaignInput(config=config, total_contacts=len(contacts), start_paused=start_paused),
        id=start_options.pop("id", f"campaign/{config.tenant_id}/{config.campaign_id}"), task_queue=task_queue,
        **start_options)


async def store_contacts(config: CampaignConfig) -> list[ContactSummary]:
    """The campaign's contacts as the store has them, in key order."""
    return await campaign_rows(config.tenant_id, config.campaign_id)


async def campaign_rows(tenant_id: str, campaign_id: str) -> list[ContactSummary]:
    """A campaign's contacts as the store has them, in key order."""
    from campaign_engine.settings import Settings
    from campaign_engine.store import repo
    from campaign_engine.store.db import store_engine

    db = store_engine(Settings())
    try:
        rows, _ = await repo.contacts_page(db, tenant_id, campaign_id, limit=1_000_000)
    finally:
        await db.dispose()
    return [ContactSummary(key=r.key, phone=r.phone, state=r.state, attempts=r.attempts, disposition=r.disposition,
                           next_call_at=r.next_call_at, last_outcome=r.last_outcome, talk_seconds=r.talk_seconds,
                           reason=r.reason) for r in rows]


def incompressible_text(n: int, seed: int) -> str:
    """`n` characters that do not compress (contacts travel compressed: a test that needs an
    upload to span several pieces needs data that stays big)."""
    import random
    import string

    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits + "+/", k=n))
