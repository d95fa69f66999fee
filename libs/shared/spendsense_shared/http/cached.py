"""A hot read answered from the process's :class:`~spendsense_shared.read_cache.ReadCache`.

The route authorizes as always (the token, the role, the user's consent: every request), then asks
:func:`cached_json` for the body: from memory when this principal made the same request since the user's
data last changed, else built (``build``), serialized once and remembered. The key is the principal and
the request line, so no one is ever answered with what another principal was shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from spendsense_shared.http.deps import wired, wired_value
from spendsense_shared.http.etag import conditional_body, etag_of
from spendsense_shared.http.responses import model_json
from spendsense_shared.read_cache import ReadCache
from spendsense_shared.security import Principal


@wired
async def read_cache(request: Request) -> ReadCache:
    cache: ReadCache = wired_value(request, read_cache)
    return cache


ReadCacheDep = Annotated[ReadCache, Depends(read_cache)]
Payload = TypeVar("Payload", bound=BaseModel)


def cache_key(request: Request, principal: Principal) -> str:
    roles = ",".join(sorted(principal.roles))
    return f"{principal.user_id}|{roles}|{request.url.path}?{request.url.query}"


async def cached_json(
    request: Request,
    cache: ReadCache,
    principal: Principal,
    user_id: str,
    build: Callable[[], Awaitable[Payload]],
    cache_control: str = "private, no-cache",
    *,
    keep: Callable[[Payload], bool] = lambda _: True,
) -> Response:
    """The JSON of ``build()`` (about ``user_id``'s data) with its ETag, or 304 when the client has it.
    ``keep``: whether this answer may be remembered (every change to what it shows notifies ``user_id``)."""
    key = cache_key(request, principal)
    entry = cache.lookup(user_id, key)
    if entry is None:
        version = cache.version(user_id)
        payload = await build()
        body = model_json(payload)
        if keep(payload):
            entry = cache.remember(user_id, key, body, etag_of(body), version)
        else:
            return conditional_body(request, body, etag_of(body), cache_control)
    return conditional_body(request, entry.body, entry.etag, cache_control)
