"""Pure-ASGI middleware: correlation/request ids, request size limit, metrics (and EMF), security headers,
and the refusal of NUL characters in the URL."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spendsense_shared.correlation import bind_correlation_id
from spendsense_shared.http.errors import error_body
from spendsense_shared.logging import get_logger
from spendsense_shared.metrics import HTTP_LATENCY, HTTP_REQUESTS, write_emf

log = get_logger("spendsense.http")
CORRELATION_HEADER = "x-correlation-id"
REQUEST_ID_HEADER = "x-request-id"


def _header(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key.decode("latin-1").lower() == name:
            return str(value.decode("latin-1"))[:128]
    return None


class RequestContextMiddleware:
    """Binds the correlation id (from ``X-Correlation-ID`` or new) to logs and events; times the request."""

    def __init__(self, app: ASGIApp, service: str, emf: bool = False):
        self.app = app
        self.service = service
        self.emf = emf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(service=self.service)
        correlation_id = bind_correlation_id(_header(scope, CORRELATION_HEADER))
        request_id = _header(scope, REQUEST_ID_HEADER) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers += [
                    (CORRELATION_HEADER.encode(), correlation_id.encode()),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
            if template not in ("/health", "/metrics"):
                log.info(
                    "http_request", method=method, route=template, status=status, ms=round(elapsed * 1000, 2)
                )
            if self.emf:
                write_emf(
                    "SpendSense",
                    {"Service": self.service, "Route": f"{method} {template}"},
                    {"Latency": elapsed * 1000, "Requests": 1, "Errors5xx": int(status >= 500)},
                    {"Latency": "Milliseconds", "Requests": "Count", "Errors5xx": "Count"},
                )


class BodySizeLimitMiddleware:
    """Answers 413 before reading more than ``max_bytes`` (by Content-Length, or while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, "content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        response_started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer 413 now: the app may turn the exception into another error (FastAPI answers
                    # 400 for any failure while reading a JSON body), which tracking_send then drops.
                    if not response_started and not rejected:
                        rejected = True
                        await self._reject(send)
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        # Answered in limited_receive (or the app's response had already started).
        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, tracking_send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            error_body("payload_too_large", f"request body exceeds {self.max_bytes} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _json_response(status: int, body: dict[str, Any]) -> list[Message]:
    encoded = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": encoded},
    ]


class NulGuardMiddleware:
    """A NUL character (``%00``) in the path answers 400, in a query parameter 422 naming it: PostgreSQL
    cannot store or compare it, and an upstream URL cannot carry it (the gateway's client refuses it)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answer = self._refusal(scope)
            if answer is not None:
                for message in answer:
                    await send(message)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> list[Message] | None:
        if "\x00" in scope["path"]:
            return _json_response(400, error_body("bad_request", "path: must not contain a NUL character"))
        query = scope.get("query_string", b"")
        if b"%00" not in query and b"\x00" not in query:
            return None
        bad = [
            name
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            if "\x00" in name or "\x00" in value
        ]
        if not bad:
            return None
        reason = "must not contain a NUL character"
        details = [{"field": name.replace("\x00", "\\0"), "reason": reason} for name in bad]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        return _json_response(422, error_body("validation_error", message, details))


class SecurityHeadersMiddleware:
    """Headers every answer carries unless the route set its own: no MIME sniffing, no framing, no
    referrer; JSON is never cached by the browser or a proxy (``no-store``) and may load nothing
    (``default-src 'none'``); HSTS when the request came over https (behind a trusted proxy: as the
    proxy says in ``X-Forwarded-Proto``)."""

    def __init__(self, app: ASGIApp, trust_proxy: bool = False):
        self.app = app
        self.trust_proxy = trust_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https" or (
            self.trust_proxy and (_header(scope, "x-forwarded-proto") or "").lower() == "https"
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _secured(list(message.get("headers", [])), https)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _secured(headers: list[tuple[bytes, bytes]], https: bool) -> list[tuple[bytes, bytes]]:
    present = {k.lower(): v for k, v in headers}
    json_body = present.get(b"content-type", b"").split(b";")[0].strip().endswith(b"json")
    wanted = {
        b"x-content-type-options": b"nosniff",
        b"x-frame-options": b"DENY",
        b"referrer-policy": b"no-referrer",
        b"content-security-policy": (
            b"default-src 'none'; frame-ancestors 'none'" if json_body else b"frame-ancestors 'none'"
        ),
    }
    if json_body:
        wanted[b"cache-control"] = b"no-store"
    if https:
        wanted[b"strict-transport-security"] = b"max-age=31536000; includeSubDomains"
    return headers + [(k, v) for k, v in wanted.items() if k not in present]
