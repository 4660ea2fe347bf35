"""The outbound URL policy (campaign_engine.policy.outbound_urls): pure, no server."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign_engine.policy.outbound_urls import (
    OutboundPolicy,
    OutboundUrlError,
    check_address,
    check_url,
    parse_host,
    parse_networks,
)

STRICT = OutboundPolicy()

REFUSED = [
    "http://hooks.example.com/x",  # plain http
    "ftp://hooks.example.com/x",
    "https://user:pass@hooks.example.com/x",
    "https://user@hooks.example.com/x",
    "https:///x",
    "https://hooks.example.com:99999/x",
    "https://hooks.example.com\\@127.0.0.1/x",
    "https://127.0.0.1/x",
    "https://127.1/x",
    "https://2130706433/x",
    "https://0x7f.1/x",
    "https://0x7f000001/x",
    "https://0177.0.0.1/x",
    "https://127.0.0.1./x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::ffff:7f00:1]/x",
    "https://[64:ff9b::a9fe:a9fe]/x",
    "https://[2002:7f00:1::]/x",
    "https://169.254.169.254/latest/meta-data",
    "https://[fe80::1]/x",
    "https://10.1.2.3/x",
    "https://172.16.0.1/x",
    "https://192.168.1.1/x",
    "https://100.64.0.1/x",
    "https://0.0.0.0/x",
    "https://0/x",
    "https://[::]/x",
    "https://224.0.0.1/x",
    "https://239.255.255.250/x",
    "https://[ff02::1]/x",
    "https://240.0.0.1/x",
    "https://255.255.255.255/x",
    "https://[fc00::1]/x",
    "https://localhost/x",
    "https://api.localhost/x",
    "https://1.2.3.999/x",
    "https://1.2.3.4.5/x",
]

ACCEPTED = [
    "https://hooks.example.com/x?token=abc",
    "https://HOOKS.example.com:8443/x",
    "https://93.184.216.34/x",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
    "https://1.example/x",  # a name whose last label is not a number
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused(url):
    with pytest.raises(OutboundUrlError):
        check_url(url, STRICT)


@pytest.mark.parametrize("url", ACCEPTED)
def test_accepted(url):
    assert check_url(url, STRICT).hostname


def test_spellings_of_loopback_all_parse_to_it():
    for spelling in ("127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.0.1"):
        assert parse_host(spelling) == ipaddress.ip_address("127.0.0.1"), spelling
    assert parse_host("hooks.example.com") is None


def test_http_and_private_networks_when_the_deployment_allows_them():
    policy = OutboundPolicy.from_settings(True, "127.0.0.0/8, 10.0.0.0/8")
    assert check_url("http://127.0.0.1:8080/hooks", policy).port == 8080
    assert check_url("https://10.9.8.7/x", policy)
    assert check_url("http://[::ffff:10.0.0.1]/x", policy)
    with pytest.raises(OutboundUrlError):
        check_url("http://192.168.0.1/x", policy)
    with pytest.raises(OutboundUrlError):  # credentials stay refused
        check_url("http://u:p@127.0.0.1/x", policy)
    # Multicast and unspecified addresses are never allowed, whatever the networks say.
    everything = OutboundPolicy.from_settings(True, "0.0.0.0/0,::/0")
    for address in ("0.0.0.0", "224.0.0.1", "::"):
        with pytest.raises(OutboundUrlError):
            check_address(ipaddress.ip_address(address), everything)


def test_bad_networks_are_named():
    with pytest.raises(ValueError, match="not-a-net"):
        parse_networks("10.0.0.0/8,not-a-net")
    assert parse_networks(" , ") == ()


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_spelling_is_the_address_inet_aton_sees(value):
    address = ipaddress.IPv4Address(value)
    spellings = [str(value), hex(value), f"0{value:o}" if value else "0",
                 f"{value >> 24}.{value & 0xFFFFFF}", f"{value >> 24}.{(value >> 16) & 0xFF}.{value & 0xFFFF}",
                 ".".join(hex(b) for b in address.packed)]
    for spelling in spellings:
        assert parse_host(spelling) == address, spelling
        assert socket.inet_aton(spelling) == address.packed, spelling  # the resolver agrees


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_a_url_is_accepted_exactly_when_its_address_is_public(value):
    address = ipaddress.IPv4Address(value)
    public = address.is_global and not address.is_multicast
    for host in (str(value), str(address), f"[::ffff:{address}]"):
        try:
            check_url(f"https://{host}/hook", STRICT)
            accepted = True
        except OutboundUrlError:
            accepted = False
        assert accepted == public, host
