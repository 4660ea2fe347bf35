"""Settings of the customer webhooks, read from environment variables.

``WEBHOOK_SECRETS`` holds each tenant's signing secret: ``tenant:secret,tenant2:secret2``. A bare
``secret`` (or ``*:secret``) signs for every tenant without an entry of its own. A tenant with
no secret gets no webhooks: a delivery is never sent unsigned (it fails, visibly, in the
contact's history, and the campaign carries on). Secrets never reach a log or a repr.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from campaign_engine.policy.outbound_urls import OutboundPolicy, parse_networks

FALLBACK_TENANT = "*"


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    secrets: SecretStr = Field(SecretStr(""), validation_alias="WEBHOOK_SECRETS")
    # One delivery's HTTP timeout; the activity's own timeout is longer.
    timeout_seconds: float = Field(10.0, validation_alias="WEBHOOK_TIMEOUT_SECONDS")
    user_agent: str = Field("campaign-engine-webhooks/1", validation_alias="WEBHOOK_USER_AGENT")
    # Where webhooks may go (campaign_engine.policy.outbound_urls): https to public addresses,
    # plus plain http when allowed, plus these networks (CIDRs) for self-hosted receivers.
    allow_http: bool = Field(False, validation_alias="WEBHOOK_ALLOW_HTTP")
    allowed_networks: str = Field("", validation_alias="WEBHOOK_ALLOWED_NETWORKS")

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # ValueError naming the bad entry
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: SecretStr) -> SecretStr:
        for item in value.get_secret_value().split(","):
            item = item.strip()
            if not item:
                continue
            tenant, sep, secret = item.partition(":")
            if sep and (not tenant.strip() or not secret.strip().strip(":")):
                raise ValueError("each entry must be tenant:secret or a bare secret; "
                                 f"an entry has an empty {'tenant' if not tenant.strip() else 'secret'}")
        return value

    def url_policy(self) -> OutboundPolicy:
        return OutboundPolicy.from_settings(self.allow_http, self.allowed_networks)

    def _table(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for item in self.secrets.get_secret_value().split(","):
            item = item.strip()
            if not item:
                continue
            tenant, sep, secret = item.partition(":")
            if not sep:
                tenant, secret = FALLBACK_TENANT, item
            if tenant.strip() and secret.strip():
                table[tenant.strip()] = secret.strip()
        return table

    def secret_for(self, tenant_id: str) -> str | None:
        """The tenant's signing secret, else the fallback one, else None."""
        table = self._table()
        return table.get(tenant_id) or table.get(FALLBACK_TENANT)

    def tenants(self) -> list[str]:
        """Tenants with a secret of their own (names only, for diagnostics)."""
        return sorted(t for t in self._table() if t != FALLBACK_TENANT)
