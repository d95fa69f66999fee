"""The SQS consumer runtime: long polling, bounded concurrency, batch receive and delete, visibility
extension, retries with backoff, idempotency through the inbox, dead-lettering with the error recorded,
and graceful shutdown (finish in-flight work, stop receiving, release what was not started).

Two kinds of failure are told apart (``messaging.transient``). An error of the message itself (bad data,
a bug its content triggers) is retried by redelivery with backoff and dead-lettered after
``max_receives`` deliveries. An error of the infrastructure (PostgreSQL, Redis or the AWS endpoint
refusing, timing out, throttling) is not the message's fault: the consumer keeps the message invisible
and retries it in place with capped backoff, so no delivery is spent and nothing is dead-lettered
because a dependency blinked; and no such error ever ends the consumer's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from prometheus_client import Counter
from pydantic import ValidationError

from spendsense_shared.correlation import bind_correlation_id
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import EventData, UnknownEventType, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.errors import AwaitsReconciliation, PermanentError
from spendsense_shared.messaging.provision import QueueAddress
from spendsense_shared.messaging.transient import is_transient
from spendsense_shared.metrics import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, EVENTS_FAILED, QUEUE_LAG
from spendsense_shared.unit_of_work import EventHandler, UnitOfWorkFactory

log = get_logger(__name__)

Handler: TypeAlias = EventHandler
__all__ = [
    "Consumer",
    "ConsumerConfig",
    "Handler",
    "PermanentError",
    "dead_letter_count",
    "peek_dead_letters",
    "redrive",
    "redrive_messages",
]

RECEIVE_RETRY_FIRST_S = 0.5  # after a failed receive (the emulator or SQS unreachable), doubling up to
RECEIVE_RETRY_MAX_S = 20.0
# On stop, a poll that ends within this is let finish (nothing is left polling); a longer one is cancelled.
STOP_GRACE_S = 2.0

EVENTS_RETRIED = Counter(
    "events_retried_total",
    "Handling attempts retried in place after an infrastructure error",
    ["service", "type"],
)

ERROR_ATTRIBUTES = ("error_type", "error_message", "failed_at", "receive_count", "source_queue")


@dataclass(frozen=True)
class ConsumerConfig:
    service: str
    max_receives: int = 5
    visibility_timeout_s: int = 30
    wait_time_s: int = 10
    concurrency: int = 8
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    # Infrastructure errors: retried in place after transient_first_s, doubling up to transient_max_s, for
    # at most transient_budget_s (then the message is let go back to the queue: one delivery spent).
    transient_first_s: float = 0.5
    transient_max_s: float = 10.0
    transient_budget_s: float = 900.0
    # What a reconciler writes again (errors.AwaitsReconciliation): each retry waits this long, so the
    # message's deliveries outlast a reconcilers' round (every minute or so) rather than a few seconds.
    awaiting_retry_s: float = 90.0


class Consumer:
    def __init__(
        self,
        *,
        sqs: Any,
        queue: QueueAddress,
        unit_of_work: UnitOfWorkFactory,
        handlers: Mapping[str, Handler],
        config: ConsumerConfig,
    ):
        self.sqs = sqs
        self.queue = queue
        self.unit_of_work = unit_of_work
        self.handlers = handlers
        self.config = config
        self._stopping = asyncio.Event()
        self.last_poll_at = time.monotonic()  # the worker's heartbeat reports a consumer that stopped polling

    def stop(self) -> None:
        """Stop receiving (a long poll in progress is cancelled unless about to end); batches in flight
        are finished and acknowledged."""
        self._stopping.set()

    async def run(self) -> None:
        per_poller = min(10, self.config.concurrency)
        pollers = math.ceil(self.config.concurrency / per_poller)
        await asyncio.gather(*(self._poll(per_poller) for _ in range(pollers)))

    async def _poll(self, batch_size: int) -> None:
        """Long-poll (``wait_time_s``, up to SQS's 20 s: an idle consumer asks about once per wait), handle
        what comes, repeat. On :meth:`stop` a poll about to end anyway (within ``STOP_GRACE_S``) is let
        finish and what it brought released; a longer one is cancelled, so SIGTERM stops an idle worker at
        once. The queue may still answer a cancelled poll: a message it hands over then comes back after
        its visibility timeout (at-least-once, as when a worker dies)."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(self._stopping.wait())
        failures = 0
        try:
            while not self._stopping.is_set():
                polled_at = loop.time()
                self.last_poll_at = time.monotonic()
                receive = asyncio.ensure_future(
                    self.sqs.receive_message(
                        QueueUrl=self.queue.url,
                        MaxNumberOfMessages=batch_size,
                        WaitTimeSeconds=self.config.wait_time_s,
                        VisibilityTimeout=self.config.visibility_timeout_s,
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    )
                )
                try:
                    await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not receive.done():  # stopping
                        remaining = self.config.wait_time_s - (loop.time() - polled_at)
                        if remaining <= STOP_GRACE_S:
                            await asyncio.wait({receive}, timeout=remaining + STOP_GRACE_S)
                finally:
                    if not receive.done():  # a long poll (or we were cancelled): abandon it
                        receive.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await receive
                if receive.cancelled():
                    return
                try:
                    response = receive.result()
                except Exception as exc:
                    failures += 1
                    if is_transient(exc):  # the endpoint is down or slow: one line, no traceback
                        log.warning(
                            "receive_failed",
                            queue=self.queue.url,
                            failures=failures,
                            error=f"{type(exc).__name__}: {exc}"[:300],
                        )
                    else:
                        log.exception("receive_failed", queue=self.queue.url, failures=failures)
                    delay = min(RECEIVE_RETRY_MAX_S, RECEIVE_RETRY_FIRST_S * 2 ** (failures - 1))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), delay)
                    continue
                failures = 0
                messages = response.get("Messages", [])
                if not messages:
                    continue
                if self._stopping.is_set():
                    with contextlib.suppress(Exception):  # else they come back after their timeout
                        await self._release(messages)
                    return
                try:
                    await self.process_batch(messages)
                except Exception:  # never the loop's end: what was not deleted comes back (the inbox dedups)
                    log.exception("batch_failed", queue=self.queue.url, messages=len(messages))
        finally:
            stopping.cancel()

    async def process_batch(self, messages: Sequence[dict[str, Any]]) -> None:
        outcomes = await asyncio.gather(*(self._process(m) for m in messages), return_exceptions=True)
        finished = []
        for message, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # e.g. the DLQ unreachable: the message comes back
                log.warning("message_not_settled", error=f"{type(outcome).__name__}: {outcome}"[:300])
            elif outcome:
                finished.append(message)
        if finished:
            await self._delete(finished)

    async def _delete(self, messages: Sequence[dict[str, Any]]) -> None:
        """Delete handled messages, retrying an unreachable endpoint a few times; a message left undeleted
        is delivered again and discarded by the inbox as a duplicate."""
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        delay = self.config.transient_first_s
        for attempt in range(1, 5):
            try:
                await self.sqs.delete_message_batch(QueueUrl=self.queue.url, Entries=entries)
                return
            except Exception as exc:
                if not is_transient(exc) or attempt == 4 or self._stopping.is_set():
                    log.warning(
                        "delete_failed", messages=len(entries), error=f"{type(exc).__name__}: {exc}"[:300]
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(self.config.transient_max_s, delay * 2)

    async def _process(self, message: dict[str, Any]) -> bool:
        """Handle one message; True when it is finished (done, duplicate, dead-lettered): delete it."""
        receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        sent_ms = message.get("Attributes", {}).get("SentTimestamp")
        if sent_ms:
            QUEUE_LAG.labels(self.config.service).set(max(0.0, time.time() - int(sent_ms) / 1000))
        try:
            envelope = EventEnvelope.from_json(message["Body"])
            data = parse_data(envelope)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            log.error("event_malformed", error=str(exc)[:500])
            await self._dead_letter(message, exc, receive_count)
            return True
        bind_correlation_id(envelope.correlation_id)
        handler = self.handlers.get(envelope.type)
        if handler is None:
            log.warning("event_without_handler", event_type=envelope.type, event_id=str(envelope.id))
            EVENTS_CONSUMED.labels(self.config.service, envelope.type, "ignored").inc()
            return True
        heartbeat = asyncio.create_task(self._keep_invisible(message["ReceiptHandle"]))
        try:
            outcome = await self._handle_retrying_transient(envelope, data, handler)
        except _GaveUp:  # stopping, or retried too long: visible again at once, for the next delivery
            with contextlib.suppress(Exception):
                await self.sqs.change_message_visibility(
                    QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            return False
        except Exception as exc:
            return await self._failed(message, envelope, exc, receive_count)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        EVENTS_CONSUMED.labels(self.config.service, envelope.type, outcome).inc()
        log.info("event_handled", event_type=envelope.type, event_id=str(envelope.id), outcome=outcome)
        return True

    async def _handle_retrying_transient(
        self, envelope: EventEnvelope, data: EventData, handler: Handler
    ) -> str:
        """:meth:`_handle`, retried in place while it fails with an infrastructure error (the message stays
        invisible meanwhile: its visibility keeps being extended). Raises :class:`_GaveUp` on stop or
        after ``transient_budget_s``; any other error is the message's, raised as is."""
        delay = self.config.transient_first_s
        deadline = time.monotonic() + self.config.transient_budget_s
        attempt = 0
        while True:
            try:
                return await self._handle(envelope, data, handler)
            except PermanentError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                EVENTS_RETRIED.labels(self.config.service, envelope.type).inc()
                log.warning(
                    "event_retry_transient",
                    event_type=envelope.type,
                    event_id=str(envelope.id),
                    attempt=attempt,
                    retry_in_s=delay,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
                if self._stopping.is_set() or time.monotonic() + delay > deadline:
                    raise _GaveUp from exc
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    raise _GaveUp from exc
                delay = min(self.config.transient_max_s, delay * 2)

    async def _handle(self, envelope: EventEnvelope, data: EventData, handler: Handler) -> str:
        async with self.unit_of_work() as uow:
            if not await uow.mark_processed(envelope):
                return "duplicate"
            await handler(envelope, data, uow)
            await uow.commit()
        return "processed"

    async def _failed(
        self, message: dict[str, Any], envelope: EventEnvelope, exc: Exception, receive_count: int
    ) -> bool:
        EVENTS_FAILED.labels(self.config.service, envelope.type).inc()
        permanent = isinstance(exc, PermanentError)
        log.warning(
            "event_failed",
            event_type=envelope.type,
            event_id=str(envelope.id),
            receive_count=receive_count,
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
        if permanent or receive_count >= self.config.max_receives:
            await self._dead_letter(message, exc, receive_count, event_type=envelope.type)
            return True
        delay = min(self.config.retry_max_s, self.config.retry_base_s * 2 ** (receive_count - 1))
        if isinstance(exc, AwaitsReconciliation):
            delay = max(delay, self.config.awaiting_retry_s)
        with contextlib.suppress(Exception):
            await self.sqs.change_message_visibility(
                QueueUrl=self.queue.url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=math.ceil(delay),
            )
        return False

    async def _dead_letter(
        self, message: dict[str, Any], exc: Exception, receive_count: int, event_type: str = "unknown"
    ) -> None:
        attributes = {
            k: v for k, v in message.get("MessageAttributes", {}).items() if k not in ERROR_ATTRIBUTES
        }
        attributes |= {
            "error_type": {"DataType": "String", "StringValue": type(exc).__name__},
            "error_message": {"DataType": "String", "StringValue": (str(exc) or type(exc).__name__)[:1000]},
            "failed_at": {"DataType": "String", "StringValue": datetime.now(UTC).isoformat()},
            "receive_count": {"DataType": "Number", "StringValue": str(receive_count)},
            "source_queue": {"DataType": "String", "StringValue": self.queue.url},
        }
        await self.sqs.send_message(
            QueueUrl=self.queue.dlq_url, MessageBody=message["Body"], MessageAttributes=attributes
        )
        EVENTS_DEAD_LETTERED.labels(self.config.service, event_type).inc()
        log.error("event_dead_lettered", event_type=event_type, error_type=type(exc).__name__)

    async def _keep_invisible(self, receipt_handle: str) -> None:
        """Extend the visibility timeout while a long handler runs, so no other worker takes the message."""
        interval = max(1.0, self.config.visibility_timeout_s / 2)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.sqs.change_message_visibility(
                    QueueUrl=self.queue.url,
                    ReceiptHandle=receipt_handle,
                    VisibilityTimeout=self.config.visibility_timeout_s,
                )

    async def _release(self, messages: Sequence[dict[str, Any]]) -> None:
        """Make messages received during shutdown visible again at once (they were not started)."""
        await self.sqs.change_message_visibility_batch(
            QueueUrl=self.queue.url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )


class _GaveUp(Exception):
    """In-place retries of an infrastructure error ended (stopping, or too long): leave the message."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str
    error_type: str
    error_message: str
    failed_at: str
    body: str
    receive_count: int | None = None  # the receives of the failed delivery, as recorded when dead-lettered
    sent_at: str = ""  # when it was sent to the DLQ (ISO 8601, UTC)


PEEK_HOLD_S = 30  # how long a peek holds what it has read invisible while it reads on (then released at once)


def _attr(message: dict[str, Any], name: str) -> str:
    return str(message.get("MessageAttributes", {}).get(name, {}).get("StringValue", ""))


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _sent_at(message: dict[str, Any]) -> str:
    sent_ms = _int_or_none(str(message.get("Attributes", {}).get("SentTimestamp", "")))
    return "" if sent_ms is None else datetime.fromtimestamp(sent_ms / 1000, UTC).isoformat()


async def _make_visible(sqs: Any, queue_url: str, messages: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):  # at most 10 entries a batch
        await sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ],
        )


async def peek_dead_letters(sqs: Any, dlq_url: str, limit: int = 10) -> list[DeadLetter]:
    """Read up to ``limit`` DLQ messages without consuming them. What it has read stays invisible while it
    reads on (so no message is listed twice, also beyond the 10 one receive returns), then becomes visible
    again at once."""
    held: dict[str, dict[str, Any]] = {}  # message id -> the message as last received
    try:
        while len(held) < limit:
            response = await sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(10, limit - len(held)),
                WaitTimeSeconds=1,
                VisibilityTimeout=PEEK_HOLD_S,
                AttributeNames=["SentTimestamp"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in held]
            held.update((m["MessageId"], m) for m in messages)
            if not fresh:
                break
    finally:
        if held:
            try:
                await _make_visible(sqs, dlq_url, list(held.values()))
            except Exception:  # they become visible again by themselves after PEEK_HOLD_S
                log.warning("dead_letters_release_failed", queue=dlq_url, messages=len(held))
    return [
        DeadLetter(
            message_id=m["MessageId"],
            event_type=_attr(m, "type"),
            error_type=_attr(m, "error_type"),
            error_message=_attr(m, "error_message"),
            failed_at=_attr(m, "failed_at"),
            body=m["Body"],
            receive_count=_int_or_none(_attr(m, "receive_count")),
            sent_at=_sent_at(m),
        )
        for m in list(held.values())[:limit]
    ]


@dataclass(frozen=True)
class Redriven:
    """What one re-drive moved (each message once) and what it left in the DLQ (another event type)."""

    moved: list[tuple[str, str]]  # (message id, event type), in the order moved
    skipped: int = 0  # messages of another event type, left in the DLQ

    def by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, event_type in self.moved:
            counts[event_type] = counts.get(event_type, 0) + 1
        return counts


async def redrive(sqs: Any, dlq_url: str, queue_url: str, max_messages: int | None = None) -> int:
    """Move dead letters back to the work queue (after a fix); returns how many moved
    (:func:`redrive_messages` tells which)."""
    return len((await redrive_messages(sqs, dlq_url, queue_url, max_messages)).moved)


async def redrive_messages(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    max_messages: int | None = None,
    event_type: str | None = None,
) -> Redriven:
    """Move dead letters (only those of ``event_type``, when given) back to the work queue.

    One call moves each message at most once: should a moved message come back to the DLQ while the call
    runs (a worker still failing on it), the call stops there and leaves it in the DLQ. Messages are told
    apart by their body, so a duplicate of one already moved also ends the call (the next call moves it).
    Messages of another type are held invisible while the call reads on, then released at once."""
    moved: list[tuple[str, str]] = []
    moved_bodies: set[str] = set()
    held: dict[str, dict[str, Any]] = {}  # other types, by message id: released at the end
    try:
        while max_messages is None or len(moved) < max_messages:
            want = 10 if max_messages is None else min(10, max_messages - len(moved))
            response = await sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=want,
                WaitTimeSeconds=1,
                VisibilityTimeout=PEEK_HOLD_S,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            fresh: list[dict[str, Any]] = []
            again: list[dict[str, Any]] = []
            other = 0
            for message in messages:
                if event_type is not None and _attr(message, "type") != event_type:
                    other += message["MessageId"] not in held
                    held[message["MessageId"]] = message
                    continue
                digest = hashlib.sha256(message["Body"].encode()).hexdigest()
                (again if digest in moved_bodies else fresh).append(message)
                moved_bodies.add(digest)
            for message in fresh:
                attributes = {
                    k: v for k, v in message.get("MessageAttributes", {}).items() if k not in ERROR_ATTRIBUTES
                }
                await sqs.send_message(
                    QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes
                )
            if fresh:
                await sqs.delete_message_batch(
                    QueueUrl=dlq_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(fresh)
                    ],
                )
            moved += [(m["MessageId"], _attr(m, "type") or "unknown") for m in fresh]
            if again:
                await _make_visible(sqs, dlq_url, again)
                break
            if not fresh and not other:  # only messages of another type seen before: all read
                break
    finally:
        if held:
            try:
                await _make_visible(sqs, dlq_url, list(held.values()))
            except Exception:  # they become visible again by themselves after PEEK_HOLD_S
                log.warning("dead_letters_release_failed", queue=dlq_url, messages=len(held))
    return Redriven(moved=moved, skipped=len(held))


async def dead_letter_count(sqs: Any, dlq_url: str) -> int:
    """How many messages the DLQ holds (SQS's approximate count: visible and in flight)."""
    attributes = await sqs.get_queue_attributes(
        QueueUrl=dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    return sum(int(v) for v in attributes.get("Attributes", {}).values())
