"""The claim check pattern: a payload that grows with a user's data goes to the data bucket, and the
event carries only its key, size and SHA-256, so every event stays far below SNS/SQS's 256 KB limit.
The consumer redeems the claim and refuses a payload whose hash differs (it was changed or replaced).
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from spendsense_shared.blobs import BlobStore, object_missing
from spendsense_shared.messaging.errors import AwaitsReconciliation, PermanentError


class ClaimCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str = Field(description="Object key in the bucket")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class ClaimCheckMismatch(PermanentError):
    """The stored payload is not the one the event vouches for."""


class ClaimedObjectMissing(AwaitsReconciliation):
    """The claimed payload is not in the bucket (lost with the emulator's bucket; the producer's
    reconciler checks the same content in again, under the same key)."""


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def check_in_many(store: BlobStore, items: list[tuple[str, bytes]]) -> list[ClaimCheck]:
    """Store each ``(key, body)`` in one batch; the claims to put in the events."""
    keys = await store.put_many(items, "application/json")
    return [
        ClaimCheck(bucket=store.bucket, key=key, sha256=content_hash(body), size_bytes=len(body))
        for key, (_, body) in zip(keys, items, strict=True)
    ]


async def redeem(store: BlobStore, claim: ClaimCheck) -> bytes:
    if claim.bucket != store.bucket:
        raise ClaimCheckMismatch(f"claim names bucket {claim.bucket!r}, this store is {store.bucket!r}")
    try:
        body = await store.get(claim.key)
    except Exception as exc:
        if object_missing(exc):
            raise ClaimedObjectMissing(f"{claim.key}: not in bucket {claim.bucket!r}") from exc
        raise
    if content_hash(body) != claim.sha256:
        raise ClaimCheckMismatch(f"{claim.key}: content hash differs from the event's")
    return body
