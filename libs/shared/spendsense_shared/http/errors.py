"""Every error answers ``{"error": {"code", "message", "details"?}}`` (SPEC §9) with the right status."""

from __future__ import annotations

import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spendsense_shared.db_errors import db_error_fields
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.transient import is_transient

log = get_logger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """Raise from a route or dependency to answer with a precise, stable error code."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "transactions", 17, "amount")`` → ``transactions[17].amount``."""
    # Only the leading location is dropped: a field may itself be called "body", "path", …
    parts = list(loc[1:]) if len(loc) > 1 and loc[0] in _LOCATIONS else list(loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


class UnhandledErrorMiddleware:
    """Answers 500 ``internal_error`` for an exception a route let through, and swallows it.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then closes the
    connection: a client that keeps connections alive (the gateway) finds it dead on its next request.
    Added first, so it sits inside the other middleware (they see and count the 500)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # half an answer is out: only closing the connection tells the client
                raise
            await unexpected_response(exc)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(UnhandledErrorMiddleware)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": field_path(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        return JSONResponse(error_body("validation_error", message, details), 422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(exc)


UNAVAILABLE_RETRY_AFTER_S = 5


def unexpected_response(exc: BaseException) -> JSONResponse:
    """The answer to an exception no route handled: 503 ``unavailable`` (with ``Retry-After``) when a
    dependency is down or slow (PostgreSQL, Redis, the AWS endpoint: ``messaging.transient``), logged as
    one line; else 500 ``internal_error``, a bug, logged with where it was raised."""
    if is_transient(exc):
        log.warning("dependency_unavailable", error_type=type(exc).__name__, **(db_error_fields(exc) or {}))
        body = error_body("unavailable", "a service this request needs is unavailable; try again shortly")
        return JSONResponse(body, 503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})
    log_unexpected(exc)
    return JSONResponse(error_body("internal_error", "internal error"), 500)


def log_unexpected(exc: BaseException) -> None:
    """Logs an unexpected error. A database error's message quotes the values of the failed statement
    (user free text, ids): of it only the type, the SQL state and where it was raised are logged."""
    db_fields = db_error_fields(exc)
    if db_fields is None:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return
    every = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in every if "site-packages" not in f.filename]  # our code: where it went wrong
    frames = traceback.format_list(ours[-8:] + every[-2:])
    log.error("unhandled_error", error_type=type(exc).__name__, **db_fields, stack="".join(frames))
