"""`/docs` without the internet: Swagger UI served from the `swagger-ui-bundle-v2` package.

FastAPI's default docs page loads Swagger UI from a CDN, which leaves `/docs` blank offline
and in air-gapped sites. This is FastAPI's documented self-hosting of the docs' static files
(https://fastapi.tiangolo.com/how-to/custom-docs-ui-assets/): the app is created with
`docs_url=None, redoc_url=None`, the package's files are mounted under /docs/static, and
`get_swagger_ui_html` points at them. Like the OpenAPI document, none of it needs an API key.
"""

from __future__ import annotations

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs with Swagger UI from the installed package (the app has docs_url=None)."""
    app.mount(STATIC_URL, StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name="docs-static")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - docs",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon-32x32.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
