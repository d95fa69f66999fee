"""A re-drive filtered by event type on the emulator's SQS: only that type moves, each message once, the
others stay in the DLQ (visible again at once), and the re-drive says what it moved; the DLQ's count."""

from __future__ import annotations

from datetime import UTC, datetime

from spendsense_shared.aws import Aws
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event
from spendsense_shared.messaging.consumer import dead_letter_count, redrive_messages
from spendsense_shared.messaging.provision import queue_address


async def dead_letter(sqs, url: str, data) -> str:  # type: ignore[no-untyped-def]
    event = new_event(data, user_id=data.user_id)
    sent = await sqs.send_message(
        QueueUrl=url,
        MessageBody=event.to_json(),
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": event.type},
            "error_type": {"DataType": "String", "StringValue": "RuntimeError"},
        },
    )
    return str(sent["MessageId"])


async def test_a_redrive_by_type_moves_only_that_type_once_and_reports_it(settings_for, topology):
    now = datetime.now(UTC)
    aws = Aws(settings_for("features"))
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        revoked = {
            await dead_letter(
                sqs, address.dlq_url, ConsentRevoked(user_id=f"r{n}", consent_id="c", revoked_at=now)
            )
            for n in range(12)
        }
        for n in range(3):
            await dead_letter(
                sqs,
                address.dlq_url,
                ConsentGranted(
                    user_id=f"g{n}", consent_id="c", policy_version="1", scopes=[], granted_at=now
                ),
            )
        assert await dead_letter_count(sqs, address.dlq_url) == 15

        # Back to the DLQ itself: what moved comes straight back, and is still moved only once.
        result = await redrive_messages(sqs, address.dlq_url, address.dlq_url, event_type="consent.revoked")

        assert {message_id for message_id, _ in result.moved} == revoked
        assert result.by_type() == {"consent.revoked": 12}
        assert result.skipped == 3
        assert await dead_letter_count(sqs, address.dlq_url) == 15

        moved = await redrive_messages(sqs, address.dlq_url, address.url, event_type="consent.granted")
        assert moved.by_type() == {"consent.granted": 3}
        assert await dead_letter_count(sqs, address.dlq_url) == 12
