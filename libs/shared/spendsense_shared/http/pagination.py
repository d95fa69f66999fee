"""Cursor pagination for every list: ``{"items": [...], "next_cursor": ...}``. A cursor that does not
decode, or is not what the list issues (:mod:`.cursor`), answers 422 ``invalid_cursor``."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import Query
from pydantic import BaseModel

from spendsense_shared.http.cursor import invalid_cursor


class PageParams(BaseModel):
    limit: int
    after: dict[str, Any] | None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise invalid_cursor() from None
    if not isinstance(value, dict):
        raise invalid_cursor()
    return value


async def page_params(  # async: a plain function would run in the thread pool
    limit: int = Query(50, ge=1, le=200, description="Items per page"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)
