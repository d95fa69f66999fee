"""The local gateway (port 8000): a streaming reverse proxy over the route table, plus ``/api/v1/health``,
which reports every service's readiness, and the web app (``web/dist``) at ``/`` (see ``web.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field
from starlette.background import BackgroundTask

from spendsense_shared.correlation import current_correlation_id
from spendsense_shared.gateway.routes import resolve
from spendsense_shared.gateway.web import default_web_dist, web_router
from spendsense_shared.http.app import create_service_app
from spendsense_shared.http.errors import error_body
from spendsense_shared.logging import configure_logging, get_logger
from spendsense_shared.settings import ServiceSettings

log = get_logger(__name__)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


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


def create_gateway(settings: GatewaySettings | None = None, web_dist: Path | None = None) -> FastAPI:
    """The gateway app. ``web_dist``: the built web app to serve at ``/`` (default: this checkout's
    ``web/dist``)."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout_s, connect=3.0),
        limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def upstreams_ready() -> dict[str, str]:
        async def probe(name: str, base: str) -> str:
            try:
                response = await client.get(f"{base}/ready", timeout=3)
                return "ready" if response.status_code == 200 else f"not ready ({response.status_code})"
            except httpx.HTTPError as exc:
                return f"unreachable ({type(exc).__name__})"

        names = list(settings.upstreams)
        results = await asyncio.gather(*(probe(n, settings.upstreams[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def check_upstreams() -> None:
        results = await upstreams_ready()
        if any(v != "ready" for v in results.values()):
            raise RuntimeError(str(results))

    router = APIRouter()

    @router.get("/api/v1/health", tags=["ops"], summary="Readiness of every service behind the gateway")
    async def services_health() -> JSONResponse:
        results = await upstreams_ready()
        ok = all(v == "ready" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ok else "degraded", "services": results}, 200 if ok else 503
        )

    @router.api_route(
        "/api/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
        include_in_schema=False,
    )
    async def proxy(request: Request, path: str) -> Response:
        route = resolve(request.method, request.url.path)
        if route is None or route.service not in settings.upstreams:
            return JSONResponse(
                error_body("not_found", f"no route for {request.method} {request.url.path}"), 404
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-correlation-id"] = current_correlation_id() or ""
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        upstream = client.build_request(
            request.method,
            settings.upstreams[route.service] + request.url.path,
            params=request.query_params,
            headers=headers,
            content=request.stream(),
        )
        try:
            response = await client.send(upstream, stream=True)
        except httpx.TimeoutException:
            return JSONResponse(error_body("gateway_timeout", f"{route.service} did not answer in time"), 504)
        except httpx.HTTPError as exc:
            log.warning("upstream_unreachable", service=route.service, error=type(exc).__name__)
            return JSONResponse(error_body("bad_gateway", f"{route.service} is unavailable"), 502)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        for own in ("x-correlation-id", "x-request-id", "date", "server"):  # the gateway sets its own
            out_headers.pop(own, None)
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers=out_headers,
            background=BackgroundTask(response.aclose),
        )

    return create_service_app(
        settings,
        title="SpendSense gateway",
        routers=[router, web_router(web_dist if web_dist is not None else default_web_dist())],
        readiness={"services": check_upstreams},
        lifespan=lifespan,
    )
