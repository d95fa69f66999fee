"""A service's worker process: its outbox relay and its queue consumer, stopped cleanly by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping

from prometheus_client import start_http_server

from spendsense_shared.aws import Aws
from spendsense_shared.db import Database, asyncpg_dsn
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.consumer import Consumer, ConsumerConfig, Handler
from spendsense_shared.messaging.provision import queue_address, topic_arn
from spendsense_shared.messaging.relay import OutboxRelay
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.unit_of_work import UnitOfWorkFactory

log = get_logger(__name__)


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


async def run_worker(
    settings: ServiceSettings,
    database: Database,
    handlers: Mapping[str, Handler],
    unit_of_work: UnitOfWorkFactory | None = None,
) -> None:
    """Relay ``database``'s outbox; consume the service's queue with ``handlers``, each event in a fresh
    ``unit_of_work`` (the service's own kind, with its repositories; a plain one by default)."""
    service = settings.service_name
    topology = build_topology(settings.env)
    aws = Aws(settings)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    tasks: list[asyncio.Task[None]] = []
    stoppers = []
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
            tasks.append(asyncio.create_task(relay.run(), name="relay"))
            stoppers.append(relay.stop)
        if service in topology.queues:
            consumer = Consumer(
                sqs=sqs,
                queue=await queue_address(aws, topology.queues[service].name),
                unit_of_work=unit_of_work or database.uow,
                handlers=handlers,
                config=consumer_config(settings),
            )
            tasks.append(asyncio.create_task(consumer.run(), name="consumer"))
            stoppers.append(consumer.stop)

        def shutdown(signame: str) -> None:
            log.info("worker_stopping", signal=signame)
            for stop in stoppers:
                stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown, sig.name)
        log.info(
            "worker_started",
            relay=service in topology.topics,
            consumer=service in topology.queues,
            handles=sorted(handlers),
        )
        try:
            await asyncio.gather(*tasks)
        finally:
            await database.dispose()
            log.info("worker_stopped")
