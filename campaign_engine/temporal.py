"""One way to connect to Temporal, shared by the API, the worker and the CLI."""

from __future__ import annotations

import re

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from campaign_engine.settings import Settings

# The API's calls to Temporal: a request that meets Temporal down is answered 503 (with
# Retry-After) within about a second, instead of after the SDK's default ten seconds of
# retries (RetryConfig's max_elapsed_time) that the client waits through. Blips shorter than
# that are still retried. Workers and the CLI keep the SDK's default: they have nobody waiting.
API_RETRY = RetryConfig(initial_interval_millis=100, multiplier=2.0, max_interval_millis=400,
                        max_elapsed_time_millis=1000, max_retries=3)


async def connect(settings: Settings, *, retry_config: RetryConfig | None = None, runtime=None) -> Client:
    """The client; `runtime` a temporalio Runtime of its own (a worker's, with SDK metrics).
    With OTEL_EXPORTER_OTLP_ENDPOINT set, its calls and the workflows and activities of the
    workers built on it are traced (campaign_engine/tracing.py); without it nothing is added."""
    from campaign_engine import tracing

    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        retry_config=retry_config,
        interceptors=tracing.interceptors(settings),
        **({"runtime": runtime} if runtime is not None else {}),
    )


class TemporalUnreachable(Exception):
    """Temporal at the settings' address does not answer: its one-line message says where."""

    def __init__(self, settings: Settings, reason: str) -> None:
        self.address, self.namespace = settings.resolved_temporal_address, settings.temporal_namespace
        super().__init__(f"campaign-engine: cannot reach Temporal at {self.address} (namespace {self.namespace}): "
                         f"{reason}. Start it with `campaign-engine up`, or pass --address host:port")


def unreachable_reason(err: BaseException) -> str:
    """The part of a connection error that says what went wrong, on one line."""
    text = " ".join(str(err).split())
    for marker in ("Connection refused", "timed out", "dns error", "Namespace", "namespace"):
        if marker in text:
            return re.split(r"[\"(){}]", text[text.index(marker):])[0][:160].strip(" .")
    return text[:160]


async def connect_or_explain(settings: Settings, *, runtime=None) -> Client:
    """The Temporal client, or TemporalUnreachable (a connection refused, a bad host, ...)."""
    try:
        return await connect(settings, runtime=runtime)
    except RuntimeError as err:  # temporalio: "Failed client connect: ..."
        raise TemporalUnreachable(settings, unreachable_reason(err)) from None
