"""Every setting a worker reads, validated before anything starts (run_reporting's preflight)."""

from __future__ import annotations

from pydantic import ValidationError

from activities.providers.http_agent_provider import HttpAgentProvider
from activities.providers.http_agent_settings import HttpAgentSettings
from activities.providers.twilio_provider import TwilioProvider
from activities.providers.twilio_settings import TwilioSettings
from activities.webhook_settings import WebhookSettings
from campaign_engine.config_errors import ConfigError
from campaign_engine.settings import Settings


def check_environment() -> None:
    """Every setting read from the environment, validated before anything starts: the
    engine's, the webhooks', and the settings of the provider TELEPHONY_PROVIDER selects."""
    settings = Settings()
    WebhookSettings()
    twilio, http = TwilioSettings(), HttpAgentSettings()
    try:
        if settings.telephony_provider == "twilio" or twilio.account_sid:
            TwilioProvider.from_settings(twilio)
        if settings.telephony_provider == "http" or http.url:
            HttpAgentProvider.from_settings(http)
    except ValidationError:
        raise
    except ValueError as err:
        raise ConfigError(f"TELEPHONY_PROVIDER={settings.telephony_provider}: {err}") from None
