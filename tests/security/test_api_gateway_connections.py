"""Finding 4 of the security review: a 500 no longer poisons the next request through the gateway.

It happened in two steps: a service that answered 500 closed the connection afterwards (Starlette re-raises
after its last-resort handler, and uvicorn then drops the connection), and the gateway handed that
pooled, dead keep-alive connection to the next request, which failed 502 ``ReadError``. Now a service
keeps the connection after a 500, and the gateway sends an idempotent request once more, on a fresh
connection, when its pooled one turns out dead before any answer; a POST is never sent twice.

Real servers: the service under uvicorn; the upstream that drops connections is a plain TCP server.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from spendsense_shared.embedded.servers import free_port
from spendsense_shared.gateway.app import GatewaySettings, create_gateway
from spendsense_shared.http.app import create_service_app
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "security_support.py", "spendsense_security_support")

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


class DroppingUpstream:
    """Answers the first request of every connection (keeping it alive), then reads the next request on
    it and closes the connection without a word: a server that closed an idle keep-alive connection just
    as the client reused it."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # request lines, in the order received
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return f"http://127.0.0.1:{self.port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for number in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head.split(b"\r\n", 1)[0].decode())
                await read_body(reader, head)
                if number == 0:
                    # an answer to HEAD has no body (an HTTP client refuses the extra bytes)
                    writer.write(
                        OK.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" if head.startswith(b"HEAD") else OK
                    )
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    lines = [line.lower() for line in head.split(b"\r\n")]
    if b"transfer-encoding: chunked" in lines:  # the gateway streams a POST's body
        await reader.readuntil(b"0\r\n\r\n")
        return
    length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")), 0)
    await reader.readexactly(length)


def gateway_on(upstream: str):
    settings = GatewaySettings(upstreams={"recommender": upstream}, readiness_cache_s=0)
    app = create_gateway(settings, web_dist=Path("/nonexistent"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
async def test_an_idempotent_request_on_a_dropped_keep_alive_connection_is_sent_again(method):
    upstream = DroppingUpstream()
    async with upstream as base, gateway_on(base) as gateway:
        first = await gateway.request(method, "/api/v1/recommendations/u1")
        second = await gateway.request(method, "/api/v1/recommendations/u1")
        third = await gateway.request(method, "/api/v1/recommendations/u1")

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    # second: sent on the pooled connection (dropped), then again on a new one, which the third reuses
    # (dropped), and so on: every request reached the service, none was answered 502
    assert len(upstream.requests) == 5, upstream.requests


async def test_a_post_is_never_sent_twice():
    upstream = DroppingUpstream()
    async with upstream as base, gateway_on(base) as gateway:
        first = await gateway.post("/api/v1/recommendations/u1/feedback", json={"kind": "helpful"})
        second = await gateway.post("/api/v1/recommendations/u1/feedback", json={"kind": "helpful"})

    assert first.status_code == 200
    assert second.status_code == 502  # it may have been processed: only the client may decide to repeat it
    assert second.json()["error"]["code"] == "bad_gateway"
    assert len(upstream.requests) == 2


def failing_app():
    router = APIRouter()

    @router.get("/api/v1/recommendations/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("a bug")

    @router.get("/api/v1/recommendations/fine")
    async def fine() -> dict[str, str]:
        return {"status": "fine"}

    return create_service_app(ServiceSettings(service_name="t"), title="t", routers=[router])


def exchange(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: t\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data  # the server closed the connection
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


async def test_a_service_keeps_the_connection_after_answering_500():
    async with support.serving(failing_app()) as base:
        port = int(base.rsplit(":", 1)[1])

        def two_requests_on_one_connection() -> tuple[bytes, bytes]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                return exchange(sock, "/api/v1/recommendations/boom"), exchange(
                    sock, "/api/v1/recommendations/fine"
                )

        failed, after = await asyncio.to_thread(two_requests_on_one_connection)

    assert failed.startswith(b"HTTP/1.1 500"), failed
    assert b"connection: close" not in failed.lower()
    assert after.startswith(b"HTTP/1.1 200"), after


async def test_through_the_gateway_a_500_does_not_fail_the_next_clients_request():
    async with support.serving(failing_app()) as base:
        settings = GatewaySettings(upstreams={"recommender": base}, readiness_cache_s=0)
        app = create_gateway(settings, web_dist=Path("/nonexistent"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as gw:
            statuses = []
            for _ in range(10):
                for path in ("boom", "fine"):
                    statuses.append((await gw.get(f"/api/v1/recommendations/{path}")).status_code)
    assert statuses == [500, 200] * 10, statuses
