"""The conventions every service app gets from create_service_app: error bodies, limits, ids, ops routes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from spendsense_shared.correlation import current_correlation_id
from spendsense_shared.http.app import create_service_app
from spendsense_shared.http.errors import ApiError, field_path
from spendsense_shared.settings import ServiceSettings

MAX_BYTES = 1024
SECRET = "password=hunter2 at db.internal:5432"


class Item(BaseModel):
    name: str
    amount: Decimal = Field(gt=0)


class Batch(BaseModel):
    items: list[Item]


def make_app(**settings_overrides: object) -> FastAPI:
    router = APIRouter()

    @router.post("/batches")
    async def create_batch(batch: Batch) -> dict[str, int]:
        return {"count": len(batch.items)}

    @router.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    @router.get("/conflict")
    async def conflict() -> None:
        raise ApiError(409, "already_exists", "that thing exists", details={"id": 7})

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET)

    @router.get("/correlation")
    async def correlation() -> dict[str, str | None]:
        return {"correlation_id": current_correlation_id()}

    settings = ServiceSettings(service_name="conventions", max_request_bytes=MAX_BYTES, **settings_overrides)
    return create_service_app(settings, title="conventions", routers=[router])


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: Starlette re-raises after answering 500; we want the answer, as a server would.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


async def test_unknown_route_is_404_not_found(client):
    error = assert_error_shape(await client.get("/no/such/route"), 404, "not_found")

    assert "details" not in error


async def test_wrong_method_is_405_method_not_allowed(client):
    response = await client.delete("/batches")

    assert_error_shape(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_api_error_keeps_its_status_code_and_details(client):
    error = assert_error_shape(await client.get("/conflict"), 409, "already_exists")

    assert error == {"code": "already_exists", "message": "that thing exists", "details": {"id": 7}}


async def test_validation_error_details_name_the_field_path(client):
    items = [{"name": "a", "amount": "1.00"}, {"name": "b", "amount": "2"}, {"name": "c", "amount": "-3"}]

    error = assert_error_shape(await client.post("/batches", json={"items": items}), 422, "validation_error")

    assert [d["field"] for d in error["details"]] == ["items[2].amount"]
    assert error["details"][0]["reason"]
    assert error["message"].startswith("items[2].amount: ")


async def test_validation_error_for_a_missing_body_field_and_a_bad_path_parameter(client):
    missing = assert_error_shape(
        await client.post("/batches", json={"items": [{"name": "x"}]}), 422, "validation_error"
    )
    bad_path = assert_error_shape(await client.get("/things/abc"), 422, "validation_error")

    assert [d["field"] for d in missing["details"]] == ["items[0].amount"]
    assert [d["field"] for d in bad_path["details"]] == ["thing_id"]


async def test_malformed_json_is_a_validation_error(client):
    response = await client.post(
        "/batches", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert_error_shape(response, 422, "validation_error")


@settings(max_examples=25, deadline=None)
@given(
    amounts=st.lists(st.decimals(min_value=1, max_value=10**6, places=2), min_size=1, max_size=8),
    data=st.data(),
)
async def test_validation_error_points_at_every_bad_item(app, amounts, data):
    bad = data.draw(st.sets(st.integers(0, len(amounts) - 1), min_size=1), label="bad indexes")
    items = [{"name": f"i{i}", "amount": str(-a if i in bad else a)} for i, a in enumerate(amounts)]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/batches", json={"items": items})

    error = assert_error_shape(response, 422, "validation_error")
    assert {d["field"] for d in error["details"]} == {f"items[{i}].amount" for i in bad}


async def test_unhandled_exception_is_500_internal_error_without_leaking_the_message(client):
    response = await client.get("/boom")

    error = assert_error_shape(response, 500, "internal_error")
    assert error["message"] == "internal error"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


async def test_body_over_the_limit_by_content_length_is_413(client):
    response = await client.post("/raw", content=b"x" * (MAX_BYTES + 1))

    assert_error_shape(response, 413, "payload_too_large")


async def test_body_at_the_limit_is_accepted(client):
    response = await client.post("/raw", content=b"x" * MAX_BYTES)

    assert response.status_code == 200
    assert response.json() == {"received": MAX_BYTES}


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_streamed_body_without_content_length_over_the_limit_is_413(client):
    response = await client.post("/raw", content=chunks(MAX_BYTES * 3))

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_error_shape(response, 413, "payload_too_large")


async def test_streamed_body_over_the_limit_is_413_on_a_json_route_too(client):
    # FastAPI turns errors while reading a JSON body into "400 error parsing the body"; the limit must win.
    async def big_json() -> AsyncIterator[bytes]:
        yield b'{"items": ['
        for _ in range(100):
            yield b'{"name": "padding-padding-padding", "amount": "1"},'
        yield b'{"name": "last", "amount": "1"}]}'

    response = await client.post("/batches", content=big_json(), headers={"content-type": "application/json"})

    assert_error_shape(response, 413, "payload_too_large")


async def test_streamed_body_under_the_limit_is_accepted(client):
    response = await client.post("/raw", content=chunks(MAX_BYTES - 10))

    assert response.status_code == 200
    assert response.json() == {"received": MAX_BYTES - 10}


async def test_correlation_id_from_the_request_is_echoed_and_bound_for_the_handler(client):
    response = await client.get("/correlation", headers={"X-Correlation-ID": "corr-abc-123"})

    assert response.headers["x-correlation-id"] == "corr-abc-123"
    assert response.json() == {"correlation_id": "corr-abc-123"}


async def test_correlation_id_is_generated_when_absent_and_differs_per_request(client):
    first = await client.get("/correlation")
    second = await client.get("/correlation")

    generated = first.headers["x-correlation-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert first.json() == {"correlation_id": generated}
    assert second.headers["x-correlation-id"] != generated
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_correlation_id_is_on_error_responses_too(client):
    response = await client.get("/no/such/route", headers={"X-Correlation-ID": "corr-404"})

    assert response.headers["x-correlation-id"] == "corr-404"


async def test_health_reports_ok_and_the_service_name(client):
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "conventions"}


async def test_ready_without_checks_is_ready(client):
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "service": "conventions", "checks": {}}


async def test_ready_reports_each_failing_check_and_answers_503():
    async def ok() -> None:
        return None

    async def broken() -> None:
        raise ConnectionError("refused")

    settings = ServiceSettings(service_name="conventions")
    app = create_service_app(settings, title="t", readiness={"database": ok, "redis": broken})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ConnectionError")


async def test_metrics_are_prometheus_text_counting_requests_by_route_template(client):
    await client.get("/things/41")
    await client.get("/things/42")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line.startswith("http_requests_total{") and 'service="conventions"' in line
    }
    key = 'http_requests_total{method="GET",route="/things/{thing_id}",service="conventions",status="200"}'
    assert samples[key] >= 2
    assert "# TYPE http_requests_total counter" in response.text
    assert "http_request_duration_seconds_bucket" in response.text


async def test_emf_records_are_written_per_request_when_enabled(capsys):
    app = make_app(metrics_emf=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/things/1")

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(records) == 1
    assert records[0]["Route"] == "GET /things/{thing_id}"
    assert records[0]["Service"] == "conventions"
    assert records[0]["Requests"] == 1
    assert records[0]["Errors5xx"] == 0


async def test_cors_headers_for_an_allowed_origin():
    app = make_app(cors_origins=["https://app.spendsense.example"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        simple = await client.get("/health", headers={"Origin": "https://app.spendsense.example"})
        preflight = await client.options(
            "/batches",
            headers={
                "Origin": "https://app.spendsense.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        foreign = await client.get("/health", headers={"Origin": "https://evil.example"})

    assert simple.headers["access-control-allow-origin"] == "https://app.spendsense.example"
    assert "x-correlation-id" in simple.headers["access-control-expose-headers"]
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.spendsense.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in foreign.headers


async def test_no_cors_headers_when_no_origins_are_configured(client):
    response = await client.get("/health", headers={"Origin": "https://app.spendsense.example"})

    assert "access-control-allow-origin" not in response.headers


# --- field_path -----------------------------------------------------------------------------------

_NAME = st.sampled_from(["body", "query", "path", "header", "items"]) | st.from_regex(
    r"\A[a-z_][a-z0-9_]{0,12}\Z"
)
_SEGMENT = _NAME | st.integers(min_value=0, max_value=10_000)


def parse_field_path(path: str) -> list[str | int]:
    """The inverse of field_path's notation: ``a.b[3].c`` → ``["a", "b", 3, "c"]``."""
    parts: list[str | int] = []
    for name, index in re.findall(r"\.?([a-z_][a-z0-9_]*)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return parts


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "transactions", 17, "amount"), "transactions[17].amount"),
        (("body", "items", 2, "amount"), "items[2].amount"),
        (("query", "limit"), "limit"),
        (("path", "user_id"), "user_id"),
        (("body",), "body"),
        (("body", "notification", "body"), "notification.body"),
        (("body", "files", 0, "path"), "files[0].path"),
        (("body", "query"), "query"),
    ],
)
def test_field_path_examples(loc, expected):
    assert field_path(loc) == expected


@given(
    location=st.sampled_from(["body", "query", "path", "header"]),
    first=_NAME,
    rest=st.lists(_SEGMENT, max_size=6),
)
def test_field_path_keeps_every_segment_after_the_location(location, first, rest):
    path = field_path((location, first, *rest))

    assert parse_field_path(path) == [first, *rest]
    assert not path.startswith((".", "["))
