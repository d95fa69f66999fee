"""The local gateway (port 8000): a streaming reverse proxy over the route table, plus ``/api/v1/health``,
which reports every service's readiness (kept a few seconds: a crowd asking costs one round of probes),
and the web app (``web/dist``) at ``/`` (see ``web.py``). Liveness is ``/health`` (no I/O).

An idempotent request whose pooled connection turns out dead (the service closed it meanwhile) is sent
once more on a fresh connection; the dead one is discarded, never handed to the next request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
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
from spendsense_shared.http.health import SharedResult
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


UPSTREAM_CONNECTIONS = 64  # per service

# Sent again once when the connection drops before any byte of the answer (a pooled keep-alive
# connection the service closed meanwhile): they mean the same when repeated.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# The connection broke before the service answered: no response was read, nothing half-delivered.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)


async def send_with_retry(
    client: httpx.AsyncClient, build: Callable[[], httpx.Request], *, retries: int
) -> httpx.Response:
    """Sends ``build()`` (streamed); on a dropped connection sends a fresh copy up to ``retries`` times.
    httpx discards a connection that failed, so the retry (and the next caller) get another one."""
    for attempt in range(retries + 1):
        try:
            return await client.send(build(), stream=True)
        except DROPPED as exc:
            if attempt == retries:
                raise
            log.info("upstream_retry", error=type(exc).__name__)
    raise AssertionError("unreachable")


def public_location(location: str, upstream_bases: Iterable[str]) -> str:
    """A redirect to a service's own address, made relative: clients never learn internal addresses."""
    for base in upstream_bases:
        if location.startswith(base.rstrip("/") + "/"):
            return location[len(base.rstrip("/")) :]
    return location


def create_gateway(settings: GatewaySettings | None = None, web_dist: Path | None = None) -> FastAPI:
    """The gateway app. ``web_dist``: the built web app to serve at ``/`` (default: this checkout's
    ``web/dist``)."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    # A connection pool per service, each capped: httpx scans its whole pool on every request and
    # answer (quadratic in its connections): one shared pool of ~200 connections at 200 clients was the
    # gateway's main cost. A request past the cap waits for a connection; a service answers no sooner
    # for more connections than it has requests in flight.
    clients = {
        name: httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_s, connect=3.0),
            limits=httpx.Limits(max_connections=UPSTREAM_CONNECTIONS, max_keepalive_connections=32),
        )
        for name in settings.upstreams
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.gather(*(c.aclose() for c in clients.values()))

    async def probe_upstreams() -> dict[str, str]:
        async def probe(name: str, base: str) -> str:
            try:
                response = await clients[name].get(f"{base}/ready", timeout=3)
                return "ready" if response.status_code == 200 else f"not ready ({response.status_code})"
            except httpx.HTTPError as exc:
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
        url = settings.upstreams[route.service] + request.url.path
        client = clients[route.service]
        retryable = request.method in IDEMPOTENT
        # An idempotent request's body is kept (small: uploads are POSTs) so it can be sent again.
        content = await request.body() if retryable else request.stream()
        try:
            response = await send_with_retry(
                client,
                lambda: client.build_request(
                    request.method, url, params=request.query_params, headers=headers, content=content
                ),
                retries=1 if retryable else 0,
            )
        except httpx.InvalidURL:  # a character no URL may carry (NUL is refused before: NulGuardMiddleware)
            return JSONResponse(error_body("bad_request", "the path is not a valid URL path"), 400)
        except httpx.TimeoutException:
            return JSONResponse(error_body("gateway_timeout", f"{route.service} did not answer in time"), 504)
        except httpx.HTTPError as exc:
            log.warning("upstream_unreachable", service=route.service, error=type(exc).__name__)
            return JSONResponse(error_body("bad_gateway", f"{route.service} is unavailable"), 502)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        if "location" in out_headers:
            out_headers["location"] = public_location(out_headers["location"], settings.upstreams.values())
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
