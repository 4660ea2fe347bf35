"""The `reads` phase of `python -m bench.engine_bench`: REST reads against the store at size.

Three tenants are seeded straight into the store's tables (COPY through asyncpg), as the
upload and the campaign workflow would have left them after their campaigns finished:

- `reads-small`   1 campaign of 1,000 contacts (by default)
- `reads-large`   10 campaigns of 10,000 contacts each
- `reads-export`  1 campaign whose export has 100,000 attempt rows (50,000 contacts, 2 calls each)

Each contact has ~300 bytes of custom_data, its final state, disposition, attempts and talk
time; each of its calls one attempt row (provider, call id, caller id, placed / ended at,
outcome, hang-up cause, duration, recording URL and the provider's analysis for answered
calls). Contacts are called 1, 2 or 3 times (60 / 25 / 15%). Each campaign row has its
configuration and the progress document CampaignWorkflow flushes (models.CampaignProgress,
via repo.record_campaign_changes), consistent with its rows. Each tenant's newest campaign
called today (so `total_calls_today` counts its attempts), the others on earlier days.
VACUUM ANALYZE afterwards, as autovacuum would have by then.

Then, against the real API over HTTP (a uvicorn subprocess, no worker: reads need none),
request by request alternated between the tenants so that load on the machine hits both
alike: p50 / p95 of `GET /getCampaignStatuses` and `GET /campaigns/{id}` (the large
tenant's newest campaign); reads_ratio = p50 large / p50 small per endpoint (target < 2).
Finally `GET /downloadCampaignStats?campaign_id=...` (CSV) of the export tenant, streamed and
its rows counted: rows per second, time to the first byte, the API's peak RSS.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.engine_bench import log, pct, proc_cpu, vm_hwm_mb

SMALL, LARGE, EXPORT = "reads-small", "reads-large", "reads-export"
KEYS = {SMALL: "reads-small-key", LARGE: "reads-large-key", EXPORT: "reads-export-key"}
CITIES = ["Pune", "Mumbai", "Bengaluru", "Chennai", "Delhi", "Hyderabad", "Kolkata", "Jaipur"]
PLANS = ["silver", "gold", "platinum"]
ANALYSIS = {"summary": "Customer confirmed the payment date and asked for a receipt by email.",
            "sentiment": "positive", "intent": "will_pay", "language": "en"}


def api_keys() -> str:
    return ",".join(f"{t}:{k}" for t, k in KEYS.items())


# --- seeding ---------------------------------------------------------------------------------

def _calls(i: int) -> list[str]:
    """Outcomes of contact i's calls: 60% one call, 25% two, 15% three (redials after
    no-answer / busy); the last one is what the contact ended with."""
    r = i % 20
    if r < 12:
        return ["voicemail" if i % 9 == 0 else "completed"]
    if r < 17:
        return ["no-answer", "completed"]
    return ["busy", "no-answer", ("completed", "no-answer", "failed", "busy")[i % 4]]


def _two_calls(i: int) -> list[str]:
    return ["no-answer", "completed" if i % 5 else "voicemail"]


def _custom_data(i: int) -> str:
    return json.dumps({
        "customer_id": f"CUST-{i:08d}", "plan": PLANS[i % 3], "city": CITIES[i % len(CITIES)],
        "language": "hi" if i % 2 else "en", "balance_due": round(1000 + (i * 37) % 9000 + 0.5, 2),
        "due_date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "last_order": {"id": f"ORD-{i * 7:09d}", "amount": 499.0 + i % 500, "items": 1 + i % 5},
        "notes": "Prefers calls after 6 pm; asked about EMI options on the last call.",
    })


async def _seed_campaign(conn, tenant: str, campaign_id: str, name: str, n: int, calls_of,
                         start: datetime, span: timedelta) -> dict[str, Any]:
    from campaign_engine.ids import (
        campaign_workflow_id,
        contact_workflow_id,
        idempotency_key,
        new_object_id,
    )
    from campaign_engine.models import (
        CampaignConfig,
        CampaignProgress,
        CampaignStatus,
        RedialPolicy,
    )

    wf_id = campaign_workflow_id(tenant, campaign_id)
    contact_rows, attempt_rows = [], []
    by_disposition: dict[str, int] = {}
    outcome_counts: dict[str, int] = {}
    talk_total = 0.0
    last_end = start
    for i in range(n):
        outcomes = calls_of(i)
        talk = 0.0
        for a, outcome in enumerate(outcomes, start=1):
            # First calls spread over the first 70% of the span, each redial 15% later.
            placed = start + span * (0.7 * i / n + 0.15 * (a - 1))
            answered = outcome == "completed"
            duration = 30.0 + (i * 13 + a) % 150 if answered else (12.0 if outcome == "voicemail" else 0.0)
            ended = placed + timedelta(seconds=duration + (25 if outcome == "no-answer" else 3))
            last_end = max(last_end, ended)
            talk += duration if answered else 0.0
            call_id = f"SIM-{campaign_id}-{i}-{a}"
            attempt_rows.append((
                idempotency_key(contact_workflow_id(wf_id, i), a), tenant, campaign_id, i, a, "simulated",
                call_id, "+918000000001", placed, ended, outcome,
                "NORMAL_CLEARING" if answered else ("USER_BUSY" if outcome == "busy" else "NO_ANSWER"),
                None, duration, f"https://recordings.example.com/{call_id}.mp3" if answered else None,
                json.dumps(ANALYSIS) if answered else None,
            ))
            outcome_counts[outcome] = outcome_counts.get(outcome, 0) + 1
        final = outcomes[-1]
        by_disposition[final] = by_disposition.get(final, 0) + 1
        talk_total += talk
        contact_rows.append((
            tenant, campaign_id, i, f"+9198{i:08d}", f"Customer {i}", f"customer{i}@example.com", _custom_data(i),
            None, None, "done", final, len(outcomes), final, None, None, talk, last_end,
        ))
    runs = max(1, (n + 999) // 1000)
    config = CampaignConfig(
        campaign_id=campaign_id, object_id=new_object_id(start), tenant_id=tenant, name=name,
        agent_id="507f1f77bcf86cd799439012", is_context_based=True, created_at=start - timedelta(minutes=5),
        redial=RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[3600, 7200]), max_concurrent_calls=50,
    )
    calls = sum(outcome_counts.values())
    progress = CampaignProgress(
        campaign_id=campaign_id, name=name, status=CampaignStatus.COMPLETED, total_contacts=n, expected_contacts=n,
        duplicates_merged=0, by_state={"done": n}, by_disposition=by_disposition, outcome_counts=outcome_counts,
        calls_placed=calls, live_calls=0, redials_made=calls - n, pending_redials=0, next_redial_at=None,
        percentage=100.0, estimated_completion=last_end, started_at=start, finished_at=last_end, run=runs,
    )
    await conn.execute(
        "INSERT INTO campaigns (tenant_id, campaign_id, object_id, name, agent_id, status, config, progress,"
        " talk_seconds, total_contacts, received_contacts, duplicates_merged, created_at, launched_at, started_at,"
        " finished_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,0,$12,$13,$14,$15,$15)",
        tenant, campaign_id, config.object_id, name, config.agent_id, "completed",
        json.dumps(config.model_dump(mode="json")),
        json.dumps(progress.model_dump(mode="json", exclude={"contacts"})),
        talk_total, n, n, config.created_at, config.created_at, start, last_end,
    )
    await conn.copy_records_to_table("contacts", records=contact_rows, columns=[
        "tenant_id", "campaign_id", "key", "phone", "name", "email", "custom_data", "scheduled_at", "timezone",
        "state", "disposition", "attempts", "last_outcome", "next_call_at", "reason", "talk_seconds", "updated_at"])
    await conn.copy_records_to_table("attempts", records=attempt_rows, columns=[
        "idempotency_key", "tenant_id", "campaign_id", "contact_key", "attempt", "provider", "call_id",
        "from_number", "placed_at", "ended_at", "outcome", "hangup_cause", "reason", "duration_seconds",
        "recording_url", "analysis"])
    return {"campaign_id": campaign_id, "contacts": n, "attempts": len(attempt_rows)}


async def _seed_tenant(conn, tenant: str, campaigns: int, n: int, calls_of, now: datetime) -> list[dict]:
    """`campaigns` campaigns of n contacts, the newest calling today (midnight to now), each
    earlier one on the day before, 09:00-17:00 UTC."""
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    out = []
    for j in range(campaigns):
        days_ago = campaigns - 1 - j
        if days_ago == 0:
            start, span = midnight, max(now - midnight - timedelta(seconds=30), timedelta(seconds=10))
        else:
            start, span = midnight - timedelta(days=days_ago) + timedelta(hours=9), timedelta(hours=8)
        cid = f"CAMP-{start.year}-{tenant.upper().replace('-', '')[:8]}{j:02d}"
        out.append(await _seed_campaign(conn, tenant, cid, f"{tenant} campaign {j + 1}", n, calls_of, start, span))
    return out


async def seed(database_url: str, small: tuple[int, int], large: tuple[int, int], export_rows: int) -> dict:
    import asyncpg

    now = datetime.now(UTC)
    t = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            seeded = {
                SMALL: await _seed_tenant(conn, SMALL, small[0], small[1], _calls, now),
                LARGE: await _seed_tenant(conn, LARGE, large[0], large[1], _calls, now),
                EXPORT: await _seed_tenant(conn, EXPORT, 1, max(export_rows // 2, 1), _two_calls, now),
            }
        # The calls-per-day counters the dial activity keeps (repo.record_placed), for the seeded attempts.
        await conn.execute("INSERT INTO daily_calls (tenant_id, campaign_id, day, calls) "
                           "SELECT tenant_id, campaign_id, (placed_at AT TIME ZONE 'UTC')::date, count(*) "
                           "FROM attempts GROUP BY 1, 2, 3")
        for table in ("campaigns", "contacts", "attempts", "daily_calls"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        sizes = dict(await conn.fetch(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY($1)",
            ["campaigns", "contacts", "attempts"]))
    finally:
        await conn.close()
    seconds = time.perf_counter() - t
    contacts = sum(c["contacts"] for cs in seeded.values() for c in cs)
    attempts = sum(c["attempts"] for cs in seeded.values() for c in cs)
    log(f"reads: seeded {contacts} contacts and {attempts} attempts in {seconds:.1f}s")
    return {"tenants": seeded, "seed_s": seconds, "contacts": contacts, "attempts": attempts,
            "table_mb": {k: round(v / 2**20, 1) for k, v in sizes.items()}}


# --- measuring -------------------------------------------------------------------------------

async def measure(stack, small: tuple[int, int], large: tuple[int, int], export_rows: int,
                  requests: int, export_repeats: int, env: dict[str, str]) -> dict:
    import httpx

    seeded = await seed(stack.database_url, small, large, export_rows)
    api, base = await stack.start_api(env, "api-reads")
    targets = {  # (endpoint, tenant) -> path
        ("statuses", SMALL): "/getCampaignStatuses",
        ("statuses", LARGE): "/getCampaignStatuses",
        ("campaign", SMALL): f"/campaigns/{seeded['tenants'][SMALL][-1]['campaign_id']}",
        ("campaign", LARGE): f"/campaigns/{seeded['tenants'][LARGE][-1]['campaign_id']}",
    }
    expect_campaigns = {SMALL: small[0], LARGE: large[0]}
    ms: dict[tuple[str, str], list[float]] = {k: [] for k in targets}
    calls_today: dict[str, int] = {}
    warmup = 5
    cpu0 = proc_cpu(api.pid)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for i in range(warmup + requests):
            for (endpoint, tenant), path in targets.items():
                t = time.perf_counter()
                r = await http.get(path, headers={"x-api-key": KEYS[tenant]})
                elapsed = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                if i == 0:  # the answers are whole: every campaign, every contact counted
                    body = r.json()
                    if endpoint == "statuses":
                        got = body["summary"]["total_campaigns"]
                        if got != expect_campaigns[tenant]:
                            raise RuntimeError(f"reads: {tenant} has {got} campaigns, expected {expect_campaigns[tenant]}")
                        calls_today[tenant] = body["summary"]["total_calls_today"]
                    elif body["total_contacts"] != (small if tenant == SMALL else large)[1]:
                        raise RuntimeError(f"reads: {path} has {body['total_contacts']} contacts")
                if i >= warmup:
                    ms[(endpoint, tenant)].append(elapsed)
        api_cpu_ms = (proc_cpu(api.pid) - cpu0) * 1000 / ((warmup + requests) * len(targets))
        export_id = seeded["tenants"][EXPORT][0]["campaign_id"]
        exports = [await _export(http, export_id) for _ in range(export_repeats)]
    rss = vm_hwm_mb(api.pid)
    api.stop()
    out: dict[str, Any] = {
        "small": f"{small[0]}x{small[1]}", "large": f"{large[0]}x{large[1]}", "requests": requests,
        "seed": {k: v for k, v in seeded.items() if k != "tenants"}, "calls_today": calls_today,
        "api_cpu_ms_per_request": api_cpu_ms, "api_peak_rss_mb": rss,
    }
    for (endpoint, tenant), values in ms.items():
        size = "small" if tenant == SMALL else "large"
        out[f"{endpoint}_{size}_p50_ms"] = pct(values, 50)
        out[f"{endpoint}_{size}_p95_ms"] = pct(values, 95)
    for endpoint in ("statuses", "campaign"):
        out[f"{endpoint}_ratio"] = out[f"{endpoint}_large_p50_ms"] / out[f"{endpoint}_small_p50_ms"]
    best = max(exports, key=lambda e: e["rows_per_s"])
    out["export"] = {"attempt_rows": seeded["tenants"][EXPORT][0]["attempts"], "runs": exports,
                     "rows": best["rows"], "rows_per_s": statistics.median(e["rows_per_s"] for e in exports),
                     "best_rows_per_s": best["rows_per_s"], "first_byte_ms": best["first_byte_ms"],
                     "mb": best["bytes"] / 2**20}
    if any(e["rows"] != out["export"]["attempt_rows"] for e in exports):
        raise RuntimeError(f"reads: the export has {[e['rows'] for e in exports]} rows, "
                           f"expected {out['export']['attempt_rows']}")
    log(f"reads: statuses p50 {out['statuses_small_p50_ms']:.1f} -> {out['statuses_large_p50_ms']:.1f} ms "
        f"({out['statuses_ratio']:.2f}), campaign p50 {out['campaign_small_p50_ms']:.1f} -> "
        f"{out['campaign_large_p50_ms']:.1f} ms ({out['campaign_ratio']:.2f}); export "
        f"{out['export']['rows_per_s']:.0f} rows/s")
    return out


async def _export(http, campaign_id: str) -> dict:
    rows = size = 0
    first = None
    t = time.perf_counter()
    async with http.stream("GET", "/downloadCampaignStats", params={"campaign_id": campaign_id, "format": "csv"},
                           headers={"x-api-key": KEYS[EXPORT]}) as r:
        r.raise_for_status()
        async for chunk in r.aiter_bytes():
            if first is None:
                first = time.perf_counter() - t
            rows += chunk.count(b"\r\n")
            size += len(chunk)
    seconds = time.perf_counter() - t
    rows -= 1  # the header
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "bytes": size,
            "first_byte_ms": 1000 * (first or seconds)}


def report_lines(r: dict) -> list[str]:
    e = r["export"]
    runs = ", ".join(f"{x['rows_per_s']:.0f}" for x in e["runs"])
    return [
        "",
        (f"reads (store seeded: {r['seed']['contacts']} contacts, {r['seed']['attempts']} attempts in "
         f"{r['seed']['seed_s']:.0f}s; {r['requests']} requests each, alternated; API CPU "
         f"{r['api_cpu_ms_per_request']:.1f} ms/request):"),
        f"  {'':<26}{r['small'] + ' contacts':>22}{r['large'] + ' contacts':>24}{'ratio (p50)':>13}",
        (f"  {'GET /getCampaignStatuses':<26}{_pp(r, 'statuses_small'):>22}{_pp(r, 'statuses_large'):>24}"
         f"{r['statuses_ratio']:>13.2f}"),
        (f"  {'GET /campaigns/{id}':<26}{_pp(r, 'campaign_small'):>22}{_pp(r, 'campaign_large'):>24}"
         f"{r['campaign_ratio']:>13.2f}"),
        f"  total_calls_today counted: {r['calls_today']}",
        (f"  CSV export of {e['attempt_rows']} attempt rows ({e['mb']:.0f} MB, streamed): {e['rows_per_s']:.0f} rows/s "
         f"(runs: {runs}), first byte {e['first_byte_ms']:.0f} ms, API peak RSS {r['api_peak_rss_mb']:.0f} MB"),
    ]


def _pp(r: dict, key: str) -> str:
    return f"{r[key + '_p50_ms']:.1f} / {r[key + '_p95_ms']:.1f} ms"
