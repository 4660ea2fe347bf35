"""The `campaign-engine` command line against the dev server."""

from __future__ import annotations

from campaign_engine.cli import run_status
from tests.conftest import engine_settings


async def test_cli_status_of_a_campaign_that_does_not_answer_says_so_in_one_line(dev_env, task_queue, carrier_db):
    settings = engine_settings(dev_env, task_queue, carrier_db)
    try:
        await run_status(settings, "campaign/acme/CAMP-2026-NOSUCH", watch=False, as_json=False)
    except SystemExit as exit_:
        message = str(exit_.code)
    else:
        raise AssertionError("run_status answered for a campaign that does not exist")
    assert "campaign/acme/CAMP-2026-NOSUCH does not answer queries" in message and "\n" not in message
