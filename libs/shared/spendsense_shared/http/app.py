"""The FastAPI app factory every service uses: conventions, health, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from spendsense_shared.http.errors import install_error_handlers
from spendsense_shared.http.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from spendsense_shared.metrics import CONTENT_TYPE_LATEST, generate_latest
from spendsense_shared.platform import ReadinessCheck
from spendsense_shared.settings import ServiceSettings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    readiness: dict[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    checks = readiness or {}

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
    )
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-correlation-id", "x-request-id", "etag"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name, emf=settings.metrics_emf)

    @app.get("/health", tags=["ops"], summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/ready", tags=["ops"], summary="Readiness: database, Redis and bus reachable")
    async def ready() -> JSONResponse:
        async def probe(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), timeout=3)
                return "ok"
            except Exception as exc:
                return f"error: {type(exc).__name__}: {exc}"[:200]

        results = dict(zip(checks, await asyncio.gather(*(probe(c) for c in checks.values())), strict=True))
        ok = all(v == "ok" for v in results.values())
        body = {"status": "ready" if ok else "not_ready", "service": settings.service_name, "checks": results}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
