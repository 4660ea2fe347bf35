"""Small helpers for tests: waiting on conditions (never sleeps-and-hope), building inputs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from campaign_engine.phones import mask_phone
from campaign_engine.models import CampaignConfig, CampaignInput, Contact, RedialPolicy

T = TypeVar("T")


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


def campaign_input(config: CampaignConfig, contacts: list[Contact]) -> CampaignInput:
    return CampaignInput(config=config, contacts=contacts, expected_contacts=len(contacts))


def incompressible_text(n: int, seed: int) -> str:
    """`n` characters that do not compress (contacts travel compressed: a test that needs an
    upload to span several pieces needs data that stays big)."""
    import random
    import string

    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits + "+/", k=n))
