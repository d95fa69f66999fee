"""Batched claim checks on the S3 emulator: a batch's bodies are one JSON Lines object (one PUT), each
claim names its part (offset, size, hash); a batch's claims are redeemed with one GET per object; a
line blanked out (an erasure) leaves every other claim redeemable; a changed part is refused; a claim on
a whole object (no offset) works as before."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spendsense_shared.aws import Aws
from spendsense_shared.messaging.claim_check import (
    ClaimCheckMismatch,
    ClaimedObjectMissing,
    blank_out,
    check_in_batch,
    check_in_many,
    content_hash,
    redeem,
    redeem_many,
)
from spendsense_shared.storage import ObjectStore
from spendsense_shared.testing.counting import CountingStore

# Any bytes but a newline (a body is one line of the object); some bodies are empty or only spaces.
lines = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from([b"", b"   "])
examples = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def store(settings_for, isolation_id) -> ObjectStore:
    """The real adapter on a bucket of this test's own in the emulator."""
    aws = Aws(settings_for("features"))
    bucket = f"{isolation_id}-claims"
    async with aws.client("s3") as s3:
        await s3.create_bucket(Bucket=bucket)
    return ObjectStore(aws, bucket, "")


def batch_key() -> Any:
    prefix = f"claims-{uuid.uuid4().hex}"
    return lambda whole: f"{prefix}/{content_hash(whole)[:32]}.jsonl"


@examples
@given(bodies=st.lists(lines, max_size=12))
async def test_any_bodies_round_trip_through_one_object_written_once_and_read_once(store, bodies):
    counting = CountingStore(store)
    key = batch_key()
    claims = await check_in_batch(counting, key, bodies)

    assert len(counting.puts) == (1 if bodies else 0)
    assert len({c.key for c in claims}) == (1 if bodies else 0)
    assert all(c.offset is not None and c.size_bytes == len(b) for c, b in zip(claims, bodies, strict=True))
    assert await redeem_many(counting, claims) == bodies
    assert len(counting.reads) == (1 if bodies else 0)  # one GET for the whole batch
    for claim, body in zip(claims, bodies, strict=True):
        assert await redeem(store, claim) == body
    assert await check_in_batch(store, key, bodies) == claims  # the same content: the same key and claims


@examples
@given(data=st.data())
async def test_blanking_a_line_leaves_every_other_claim_redeemable(store, data):
    bodies = data.draw(
        st.lists(lines, min_size=1, max_size=10, unique=True).filter(
            lambda bs: any(b.strip(b" ") for b in bs)
        )
    )
    gone = data.draw(st.sampled_from([i for i, b in enumerate(bodies) if b.strip(b" ")]))
    claims = await check_in_batch(store, batch_key(), bodies)
    before = await store.get(claims[0].key)

    assert await blank_out(store, claims[0].key, lambda line: line == bodies[gone]) == 1
    assert await blank_out(store, claims[0].key, lambda line: line == bodies[gone]) == 0  # once only

    after = await store.get(claims[0].key)
    assert len(after) == len(before)
    assert bodies[gone] not in after.split(b"\n")
    with pytest.raises(ClaimCheckMismatch):
        await redeem(store, claims[gone])
    kept = [i for i in range(len(bodies)) if i != gone]
    assert await redeem_many(store, [claims[i] for i in kept]) == [bodies[i] for i in kept]


@examples
@given(data=st.data())
async def test_a_changed_part_is_refused_and_the_other_parts_are_not(store, data):
    bodies = data.draw(st.lists(lines.filter(bool), min_size=1, max_size=8))
    changed = data.draw(st.integers(0, len(bodies) - 1))
    claims = await check_in_batch(store, batch_key(), bodies)
    whole = bytearray(await store.get(claims[0].key))
    at = claims[changed].offset + data.draw(st.integers(0, claims[changed].size_bytes - 1))
    whole[at] ^= 0x01
    await store.put_many([(claims[0].key, bytes(whole))], "application/x-ndjson")

    with pytest.raises(ClaimCheckMismatch, match="content hash differs"):
        await redeem_many(store, claims)
    with pytest.raises(ClaimCheckMismatch):
        await redeem(store, claims[changed])
    others = [i for i in range(len(bodies)) if i != changed]
    assert await redeem_many(store, [claims[i] for i in others]) == [bodies[i] for i in others]


async def test_a_claim_on_a_whole_object_still_works_alone_and_beside_parts(store):
    name = f"claims-{uuid.uuid4().hex}/whole.json"
    [whole] = await check_in_many(store, [(name, b'{"a":1}\n{"b":2}')])
    assert whole.offset is None
    assert "offset" not in whole.model_dump(exclude_defaults=True)
    parts = await check_in_batch(store, batch_key(), [b'{"c":3}', b'{"d":4}'])
    counting = CountingStore(store)

    assert await redeem(store, whole) == b'{"a":1}\n{"b":2}'
    assert await redeem_many(counting, [parts[1], whole, parts[0], whole]) == [
        b'{"d":4}',
        b'{"a":1}\n{"b":2}',
        b'{"c":3}',
        b'{"a":1}\n{"b":2}',
    ]
    assert counting.reads == [[parts[0].key, name]]  # one read of each object, in one call

    await store.put_many([(name, b'{"a":1}\n{"b":3}')], "application/json")
    with pytest.raises(ClaimCheckMismatch):
        await redeem_many(store, [whole])


async def test_a_part_beyond_the_object_is_refused(store):
    [claim] = await check_in_batch(store, batch_key(), [b"0123456789"])
    await store.put_many([(claim.key, b"01234")], "application/x-ndjson")  # shortened

    with pytest.raises(ClaimCheckMismatch, match="ends before"):
        await redeem_many(store, [claim])


async def test_a_missing_batch_object_awaits_reconciliation_and_blanks_nothing(store):
    key = batch_key()
    claims = await check_in_batch(store, key, [b'{"u":1}', b'{"u":2}'])
    assert await store.delete_prefix(claims[0].key) == 1

    with pytest.raises(ClaimedObjectMissing, match="not in bucket"):
        await redeem_many(store, claims)
    assert await blank_out(store, claims[0].key, lambda line: True) == 0

    assert await check_in_batch(store, key, [b'{"u":1}', b'{"u":2}']) == claims  # checked in again
    assert await redeem_many(store, claims) == [b'{"u":1}', b'{"u":2}']


async def test_a_body_holding_a_newline_is_refused_before_anything_is_stored(store):
    counting = CountingStore(store)
    with pytest.raises(ValueError, match="newline"):
        await check_in_batch(counting, batch_key(), [b"{}", b"{\n}"])
    assert counting.puts == []
