"""Builds the telephony providers a worker offers, from the settings."""

from __future__ import annotations

from pydantic import ValidationError
from temporalio.client import Client

from activities.providers.base import TelephonyProvider
from activities.providers.http_agent_provider import HttpAgentProvider
from activities.providers.http_agent_settings import HttpAgentSettings
from activities.providers.twilio_provider import TwilioProvider
from activities.providers.twilio_settings import TwilioSettings
from activities.providers.simulated import CarrierLedger, SimulatedCarrier
from campaign_engine.contract import ContactSignal
from campaign_engine.config_errors import ConfigError
from campaign_engine.models import CallOutcome
from campaign_engine.settings import Settings


def signal_outcome_via(client: Client):
    """How a provider living in the worker hands an outcome to the contact workflow."""

    async def deliver(contact_workflow_id: str, outcome: CallOutcome) -> None:
        await client.get_workflow_handle(contact_workflow_id).signal(ContactSignal.CALL_OUTCOME, outcome)

    return deliver


# Every provider a worker can offer (one dial task queue each when capped).
PROVIDER_NAMES = ("simulated", "twilio", "http")


def build_providers(settings: Settings, client: Client) -> dict[str, TelephonyProvider]:
    providers: dict[str, TelephonyProvider] = {
        "simulated": SimulatedCarrier(
            CarrierLedger(settings.resolved_simulated_carrier_db),
            settings.simulated_outcomes,
            settings.simulated_ring_seconds,
            settings.simulated_talk_seconds,
            seed=settings.simulated_seed,
            deliver=signal_outcome_via(client),
        )
    }
    # Real carriers join when configured; the one TELEPHONY_PROVIDER names must be.
    try:
        twilio_cfg = TwilioSettings()
        if twilio_cfg.account_sid or settings.telephony_provider == "twilio":
            providers["twilio"] = TwilioProvider.from_settings(twilio_cfg)
        http_cfg = HttpAgentSettings()
        if http_cfg.url or settings.telephony_provider == "http":
            providers["http"] = HttpAgentProvider.from_settings(http_cfg)
    except ValidationError:
        raise  # names its variable already
    except ValueError as err:  # a setting the provider needs is missing or wrong
        raise ConfigError(f"TELEPHONY_PROVIDER={settings.telephony_provider}: {err}") from None
    if settings.telephony_provider not in providers:
        raise ValueError(
            f"TELEPHONY_PROVIDER={settings.telephony_provider!r} is not one of {sorted(providers)}"
        )
    return providers
