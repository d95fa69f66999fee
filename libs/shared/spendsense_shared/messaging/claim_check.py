"""The claim check pattern: a payload that grows with a user's data goes to the data bucket, and the
event carries only its key, size and SHA-256, so every event stays far below SNS/SQS's 256 KB limit.
The consumer redeems the claim and refuses a payload whose hash differs (it was changed or replaced).

A claim names a whole object, or (``offset`` set) a part of one: a batch's payloads are checked in as one
object (:func:`check_in_batch`, JSON Lines: the bodies joined by newlines, one PUT), each claim naming its
own line, and a consumer redeems a batch's claims with one GET per object (:func:`redeem_many`). A line is
erased by overwriting it with spaces of the same length (:func:`blank_out`): every other claim's offset
and hash stay valid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from spendsense_shared.blobs import BlobStore, object_missing
from spendsense_shared.messaging.errors import AwaitsReconciliation, PermanentError


class ClaimCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str = Field(description="Object key in the bucket")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    offset: int | None = Field(
        default=None,
        ge=0,
        description="Where the claimed part starts in the object (a line of a batch's JSON Lines object);"
        " null: the whole object. `size_bytes` and `sha256` are those of the claimed bytes",
    )


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


def batch_object(bodies: list[bytes]) -> bytes:
    """The object :func:`check_in_batch` stores for ``bodies``: JSON Lines, the bodies joined by newlines."""
    if any(b"\n" in body for body in bodies):
        raise ValueError("a body of a batch object is one line: it holds no newline")
    return b"\n".join(bodies)


async def check_in_batch(
    store: BlobStore, key: str | Callable[[bytes], str], bodies: list[bytes]
) -> list[ClaimCheck]:
    """Store ``bodies`` as one object (one PUT; :func:`batch_object`) under ``key``, or under
    ``key(object)`` (a content-addressed key: the same bodies, the same key); a claim per body, in order,
    naming its part of the object. No bodies: nothing stored."""
    if not bodies:
        return []
    whole = batch_object(bodies)
    [stored] = await store.put_many([(key(whole) if callable(key) else key, whole)], "application/x-ndjson")
    claims, offset = [], 0
    for body in bodies:
        claims.append(
            ClaimCheck(
                bucket=store.bucket,
                key=stored,
                sha256=content_hash(body),
                size_bytes=len(body),
                offset=offset,
            )
        )
        offset += len(body) + 1
    return claims


def _claimed_part(claim: ClaimCheck, body: bytes) -> bytes:
    """The bytes ``claim`` names in its object's ``body``, checked against its hash."""
    if claim.offset is None:
        part = body
    else:
        part = body[claim.offset : claim.offset + claim.size_bytes]
        if len(part) != claim.size_bytes:
            raise ClaimCheckMismatch(f"{claim.key}: the object ends before the claimed part")
    if content_hash(part) != claim.sha256:
        raise ClaimCheckMismatch(f"{claim.key}: content hash differs from the event's")
    return part


def _check_bucket(store: BlobStore, claim: ClaimCheck) -> None:
    if claim.bucket != store.bucket:
        raise ClaimCheckMismatch(f"claim names bucket {claim.bucket!r}, this store is {store.bucket!r}")


async def redeem(store: BlobStore, claim: ClaimCheck) -> bytes:
    _check_bucket(store, claim)
    try:
        body = await store.get(claim.key)
    except Exception as exc:
        if object_missing(exc):
            raise ClaimedObjectMissing(f"{claim.key}: not in bucket {claim.bucket!r}") from exc
        raise
    return _claimed_part(claim, body)


async def redeem_many(store: BlobStore, claims: list[ClaimCheck]) -> list[bytes]:
    """:func:`redeem` each claim, in order, reading each object once (one ``get_many``): a batch's
    claims name parts of one object. The first claim whose part fails its check raises (as
    :func:`redeem` would), and so does a missing object."""
    for claim in claims:
        _check_bucket(store, claim)
    keys = list(dict.fromkeys(claim.key for claim in claims))
    if not keys:
        return []
    try:
        bodies = dict(zip(keys, await store.get_many(keys), strict=True))
    except Exception as exc:
        if object_missing(exc):
            named = ", ".join(keys[:3]) + (f" (and {len(keys) - 3} more)" if len(keys) > 3 else "")
            raise ClaimedObjectMissing(f"{named}: one is not in bucket {store.bucket!r}") from exc
        raise
    return [_claimed_part(claim, bodies[claim.key]) for claim in claims]


async def blank_out(store: BlobStore, key: str, should_blank: Callable[[bytes], bool]) -> int:
    """Rewrite the batch object ``key`` with every line for which ``should_blank(line)`` is true
    overwritten by spaces of the same length (an erasure: every other line keeps its offset and hash,
    so every other claim stays redeemable). Lines blanked already are not offered again. Returns how
    many lines were blanked (nothing is written when none is); an object that is gone, 0."""
    try:
        body = await store.get(key)
    except Exception as exc:
        if object_missing(exc):
            return 0
        raise
    lines = body.split(b"\n")
    blanked = 0
    for index, line in enumerate(lines):
        if line.strip(b" ") and should_blank(line):
            lines[index] = b" " * len(line)
            blanked += 1
    if blanked:
        await store.put_many([(key, b"\n".join(lines))], "application/x-ndjson")
    return blanked
