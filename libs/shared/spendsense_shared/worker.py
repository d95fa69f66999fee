"""A service's worker process: its outbox relay, its queue consumer, its reconciler and heartbeat, stopped
cleanly by SIGTERM (the consumer first, the relay last: what was committed is published)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import start_http_server

from spendsense_shared.aws import Aws
from spendsense_shared.db import Database, asyncpg_dsn
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.consumer import Consumer, ConsumerConfig, Handler
from spendsense_shared.messaging.heartbeat import Heartbeat
from spendsense_shared.messaging.provision import queue_address, topic_arn
from spendsense_shared.messaging.reconciler import Reconciler, ReconcileStep
from spendsense_shared.messaging.relay import OutboxRelay
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.unit_of_work import UnitOfWorkFactory

log = get_logger(__name__)
# A consumer that has not started a poll for this long (its longest poll is 20 s) is stuck: the heartbeat
# stops, and the service reports not ready. A handler retrying an outage in place keeps a poller busy too.
POLL_STALL_S = 900.0


def consumer_config(settings: ServiceSettings) -> ConsumerConfig:
    return ConsumerConfig(
        service=settings.service_name,
        max_receives=settings.bus_max_receives,
        visibility_timeout_s=settings.bus_visibility_timeout_s,
        wait_time_s=settings.bus_wait_time_s,
        concurrency=settings.bus_concurrency,
        retry_base_s=settings.bus_retry_base_s,
        retry_max_s=settings.bus_retry_max_s,
    )


@dataclass(frozen=True)
class Loop:
    """Work a worker runs beside its consumer (the profile's upload jobs, the reconciler): stopped with
    the consumer, before the relay, so the relay publishes whatever it committed."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    stop: Callable[[], None]


async def run_worker(
    settings: ServiceSettings,
    database: Database,
    handlers: Mapping[str, Handler],
    unit_of_work: UnitOfWorkFactory | None = None,
    loops: Sequence[Loop] = (),
    reconcile: Mapping[str, ReconcileStep] | None = None,
) -> None:
    """Relay ``database``'s outbox; consume the service's queue with ``handlers``, each event in a fresh
    ``unit_of_work`` (the service's own kind, with its repositories; a plain one by default); run
    ``loops`` and the ``reconcile`` steps (stuck work found and finished) periodically; beat a heartbeat.

    SIGTERM stops the consumer and the loops first (in-flight events are finished and committed), then
    the relay, which publishes everything committed before the process exits."""
    service = settings.service_name
    topology = build_topology(settings.env)
    aws = Aws(settings)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    first: list[tuple[asyncio.Task[None], Callable[[], None]]] = []  # stopped first
    relay_task: asyncio.Task[None] | None = None
    relay: OutboxRelay | None = None
    consumer: Consumer | None = None
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        if service in topology.topics:
            relay = OutboxRelay(
                engine=database.engine,
                tables=database.tables,
                schema=database.schema,
                sns=sns,
                topic_arn=await topic_arn(aws, topology.topics[service]),
                service=service,
                listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
                batch_size=settings.outbox_batch_size,
                poll_interval_s=settings.outbox_poll_interval_s,
            )
            relay_task = asyncio.create_task(relay.run(), name="relay")
        if service in topology.queues:
            consumer = Consumer(
                sqs=sqs,
                queue=await queue_address(aws, topology.queues[service].name),
                unit_of_work=unit_of_work or database.uow,
                handlers=handlers,
                config=consumer_config(settings),
            )
            first.append((asyncio.create_task(consumer.run(), name="consumer"), consumer.stop))
        every = list(loops)
        if reconcile:
            reconciler = Reconciler(
                service,
                reconcile,
                database.engine,
                interval_s=settings.reconcile_interval_s,
            )
            every.append(Loop("reconciler", reconciler.run, reconciler.stop))
        for loop_ in every:
            first.append((asyncio.create_task(loop_.run(), name=loop_.name), loop_.stop))

        def running() -> bool:
            tasks = [t for t, _ in first] + ([relay_task] if relay_task else [])
            polling = consumer is None or time.monotonic() - consumer.last_poll_at < POLL_STALL_S
            return polling and not any(t.done() for t in tasks)

        heartbeat = Heartbeat(
            settings.redis_url.get_secret_value(),
            settings.env,
            service,
            settings.worker_heartbeat_ttl_s,
            running,
        )
        heartbeat_task = asyncio.create_task(heartbeat.run(), name="heartbeat")
        stopping = asyncio.Event()

        def shutdown(signame: str) -> None:
            log.info("worker_stopping", signal=signame)
            stopping.set()
            for _, stop in first:
                stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown, sig.name)
        log.info(
            "worker_started",
            relay=relay is not None,
            consumer=consumer is not None,
            handles=sorted(handlers),
            loops=[loop_.name for loop_ in every],
        )
        try:
            # The consumer and loops end on SIGTERM; should one end (or fail) first, the worker exits
            # (its supervisor starts it again) rather than run on half.
            if first:
                await asyncio.gather(*(t for t, _ in first))
            else:
                await stopping.wait()
            if relay is not None and relay_task is not None:
                relay.stop()  # publishes what is committed, then returns
                await relay_task
        finally:
            for _, stop in first:
                stop()
            if relay is not None:
                relay.stop()
            pending = [t for t, _ in first] + ([relay_task] if relay_task else [])
            await asyncio.gather(*pending, return_exceptions=True)
            heartbeat.stop()
            await asyncio.gather(heartbeat_task, return_exceptions=True)
            await database.dispose()
            log.info("worker_stopped", signalled=stopping.is_set())
