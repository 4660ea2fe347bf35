"""`campaign-engine status` and `list`: campaigns followed straight from Temporal (queries
and visibility), not through the REST API."""

from __future__ import annotations

import asyncio
import json

from campaign_engine.settings import Settings
from campaign_engine.temporal import connect_or_explain


async def _find_campaign(client, campaign_id: str) -> str:
    if campaign_id.startswith("campaign/"):
        return campaign_id
    async for wf in client.list_workflows(f"CampaignId = '{campaign_id}' AND WorkflowType = 'CampaignWorkflow'"):
        return wf.id
    raise SystemExit(f"no campaign {campaign_id} found in Temporal")


async def _progress(handle):
    """The campaign's progress query, or a one-line reason why it cannot be had. Its status
    is the one the API reports: `failed` for a workflow terminated without a final status."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    from campaign_engine.status import campaign_status
    from workflows.campaign import CampaignWorkflow

    try:
        progress = await handle.query(CampaignWorkflow.progress)
        execution = (await handle.describe()).status
    except (RPCError, WorkflowQueryFailedError) as err:
        raise SystemExit(f"campaign {handle.id} does not answer queries ({err}); is a worker running? "
                         f"`temporal workflow describe -w {handle.id}` shows a failing workflow task") from None
    return progress.model_copy(update={"status": campaign_status(progress.status, execution)})


def _progress_table(progress) -> str:
    lines = [
        f"{progress.name} ({progress.campaign_id}): {progress.status.value}  {progress.percentage}%",
        f"  contacts {progress.total_contacts}  calls placed {progress.calls_placed}  live {progress.live_calls}"
        f"  redials pending {progress.pending_redials}",
        "  states: " + ", ".join(f"{k} {v}" for k, v in sorted(progress.by_state.items())),
        "  dispositions: " + (", ".join(f"{k} {v}" for k, v in sorted(progress.by_disposition.items())) or "-"),
    ]
    if progress.next_redial_at:
        lines.append(f"  next redial at {progress.next_redial_at.isoformat()}")
    if progress.estimated_completion:
        lines.append(f"  estimated completion {progress.estimated_completion.isoformat()}")
    if progress.pause_reason:
        lines.append(f"  paused: {progress.pause_reason}")
    return "\n".join(lines)


async def run_status(settings: Settings, campaign_id: str, watch: bool, as_json: bool) -> int:
    from campaign_engine.models import CampaignStatus

    client = await connect_or_explain(settings)
    wf_id = await _find_campaign(client, campaign_id)
    handle = client.get_workflow_handle(wf_id)
    done = {CampaignStatus.COMPLETED, CampaignStatus.CANCELED, CampaignStatus.FAILED}
    if not watch:
        progress = await _progress(handle)
        print(progress.model_dump_json(indent=2) if as_json else _progress_table(progress))
        return 0
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=as_json)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(campaign_id, total=None, detail="")
        while True:
            progress = await _progress(handle)
            final = sum(progress.by_state.get(s, 0) for s in ("done", "removed", "canceled"))
            detail = f"{progress.status.value} · {progress.calls_placed} calls · {progress.live_calls} live"
            bar.update(task, total=progress.total_contacts, completed=final, detail=detail)
            if as_json:
                print(progress.model_dump_json(), flush=True)
            if progress.status in done:
                break
            await asyncio.sleep(1)
    if not as_json:
        console.print(_progress_table(progress))
    return 0


async def run_list(settings: Settings, status: str | None, as_json: bool) -> int:
    client = await connect_or_explain(settings)
    query = "WorkflowType = 'CampaignWorkflow'"
    if status:
        query += f" AND CampaignStatus = '{status}'"
    seen: dict[str, dict] = {}
    async for wf in client.list_workflows(query):
        if wf.id in seen:
            continue  # older runs of a campaign that continued as new
        attrs = {k.name: v for k, v in wf.typed_search_attributes}
        seen[wf.id] = {
            "campaign_id": attrs.get("CampaignId"),
            "tenant": attrs.get("TenantId"),
            "status": attrs.get("CampaignStatus"),
            "agent_id": attrs.get("AgentId"),
            "workflow_id": wf.id,
            "started": wf.start_time.isoformat() if wf.start_time else None,
        }
    rows = list(seen.values())
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['campaign_id']:<22} {r['status'] or '-':<12} tenant={r['tenant']} agent={r['agent_id']}"
                  f" started={r['started']}")
        if not rows:
            print("no campaigns")
    return 0
