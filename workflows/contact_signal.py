"""Signals from the campaign to its contacts, by key."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import ContactSignal
    from campaign_engine.ids import contact_workflow_id

# Signals sent at once (Temporal allows 2,000 pending per run).
SIGNAL_BATCH = 500


async def signal_contact(key: int, signal: ContactSignal, *args: Any) -> bool:
    """Whether the signal reached the contact's workflow: a signal to one that has closed
    (ended, or terminated by an operator) fails."""
    handle = workflow.get_external_workflow_handle(contact_workflow_id(workflow.info().workflow_id, key))
    try:
        await handle.signal(signal, *args)
    except Exception:
        return False
    return True


async def signal_contacts(signal: ContactSignal, messages: Sequence[tuple[int, tuple]]) -> list[int]:
    """`signal` to each (key, args), SIGNAL_BATCH at a time, in order; the keys it did not reach."""
    missed: list[int] = []
    for i in range(0, len(messages), SIGNAL_BATCH):
        batch = messages[i:i + SIGNAL_BATCH]
        reached = await asyncio.gather(*(signal_contact(key, signal, *args) for key, args in batch))
        missed.extend(key for (key, _), ok in zip(batch, reached, strict=True) if not ok)
    return missed
