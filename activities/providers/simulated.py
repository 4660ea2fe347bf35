"""The simulated carrier: the embedded default, and the far side of the network in tests.

It behaves like a real carrier: placing a call answers at once with a call id; the outcome
comes later (after the ring and talk time) through a callback, here a signal to the contact
workflow. Its own record of calls is a SQLite file shared by every worker on the machine,
so it survives a worker crash: a given call id always has the same outcome and duration
(derived from the id), its status can be fetched again at any time, and one idempotency
key never becomes two calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from campaign_engine.models import CallOutcome, CallProgress, CallRequest, Outcome, PlacedCall
from campaign_engine.private_files import private_dir, private_file
from campaign_engine.simulated_settings import parse_outcome_mix, parse_seconds_range

HANGUP_CAUSES = {
    Outcome.COMPLETED: "NORMAL_CLEARING",
    Outcome.VOICEMAIL: "NORMAL_CLEARING",
    Outcome.BUSY: "USER_BUSY",
    Outcome.NO_ANSWER: "NO_ANSWER",
    Outcome.FAILED: "NETWORK_ERROR",
    Outcome.CANCELED: "ORIGINATOR_CANCEL",
}

OutcomeSink = Callable[[str, CallOutcome], Awaitable[None]]


@dataclass(frozen=True)
class SimulatedCall:
    call_id: str
    outcome: Outcome
    ring_seconds: float
    talk_seconds: float
    placed_at: datetime

    @property
    def ends_at(self) -> datetime:
        return self.placed_at + timedelta(seconds=self.ring_seconds + self.talk_seconds)

    def final(self, attempt: int) -> CallOutcome:
        return CallOutcome(
            call_id=self.call_id,
            attempt=attempt,
            outcome=self.outcome,
            duration_seconds=self.talk_seconds,
            hangup_cause=HANGUP_CAUSES[self.outcome],
            answered_by="machine_end_beep" if self.outcome == Outcome.VOICEMAIL else (
                "human" if self.outcome == Outcome.COMPLETED else None),
            recording_url=(f"https://recordings.invalid/{self.call_id}.mp3"
                           if self.outcome == Outcome.COMPLETED else None),
            ended_at=self.ends_at,
        )


class CarrierLedger:
    """The simulated carrier's own record: every call placed, every request received."""

    def __init__(self, path: Path) -> None:
        if not path.parent.exists():  # an existing directory is the operator's to set
            private_dir(path.parent)
        private_file(path)  # every number the engine dialled: owner only (SQLite gives its WAL the same mode)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS calls (
                idempotency_key TEXT PRIMARY KEY,
                call_id TEXT UNIQUE NOT NULL,
                contact_workflow_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                campaign_id TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                to_number TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                variables TEXT NOT NULL,
                outcome TEXT NOT NULL,
                ring_seconds REAL NOT NULL,
                talk_seconds REAL NOT NULL,
                placed_at TEXT NOT NULL,
                requested_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS requests (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                idempotency_key TEXT NOT NULL,
                received_at TEXT NOT NULL
            );
            """
        )

    def record(self, request: CallRequest, call: SimulatedCall) -> tuple[SimulatedCall, bool]:
        """Insert the call unless its key exists. Returns the stored call and whether it was new."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO requests (idempotency_key, received_at) VALUES (?, ?)",
                    (request.idempotency_key, call.placed_at.isoformat()),
                )
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        request.idempotency_key, call.call_id, request.contact_workflow_id,
                        request.attempt, request.campaign_id, request.tenant_id, request.to,
                        request.agent_id, json.dumps(request.variables, default=str),
                        call.outcome.value, call.ring_seconds, call.talk_seconds,
                        call.placed_at.isoformat(), request.attempt_started_at.isoformat(),
                    ),
                )
                created = cur.rowcount == 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        stored = self.get_by_key(request.idempotency_key)
        assert stored is not None
        return stored, created

    def _row_to_call(self, row) -> SimulatedCall:
        return SimulatedCall(row[0], Outcome(row[1]), row[2], row[3], datetime.fromisoformat(row[4]))

    def get_by_key(self, key: str) -> SimulatedCall | None:
        with self._lock:
            row = self._db.execute(
                "SELECT call_id, outcome, ring_seconds, talk_seconds, placed_at FROM calls"
                " WHERE idempotency_key = ?", (key,)).fetchone()
        return self._row_to_call(row) if row else None

    def get(self, call_id: str) -> SimulatedCall | None:
        with self._lock:
            row = self._db.execute(
                "SELECT call_id, outcome, ring_seconds, talk_seconds, placed_at FROM calls"
                " WHERE call_id = ?", (call_id,)).fetchone()
        return self._row_to_call(row) if row else None

    def calls(self, campaign_id: str | None = None) -> list[dict]:
        """Every call placed (for tests and operators), oldest first."""
        sql = ("SELECT call_id, idempotency_key, contact_workflow_id, attempt, campaign_id, tenant_id,"
               " to_number, agent_id, variables, outcome, ring_seconds, talk_seconds, placed_at, requested_at"
               " FROM calls")
        args: tuple = ()
        if campaign_id is not None:
            sql += " WHERE campaign_id = ?"
            args = (campaign_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY placed_at", args).fetchall()
        names = ["call_id", "idempotency_key", "contact_workflow_id", "attempt", "campaign_id", "tenant_id",
                 "to", "agent_id", "variables", "outcome", "ring_seconds", "talk_seconds", "placed_at",
                 "requested_at"]  # requested_at: when the engine decided to dial (workflow time)
        out = [dict(zip(names, r, strict=True)) for r in rows]
        for row in out:
            row["variables"] = json.loads(row["variables"])
        return out

    def request_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SimulatedCarrier:
    """TelephonyProvider for the simulated carrier."""

    name = "simulated"

    def __init__(
        self,
        ledger: CarrierLedger,
        outcome_mix: str,
        ring_seconds: str,
        talk_seconds: str,
        seed: str = "campaign-engine",
        deliver: OutcomeSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.mix = parse_outcome_mix(outcome_mix)
        self.ring = parse_seconds_range(ring_seconds)
        self.talk = parse_seconds_range(talk_seconds)
        self.seed = seed
        self._deliver = deliver
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()

    def _fraction(self, call_id: str, salt: str) -> float:
        digest = hashlib.sha256(f"{self.seed}|{call_id}|{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _draw(self, call_id: str, placed_at: datetime) -> SimulatedCall:
        r = self._fraction(call_id, "outcome")
        outcome = self.mix[-1][0]
        acc = 0.0
        for candidate, weight in self.mix:
            acc += weight
            if r < acc:
                outcome = candidate
                break
        ring = self.ring[0] + (self.ring[1] - self.ring[0]) * self._fraction(call_id, "ring")
        talk = 0.0
        if outcome in (Outcome.COMPLETED, Outcome.VOICEMAIL):
            talk = self.talk[0] + (self.talk[1] - self.talk[0]) * self._fraction(call_id, "talk")
            if outcome == Outcome.VOICEMAIL:
                talk = min(talk, 30.0)
        elif outcome in (Outcome.BUSY, Outcome.FAILED):
            ring = min(ring, 2.0)
        return SimulatedCall(call_id, outcome, round(ring, 3), round(talk, 3), placed_at)

    def call_id_for(self, idempotency_key: str) -> str:
        return "SIM" + hashlib.sha256(f"{self.seed}|{idempotency_key}".encode()).hexdigest()[:29]

    async def place_call(self, request: CallRequest) -> PlacedCall:
        call_id = self.call_id_for(request.idempotency_key)
        drawn = self._draw(call_id, self._clock())
        call, created = await asyncio.to_thread(self.ledger.record, request, drawn)
        wait = call.ring_seconds + call.talk_seconds
        if wait <= 0:
            # Over before we could answer: the outcome travels with the answer.
            return PlacedCall(call_id=call.call_id, provider=self.name, adopted=not created,
                              outcome=call.final(request.attempt), poll_after_seconds=0)
        if self._deliver is not None:
            remaining = (call.ends_at - self._clock()).total_seconds()
            task = asyncio.create_task(self._callback_later(request, call, remaining))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return PlacedCall(
            call_id=call.call_id, provider=self.name, adopted=not created,
            # If the callback is lost (a worker crash), ask a little after the call ended.
            poll_after_seconds=max(wait, 0) + 5.0,
        )

    async def _callback_later(self, request: CallRequest, call: SimulatedCall, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        assert self._deliver is not None
        try:
            await self._deliver(request.contact_workflow_id, call.final(request.attempt))
        except Exception:  # the workflow moved on or is gone; polling covers the rest
            pass

    async def fetch_call_status(self, call_id: str, request: CallRequest) -> CallOutcome:
        call = await asyncio.to_thread(self.ledger.get, call_id)
        if call is None:
            return CallOutcome(call_id=call_id, attempt=request.attempt, outcome=Outcome.FAILED,
                               hangup_cause="NETWORK_ERROR", reason="the carrier has no such call")
        now = self._clock()
        if now >= call.ends_at:
            return call.final(request.attempt)
        ringing = now < call.placed_at + timedelta(seconds=call.ring_seconds)
        return CallOutcome(call_id=call_id, attempt=request.attempt,
                           progress=CallProgress.RINGING if ringing else CallProgress.IN_PROGRESS)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
