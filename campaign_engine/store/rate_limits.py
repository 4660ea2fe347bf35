"""The rate limiter's statements (api.rate_limit): one upsert per counted request."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# The window is computed from the database's clock, so API processes whose clocks differ still
# share one window; statement_timestamp() also comes back so the answer's Reset and Retry-After
# are measured on that clock.
_COUNT = text("""
    INSERT INTO rate_limit_windows AS w (key_hash, route_class, window_seconds, window_start, n)
    SELECT :key_hash, :route_class, s.seconds,
           to_timestamp(floor(extract(epoch FROM statement_timestamp()) / s.seconds) * s.seconds), 1
    FROM (SELECT CAST(:window_seconds AS integer) AS seconds) AS s
    ON CONFLICT (key_hash, route_class, window_seconds, window_start) DO UPDATE SET n = w.n + 1
    RETURNING n, extract(epoch FROM window_start)::float8, extract(epoch FROM statement_timestamp())::float8
""")
_SWEEP = text("""
    DELETE FROM rate_limit_windows
    WHERE window_start < statement_timestamp() - make_interval(secs => window_seconds)
""")


async def count_request(db: AsyncEngine, key_hash: bytes, route_class: str, window_seconds: int, *,
                        sweep: bool = False) -> tuple[int, float, float]:
    """Count one request; returns (its number in the window, the window's start, now), both in
    unix seconds. The transaction commits without waiting for its WAL to reach the disk (a
    counter lost in a crash costs nothing). With `sweep`, windows that have ended are deleted."""
    async with db.begin() as conn:
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        n, start, now = (await conn.execute(_COUNT, {"key_hash": key_hash, "route_class": route_class,
                                                     "window_seconds": window_seconds})).one()
        if sweep:
            await conn.execute(_SWEEP)
    return int(n), float(start), float(now)
