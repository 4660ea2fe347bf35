"""The workflow sandbox, set up for speed without giving up its checks on workflow code.

By default the sandbox re-imports, for every workflow run, each module a workflow imports
that is not passed through: our workflow modules and what they define (a pydantic model
class among them). That cost about 5 ms of worker CPU per contact, a third of the worker's
share of a contact (bench/engine_bench.py). Our own packages hold no mutable module state and
do no I/O at import, so they are passed through: imported once per worker, shared by every
run (passing through everything but `workflows` saved nothing: the workflow modules are
what was re-imported).

The price: the sandbox's restrictions (no clock, no random, no I/O) are not enforced inside
passed-through modules. What guards determinism in workflows/ is the rule that everything
touching the world is an activity, and tests/test_replay.py, which replays recorded
histories of every workflow with this runner.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES = ("workflows", "campaign_engine", "activities", "pydantic", "pydantic_core")

WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
)
