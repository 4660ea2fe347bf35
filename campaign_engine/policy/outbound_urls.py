"""Where the engine may send a request whose URL came in through the API (pure, no I/O).

A customer's `notificationWebhookUrl` is fetched by our workers, from inside our network: left
unchecked it reaches our own API, the Temporal frontend, the cloud's metadata service. The
rules, applied at upload (`check_url`) and again to every address the name resolves to at
delivery (`check_address`, see `activities.outbound`):

- `https` only; `http` only when the deployment allows it (`WEBHOOK_ALLOW_HTTP`);
- no credentials in the URL (the signing secret authenticates us to the receiver);
- never a loopback, private, link-local (169.254.0.0/16: cloud metadata), shared (100.64/10),
  multicast, unspecified or reserved address, in any spelling: IPv4 as one number
  (`2130706433`), in hex or octal parts (`0x7f.1`, `0177.0.0.1`), short (`127.1`), IPv6 with
  an IPv4 inside (`[::ffff:127.0.0.1]`, NAT64 `64:ff9b::7f00:1`); the names `localhost` and
  `*.localhost` count as loopback;
- except in the networks the deployment allows (`WEBHOOK_ALLOWED_NETWORKS`, CIDRs), for
  receivers hosted next to the engine. Multicast and unspecified addresses are never allowed.

URLs the operator configures (`TWILIO_API_BASE_URL`, `HTTP_PROVIDER_URL`) are trusted as given.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class OutboundUrlError(ValueError):
    """The URL or address may not be fetched; the message says why (no secrets in it)."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, allow_http: bool, allowed_networks: str) -> OutboundPolicy:
        return cls(allow_http, parse_networks(allowed_networks))


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """`"10.0.0.0/8, fd00::/8"` as networks; ValueError naming the bad entry."""
    networks = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network in CIDR form (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def _ipv4_part(text: str) -> int | None:
    """One part of a WHATWG IPv4 host: decimal, 0x hex or leading-0 octal; None if not a number."""
    if text[:2].lower() == "0x":
        digits, base = text[2:], 16
    elif len(text) > 1 and text[0] == "0":
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    if digits == "":
        return 0 if base == 16 else None
    try:
        return int(digits, base) if digits.isascii() and digits.isalnum() else None
    except ValueError:
        return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` as an IPv4 address in any spelling a URL parser or inet_aton accepts, else None.

    Raises OutboundUrlError for a host whose last part is numeric but which is no address
    (`1.2.3.999`, `1.2.3.4.5`): URL parsers refuse those, resolvers may not.
    """
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts = parts[:-1]  # a trailing dot
    if not parts or _ipv4_part(parts[-1]) is None:
        return None  # a name (its last label is not a number)
    parsed = [_ipv4_part(p) for p in parts]
    numbers = [n for n in parsed if n is not None]
    if len(parts) > 4 or len(numbers) != len(parsed):
        raise OutboundUrlError(f"host {host!r} is neither a name nor an IPv4 address")
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise OutboundUrlError(f"host {host!r} is neither a name nor an IPv4 address")
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (5 - len(numbers)) + last
    return ipaddress.IPv4Address(value)


def parse_host(host: str) -> IPAddress | None:
    """The address a URL's host spells (IPv6 without brackets), or None for a name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise OutboundUrlError(f"host {host!r} is not a valid IPv6 address") from None
    return parse_ipv4(host)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why the address is not public, or None when it is."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        reason = forbidden_reason(inner)
        return f"{reason} (inside {address})" if reason else None
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved (non-public) address"
    return None


def check_address(address: IPAddress, policy: OutboundPolicy) -> None:
    """Raise OutboundUrlError unless the engine may connect to `address`."""
    reason = forbidden_reason(address)
    if reason is None:
        return
    target = _embedded_ipv4(address) or address
    always = target.is_unspecified or target.is_multicast
    if not always and any(target in net or address in net for net in policy.allowed_networks):
        return
    raise OutboundUrlError(f"{address} is {reason}; webhooks go to public addresses only")


def is_localhost_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


LOCALHOST_ADDRESSES = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))


def check_url(url: str, policy: OutboundPolicy) -> SplitResult:
    """The parsed URL, or OutboundUrlError saying what is wrong with it. Names are not
    resolved here: the delivery checks the addresses they resolve to (`check_address`)."""
    if _FORBIDDEN_CHARS.search(url):
        raise OutboundUrlError("must not contain spaces, control characters or backslashes")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "http" and not policy.allow_http:
        raise OutboundUrlError("must be an https:// URL (plain http is not allowed on this deployment)")
    if scheme not in ("http", "https"):
        raise OutboundUrlError("must be an https:// URL with a host")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise OutboundUrlError("must not contain credentials (user:password@); the X-Signature "
                               "header authenticates the engine to the receiver")
    host = parts.hostname
    if not host:
        raise OutboundUrlError("must be an https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise OutboundUrlError("has an invalid port") from None
    address = parse_host(host)
    if address is not None:
        check_address(address, policy)
    elif is_localhost_name(host):
        for candidate in LOCALHOST_ADDRESSES:
            check_address(candidate, policy)
    return parts
