"""The public half of the signing key, for every service's token verifier."""

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request, Response

from spendsense_shared.http.deps import wired, wired_value

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class PublishesKeys(Protocol):
    def jwks(self) -> dict[str, Any]: ...


@wired
async def signing_key(request: Request) -> PublishesKeys:
    """The auth service's signing key (``bootstrap`` provides it)."""
    key: PublishesKeys = wired_value(request, signing_key)
    return key


@router.get("/.well-known/jwks.json", summary="JSON Web Key Set used to verify access tokens")
async def jwks(response: Response, key: Annotated[PublishesKeys, Depends(signing_key)]) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return key.jwks()
