"""Settings of the Twilio provider, read from environment variables.

Kept apart from `campaign_engine.settings.Settings` so the Twilio provider can be configured
(and tested) on its own; `TwilioProvider.from_settings()` reads them.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TwilioSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    account_sid: str = Field("", validation_alias="TWILIO_ACCOUNT_SID")
    # The Auth Token also verifies Twilio's webhook signatures: set it even when the REST
    # calls use an API key.
    auth_token: SecretStr = Field(SecretStr(""), validation_alias="TWILIO_AUTH_TOKEN")
    api_key: str = Field("", validation_alias="TWILIO_API_KEY")
    api_secret: SecretStr = Field(SecretStr(""), validation_alias="TWILIO_API_SECRET")
    # Comma-separated E.164 numbers we own. A contact is always called from the same one
    # (chosen by a stable hash of its workflow id) unless the request names a number.
    from_numbers: str = Field("", validation_alias="TWILIO_FROM_NUMBERS")
    api_base_url: str = Field("https://api.twilio.com", validation_alias="TWILIO_API_BASE_URL")
    # The TwiML Url Twilio fetches when the callee answers: it connects the AI agent. It may
    # contain {agent_id}, {campaign_id}, {tenant_id}, {attempt} placeholders; the call's
    # identifiers (and the variables) are added to its query string.
    agent_url: str = Field("", validation_alias="TWILIO_AGENT_URL")
    # Alternative to TWILIO_AGENT_URL: inline TwiML (at most 4,000 characters) with the same
    # placeholders plus {contact_workflow_id}, {idempotency_key}, {to}, {variables_json}.
    twiml_template: str = Field("", validation_alias="TWILIO_TWIML_TEMPLATE")
    public_base_url: str = Field("", validation_alias="PUBLIC_BASE_URL")
    # Answering machine detection mode sent when a campaign asks for voicemail detection:
    # DetectMessageEnd (default) or Enable; "off" never sends it.
    machine_detection: str = Field("DetectMessageEnd", validation_alias="TWILIO_MACHINE_DETECTION")
    # Seconds Twilio lets the phone ring before reporting no-answer (Twilio's default: 60).
    ring_timeout_seconds: int | None = Field(None, validation_alias="TWILIO_RING_TIMEOUT_SECONDS")
    # Suggested wait for the status callback before the workflow polls the call's status.
    poll_after_seconds: float = Field(300.0, validation_alias="TWILIO_POLL_AFTER_SECONDS")
    http_timeout_seconds: float = Field(15.0, validation_alias="TWILIO_HTTP_TIMEOUT_SECONDS")
    # How far Twilio's clock (and its whole-second timestamps) may lag ours when a retried
    # placement looks for the call an earlier try of the same attempt created.
    adopt_clock_skew_seconds: float = Field(5.0, validation_alias="TWILIO_ADOPT_CLOCK_SKEW_SECONDS")

    def from_number_list(self) -> list[str]:
        return [n.strip() for n in self.from_numbers.split(",") if n.strip()]
