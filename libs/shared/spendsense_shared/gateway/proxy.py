"""The gateway's reverse proxy: a plain ASGI app over an aiohttp client (one connection pool per service).

Why not a FastAPI route over httpx: at 200 clients the gateway used ~3 ms of CPU per request, most of it
httpx/httpcore (pure-Python HTTP/1.1, a pool scanned on every request) and FastAPI's per-request work
(dependency solving, a streaming response's task group). aiohttp parses HTTP in C and keeps each
service's idle connections in a queue; the route here is matched once, by the route table.

What passes: the request's method, path and query as the client sent them (``raw_path``, not decoded and
encoded again), its headers but the hop-by-hop ones, and its body (read whole when it is small, else
streamed); the answer's status, headers (without hop-by-hop ones and those the gateway sets itself; a
redirect to a service's own address made relative) and body (sent in one piece when small and of known
length, else streamed).

An idempotent request whose pooled connection turns out dead (the service closed it meanwhile) is sent
once more on a fresh connection; the dead one is discarded, never handed to the next request. (aiohttp
itself also repeats an idempotent request once when a reused connection drops.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp
from multidict import CIMultiDict
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from spendsense_shared.correlation import current_correlation_id
from spendsense_shared.gateway.routes import resolve
from spendsense_shared.http.errors import error_body
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}
)
# Set by the gateway itself (its middleware), never copied from a service's answer.
OWN_HEADERS = frozenset({"x-correlation-id", "x-request-id", "date", "server"})
_DROPPED_OUT = frozenset(h.encode() for h in HOP_BY_HOP | OWN_HEADERS)
_HOP_BY_HOP_IN = frozenset(h.encode() for h in HOP_BY_HOP | {"x-correlation-id", "x-forwarded-for"})

# Sent again once when the connection drops before any byte of the answer (a pooled keep-alive
# connection the service closed meanwhile): they mean the same when repeated.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# The connection broke before the service answered: no response was read, nothing half-delivered.
DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)
WHOLE_BODY_BYTES = 1024 * 1024  # a request or answer up to this size is read whole, not streamed
# Below uvicorn's 5 s keep-alive: the gateway drops an idle connection before the service would.
KEEPALIVE_S = 4.0


def public_location(location: str, upstream_bases: Iterable[str]) -> str:
    """A redirect to a service's own address, made relative: clients never learn internal addresses."""
    for base in upstream_bases:
        if location.startswith(base.rstrip("/") + "/"):
            return location[len(base.rstrip("/")) :]
    return location


class UpstreamProxy:
    """ASGI app: ``/api/v1/…`` to the service the route table names. ``connections``: per service."""

    def __init__(self, upstreams: Mapping[str, str], *, timeout_s: float, connections: int):
        self.upstreams = {name: base.rstrip("/") for name, base in upstreams.items()}
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_s, sock_connect=3.0, sock_read=timeout_s
        )
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The client (made on first use: aiohttp binds it to the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,  # no overall cap: each service has its own
                limit_per_host=self.connections,
                keepalive_timeout=KEEPALIVE_S,
                use_dns_cache=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                auto_decompress=False,  # the body passes as the service encoded it
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),  # the gateway never keeps a client's cookies
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_status(self, name: str, path: str, timeout_s: float) -> int:
        """The status of ``GET path`` on service ``name`` (readiness probes)."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self.session().get(self.upstreams[name] + path, timeout=timeout) as response:
            await response.read()
            return response.status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        route = resolve(method, path)
        if route is None or route.service not in self.upstreams:
            await _send_json(send, 404, error_body("not_found", f"no route for {method} {path}"))
            return
        target = self.upstreams[route.service] + _raw_target(scope)
        headers = _forwarded_headers(scope)
        retryable = method in IDEMPOTENT
        body: bytes | AsyncIterator[bytes] = await _request_body(scope, receive, whole=retryable)
        try:
            url = URL(target, encoded=True)
            response = await self._send(method, url, headers, body, retries=1 if retryable else 0)
        except (ValueError, aiohttp.InvalidURL):  # a character no URL may carry (NUL is refused before)
            await _send_json(send, 400, error_body("bad_request", "the path is not a valid URL path"))
            return
        except TimeoutError:
            await _send_json(
                send, 504, error_body("gateway_timeout", f"{route.service} did not answer in time")
            )
            return
        except aiohttp.ClientError as exc:
            log.warning("upstream_unreachable", service=route.service, error=type(exc).__name__)
            await _send_json(send, 502, error_body("bad_gateway", f"{route.service} is unavailable"))
            return
        try:
            await self._relay(response, method, send)
        finally:
            response.release()

    async def _send(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes],
        *,
        retries: int,
    ) -> aiohttp.ClientResponse:
        """Sends the request; on a dropped connection sends it again up to ``retries`` times (aiohttp
        closes a connection that failed, so the retry and the next caller get another one)."""
        for attempt in range(retries + 1):
            try:
                return await self.session().request(
                    method, url, headers=headers, data=body or None, allow_redirects=False
                )
            except DROPPED as exc:
                if attempt == retries:
                    raise
                log.info("upstream_retry", error=type(exc).__name__)
        raise AssertionError("unreachable")

    async def _relay(self, response: aiohttp.ClientResponse, method: str, send: Send) -> None:
        headers = [(name, value) for name, value in response.raw_headers if name.lower() not in _DROPPED_OUT]
        location = response.headers.get("location")
        if location is not None:
            public = public_location(location, self.upstreams.values()).encode("latin-1")
            headers = [(n, public if n.lower() == b"location" else v) for n, v in headers]
        length = response.content_length
        if method == "HEAD" or (length is not None and length <= WHOLE_BODY_BYTES):
            content = await response.read()
            if method == "HEAD" and length is not None:
                headers.append((b"content-length", str(length).encode()))
            elif response.status not in (204, 304):
                headers.append((b"content-length", str(len(content)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else content})
            return
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _raw_target(scope: Scope) -> str:
    """The path and query as the client sent them (percent-encoding kept)."""
    raw = scope.get("raw_path") or scope["path"].encode()
    target = raw.decode("latin-1")
    query: bytes = scope.get("query_string", b"")
    return f"{target}?{query.decode('latin-1')}" if query else target


def _forwarded_headers(scope: Scope) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k.lower() not in _HOP_BY_HOP_IN
    )
    headers["x-correlation-id"] = current_correlation_id() or ""
    client = scope.get("client")
    headers["x-forwarded-for"] = client[0] if client else ""
    length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
    if length is not None:
        headers["content-length"] = length.decode("latin-1")
    return headers


async def _request_body(scope: Scope, receive: Receive, *, whole: bool) -> bytes | AsyncIterator[bytes]:
    """The request's body: whole (to send again on a retry, or when small), else a stream."""
    length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
    small = length is not None and length.isdigit() and int(length) <= WHOLE_BODY_BYTES
    if whole or small:
        chunks = []
        more = True
        while more:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(chunks)
    return _stream(receive)


async def _stream(receive: Receive) -> AsyncIterator[bytes]:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        more = message.get("more_body", False)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    encoded = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": encoded})
