"""The FastAPI app factory every service uses: conventions, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from spendsense_shared.http.errors import install_error_handlers
from spendsense_shared.http.health import ReadinessCheck
from spendsense_shared.http.health import readiness as cached_readiness
from spendsense_shared.http.middleware import (
    BodySizeLimitMiddleware,
    NulGuardMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from spendsense_shared.http.ratelimit import RateLimitMiddleware, RateLimits
from spendsense_shared.metrics import CONTENT_TYPE_LATEST, generate_latest
from spendsense_shared.ratelimit import FixedWindowLimiter
from spendsense_shared.settings import ServiceSettings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

# Every route may answer these (the middleware does): documented once, for clients and the fuzzer.
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {"description": "`rate_limited`: too many requests; `Retry-After` says when to retry", **_ERROR},
}


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    readiness: dict[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
    rate_limiter: FixedWindowLimiter | None = None,
) -> FastAPI:
    checks = readiness if readiness is not None else {}  # named checks: a service may add its own

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            yield
        else:
            async with lifespan(app):
                yield

    app = FastAPI(
        title=title,
        version="0.1.0",
        lifespan=run,
        docs_url="/docs",
        openapi_url="/openapi.json",
        # No redirect to the path with(out) its trailing slash: its Location would name this process's
        # own address (behind the gateway, an internal one). Such a path is 404, like any unknown path.
        redirect_slashes=False,
        responses=COMMON_RESPONSES if rate_limiter is not None else None,
    )
    install_error_handlers(app)
    if rate_limiter is not None:
        limits = RateLimits(
            per_user=settings.rate_limit_per_user,
            per_ip=settings.rate_limit_per_ip,
            window_s=settings.rate_limit_window_s,
            trust_proxy=settings.trust_proxy,
        )
        app.add_middleware(RateLimitMiddleware, limiter=rate_limiter, limits=limits)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-correlation-id", "x-request-id", "etag", "retry-after"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, trust_proxy=settings.trust_proxy)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name, emf=settings.metrics_emf)
    ready_state = cached_readiness(checks, ttl_s=settings.readiness_cache_s)

    @app.get("/health", tags=["ops"], summary="Liveness: the process answers (no I/O)")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get(
        "/ready",
        tags=["ops"],
        summary="Readiness: database, Redis and bus reachable (kept a few seconds, shared by callers)",
    )
    async def ready() -> JSONResponse:
        results = await ready_state.get()
        ok = all(v == "ok" for v in results.values())
        body = {"status": "ready" if ok else "not_ready", "service": settings.service_name, "checks": results}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    _document_error_body(app)
    return app


ERROR_BODY_SCHEMA: dict[str, Any] = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


def _document_error_body(app: FastAPI) -> None:
    """The OpenAPI document says what errors really look like (SPEC §9): FastAPI's own 422 schema
    (``{"detail": [...]}``) is replaced by the error body every error answers with."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["ErrorBody"] = ERROR_BODY_SCHEMA
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_BODY_SCHEMA
                schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
