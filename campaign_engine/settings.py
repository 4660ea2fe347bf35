"""Every setting of the engine, read from environment variables in one place.

The API, the worker and the `campaign-engine` command all read these; the README lists them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from campaign_engine import api_keys
from campaign_engine.policy.tenant_policies import TenantPolicy, parse_tenant_policies, widenings

# The telephony providers a deployment can select (activities.providers.registry).
PROVIDERS = ("simulated", "twilio", "http")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    # --- Temporal ---------------------------------------------------------------------------
    # Empty means "embedded": `campaign-engine up` starts a dev server; worker and API
    # then use 127.0.0.1:TEMPORAL_PORT.
    temporal_address: str = Field("", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_task_queue: str = Field("campaign-engine", validation_alias="TEMPORAL_TASK_QUEUE")
    temporal_port: int = Field(7233, ge=1, le=65535, validation_alias="TEMPORAL_PORT")
    temporal_ui_port: int = Field(8233, ge=1, le=65535, validation_alias="TEMPORAL_UI_PORT")

    # --- API --------------------------------------------------------------------------------
    # Comma-separated keys. `tenant:key` gives the key its tenant; a bare `key` belongs to
    # the tenant "default". Empty means no key is accepted (every call gets 401).
    campaign_api_keys: SecretStr = Field(SecretStr(""), validation_alias="CAMPAIGN_API_KEYS")
    api_host: str = Field("127.0.0.1", validation_alias="API_HOST")
    api_port: int = Field(8000, ge=1, le=65535, validation_alias="API_PORT")
    # Public base URL at which providers reach our callbacks (Twilio signs this URL).
    public_base_url: str = Field("", validation_alias="PUBLIC_BASE_URL")
    # Largest request body (api.edge), refused with 413 as soon as it is passed. The largest
    # valid upload, 1,000 contacts each with the full 16 KiB of custom_data, names, emails,
    # schedules and zones, measures 16.1 MiB as json.dumps writes it: 24 MiB leaves room for
    # clients that escape non-ASCII text (\u00e9 is 6 bytes for 2) or indent their JSON.
    max_body_bytes: int = Field(24 * 1024 * 1024, ge=1024, validation_alias="MAX_BODY_BYTES")
    # A request's whole body must arrive within this many seconds of its start, else 408
    # (uvicorn's timeouts cover idle connections, not a body that trickles in).
    body_read_timeout_seconds: float = Field(120.0, gt=0, validation_alias="BODY_READ_TIMEOUT_SECONDS")
    # A CSV or Excel upload (api.csv_upload) is limited by its rows, not by MAX_BODY_BYTES: it is
    # spooled to a temporary file and written to the store a page at a time. MAX_UPLOAD_BYTES
    # bounds the spool on disk.
    max_upload_rows: int = Field(1_000_000, ge=1, validation_alias="MAX_UPLOAD_ROWS")
    max_upload_bytes: int = Field(1024 * 1024 * 1024, ge=1024, validation_alias="MAX_UPLOAD_BYTES")
    # Metrics (campaign_engine/metrics.py): the API's GET /metrics takes `Authorization: Bearer
    # $METRICS_TOKEN` (every tenant's figures) or a tenant's x-api-key (its own); each worker
    # serves its own and the Temporal SDK's on METRICS_HOST:METRICS_PORT when the port is set.
    metrics_token: SecretStr = Field(SecretStr(""), validation_alias="METRICS_TOKEN")
    metrics_port: int | None = Field(None, ge=1, le=65535, validation_alias="METRICS_PORT")
    metrics_host: str = Field("127.0.0.1", validation_alias="METRICS_HOST")
    # OpenTelemetry traces through the API's Temporal client, workflows and activities
    # (temporalio.contrib.opentelemetry) only when this is set: off and free otherwise.
    otel_exporter_otlp_endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    # Requests per API key and route class (api.rate_limit), counted in the store so every API
    # process shares them: "N/second|minute|hour|day", also "N/5 minutes" or "N per hour".
    # Uploads: the upload bodies and the preflight; control: start, pause, resume, cancel,
    # append, remove a contact, update the redial configuration; reads: every GET of a
    # campaign, its contacts, statuses, stats and exports. Callbacks and health are exempt.
    rate_limit_enabled: bool = Field(True, validation_alias="RATE_LIMIT_ENABLED")
    rate_limit_uploads: str = Field("60/minute", validation_alias="RATE_LIMIT_UPLOADS")
    rate_limit_control: str = Field("300/minute", validation_alias="RATE_LIMIT_CONTROL")
    rate_limit_reads: str = Field("600/minute", validation_alias="RATE_LIMIT_READS")

    # --- The store (PostgreSQL): campaigns, contacts and every call attempt -----------------
    # Empty: `campaign-engine up` starts an embedded PostgreSQL in $CAMPAIGN_DATA_DIR/postgres.
    database_url: SecretStr = Field(SecretStr(""), validation_alias="DATABASE_URL")

    # --- Where the embedded stack keeps its files -------------------------------------------
    data_dir: Path = Field(Path(".data"), validation_alias="CAMPAIGN_DATA_DIR")

    # --- Telephony --------------------------------------------------------------------------
    telephony_provider: str = Field("simulated", validation_alias="TELEPHONY_PROVIDER")
    # Legal calling hours (issue 14, campaign_engine/policy/legal_hours.py): `auto` applies
    # them to campaigns on a real provider (twilio, http), `on` to every campaign, `off` to
    # none (each campaign created so is written to the audit trail).
    legal_hours: Literal["auto", "on", "off"] = Field("auto", validation_alias="LEGAL_HOURS")
    # At most N calls to one number in a rolling window across the tenant's campaigns, e.g.
    # "3/24h" (campaign_engine/policy/frequency_cap.py); empty: none.
    frequency_cap: str = Field("", validation_alias="FREQUENCY_CAP")
    # Per-tenant overrides of FREQUENCY_CAP and LEGAL_HOURS (campaign_engine/policy/tenant_policies.py):
    # {"tenant": {"frequency_cap": "5/24h" or "", "legal_hours": "auto|on|off"}}; a widening is audited.
    tenant_policies: str = Field("", validation_alias="TENANT_POLICIES")
    # Every uploaded or appended contact must carry `consent` (issue 14): an upload with a contact
    # without it is refused (422 CONSENT_REQUIRED, nothing written).
    consent_required: bool = Field(False, validation_alias="CONSENT_REQUIRED")
    # Expected length of a call, used by the ETA until real calls have been observed.
    expected_call_seconds: float = Field(90.0, validation_alias="EXPECTED_CALL_SECONDS")
    # How long the contact workflow waits for the provider's callback before it asks the
    # provider for the call's status itself (the provider may suggest a shorter wait).
    call_outcome_timeout_seconds: float = Field(900.0, validation_alias="CALL_OUTCOME_TIMEOUT_SECONDS")
    # A call still not final this long after it was placed is recorded as failed.
    call_max_seconds: float = Field(4 * 3600.0, validation_alias="CALL_MAX_SECONDS")

    # Simulated carrier (the embedded default).
    simulated_outcomes: str = Field(
        "completed=0.6,no-answer=0.2,busy=0.1,failed=0.05,voicemail=0.05",
        validation_alias="SIMULATED_OUTCOMES",
    )
    simulated_ring_seconds: str = Field("2-8", validation_alias="SIMULATED_RING_SECONDS")
    simulated_talk_seconds: str = Field("20-120", validation_alias="SIMULATED_TALK_SECONDS")
    # SQLite file that is the simulated carrier's own record of every call it placed.
    simulated_carrier_db: Path | None = Field(None, validation_alias="SIMULATED_CARRIER_DB")
    simulated_seed: str = Field("campaign-engine", validation_alias="SIMULATED_SEED")

    # Calls per second across every campaign and worker on one carrier account (Twilio's
    # default is 1). Enforced by Temporal's task-queue rate limit on the dial task queue, which
    # allows a burst of one second's worth (cap + 1 calls at once after an idle spell). Set the
    # same value on the API and every worker: only workers with it poll the dial queue, so a
    # campaign started under the cap needs one until it ends. The server divides the rate among
    # the queue's partitions (4 by default, each limited on its own: bursts of up to 4 at once),
    # so a strict cap wants matching.numTaskqueueRead/WritePartitions=1 for the dial queue.
    carrier_calls_per_second: float | None = Field(None, validation_alias="CARRIER_CALLS_PER_SECOND")

    # --- Worker tuning ----------------------------------------------------------------------
    worker_max_concurrent_activities: int = Field(200, validation_alias="WORKER_MAX_CONCURRENT_ACTIVITIES")
    worker_max_concurrent_workflow_tasks: int = Field(100, validation_alias="WORKER_MAX_CONCURRENT_WORKFLOW_TASKS")

    @property
    def resolved_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def resolved_simulated_carrier_db(self) -> Path:
        return self.simulated_carrier_db or (self.data_dir / "simulated-carrier.sqlite3")

    def legal_hours_apply(self, provider: str, tenant_id: str | None = None) -> bool:
        """Whether a campaign on `provider` calls only inside legal hours
        (campaign_engine/policy/legal_hours.py): real providers unless LEGAL_HOURS=off, the
        simulated carrier only with LEGAL_HOURS=on; the tenant's override instead, if any."""
        mode = self.legal_hours_for(tenant_id)
        if mode == "off":
            return False
        return mode == "on" or provider != "simulated"

    def tenant_policy(self, tenant_id: str | None) -> TenantPolicy | None:
        """The tenant's overrides (TENANT_POLICIES), if it has any."""
        return _policies(self.tenant_policies).get(tenant_id) if tenant_id is not None else None

    def legal_hours_for(self, tenant_id: str | None) -> str:
        """LEGAL_HOURS, or the tenant's override of it."""
        policy = self.tenant_policy(tenant_id)
        return policy.legal_hours if policy is not None and policy.legal_hours is not None else self.legal_hours

    def frequency_cap_for(self, tenant_id: str | None) -> str:
        """FREQUENCY_CAP, or the tenant's override of it ("" for none)."""
        policy = self.tenant_policy(tenant_id)
        return policy.frequency_cap if policy is not None and policy.frequency_cap is not None else self.frequency_cap

    def widenings(self, tenant_id: str) -> list[dict]:
        """How the tenant's overrides widen the deployment's rules (audited per campaign)."""
        return widenings(self.tenant_policy(tenant_id), frequency_cap=self.frequency_cap,
                         legal_hours=self.legal_hours)

    def dial_task_queue(self, provider: str) -> str:
        """Task queue of the place_call activity for one provider (carrier account)."""
        return f"{self.temporal_task_queue}-dial-{provider}"

    def api_keys(self) -> dict[str, str]:
        """Map of API key -> tenant id (the keys given in plain; see api_key_digests)."""
        return api_keys.parse(self.campaign_api_keys.get_secret_value())[1]

    def api_key_digests(self) -> dict[bytes, str]:
        """Map of SHA-256 of every API key (plain or given hashed) -> tenant id."""
        return api_keys.parse(self.campaign_api_keys.get_secret_value())[0]

    # --- configuration errors: each names its variable (campaign_engine.config_errors) -----

    @field_validator("campaign_api_keys")
    @classmethod
    def _api_keys(cls, value: SecretStr) -> SecretStr:
        api_keys.parse(value.get_secret_value())
        return value

    @field_validator("frequency_cap")
    @classmethod
    def _frequency_cap(cls, value: str) -> str:
        from campaign_engine.policy.frequency_cap import parse_cap

        if value.strip():
            parse_cap(value)
        return value.strip()

    @field_validator("tenant_policies")
    @classmethod
    def _tenant_policies(cls, value: str) -> str:
        _policies(value)
        return value

    @field_validator("simulated_outcomes")
    @classmethod
    def _outcomes(cls, value: str) -> str:
        from campaign_engine.simulated_settings import parse_outcome_mix

        parse_outcome_mix(value)
        return value

    @field_validator("simulated_ring_seconds", "simulated_talk_seconds")
    @classmethod
    def _seconds(cls, value: str) -> str:
        from campaign_engine.simulated_settings import parse_seconds_range

        parse_seconds_range(value)
        return value

    @field_validator("rate_limit_uploads", "rate_limit_control", "rate_limit_reads")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from campaign_engine.rate_limits import parse_rate

        parse_rate(value)
        return value

    @field_validator("telephony_provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in PROVIDERS:
            raise ValueError(f"{value[:40]!r} is not one of {', '.join(PROVIDERS)}")
        return value


@lru_cache(maxsize=8)
def _policies(text: str) -> dict[str, TenantPolicy]:
    return parse_tenant_policies(text)


@lru_cache
def get_settings() -> Settings:
    return Settings()
