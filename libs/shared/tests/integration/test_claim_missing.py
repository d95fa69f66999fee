"""A claim whose object is gone (the emulator lost its bucket) waits for the producer's reconciler: the
consumer pauses it long (``awaiting_retry_s``) instead of spending its deliveries in seconds, and it
succeeds once the same content is checked in again. Real S3 and SQS (the emulator), real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from spendsense_shared.aws import Aws
from spendsense_shared.messaging.claim_check import ClaimedObjectMissing, check_in_many, redeem
from spendsense_shared.messaging.consumer import Consumer, peek_dead_letters
from spendsense_shared.messaging.provision import queue_address
from spendsense_shared.storage import ObjectStore
from spendsense_shared.testing.fakes import load_beside

consumer_tests = load_beside(__file__, "test_consumer.py", "spendsense_consumer_tests")
features_db = consumer_tests.features_db


async def test_redeeming_a_claim_whose_object_is_gone_says_it_awaits_reconciliation(settings_for, topology):
    store = ObjectStore(Aws(settings_for("features")), topology.buckets["data"], "")
    name = f"claims-{uuid.uuid4().hex}/details.json"
    [claim] = await check_in_many(store, [(name, b'{"a":1}')])
    assert await redeem(store, claim) == b'{"a":1}'
    assert await store.delete_prefix(name) == 1
    with pytest.raises(ClaimedObjectMissing, match=r"details\.json: not in bucket"):
        await redeem(store, claim)
    await check_in_many(store, [(name, b'{"a":1}')])  # the reconciler: same content, same key
    assert await redeem(store, claim) == b'{"a":1}'


async def test_a_message_whose_claim_is_missing_pauses_long_and_is_not_dead_lettered(features_db, topology):
    settings, database = features_db
    aws = Aws(settings)
    handled: list[str] = []

    async def waits_for_its_claim(envelope, data, uow) -> None:
        handled.append(data.user_id)
        raise ClaimedObjectMissing("features/users/u/analysis/x.json: not in bucket")

    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await consumer_tests.send(sqs, address.url, consumer_tests.revoked("u-claim"))
        consumer = Consumer(
            sqs=sqs,
            queue=address,
            unit_of_work=database.uow,
            handlers={"consent.revoked": waits_for_its_claim},
            config=consumer_tests.config(awaiting_retry_s=30),  # retry_max_s is 1 s there
        )
        received = await sqs.receive_message(
            QueueUrl=address.url, WaitTimeSeconds=2, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        await consumer.process_batch(received["Messages"])
        assert handled == ["u-claim"]
        await asyncio.sleep(3)  # an ordinary failure would be visible again after 1 s
        again = await sqs.receive_message(QueueUrl=address.url, WaitTimeSeconds=1)
        assert again.get("Messages", []) == []
        assert await peek_dead_letters(sqs, address.dlq_url) == []
        await sqs.purge_queue(QueueUrl=address.url)
