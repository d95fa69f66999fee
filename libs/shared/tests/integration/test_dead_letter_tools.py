"""``peek_dead_letters`` and ``redrive`` on the emulator's SQS: a peek reads beyond one receive (10
messages) listing each message once and consumes nothing; a re-drive moves each message at most once per
call, also when what it moves comes straight back to the DLQ, and never more than ``max_messages``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from spendsense_shared.aws import Aws
from spendsense_shared.messaging.catalog import ConsentRevoked, new_event
from spendsense_shared.messaging.consumer import peek_dead_letters, redrive
from spendsense_shared.messaging.provision import queue_address


async def fill(sqs, url: str, count: int) -> set[str]:
    ids = set()
    for n in range(count):
        event = new_event(ConsentRevoked(user_id=f"u{n}", consent_id="c", revoked_at=datetime.now(UTC)))
        await sqs.send_message(
            QueueUrl=url,
            MessageBody=event.to_json(),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": event.type},
                "error_type": {"DataType": "String", "StringValue": "RuntimeError"},
                "receive_count": {"DataType": "Number", "StringValue": "3"},
            },
        )
        ids.add(str(event.id))
    return ids


async def depth(sqs, url: str) -> int:
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(response["Attributes"]["ApproximateNumberOfMessages"])


async def test_a_peek_lists_each_message_once_beyond_one_receive_and_consumes_nothing(settings_for, topology):
    aws = Aws(settings_for("features"))
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await fill(sqs, address.dlq_url, 14)

        everything = await peek_dead_letters(sqs, address.dlq_url, limit=50)
        some = await peek_dead_letters(sqs, address.dlq_url, limit=12)

        assert len({letter.message_id for letter in everything}) == len(everything) == 14
        assert len({letter.message_id for letter in some}) == len(some) == 12
        assert await depth(sqs, address.dlq_url) == 14  # all visible again at once
        letter = everything[0]
        assert (letter.event_type, letter.error_type, letter.receive_count) == (
            "consent.revoked",
            "RuntimeError",
            3,
        )
        assert datetime.fromisoformat(letter.sent_at).tzinfo is not None


async def test_a_redrive_moves_each_message_once_even_when_it_comes_straight_back(settings_for, topology):
    aws = Aws(settings_for("features"))
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        ids = await fill(sqs, address.dlq_url, 3)

        # "back to the queue" is the DLQ itself: everything moved is at once a dead letter again
        assert await redrive(sqs, address.dlq_url, address.dlq_url) == 3
        letters = await peek_dead_letters(sqs, address.dlq_url, limit=50)
        assert {json.loads(letter.body)["id"] for letter in letters} == ids
        assert await redrive(sqs, address.dlq_url, address.dlq_url, max_messages=2) == 2
        assert await depth(sqs, address.dlq_url) == 3

        assert await redrive(sqs, address.dlq_url, address.url, max_messages=2) == 2
        assert (await depth(sqs, address.dlq_url), await depth(sqs, address.url)) == (1, 2)
