"""What every request meets before any route: a pure-ASGI middleware (no buffering).

- **Body size.** A body over `MAX_BODY_BYTES` is refused with 413 `PAYLOAD_TOO_LARGE` as soon
  as that is known: a `Content-Length` over the limit before a byte of the body is read, a
  chunked body when its running count passes the limit. Nothing is buffered here: the chunks
  go to the route as they arrive, and once refused the route sees a disconnected client. The
  answer carries `Connection: close`.
- **Lingering close.** An answer given before the whole body arrived (a 413, a callback
  refused for its missing signature) is sent at once, then up to `LINGER_BYTES` more of the
  body are read and dropped for at most `LINGER_SECONDS` before the connection closes. HTTP
  clients that write the whole body before they read (httpx, requests) would otherwise meet a
  connection reset, which discards the answer they have not read yet; past those bounds the
  connection is closed all the same. Nothing dropped is kept: memory stays flat.
- **Body-read deadline.** The whole body must have arrived `BODY_READ_TIMEOUT_SECONDS` after
  the request began, else 408 `REQUEST_TIMEOUT` (uvicorn's own timeouts cover idle
  connections, not a body that trickles in a byte at a time).
- **Headers on every answer.** `X-Content-Type-Options: nosniff`; `Cache-Control: no-store` on
  every answer to a request that presented an API key (they carry personal data), unless the
  route set its own.
- **A client that hangs up** before its request was read is one log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("api.edge")

_DISCONNECT: Message = {"type": "http.disconnect"}
LINGER_BYTES = 64 * 1024 * 1024
LINGER_SECONDS = 5.0


def _envelope(status: int, code: str, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"success": False, "message": message, "error": code}).encode()
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")], body


class _Exchange:
    """One request/response through the middleware: what it knows, and the receive and send
    it gives the app in place of the server's."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, *, limit: int, limit_name: str,
                 body_read_timeout: float, has_body: bool, with_key: bool) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.limit, self.limit_name, self.body_read_timeout = limit, limit_name, body_read_timeout
        self.with_key = with_key
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + body_read_timeout
        self.received = 0
        self.body_done = not has_body
        self.timed_out = False
        self.started = False  # the response has begun (ours or the app's)
        self.refused = False  # we answered instead of the app

    async def linger(self) -> None:
        """Read and drop what is left of the body, within bounds (see the module doc)."""
        until = self.loop.time() + LINGER_SECONDS
        dropped = 0
        while not self.body_done and not self.timed_out and dropped < LINGER_BYTES:
            try:
                message = await asyncio.wait_for(self._receive(), max(until - self.loop.time(), 0.0))
            except TimeoutError:
                return
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)

    async def send_headers(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False) \
                and not self.body_done and not self.timed_out:
            await self._send({**message, "more_body": True})  # the whole answer is on its way
            await self.linger()
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if message["type"] == "http.response.start":
            self.started = True
            out = list(message.get("headers", []))
            names = {name.lower() for name, _ in out}
            if b"x-content-type-options" not in names:
                out.append((b"x-content-type-options", b"nosniff"))
            if self.with_key and b"cache-control" not in names:
                out.append((b"cache-control", b"no-store"))
            if not self.body_done and b"connection" not in names:
                out.append((b"connection", b"close"))  # answered before the body came: no reuse
            message = {**message, "headers": out}
        await self._send(message)

    async def refuse(self, status: int, code: str, message: str) -> None:
        if self.started:  # too late for an answer of ours: the app's stands
            return
        self.refused = True
        response_headers, body = _envelope(status, code, message)
        await self.send_headers({"type": "http.response.start", "status": status, "headers": response_headers})
        await self.send_headers({"type": "http.response.body", "body": body})

    async def too_large(self) -> None:
        await self.refuse(413, "PAYLOAD_TOO_LARGE",
                          f"the request body is larger than {self.limit} bytes ({self.limit_name})")

    async def app_send(self, message: Message) -> None:
        if not self.refused:  # once we have answered, what the app says goes nowhere
            await self.send_headers(message)

    async def app_receive(self) -> Message:
        if self.refused:
            return _DISCONNECT
        if self.body_done:  # after the body only a disconnect can come: no deadline
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), max(self.deadline - self.loop.time(), 0.0))
        except TimeoutError:
            self.timed_out = True  # no lingering for a client this slow
            log.info("%s %s: body not received within %ss: 408", self.scope.get("method"), self.scope.get("path"),
                     self.body_read_timeout)
            await self.refuse(408, "REQUEST_TIMEOUT",
                              f"the request body did not arrive within {self.body_read_timeout:g} seconds")
            return _DISCONNECT
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                await self.too_large()
                return _DISCONNECT
            if not message.get("more_body", False):
                self.body_done = True
        return message


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_read_timeout: float,
                 file_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_read_timeout = body_read_timeout
        # CSV/xlsx uploads (api.csv_upload) have their own limits: rows, and this many bytes.
        self.file_upload_bytes = file_upload_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        lengths = {value.strip() for name, value in headers if name == b"content-length"}
        declared = _content_length(lengths) if lengths else None
        limit = self.file_upload_bytes if _is_file_upload(scope, headers) else self.max_body_bytes
        ex = _Exchange(
            scope, receive, send, limit=limit,
            limit_name="MAX_BODY_BYTES" if limit == self.max_body_bytes else "MAX_UPLOAD_BYTES",
            body_read_timeout=self.body_read_timeout,
            has_body=bool(declared) or any(name == b"transfer-encoding" for name, _ in headers),  # Content-Length: 0 is none
            with_key=any(name == b"x-api-key" for name, _ in headers))
        # An empty Idempotency-Key is a client's bug, not "no key": refused (it used to reach the
        # store as the key "" of every such request, and a second one was a 500).
        if any(name == b"idempotency-key" and not value.strip() for name, value in headers):
            await ex.refuse(400, "BAD_REQUEST", "Idempotency-Key: must not be empty (leave the header out for none)")
            return
        if lengths and declared is None:
            await ex.refuse(400, "BAD_REQUEST", "invalid Content-Length header")
            return
        if declared is not None and declared > ex.limit:
            await ex.too_large()
            return
        try:
            await self.app(scope, ex.app_receive, ex.app_send)
        except ClientDisconnect:
            if not ex.refused:
                log.warning("%s %s: the client disconnected before its request was read (%d bytes)",
                            scope.get("method"), scope.get("path"), ex.received)
        except Exception:
            if not ex.refused:  # after our answer, the app's complaints about the cut-off body are moot
                raise


FILE_UPLOAD_PATHS = {"/uploadCampaignData", "/uploadCampaignDataAndRun"}


def _is_file_upload(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
    """A CSV/xlsx upload to an upload route (the media types of api.csv_upload)."""
    if scope.get("path") not in FILE_UPLOAD_PATHS:
        return False
    from api.csv_upload import is_file_upload

    content_type = next((value for name, value in headers if name == b"content-type"), b"")
    return is_file_upload(content_type.decode("latin-1"))


def _content_length(values: set[bytes]) -> int | None:
    """The declared length, or None when it is not one non-negative decimal number."""
    if len(values) != 1:
        return None
    (value,) = values
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)
