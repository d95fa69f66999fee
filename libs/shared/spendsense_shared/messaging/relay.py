"""The outbox relay: publishes committed events to the producer's SNS topic, then marks them published.

Several relays may run at once: each claims rows with ``FOR UPDATE SKIP LOCKED`` and holds the lock
until it has published and marked them, so no event is published twice by healthy relays. A relay that
dies after publishing but before marking leaves the rows to be published again: delivery is
at-least-once and consumers are idempotent (the inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.tables import MessagingTables, notify_channel
from spendsense_shared.messaging.transient import is_transient
from spendsense_shared.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING

log = get_logger(__name__)
SNS_BATCH = 10
# While LISTENing, how often the relay looks at the outbox without being notified (a notification lost
# while reconnecting, rows a crashed relay had claimed). Without LISTEN it polls every poll_interval_s.
LISTEN_RECHECK_S = 30.0
RETRY_MAX_S = 30.0  # a failing publish is retried after poll_interval_s, doubling up to this
LISTEN_RETRY_MAX_S = 10.0  # a lost LISTEN connection is re-opened after 1 s, doubling up to this
LISTEN_PROBE_TIMEOUT_S = 5.0
DRAIN_ON_STOP_S = 10.0  # on stop, what is committed is published for up to this long before exiting


class Backoff:
    """When to try again after failures: ``first`` seconds after the first, doubling up to ``cap``."""

    def __init__(self, first: float, cap: float):
        self.first = first
        self.cap = cap
        self.delay = 0.0
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def failed(self) -> None:
        self.delay = min(self.cap, self.delay * 2 if self.delay else self.first)
        self.next_at = time.monotonic() + self.delay

    def reset(self) -> None:
        self.delay = 0.0
        self.next_at = 0.0


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        tables: MessagingTables,
        schema: str,
        sns: Any,
        topic_arn: str,
        service: str,
        listen_dsn: str | None = None,
        batch_size: int = 100,
        poll_interval_s: float = 0.5,
        listen_recheck_s: float = LISTEN_RECHECK_S,
    ):
        self.engine = engine
        self.outbox = tables.outbox
        self.schema = schema
        self.sns = sns
        self.topic_arn = topic_arn
        self.service = service
        self.listen_dsn = listen_dsn
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.listen_recheck_s = listen_recheck_s
        self._listen_failed = False
        self._listened = False  # once listening, a new LISTEN connection is a re-LISTEN (logged)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        outbox = self.outbox
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.seq, outbox.c.event_type, outbox.c.payload)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            for start in range(0, len(rows), SNS_BATCH):
                await self._publish_batch(list(rows[start : start + SNS_BATCH]))
            await conn.execute(
                update(outbox).where(outbox.c.seq.in_([r.seq for r in rows])).values(published_at=func.now())
            )
        for row in rows:
            EVENTS_PUBLISHED.labels(self.service, row.event_type).inc()
        return len(rows)

    async def _publish_batch(self, rows: list[Any]) -> None:
        entries = [
            {
                "Id": str(row.seq),
                "Message": json.dumps(row.payload),
                "MessageAttributes": {
                    "type": {"DataType": "String", "StringValue": row.event_type},
                    "version": {"DataType": "Number", "StringValue": str(row.payload["version"])},
                },
            }
            for row in rows
        ]
        response = await self.sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
        if response.get("Failed"):
            # Raising rolls back the claim: the whole batch is retried (consumers deduplicate).
            raise RuntimeError(f"SNS refused {len(response['Failed'])} events: {response['Failed'][:3]}")

    async def pending_count(self) -> int:
        async with self.engine.connect() as conn:
            count = (
                await conn.execute(select(func.count()).where(self.outbox.c.published_at.is_(None)))
            ).scalar_one()
        OUTBOX_PENDING.labels(self.service).set(count)
        return int(count)

    async def run(self) -> None:
        """Relay until :meth:`stop`. With LISTEN (the usual case) it sleeps until a committing transaction
        NOTIFYs it, looking at the outbox unprompted only every ``listen_recheck_s`` (a notification lost
        while the listening connection was down, rows a crashed relay had claimed); without LISTEN it
        polls every ``poll_interval_s``. A failed publish is retried after a growing delay.

        A LISTEN connection that PostgreSQL dropped (a restart, an outage) is opened again as soon as the
        database answers, and its liveness is checked at every unprompted look. On :meth:`stop`, what is
        committed by then is published before returning (the worker stops its consumer first)."""
        listener: asyncpg.Connection | None = None
        listen_retry = Backoff(first=1.0, cap=LISTEN_RETRY_MAX_S)
        failures = 0
        try:
            while not self._stopping.is_set():
                woken = self._wake.is_set()
                self._wake.clear()
                if listener is not None and not woken and not await self._alive(listener):
                    listener = None
                if self.listen_dsn and (listener is None or listener.is_closed()) and listen_retry.due():
                    listener = await self._listen()
                    if listener is None:
                        listen_retry.failed()
                    else:
                        listen_retry.reset()
                try:
                    published = await self.publish_pending()
                    failures = 0
                except Exception as exc:
                    if is_transient(exc):  # PostgreSQL or the endpoint down: one line, retried
                        log.warning("outbox_relay_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                    else:
                        log.exception("outbox_relay_failed")
                    published = 0
                    failures += 1
                if published >= self.batch_size:
                    continue  # more may be waiting
                listening = listener is not None and not listener.is_closed()
                if failures:
                    wait = min(RETRY_MAX_S, self.poll_interval_s * 2 ** (failures - 1))
                elif listening:
                    wait = max(self.poll_interval_s, self.listen_recheck_s)
                else:
                    wait = self.poll_interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            await self._drain()
        finally:
            if listener is not None and not listener.is_closed():
                with contextlib.suppress(Exception):
                    await listener.close()

    async def _alive(self, listener: asyncpg.Connection) -> bool:
        """Whether the LISTEN connection still answers (a dropped one may not know it yet)."""
        if listener.is_closed():
            log.warning("outbox_listen_lost")
            return False
        try:
            await asyncio.wait_for(listener.fetchval("SELECT 1"), LISTEN_PROBE_TIMEOUT_S)
            return True
        except Exception:
            log.warning("outbox_listen_lost")
            with contextlib.suppress(Exception):
                listener.terminate()
            return False

    async def _drain(self) -> None:
        """Publish every committed event before the process exits (bounded by ``DRAIN_ON_STOP_S``)."""
        deadline = time.monotonic() + DRAIN_ON_STOP_S
        published = 0
        while time.monotonic() < deadline:
            try:
                batch = await asyncio.wait_for(self.publish_pending(), max(0.1, deadline - time.monotonic()))
            except Exception as exc:
                log.warning("outbox_drain_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                break
            published += batch
            if batch < self.batch_size:
                break
        log.info("outbox_drained_on_stop", published=published)

    async def _listen(self) -> asyncpg.Connection | None:
        if not self.listen_dsn:
            return None
        try:
            conn = await asyncpg.connect(self.listen_dsn)
            await conn.add_listener(notify_channel(self.schema), lambda *_: self._wake.set())
            # A lost connection wakes the loop, which reconnects and looks at the outbox at once.
            conn.add_termination_listener(lambda *_: self._wake.set())
            if self._listen_failed or self._listened:
                log.info("outbox_listen_restored", channel=notify_channel(self.schema))
            self._listen_failed = False
            self._listened = True
            return conn
        except Exception:  # refused, starting up, timed out…: poll meanwhile, try again later
            if not self._listen_failed:
                log.warning("outbox_listen_unavailable", fallback="polling")
            self._listen_failed = True
            return None

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
