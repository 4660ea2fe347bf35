"""The campaign dashboard: static HTML, CSS and vanilla JavaScript served by the API at /dashboard.

The page needs no build step and loads nothing from elsewhere (no CDN): its files are in
`api/static/dashboard/` (package data, so an installed package serves them). It talks to the
same REST API as every other client, with the `x-api-key` the user signs in with (kept in the
browser's sessionStorage only), and polls it for live figures. docs/dashboard.md describes it.

The pages themselves need no key (they hold no data). Their answers carry a strict
Content-Security-Policy: scripts, styles and connections to this origin only, no inline
script or style, no frames, no plugins, no form posts elsewhere; the rest of the API's answers
are untouched (JSON is not rendered by browsers, and api.edge's headers still apply).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static" / "dashboard"
PREFIX = "/dashboard"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

router = APIRouter(include_in_schema=False)


@router.get(PREFIX)
async def dashboard_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get(PREFIX + "/")
async def dashboard_slash(request: Request) -> RedirectResponse:
    # The page's URLs are relative to /dashboard (so that a root path is followed): one URL.
    return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + PREFIX, status_code=308)


class _DashboardHeaders:
    """The security headers above on every answer under /dashboard (pages, files, their 404s)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at /dashboard and its files at /dashboard/static."""
    from fastapi.staticfiles import StaticFiles

    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=str(STATIC_DIR)), name="dashboard-static")
    app.add_middleware(_DashboardHeaders)
