"""The rate limiter's statements (api.rate_limit): a sliding window counted in buckets
(campaign_engine.rate_limits), rows of `rate_limit_windows` (one per key, route class, window
length and bucket; `window_start` is the bucket's start).

Each counted request is one transaction: an advisory lock on (key, class, window length), so
that concurrent requests of one key through any number of API processes are decided one after
the other; the key's buckets of the last window read; the decision (pure); and, if admitted,
one upsert of the request's bucket. It commits without waiting for its WAL to reach the disk
(a counter lost in a crash costs nothing).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from campaign_engine.rate_limits import Decision, Rate, bucket_start, decide, horizon

_LOCK = text("SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(:lock)")
# A statement of its own after the lock: READ COMMITTED takes its snapshot when the statement
# starts, so it sees every count committed before the lock was granted. Time is the database's
# (statement_timestamp()), so API processes whose clocks differ share one window.
_BUCKETS = text("""
    SELECT extract(epoch FROM statement_timestamp())::float8,
           coalesce(array_agg(extract(epoch FROM window_start)::float8), '{}'),
           coalesce(array_agg(n), '{}')
    FROM rate_limit_windows
    WHERE key_hash = :key_hash AND route_class = :route_class AND window_seconds = :window_seconds
      AND window_start > statement_timestamp() - make_interval(secs => :horizon)
""")
_COUNT = text("""
    INSERT INTO rate_limit_windows AS w (key_hash, route_class, window_seconds, window_start, n)
    VALUES (:key_hash, :route_class, :window_seconds, to_timestamp(:start), 1)
    ON CONFLICT (key_hash, route_class, window_seconds, window_start) DO UPDATE SET n = w.n + 1
""")
# Buckets no window can count any more (campaign_engine.rate_limits.horizon).
_SWEEP = text("""
    DELETE FROM rate_limit_windows
    WHERE window_start < statement_timestamp() - make_interval(secs => window_seconds * 61.0 / 60 + 1)
""")


def lock_id(key_hash: bytes, route_class: str, window_seconds: int) -> int:
    """A signed 64-bit advisory-lock id for one key's counter (a collision only serializes two
    keys' counting, it mixes no counts)."""
    digest = hashlib.sha256(key_hash + route_class.encode() + window_seconds.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def count_request(db: AsyncEngine, key_hash: bytes, route_class: str, rate: Rate, *,
                        sweep: bool = False) -> Decision:
    """Decide one request of this key and class, and count it if it is admitted. With `sweep`,
    buckets that no window counts any more are deleted."""
    params = {"key_hash": key_hash, "route_class": route_class, "window_seconds": rate.window_seconds}
    async with db.begin() as conn:
        await conn.execute(_LOCK, {"lock": lock_id(key_hash, route_class, rate.window_seconds)})
        now, starts, counts = (await conn.execute(_BUCKETS, {**params, "horizon": horizon(rate)})).one()
        decision = decide(rate, zip(starts, counts, strict=True), float(now))
        if decision.allowed:
            await conn.execute(_COUNT, {**params, "start": bucket_start(float(now), rate)})
        if sweep:
            await conn.execute(_SWEEP)
    return decision
