"""A route whose dependency is down answers 503 ``unavailable`` with the error shape and Retry-After, not
500: the error raised is the driver's own (asyncpg refused by a port nobody listens on, through SQLAlchemy)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from spendsense_shared.embedded.servers import free_port
from spendsense_shared.http.app import create_service_app
from spendsense_shared.settings import ServiceSettings


def app_with(route: APIRouter) -> httpx.AsyncClient:
    app = create_service_app(ServiceSettings(service_name="faults"), title="t", routers=[route])
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )


async def test_a_database_refusing_connections_answers_503_unavailable():
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")
    route = APIRouter()

    @route.get("/things")
    async def things() -> dict[str, int]:
        async with engine.connect() as conn:
            return {"count": int(await conn.scalar(text("SELECT 1")) or 0)}

    async with app_with(route) as client:
        response = await client.get("/things")
    await engine.dispose()

    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["retry-after"] == "5"


async def test_a_bug_stays_500_internal_error():
    route = APIRouter()

    @route.get("/things")
    async def things() -> dict[str, int]:
        return {"count": int("not a number")}

    async with app_with(route) as client:
        response = await client.get("/things")

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
