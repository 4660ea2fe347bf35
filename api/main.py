"""The campaign engine's REST API: `uvicorn api.main:app`.

One Temporal client and one store engine (PostgreSQL) are created at start-up and shared by
every request. `app` is built when it is first looked up (uvicorn's import of `api.main:app`),
not when the module is imported: a configuration error (a variable that does not validate,
DATABASE_URL unset) is then one line on stderr naming the variable and exit status 2, as
`campaign-engine worker` and `up` do, instead of a traceback from uvicorn's lifespan.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OpenAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.audit import AuditMiddleware
from api.campaigns import configured_providers
from api.dashboard import install_dashboard
from api.docs import install_offline_docs
from api.edge import EdgeMiddleware
from api.errors import ErrorEnvelope, error_responses, install_error_handlers
from api.health import install_health
from api.lifecycle_schemas import AppendContactsIn, UploadCampaignDataIn
from api.openapi_refine import refine
from api.rate_limit import RATE_LIMITED, RateLimit, install_rate_limits
from api.routes import callbacks, compliance, export, lifecycle, metrics, monitoring, policy, upload
from api.routes.policy import PreflightIn
from api.schemas import CampaignIn
from campaign_engine.settings import Settings, get_settings
from campaign_engine.store.db import require_database_url, store_engine
from campaign_engine.temporal import API_RETRY, connect

log = logging.getLogger("api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Bounded retries: Temporal down is a prompt 503, not ten seconds of waiting (API_RETRY).
        app.state.temporal_client = await connect(settings, retry_config=API_RETRY)
        app.state.db = store_engine(settings)
        if not app.state.api_keys:
            log.warning("CAMPAIGN_API_KEYS is empty: every authenticated call will get 401")
        # Everything alive now (modules, schemas, phone metadata, the client: ~100k objects)
        # lives as long as the process: out of the collector's way, so that the collections a
        # large upload's allocations trigger do not walk it again each time.
        gc.collect()
        gc.freeze()
        yield
        await app.state.db.dispose()

    app = FastAPI(
        title="Campaign engine",
        version="0.1.0",
        description="Outbound voice campaigns on Temporal. Authenticate with the `x-api-key` header.",
        lifespan=lifespan,
        docs_url=None,  # served from the installed Swagger UI package instead (api.docs)
        redoc_url=None,
    )
    install_offline_docs(app)
    install_dashboard(app)  # /dashboard: the campaign dashboard's static pages (api.dashboard)
    app.state.settings = settings
    app.state.api_keys = settings.api_key_digests()  # api.deps compares SHA-256 digests
    install_error_handlers(app)
    # Rate limits per API key and route class (api.rate_limit); callbacks and health are exempt.
    # Every authenticated operation can answer 400 (its parameters), 401 (the key), 429 (its
    # count) and 503 (Temporal or the store down: api.health); the routes add their own.
    authenticated = {**error_responses(400, 401, 503), **RATE_LIMITED}
    app.include_router(upload.router, dependencies=[RateLimit("uploads")], responses=authenticated)
    app.include_router(policy.router, dependencies=[RateLimit("control")], responses=authenticated)
    app.include_router(callbacks.router, responses=error_responses(400, 403, 408, 413))
    app.include_router(lifecycle.router, dependencies=[RateLimit("control")], responses=authenticated)
    app.include_router(monitoring.router, dependencies=[RateLimit("reads")], responses=authenticated)
    app.include_router(export.router, dependencies=[RateLimit("reads")], responses=authenticated)
    app.include_router(metrics.router)  # its own auth (METRICS_TOKEN or a key), not rate-limited
    app.include_router(compliance.writes, dependencies=[RateLimit("control")], responses=authenticated)
    app.include_router(compliance.reads, dependencies=[RateLimit("reads")], responses=authenticated)

    install_health(app)  # /healthz, /readyz, and 503 when Temporal or the store is down
    install_rate_limits(app, settings)  # the X-RateLimit-* headers on every counted answer
    app.add_middleware(AuditMiddleware)  # the audit trail of what keys did (api.audit)
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes,
                       body_read_timeout=settings.body_read_timeout_seconds,
                       file_upload_bytes=settings.max_upload_bytes)

    # The bodies the routes read themselves (api.json_body), documented by reference.
    document_body_models(app, [CampaignIn, UploadCampaignDataIn, AppendContactsIn, PreflightIn, compliance.SuppressionsIn,
                               ErrorEnvelope])
    document_what_is_accepted(app, configured_providers(settings))
    return app


def document_body_models(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add `models` (and the models they use) to the OpenAPI components: the bodies of routes
    that read them themselves (`api.json_body.openapi_body`) are documented by reference."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            _, top = models_json_schema([(m, "validation") for m in models],
                                        ref_template="#/components/schemas/{model}")
            found = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in top.get("$defs", {}).items():
                found.setdefault(name, definition)
            document_errors_as_answered(schema)
            # The same last step as FastAPI's own get_openapi, so these read like the others.
            app.openapi_schema = jsonable_encoder(OpenAPI(**schema), by_alias=True, exclude_none=True)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_what_is_accepted(app: FastAPI, providers: list[str]) -> None:
    """The document refined, once, with what the API accepts beyond the types (formats,
    patterns, this deployment's providers: api.openapi_refine)."""
    generate = app.openapi
    done: list[bool] = []

    def openapi() -> dict:
        schema = generate()
        if not done:
            refine(schema, providers)
            done.append(True)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


ENVELOPE_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}


def document_errors_as_answered(schema: dict) -> None:
    """The errors as the API answers them: FastAPI's 422 goes (a body or parameter that does
    not validate is a 400 in the envelope, api.errors), and every 4xx and 5xx an operation
    lists has the envelope's schema as its content, whatever its route wrote."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "ErrorEnvelope" not in json.dumps(responses.get("422", {})):  # FastAPI's own, never answered
                responses.pop("422", None)
            for status, response in responses.items():
                if str(status)[:1] in ("4", "5") and not response.get("content"):
                    response["content"] = ENVELOPE_CONTENT
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema.get("paths", {})):
            components.pop(unused, None)


def _app_of_the_environment() -> FastAPI:
    """`create_app()` from the environment's settings, or one line and exit status 2."""
    from campaign_engine.config_errors import one_line

    try:
        settings = get_settings()
        require_database_url(settings)
        return create_app(settings)
    except Exception as exc:
        found = one_line(exc)
        if found is None:
            raise
        line, status = found
        print(f"api: {line}", file=sys.stderr, flush=True)
        raise SystemExit(status) from None


def __getattr__(name: str):
    # PEP 562: `api.main.app` (what uvicorn looks up) is made on first use and kept.
    if name == "app":
        globals()["app"] = made = _app_of_the_environment()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
