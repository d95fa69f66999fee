"""The public half of the signing key, for every service's token verifier."""

from typing import Any

from fastapi import APIRouter, Request, Response

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.get("/.well-known/jwks.json", summary="JSON Web Key Set used to verify access tokens")
async def jwks(request: Request, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    keys: dict[str, Any] = request.app.state.signing_key.jwks()
    return keys
