"""Settings of the customer webhooks, read from environment variables.

``WEBHOOK_SECRETS`` holds each tenant's signing secret: ``tenant:secret,tenant2:secret2``. A bare
``secret`` (or ``*:secret``) signs for every tenant without an entry of its own. A tenant with
no secret gets no webhooks: a delivery is never sent unsigned (it fails, visibly, in the
contact's history, and the campaign carries on). Secrets never reach a log or a repr.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

FALLBACK_TENANT = "*"


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    secrets: SecretStr = Field(SecretStr(""), validation_alias="WEBHOOK_SECRETS")
    # One delivery's HTTP timeout; the activity's own timeout is longer.
    timeout_seconds: float = Field(10.0, validation_alias="WEBHOOK_TIMEOUT_SECONDS")
    user_agent: str = Field("campaign-engine-webhooks/1", validation_alias="WEBHOOK_USER_AGENT")

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
