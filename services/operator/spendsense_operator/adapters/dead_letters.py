"""The consuming services' dead-letter queues on SQS (the AWS emulator's SQS locally): the
:class:`~spendsense_operator.handlers.dead_letters.DeadLetterQueues` port.

Queue URLs are resolved by name once per process (``messaging.provision.queue_address``). Reading and
re-driving are the consumer runtime's own (``messaging.consumer.peek_dead_letters`` and ``redrive``, which
the ``spendsense dlq`` commands use too): a peek holds what it has read invisible until it has read up to
its limit, then makes it visible again at once; a re-drive strips the recorded error attributes and moves
each message at most once per call. A queue that does not exist, or an SQS error, raises
:class:`QueueUnavailable` (nothing is retried here: the admin calls again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spendsense_operator.domain.dead_letters import (
    DeadLetterMessage,
    QueueRef,
    QueueUnavailable,
    envelope_fields,
    error_of,
)
from spendsense_operator.handlers.dead_letters import DeadLetterQueues
from spendsense_shared.aws import Aws
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.consumer import DeadLetter, peek_dead_letters, redrive
from spendsense_shared.messaging.provision import QueueAddress, queue_address

log = get_logger(__name__)

_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def _message(letter: DeadLetter) -> DeadLetterMessage:
    fields = envelope_fields(letter.body)
    sent_at = None
    if letter.sent_at:
        try:
            sent_at = datetime.fromisoformat(letter.sent_at)
        except ValueError:
            sent_at = None
    return DeadLetterMessage(
        message_id=letter.message_id,
        event_type=letter.event_type or fields.event_type,
        event_id=fields.event_id,
        correlation_id=fields.correlation_id,
        error=error_of(letter.error_type, letter.error_message),
        receive_count=letter.receive_count,
        sent_at=sent_at,
    )


class SqsDeadLetterQueues(DeadLetterQueues):
    def __init__(self, aws: Aws):
        self.aws = aws
        self._addresses: dict[str, QueueAddress] = {}

    @asynccontextmanager
    async def _sqs(self, queue: QueueRef) -> AsyncIterator[tuple[Any, QueueAddress]]:
        """An SQS client and the queue's address; SQS errors become QueueUnavailable."""
        try:
            if queue.queue not in self._addresses:
                self._addresses[queue.queue] = await queue_address(self.aws, queue.queue)
            async with self.aws.client("sqs") as sqs:
                yield sqs, self._addresses[queue.queue]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "unknown"))
            log.warning("dead_letter_queue_unavailable", service=queue.service, queue=queue.queue, code=code)
            reason = "not provisioned" if code in _MISSING_CODES else f"SQS error {code}"
            raise QueueUnavailable(queue.service, reason) from exc
        except BotoCoreError as exc:
            log.warning("dead_letter_queue_unavailable", service=queue.service, error=type(exc).__name__)
            raise QueueUnavailable(queue.service, "SQS cannot be reached") from exc

    async def depth(self, queue: QueueRef) -> int:
        async with self._sqs(queue) as (sqs, address):
            response = await sqs.get_queue_attributes(
                QueueUrl=address.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        return int(response["Attributes"]["ApproximateNumberOfMessages"])

    async def peek(self, queue: QueueRef, limit: int) -> list[DeadLetterMessage]:
        async with self._sqs(queue) as (sqs, address):
            letters = await peek_dead_letters(sqs, address.dlq_url, limit)
        return [_message(letter) for letter in letters]

    async def redrive(self, queue: QueueRef, max_messages: int) -> int:
        async with self._sqs(queue) as (sqs, address):
            return await redrive(sqs, address.dlq_url, address.url, max_messages)
