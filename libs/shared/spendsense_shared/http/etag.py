"""Conditional GETs: a strong ETag over the response's JSON, and 304 when the client already has it.

The payload is serialized once and the tag is the hash of those very bytes, which are sent as they are
(:mod:`spendsense_shared.http.responses`)."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

from spendsense_shared.http.responses import model_json


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def conditional(request: Request, payload: BaseModel, cache_control: str) -> Response:
    """``payload`` as JSON with its ETag, or an empty 304 when ``If-None-Match`` names that tag."""
    body = model_json(payload)
    return conditional_body(request, body, etag_of(body), cache_control)


def conditional_body(request: Request, body: bytes, etag: str, cache_control: str) -> Response:
    """JSON ``body`` already serialized, tagged ``etag``: sent, or an empty 304 for a client that has it."""
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
