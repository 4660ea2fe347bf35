"""The benchmark's baseline: bare Temporal fan-out, the fastest a campaign could possibly go.

`BenchParent(n, prefix)` starts n `BenchChild` workflows in one workflow task and waits for
them; each child runs one no-op activity. Nothing else: no signals, no state, no payload.
Kept in this small module (not in `engine_bench.py`) because the workflow sandbox re-imports
a workflow's module for every run: a large module would tax the baseline unfairly.
Run it with `python -m bench.engine_bench` (see that module).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def bench_noop(i: int) -> int:
    return i


@workflow.defn(name="BenchChild")
class BenchChild:
    @workflow.run
    async def run(self, i: int) -> int:
        return await workflow.execute_activity(
            bench_noop, i, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn(name="BenchParent")
class BenchParent:
    @workflow.run
    async def run(self, n: int, prefix: str) -> int:
        handles = await asyncio.gather(*(
            workflow.start_child_workflow(BenchChild.run, i, id=f"{prefix}/child/{i}")
            for i in range(n)
        ))
        results = await asyncio.gather(*handles)
        return len(results)


BASELINE_WORKFLOWS = [BenchParent, BenchChild]
BASELINE_ACTIVITIES = [bench_noop]
