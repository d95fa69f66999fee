"""The one translation of a domain refusal into the HTTP error shape."""

from __future__ import annotations

from spendsense_auth.domain.accounts import AuthError
from spendsense_shared.http.errors import ApiError


def api_error(exc: AuthError) -> ApiError:
    headers = {"Retry-After": str(max(1, exc.retry_after_s))} if exc.retry_after_s is not None else None
    if exc.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return ApiError(exc.status, exc.code, exc.message, details=exc.details, headers=headers)
