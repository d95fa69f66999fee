"""The local gateway (port 8000): a reverse proxy over the route table (``proxy.py``), plus
``/api/v1/health``, which reports every service's readiness (kept a few seconds: a crowd asking costs one
round of probes), and the web app (``web/dist``) at ``/`` (see ``web.py``). Liveness is ``/health`` (no
I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.routing import Route

from spendsense_shared.gateway.proxy import UpstreamProxy, public_location
from spendsense_shared.gateway.web import default_web_dist, web_router
from spendsense_shared.http.app import create_service_app
from spendsense_shared.http.health import SharedResult
from spendsense_shared.logging import configure_logging, get_logger
from spendsense_shared.settings import ServiceSettings

__all__ = ["GatewaySettings", "create_gateway", "public_location"]

log = get_logger(__name__)
PROXIED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    upstreams: dict[str, str] = Field(
        default_factory=lambda: {
            s: f"http://127.0.0.1:{8000 + i}"
            for i, s in enumerate(("auth", "profile", "features", "recommender", "operator"), start=1)
        },
        description="Service name → base URL (JSON in SPENDSENSE_UPSTREAMS)",
    )
    upstream_timeout_s: float = 30.0
    max_request_bytes: int = 200 * 1024 * 1024  # uploads pass through; services apply their own limits


# Per service. A request past the cap waits for a connection; a service answers no sooner for more
# connections than it has requests in flight.
UPSTREAM_CONNECTIONS = 64


def create_gateway(settings: GatewaySettings | None = None, web_dist: Path | None = None) -> FastAPI:
    """The gateway app. ``web_dist``: the built web app to serve at ``/`` (default: this checkout's
    ``web/dist``)."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    proxy = UpstreamProxy(
        settings.upstreams, timeout_s=settings.upstream_timeout_s, connections=UPSTREAM_CONNECTIONS
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await proxy.aclose()

    async def probe_upstreams() -> dict[str, str]:
        async def probe(name: str, base: str) -> str:
            try:
                status = await proxy.get_status(name, "/ready", timeout_s=3)
                return "ready" if status == 200 else f"not ready ({status})"
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"unreachable ({type(exc).__name__})"

        names = list(settings.upstreams)
        results = await asyncio.gather(*(probe(n, settings.upstreams[n]) for n in names))
        return dict(zip(names, results, strict=True))

    # One round of probes at a time, kept a few seconds: many clients asking cost one round.
    upstreams = SharedResult(
        probe_upstreams,
        ttl_s=settings.readiness_cache_s,
        failure_ttl_s=min(settings.readiness_cache_s, 0.5),
        ok=lambda results: all(v == "ready" for v in results.values()),
    )

    async def check_upstreams() -> None:
        results = await upstreams.get()
        if any(v != "ready" for v in results.values()):
            raise RuntimeError(str(results))

    router = APIRouter()

    @router.get("/api/v1/health", tags=["ops"], summary="Readiness of every service behind the gateway")
    async def services_health() -> JSONResponse:
        results = await upstreams.get()
        ok = all(v == "ready" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ok else "degraded", "services": results}, 200 if ok else 503
        )

    # A plain ASGI route, not a FastAPI one: no dependencies to solve, no response object to build; the
    # middleware (correlation ids, metrics, security headers, NUL and size guards) still applies.
    router.routes.append(
        Route("/api/v1/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False)
    )
    return create_service_app(
        settings,
        title="SpendSense gateway",
        routers=[router, web_router(web_dist if web_dist is not None else default_web_dist())],
        readiness={"services": check_upstreams},
        lifespan=lifespan,
    )
