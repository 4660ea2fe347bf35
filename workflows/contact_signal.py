"""A signal from the campaign to one of its contacts, by key."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from campaign_engine.contract import ContactSignal
    from campaign_engine.ids import contact_workflow_id


async def signal_contact(key: int, signal: ContactSignal, *args: Any) -> bool:
    """Whether the signal reached the contact's workflow: a signal to one that has closed
    (ended, or terminated by an operator) fails."""
    handle = workflow.get_external_workflow_handle(contact_workflow_id(workflow.info().workflow_id, key))
    try:
        await handle.signal(signal, *args)
    except Exception:
        return False
    return True
