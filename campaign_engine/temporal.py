"""One way to connect to Temporal, shared by the API, the worker and the CLI."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from campaign_engine.settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
