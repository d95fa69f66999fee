"""Pure-ASGI middleware: correlation/request ids, request size limit, metrics (and EMF)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

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
