"""The object-store port handlers depend on (S3 in production and the embedded stack:
:class:`spendsense_shared.storage.ObjectStore`; in memory in unit tests)."""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    bucket: str

    async def put_many(self, items: list[tuple[str, bytes]], content_type: str) -> list[str]:
        """Store each ``(name, body)``; returns the object keys."""
        ...

    async def get_many(self, names: list[str]) -> list[bytes]: ...

    async def get(self, name: str) -> bytes: ...

    async def delete_prefix(self, name_prefix: str) -> int:
        """Delete every object whose name starts with ``name_prefix``; how many there were."""
        ...


MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def object_missing(exc: BaseException) -> bool:
    """Whether ``exc`` says a named object does not exist (S3's ``NoSuchKey``): derived data gone (an
    emulator restarted, a snapshot deleted), which its producer can write again. Duck-typed (handlers
    catch it without importing botocore)."""
    response = getattr(exc, "response", None)
    return (
        isinstance(response, dict) and str(response.get("Error", {}).get("Code", "")) in MISSING_OBJECT_CODES
    )
