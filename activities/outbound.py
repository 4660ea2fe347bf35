"""Requests to URLs that came in through the API, sent only where the policy lets them go.

The name is resolved here, every address it resolves to is checked
(`campaign_engine.policy.outbound_urls`), and the connection is made to the checked address:
the request's URL carries the IP, the `Host` header and TLS (SNI and certificate check) the
name. A resolver that answers differently a moment later (DNS rebinding) therefore cannot
send the request anywhere else. Redirects are never followed (the caller treats a 3xx as a
failed delivery).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlunsplit

import httpx

from campaign_engine.policy.outbound_urls import (
    LOCALHOST_ADDRESSES,
    IPAddress,
    OutboundPolicy,
    OutboundUrlError,
    check_address,
    check_url,
    is_localhost_name,
    parse_host,
)


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> IPAddress:
    """The address to connect to for `host`: every address it resolves to must pass the
    policy (one forbidden answer refuses the lot), and the first one is used."""
    literal = parse_host(host)
    if literal is not None:
        check_address(literal, policy)
        return literal
    if is_localhost_name(host):  # never asked of a resolver: it is loopback by definition
        for candidate in LOCALHOST_ADDRESSES:
            check_address(candidate, policy)
        return LOCALHOST_ADDRESSES[0]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConnectionError(f"cannot resolve {host}: {err.strerror}") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ConnectionError(f"{host} resolves to no address")
    for address in addresses:
        check_address(address, policy)
    return addresses[0]


def pinned_request(parts: SplitResult, address: IPAddress) -> tuple[str, dict[str, str], dict]:
    """URL (with the IP), Host header and httpx extensions (SNI) of a request to `address`."""
    host = parts.hostname or ""
    default_port = 443 if parts.scheme.lower() == "https" else 80
    port = parts.port
    ip_text = f"[{address}]" if address.version == 6 else str(address)
    netloc = ip_text if port in (None, default_port) else f"{ip_text}:{port}"
    host_header = host if ":" not in host else f"[{host}]"
    if port not in (None, default_port):
        host_header += f":{port}"
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme.lower() == "https" and parse_host(host) is None else {}
    return url, {"Host": host_header}, extensions


async def post_checked(client: httpx.AsyncClient, url: str, policy: OutboundPolicy, *,
                       content: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to `url` at a checked address. OutboundUrlError: the URL or an address it resolves
    to is forbidden; ConnectionError: the name does not resolve; httpx errors as usual."""
    parts = check_url(url, policy)
    default_port = 443 if parts.scheme.lower() == "https" else 80
    address = await resolve_checked(parts.hostname or "", parts.port or default_port, policy)
    target, host_header, extensions = pinned_request(parts, address)
    return await client.post(target, content=content, headers={**headers, **host_header},
                             extensions=extensions, follow_redirects=False)


__all__ = ["OutboundUrlError", "pinned_request", "post_checked", "resolve_checked"]
