"""Dependencies of the auth routers whose values ``bootstrap`` provides."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from spendsense_shared.http.deps import wired, wired_value


@wired
async def proxy_trusted(request: Request) -> bool:
    """Whether a trusted proxy (the gateway) stands in front (``SPENDSENSE_TRUST_PROXY``; bootstrap)."""
    return bool(wired_value(request, proxy_trusted, False))


def client_ip(request: Request, trusted: Annotated[bool, Depends(proxy_trusted)]) -> str:
    """The client's address: the socket peer, or — behind a trusted proxy — the first
    ``X-Forwarded-For`` entry (the gateway sets it to the address it was called from)."""
    if trusted:
        first = request.headers.get("x-forwarded-for", "").split(",", 1)[0].strip()
        if first:
            return first
    return request.client.host if request.client else "unknown"


ClientIp = Annotated[str, Depends(client_ip)]
