"""Cursor pagination: opaque cursors round-trip, and anything else is 422 invalid_cursor."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from fastapi import APIRouter, Depends
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_shared.http.app import create_service_app
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, decode_cursor, encode_cursor, page_params
from spendsense_shared.settings import ServiceSettings

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=10
)
POSITIONS = st.dictionaries(st.text(), JSON_VALUES)


URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@settings(max_examples=60)
@given(position=POSITIONS)
def test_cursor_is_url_safe_unpadded_and_round_trips_any_json_object(position):
    cursor = encode_cursor(position)

    assert set(cursor) <= URL_SAFE
    assert decode_cursor(cursor) == position


def decode_outcome(cursor: str) -> dict[str, object] | tuple[int, str]:
    try:
        return decode_cursor(cursor)
    except ApiError as exc:
        return (exc.status, exc.code)


@given(cursor=st.text())
def test_any_string_decodes_to_an_object_or_raises_invalid_cursor(cursor):
    outcome = decode_outcome(cursor)

    assert isinstance(outcome, dict) or outcome == (422, "invalid_cursor")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "not base64 at all",
        base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),  # JSON, but not an object
        base64.urlsafe_b64encode(b'"a string"').decode(),
        base64.urlsafe_b64encode(b"{broken json").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
    ],
)
def test_invalid_cursors_raise_invalid_cursor(cursor):
    with pytest.raises(ApiError) as raised:
        decode_cursor(cursor)

    assert (raised.value.status, raised.value.code) == (422, "invalid_cursor")


@pytest.fixture(scope="module")
def app():
    router = APIRouter()

    @router.get("/things")
    async def things(page: PageParams = Depends(page_params)) -> dict[str, object]:
        return {"limit": page.limit, "after": page.after}

    return create_service_app(ServiceSettings(service_name="pages"), title="pages", routers=[router])


async def get(app, params: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/things", params=params)


async def test_page_params_decode_the_cursor(app):
    cursor = encode_cursor({"created_at": "2026-01-01T00:00:00Z", "id": "r-9"})

    response = await get(app, {"cursor": cursor, "limit": "10"})

    assert response.status_code == 200
    assert response.json() == {"limit": 10, "after": {"created_at": "2026-01-01T00:00:00Z", "id": "r-9"}}


async def test_first_page_has_no_position_and_the_default_limit(app):
    response = await get(app, {})

    assert response.json() == {"limit": 50, "after": None}


async def test_invalid_cursor_is_422_invalid_cursor(app):
    response = await get(app, {"cursor": "definitely-not-ours"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "201", "-1", "many"])
async def test_limit_out_of_range_is_a_validation_error_on_limit(app, limit):
    response = await get(app, {"limit": limit})

    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == ["limit"]


def test_encoded_cursor_is_compact_json():
    cursor = encode_cursor({"id": 1})

    assert json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) == {"id": 1}
