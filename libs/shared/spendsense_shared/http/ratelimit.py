"""Request rate limits of every service: per signed-in client (by its access token) on requests that
carry one, per client address on the others; 429 ``rate_limited`` with ``Retry-After`` past the limit.

Keyed by the token itself, not by the user id inside it: the middleware runs before the token is
verified, and a forged token (any ``sub``) must spend only its own budget, never its victim's. A user's
token is the user for as long as it lives (one hour).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from spendsense_shared.http.errors import error_body
from spendsense_shared.ratelimit import FixedWindowLimiter

# Probes and scrapes are never limited: a load balancer must always learn the truth.
UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics", "/livez"})


@dataclass(frozen=True)
class RateLimits:
    per_user: int
    per_ip: int
    window_s: int
    trust_proxy: bool  # behind the gateway: the client is the first X-Forwarded-For entry


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: FixedWindowLimiter, limits: RateLimits):
        self.app = app
        self.limiter = limiter
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        scope_name, key, limit = self._client(scope)
        retry_after = await self.limiter.hit(scope_name, key, limit, self.limits.window_s)
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            error_body("rate_limited", f"too many requests; try again in {retry_after} s")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _client(self, scope: Scope) -> tuple[str, str, int]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return "user", token.strip(), self.limits.per_user
        address = scope["client"][0] if scope.get("client") else "unknown"
        if self.limits.trust_proxy:
            address = headers.get("x-forwarded-for", "").split(",", 1)[0].strip() or address
        return "ip", address, self.limits.per_ip
