"""The store's tables (SQLAlchemy Core). Changes go through an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# One row per campaign. `progress` is the campaign workflow's own progress document (counts by
# state and disposition, calls placed, ETA), flushed by the workflow as it changes, so a read
# costs one row however many contacts the campaign has.
campaigns = Table(
    "campaigns",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("object_id", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("agent_id", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("config", JSONB, nullable=False),
    Column("progress", JSONB),
    Column("talk_seconds", Float, nullable=False, server_default="0"),
    # The number of the campaign workflow's last flush written (activities/records.py).
    Column("flushed", Integer, nullable=False, server_default="0"),
    Column("total_contacts", Integer, nullable=False, server_default="0"),
    Column("received_contacts", Integer, nullable=False, server_default="0"),
    Column("duplicates_merged", Integer, nullable=False, server_default="0"),
    Column("idempotency_key", Text),
    Column("fingerprint", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # When Temporal durably had the campaign's workflow: a row without it was committed by a
    # request that broke off before the start, and is shown nowhere until a retry starts it.
    Column("launched_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant_id", "campaign_id"),
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_campaigns_idempotency_key"),
)
Index("ix_campaigns_tenant_created", campaigns.c.tenant_id, campaigns.c.created_at)

# One row per contact of a campaign; `key` is its position (the workflow ids use it).
contacts = Table(
    "contacts",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("key", Integer, nullable=False),
    Column("phone", String(32), nullable=False),
    Column("name", Text),
    Column("email", Text),
    Column("custom_data", JSONB, nullable=False, server_default="{}"),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("timezone", Text),
    # The IANA zones its calling window applies in (resolved at upload).
    Column("zones", JSONB, nullable=False, server_default="[]"),
    # The contact's consent (models.Consent: source, obtained_at, text and/or reference), or NULL.
    Column("consent", JSONB(none_as_null=True)),
    Column("state", String(16), nullable=False),
    Column("disposition", String(16)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_outcome", String(16)),
    Column("next_call_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("talk_seconds", Float, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant_id", "campaign_id", "key"),
    UniqueConstraint("tenant_id", "campaign_id", "phone", name="uq_contacts_phone"),
)
Index("ix_contacts_state", contacts.c.tenant_id, contacts.c.campaign_id, contacts.c.state, contacts.c.key)
# One number's contacts across the tenant's campaigns (the frequency cap counts their attempts).
Index("ix_contacts_tenant_phone", contacts.c.tenant_id, contacts.c.phone)

# One row per append made under an Idempotency-Key (its SHA-256): a retry finds what the first
# request added and answers the same; the same key with another body is refused.
appends = Table(
    "appends",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("first_key", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "campaign_id", "key_hash"),
)

# One row per call attempt, keyed by the attempt's idempotency key
# ("{contact workflow id}/attempt-{n}"): written when the call is placed, completed when its
# outcome is known. Every write is an upsert, so a retried activity or a replay adds nothing.
attempts = Table(
    "attempts",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("contact_key", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("provider", String(32)),
    Column("call_id", Text),
    Column("from_number", String(32)),
    Column("placed_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("outcome", String(16)),
    Column("hangup_cause", Text),
    Column("reason", Text),
    Column("duration_seconds", Float),
    Column("recording_url", Text),
    Column("analysis", JSONB),
)
Index("ix_attempts_contact", attempts.c.tenant_id, attempts.c.campaign_id, attempts.c.contact_key, attempts.c.attempt)
Index("ix_attempts_tenant_placed", attempts.c.tenant_id, attempts.c.placed_at)

# Calls placed per campaign and UTC day, counted when an attempt's row is first written: a
# tenant's calls today are one row per campaign, however many calls there were.
daily_calls = Table(
    "daily_calls",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("calls", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "day", "campaign_id"),
)

# API rate limits (api.rate_limit): a sliding window per API key (its SHA-256, never the key)
# and route class, counted in buckets of 1/60 of the window (`window_start` is the bucket's
# start), shared by every API process; buckets that have left the window are deleted now and then.
rate_limit_windows = Table(
    "rate_limit_windows",
    metadata,
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("route_class", String(32), nullable=False),
    # The window's length is part of the key: a limit changed from per-minute to per-hour while
    # processes with both settings run never adds one window's count to the other's.
    Column("window_seconds", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("n", Integer, nullable=False),
    PrimaryKeyConstraint("key_hash", "route_class", "window_seconds", "window_start"),
)
Index("ix_rate_limit_windows_start", rate_limit_windows.c.window_start)

# The tenant's do-not-call list (issue 14): one row per number. `source` is where it came from
# (api, opt_out, import) and `source_ref` which call or request (an opt-out: the call's
# idempotency key). Checked by the dial activity right before every call.
suppressions = Table(
    "suppressions",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("reason", Text),
    Column("source", String(16), nullable=False),
    Column("source_ref", Text),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "phone"),
)

# The audit trail (issue 14): who (tenant, API key id: a prefix of the key's SHA-256, never the
# key) did what to which object and when. Append-only; `seq` orders it and pages it.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key_id", String(32)),
    Column("action", String(48), nullable=False),
    Column("campaign_id", String(64)),
    Column("subject", Text),
    Column("details", JSONB),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_audit_events_tenant_seq", audit_events.c.tenant_id, audit_events.c.seq)
