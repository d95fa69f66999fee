"""A response model sent as JSON serialized once.

A route that returns a pydantic model has FastAPI validate it against ``response_model`` and encode it
again; a hot read whose payload is already that model sends pydantic's own JSON instead (the route's
``response_model`` still documents the body)."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_json(payload: BaseModel) -> bytes:
    return payload.model_dump_json().encode()


def model_response(payload: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(model_json(payload), media_type="application/json", headers=headers)
