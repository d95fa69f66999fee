"""Conditional GETs: a strong ETag over the response's JSON, and 304 when the client already has it."""

from __future__ import annotations

import hashlib
import json

from fastapi import Request, Response
from pydantic import BaseModel


def etag_of(payload: BaseModel) -> str:
    body = json.dumps(payload.model_dump(mode="json"), sort_keys=True).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def conditional(
    request: Request, response: Response, payload: BaseModel, cache_control: str
) -> BaseModel | Response:
    """``payload`` with its ETag, or an empty 304 when ``If-None-Match`` names that tag."""
    tag = etag_of(payload)
    headers = {"ETag": tag, "Cache-Control": cache_control}
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return payload
