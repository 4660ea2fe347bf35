"""OpenTelemetry traces (issue 15), only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Then the Temporal client of the API and of each worker carries
`temporalio.contrib.opentelemetry.TracingInterceptor`: a span for every workflow start,
signal, update and query the API makes, continued in the workflows and activities that
follow (the interceptor is also the workers' built on that client), exported over OTLP/HTTP
(`opentelemetry-exporter-otlp-proto-http`) to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces` with
service name OTEL_SERVICE_NAME (default campaign-engine). Without the variable nothing is
imported or installed: no interceptor, no exporter, no cost.
"""

from __future__ import annotations

import logging
import os

from campaign_engine.settings import Settings

log = logging.getLogger("campaign_engine.tracing")
_PROVIDER: list = []  # the one TracerProvider of the process, once configured


def _configure(endpoint: str) -> None:
    if _PROVIDER:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "campaign-engine")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    _PROVIDER.append(provider)
    log.info("OpenTelemetry traces exported to %s", endpoint)


def interceptors(settings: Settings) -> list:
    """The client interceptors: [TracingInterceptor] with an OTLP endpoint, else none."""
    if not settings.otel_exporter_otlp_endpoint:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    _configure(settings.otel_exporter_otlp_endpoint)
    return [TracingInterceptor()]


def flush() -> None:
    """Export the spans still buffered (at shutdown, and in tests)."""
    for provider in _PROVIDER:
        provider.force_flush()
