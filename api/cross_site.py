"""The GET forms of the state-changing Dialer API endpoints refuse cross-site browser requests.

`GET /startCampaignv2/{id}`, `/pauseTheCampaign/{id}` and `/startCampaign/{id}` change a
campaign's state; they stay (the Dialer API's contract) but POST is the documented form. A
browser following a link or loading an image on another site would send the GET with the
user's credentials, so a GET whose `Sec-Fetch-Site` says it comes from another site, or whose
`Origin` is not the API's own, is refused with 403 CROSS_SITE_REQUEST. Requests without
those headers (curl, servers, the Dialer's own clients) are unaffected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from api.errors import ApiError, echo

# Sec-Fetch-Site values of a request the API's own pages or the user made directly.
_SAME_SITE_VALUES = frozenset({"same-origin", "none"})


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def own_origins(request: Request) -> set[str]:
    """The origins the API itself is served at: the one this request addressed (its Host),
    and PUBLIC_BASE_URL's when set."""
    origins = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    host = request.headers.get("host")
    if host:  # behind a TLS-terminating proxy the browser's scheme is https
        origins |= {f"http://{host.lower()}", f"https://{host.lower()}"}
    settings = getattr(request.app.state, "settings", None)
    public = _origin_of(getattr(settings, "public_base_url", "") or "")
    if public:
        origins.add(public)
    return origins


async def refuse_cross_site(request: Request) -> None:
    """Dependency of the GET forms (see the module)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in _SAME_SITE_VALUES:
        raise _cross_site(request, "Sec-Fetch-Site", f"the request comes from another site (Sec-Fetch-Site: "
                          f"{echo(site)})")
    origin = request.headers.get("origin")
    if origin is not None and _origin_of(origin) not in own_origins(request):
        raise _cross_site(request, "Origin", f"the request comes from another origin ({echo(origin)})")


def _cross_site(request: Request, header: str, reason: str) -> ApiError:
    return ApiError(403, "CROSS_SITE_REQUEST",
                    f"{reason}: a state change by GET is refused from other sites; use POST {echo(request.url.path)}",
                    [{"field": header, "message": reason}])
