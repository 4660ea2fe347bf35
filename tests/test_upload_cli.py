"""`campaign-engine upload` (issue 15), run as the README runs it, in a subprocess against a
running engine (API over HTTP, worker, PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy import text

from campaign_engine.settings import Settings
from campaign_engine.store.db import store_engine
from tests.conftest import API_KEY, running_engine
from tests.helpers import wait_for


async def _upload(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "campaign-engine"), "upload", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k not in ("CAMPAIGN_API_KEY", "API_BASE_URL")})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def _contacts(campaign_id: str) -> list:
    db = store_engine(Settings())
    try:
        async with db.connect() as conn:
            return (await conn.execute(text("SELECT phone, custom_data FROM contacts WHERE campaign_id = :c "
                                            "ORDER BY key"), {"c": campaign_id})).all()
    finally:
        await db.dispose()


async def test_upload_runs_a_csv_with_config_and_reports_refusals(dev_env, task_queue, carrier_db, tmp_path):
    rows = "\n".join(f"+1415555{i:04d},Person {i},vip" for i in range(120))
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("phone,name,segment\n" + rows + "\n")
    config = tmp_path / "campaign.json"
    config.write_text(json.dumps({"maxConcurrentCalls": 50, "redialConfig": {"enabled": False}}))
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        status, out, err = await _upload(str(csv_file), "--name", "CLI run", "--agent", "agent-7", "--run",
                                         "--config", str(config), "--url", eng.base_url, "--api-key", API_KEY)
        assert status == 0, (out, err)
        assert "contacts received 120, accepted 120" in out
        assert "contacts.csv" in err  # the progress bar names the file
        campaign_id = out.split()[1]
        stored = await _contacts(campaign_id)
        assert len(stored) == 120 and stored[0].custom_data == {"segment": "vip"}

        async def probe():
            return (await eng.http.get(f"/campaigns/{campaign_id}", headers=eng.headers())).json()
        done = await wait_for(probe, lambda d: d.get("status") == "completed", timeout=120, what="completed")
        assert done["total_contacts"] == 120

        # a draft keeps the valid rows and names the bad one by its file row
        bad = tmp_path / "bad.csv"
        bad.write_text("mobile,name\n+14155550100,A\nnot-a-number,B\n")
        status, out, err = await _upload(str(bad), "--name", "CLI draft", "--agent", "a", "--url", eng.base_url,
                                         "--api-key", API_KEY)
        assert status == 0, (out, err)
        assert "uploaded 1, refused 1" in out and "row 3, mobile:" in out and ": draft" in out
        # --run refuses the whole file: exit status 1, the row named
        status, out, err = await _upload(str(bad), "--name", "CLI bad", "--agent", "a", "--run",
                                         "--url", eng.base_url, "--api-key", API_KEY)
        assert status == 1 and "400 BAD_REQUEST" in err and "row 3, mobile" in err
        status, out, err = await _upload(str(bad), "--name", "x", "--agent", "a", "--url", eng.base_url,
                                         "--api-key", "wrong-key")
        assert status == 1 and "401" in err
