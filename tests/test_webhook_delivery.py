"""Webhook delivery goes only to checked addresses (activities.outbound), over real HTTP."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.outbound import pinned_request, resolve_checked
from activities.webhook_settings import WebhookSettings
from activities.webhooks import WebhookActivities, WebhookDelivery
from campaign_engine.policy.outbound_urls import (
    OutboundPolicy,
    OutboundUrlError,
    check_url,
)
from tests.fakes.serve import serve_asgi


class Receiver:
    def __init__(self) -> None:
        self.hits: list[tuple[str, str]] = []  # (path, Host header)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.hits.append((request.url.path, request.headers.get("host", "")))
            return Response(status_code=204)

        async def moved(request: Request) -> Response:
            self.hits.append((request.url.path, request.headers.get("host", "")))
            return RedirectResponse("/hooks", status_code=307)

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"]),
                                 Route("/moved", moved, methods=["POST"])])


def delivery(url: str) -> WebhookDelivery:
    return WebhookDelivery(url=url, tenant_id="acme", delivery_id="d-1", event="call.ended", payload={"a": 1})


def activities(**env) -> WebhookActivities:
    return WebhookActivities(WebhookSettings(WEBHOOK_SECRETS="acme:s3cret", WEBHOOK_ALLOW_HTTP=True, **env))


async def deliver(acts: WebhookActivities, url: str):
    try:
        return await ActivityEnvironment().run(acts.deliver_webhook, delivery(url))
    finally:
        await acts.aclose()


async def test_loopback_is_refused_unless_allowed_and_then_reached_by_name():
    receiver = Receiver()
    async with serve_asgi(receiver.app()) as base:
        port = int(base.rsplit(":", 1)[1])
        for url in (f"http://127.0.0.1:{port}/hooks", f"http://localhost:{port}/hooks",
                    f"http://2130706433:{port}/hooks", f"http://[::ffff:127.0.0.1]:{port}/hooks"):
            with pytest.raises(ApplicationError) as caught:
                await deliver(activities(), url)
            assert caught.value.non_retryable, url
        assert receiver.hits == []

        allowed = activities(WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8,::1/128")
        assert await deliver(allowed, f"http://localhost:{port}/hooks") == 204
        # Connected to the checked address, with the name kept in the Host header.
        assert receiver.hits == [("/hooks", f"localhost:{port}")]


async def test_a_redirect_is_a_failed_delivery_and_not_followed():
    receiver = Receiver()
    async with serve_asgi(receiver.app()) as base:
        with pytest.raises(ApplicationError) as caught:
            await deliver(activities(WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8"), f"{base}/moved")
        assert "redirect" in str(caught.value) and not caught.value.non_retryable
        assert [path for path, _ in receiver.hits] == ["/moved"]


async def test_plain_http_and_credentials_are_refused_at_delivery_too():
    for env, url in (({}, "https://u:p@hooks.example.com/x"),):
        with pytest.raises(ApplicationError) as caught:
            await deliver(activities(**env), url)
        assert caught.value.non_retryable
    strict = WebhookActivities(WebhookSettings(WEBHOOK_SECRETS="acme:s3cret"))
    with pytest.raises(ApplicationError, match="https"):
        await deliver(strict, "http://hooks.example.com/x")


async def test_every_address_a_name_resolves_to_is_checked():
    # This machine's own name resolves (through /etc/hosts or DNS) to its own addresses.
    name = socket.gethostname()
    try:
        addresses = {ipaddress.ip_address(i[4][0].split("%")[0])
                     for i in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if all(a.is_global for a in addresses):
        pytest.skip("this machine's name resolves to public addresses only")
    with pytest.raises(OutboundUrlError):
        await resolve_checked(name, 443, OutboundPolicy())
    everything = OutboundPolicy.from_settings(False, "0.0.0.0/1,128.0.0.0/1,::/1,8000::/1")
    assert await resolve_checked(name, 443, everything) in addresses


def test_the_request_goes_to_the_ip_with_the_name_in_host_and_sni():
    parts = check_url("https://hooks.example.com:8443/a/b?x=1", OutboundPolicy())
    url, headers, extensions = pinned_request(parts, ipaddress.ip_address("93.184.216.34"))
    assert url == "https://93.184.216.34:8443/a/b?x=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    url, headers, _ = pinned_request(check_url("https://h.example/x", OutboundPolicy()),
                                     ipaddress.ip_address("2606:2800:220:1::1"))
    assert url == "https://[2606:2800:220:1::1]/x" and headers == {"Host": "h.example"}
