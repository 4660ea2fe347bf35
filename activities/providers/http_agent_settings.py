"""Settings of the generic HTTP voice-agent provider, read from environment variables."""

from __future__ import annotations

import json

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpAgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    # POST here to place a call (JSON body, see HttpAgentProvider).
    url: str = Field("", validation_alias="HTTP_PROVIDER_URL")
    # Extra request headers as a JSON object, e.g. {"Authorization": "Bearer ..."}.
    headers: SecretStr = Field(SecretStr("{}"), validation_alias="HTTP_PROVIDER_HEADERS")
    # GET this to read a call's status; "{call_id}" (and "{reference_id}") are replaced.
    # Empty: the status cannot be polled, the engine relies on callbacks alone.
    status_url: str = Field("", validation_alias="HTTP_PROVIDER_STATUS_URL")
    # Shared secret of the callbacks' HMAC signature (X-Signature-Timestamp / X-Signature);
    # also signs our requests to the platform with the same scheme.
    secret: SecretStr = Field(SecretStr(""), validation_alias="HTTP_PROVIDER_SECRET")
    # Where the platform posts call results; default {PUBLIC_BASE_URL}/callbacks/http-agent.
    callback_url: str = Field("", validation_alias="HTTP_PROVIDER_CALLBACK_URL")
    public_base_url: str = Field("", validation_alias="PUBLIC_BASE_URL")
    timeout_seconds: float = Field(15.0, validation_alias="HTTP_PROVIDER_TIMEOUT_SECONDS")
    poll_after_seconds: float = Field(300.0, validation_alias="HTTP_PROVIDER_POLL_AFTER_SECONDS")
    signature_tolerance_seconds: float = Field(300.0, validation_alias="HTTP_PROVIDER_SIGNATURE_TOLERANCE_SECONDS")

    @field_validator("headers")
    @classmethod
    def _headers_are_a_json_object(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip() or "{}"
        parsed = json.loads(raw)
        if not isinstance(parsed, dict):
            raise ValueError("HTTP_PROVIDER_HEADERS must be a JSON object")
        return SecretStr(raw)

    def header_dict(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in json.loads(self.headers.get_secret_value() or "{}").items()}
