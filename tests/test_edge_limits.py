"""Limits at the door (api.edge, api.routes.callbacks), over the real HTTP stack."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest_asyncio

from api.edge import LINGER_BYTES
from campaign_engine import signing
from tests.conftest import API_KEY, running_engine

LIMIT = 1024 * 1024
BIG = 50 * 1024 * 1024
CHUNK = 64 * 1024


@pytest_asyncio.fixture
async def edge(dev_env, task_queue, carrier_db, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tw-token")
    monkeypatch.setenv("HTTP_PROVIDER_SECRET", "agent-secret")
    async with running_engine(dev_env, task_queue, carrier_db, MAX_BODY_BYTES=LIMIT,
                              BODY_READ_TIMEOUT_SECONDS=1.5) as eng:
        yield eng


class Counted:
    """A generator body of `total` bytes that counts what the client managed to send."""

    def __init__(self, total: int = BIG, prefix: bytes = b"") -> None:
        self.total, self.prefix, self.sent = total, prefix, 0

    async def __aiter__(self):
        if self.prefix:
            self.sent += len(self.prefix)
            yield self.prefix
        chunk = b"x" * CHUNK
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


async def raw_request(base_url: str, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head.encode())
    await writer.drain()
    return reader, writer


async def read_response(reader: asyncio.StreamReader, timeout: float = 10) -> tuple[int, dict]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return status, json.loads(body)


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


async def test_a_huge_streamed_upload_is_refused_without_being_read(edge):
    # The server runs in this process: its peak memory (VmHWM, reset first) must not grow by
    # anything near the 50 MB sent.
    Path("/proc/self/clear_refs").write_text("5")
    before = memory_kib("VmRSS")
    body = Counted(prefix=b'{"campaignName": "big", "agentId": "a", "contacts": [')
    resp = await edge.http.post("/uploadCampaignDataAndRun", content=body,
                                headers={**edge.headers(), "content-type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert "MAX_BODY_BYTES" in resp.json()["message"]
    assert memory_kib("VmHWM") - before < 16 * 1024, (before, memory_kib("VmHWM"))


async def test_past_the_lingering_bound_the_connection_is_cut(edge):
    # httpx writes the whole body before it reads: the server drops up to LINGER_BYTES after
    # its answer (so that such a client sees it), then hangs up on the rest.
    body = Counted(total=LINGER_BYTES * 4)
    try:
        resp = await edge.http.post("/uploadCampaignDataAndRun", content=body, headers=edge.headers())
        assert resp.status_code == 413
    except httpx.TransportError:
        pass  # cut off while still writing: the answer was lost with the connection
    assert body.sent < LINGER_BYTES * 2, body.sent
    assert (await edge.http.get("/healthz")).status_code == 200


async def test_an_unsigned_callback_is_refused_before_its_body_is_read(edge):
    for path in ("/callbacks/twilio", "/callbacks/http-agent"):
        resp = await edge.http.post(path, content=Counted())
        assert resp.status_code == 403, resp.text
    body = Counted(total=LINGER_BYTES * 4)
    try:
        await edge.http.post("/callbacks/twilio", content=body)
    except httpx.TransportError:
        pass
    assert body.sent < LINGER_BYTES * 2, body.sent


async def test_a_declared_length_over_the_limit_is_refused_before_any_body(edge):
    reader, writer = await raw_request(
        edge.base_url, f"POST /uploadCampaignDataAndRun HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {10**12}\r\n\r\n")
    status, body = await read_response(reader)
    writer.close()
    assert status == 413 and body["error"] == "PAYLOAD_TOO_LARGE"


async def test_a_body_that_trickles_in_is_cut_off(edge):
    reader, writer = await raw_request(
        edge.base_url, f"POST /uploadCampaignDataAndRun HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n"
                       "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    started = time.monotonic()

    async def trickle():
        try:
            for _ in range(100):
                writer.write(b" " * 100)
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionError, OSError):
            pass

    trickling = asyncio.create_task(trickle())
    status, body = await read_response(reader)
    elapsed = time.monotonic() - started
    trickling.cancel()
    writer.close()
    assert status == 408 and body["error"] == "REQUEST_TIMEOUT"
    assert 1.0 < elapsed < 5, elapsed


async def test_callback_bodies_are_parsed_defensively(edge):
    # Not UTF-8, with a signature header: 400, not a UnicodeDecodeError.
    resp = await edge.http.post("/callbacks/twilio", content=b"CallSid=\xff\xfe",
                                headers={"X-Twilio-Signature": "abc",
                                         "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "BAD_REQUEST"
    # Signed and 50,000 levels deep: 400, not a RecursionError.
    deep = b"[" * 50_000 + b"]" * 50_000
    resp = await edge.http.post("/callbacks/http-agent", content=deep,
                                headers={**signing.signature_headers("agent-secret", deep),
                                         "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    # Signed, not JSON at all.
    junk = b"\xff{"
    resp = await edge.http.post("/callbacks/http-agent", content=junk,
                                headers=signing.signature_headers("agent-secret", junk))
    assert resp.status_code == 400, resp.text
    # Over the callbacks' own limit (1 MiB), signature headers present: 413 while streaming.
    body = Counted(total=4 * 1024 * 1024)
    resp = await edge.http.post("/callbacks/http-agent", content=body,
                                headers=signing.signature_headers("agent-secret", b"x"))
    assert resp.status_code == 413, resp.text


async def test_a_client_that_hangs_up_is_one_log_line(edge, caplog):
    with caplog.at_level(logging.INFO):
        _reader, writer = await raw_request(
            edge.base_url, f"POST /uploadCampaignDataAndRun HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n"
                           "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"campaignName\"")
        await asyncio.sleep(0.3)
        writer.close()
        await asyncio.sleep(0.5)
        # The server is still fine.
        assert (await edge.http.get("/healthz")).status_code == 200
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    lines = [r for r in caplog.records if r.name == "api.edge" and "disconnected" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]


async def test_headers_on_every_answer(edge):
    resp = await edge.http.get("/campaigns/CAMP-2026-NOPE0000", headers=edge.headers())
    assert resp.status_code == 404
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"
    resp = await edge.http.get("/healthz")
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in resp.headers
    # A request without a body keeps its connection (only an answer before the body closes it).
    resp = await edge.http.post("/pauseTheCampaign/CAMP-2026-NOPE0000", headers=edge.headers())
    assert resp.status_code == 404 and resp.headers.get("connection") != "close", resp.headers


async def test_an_upload_just_under_the_limit_is_read_in_full(edge):
    contacts = [{"phone_number": f"+1415555{i:04d}", "custom_data": {"n": "y" * 800}} for i in range(1000)]
    body = json.dumps({"campaignName": "fits", "agentId": "a", "contacts": contacts}).encode()
    assert LIMIT / 2 < len(body) < LIMIT

    async def chunks():
        for i in range(0, len(body), CHUNK):
            yield body[i:i + CHUNK]

    resp = await edge.http.post("/uploadCampaignData", content=chunks(),
                                headers={**edge.headers(), "content-type": "application/json"})
    assert resp.status_code == 200, resp.text


async def test_a_refused_body_leaves_the_server_serving(edge):
    for _ in range(3):
        try:
            await edge.http.post("/uploadCampaignDataAndRun", content=Counted(), headers=edge.headers())
        except httpx.HTTPError:
            pass
    assert (await edge.http.get("/healthz")).status_code == 200


async def test_an_empty_idempotency_key_is_refused_and_writes_nothing(engine):
    """An empty Idempotency-Key used to be stored as the key "" of every such request: the
    second one was a 500 (found by schemathesis). It is a 400 naming the header, before any
    body is read or anything written; without the header the upload is as usual."""
    body = {"campaign_name": "k", "agent_id": "a", "contacts": [{"phone_number": "+14155550101"}]}
    for path in ("/uploadCampaignData", "/uploadCampaignDataAndRun", "/uploadCampaignData"):
        sent = {"campaignName": "k", "agentId": "a", "contacts": body["contacts"]} if path.endswith("Run") else body
        resp = await engine.http.post(path, json=sent, headers={**engine.headers(), "Idempotency-Key": ""})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "BAD_REQUEST" and "Idempotency-Key" in resp.json()["message"]
    listed = await engine.http.get("/getCampaignStatuses", headers=engine.headers())
    assert listed.json()["campaigns"] == [], listed.text
    assert (await engine.http.post("/uploadCampaignData", json=body, headers=engine.headers())).status_code == 200
