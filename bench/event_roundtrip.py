"""Event round-trip latency on the embedded servers: outbox write (commit) → handler done (its commit).

Runs the production relay and consumer code against real PostgreSQL, Redis and the AWS emulator, with
events written at a steady rate. Measures two relay modes in the same run:
  * notify   — the relay wakes on PostgreSQL NOTIFY sent by the committing transaction (the default);
  * baseline — the same relay with NOTIFY off, polling the outbox every 0.5 s (the fallback).
Prints p50/p95/p99 and the ratio, and writes bench/results/event_roundtrip.json.

    .venv/bin/python bench/event_roundtrip.py [--events 1000] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spendsense_features.adapters.orm import messaging as features_tables
from spendsense_profile.adapters.orm import messaging as profile_tables
from spendsense_shared.aws import Aws
from spendsense_shared.db import Database, UnitOfWork
from spendsense_shared.embedded.servers import (
    free_port,
    moto_process,
    postgres_process,
    wait_for_moto,
    wait_for_postgres,
)
from spendsense_shared.logging import configure_logging
from spendsense_shared.messaging.catalog import EventData, UploadIngested, new_event
from spendsense_shared.messaging.consumer import Consumer
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.provision import provision, queue_address, topic_arn
from spendsense_shared.messaging.relay import OutboxRelay
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.migrations import upgrade
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.worker import consumer_config


class TimedConsumer(Consumer):
    """Records when each event's handling transaction has committed."""

    done: dict[uuid.UUID, float]

    async def _handle(self, envelope: EventEnvelope, data: EventData, handler: Any) -> str:
        outcome = await super()._handle(envelope, data, handler)
        self.done[envelope.id] = time.perf_counter()
        return outcome


async def noop(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
    return None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(
    mode: str, settings: dict[str, ServiceSettings], events: int, rate: float
) -> dict[str, float]:
    profile = Database(settings["profile"], profile_tables)
    features = Database(settings["features"], features_tables)
    aws = Aws(settings["profile"])
    topology = build_topology(settings["profile"].env)
    written: dict[uuid.UUID, float] = {}
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = OutboxRelay(
            engine=profile.engine,
            tables=profile_tables,
            schema=profile.schema,
            sns=sns,
            topic_arn=await topic_arn(aws, topology.topics["profile"]),
            service="profile",
            listen_dsn=settings["profile"].database_url.get_secret_value().replace("+asyncpg", "")
            if mode == "notify"
            else None,
            poll_interval_s=0.5,
        )
        consumer = TimedConsumer(
            sqs=sqs,
            queue=await queue_address(aws, topology.queues["features"].name),
            unit_of_work=features.uow,
            handlers={"upload.ingested": noop},
            config=consumer_config(settings["features"]),
        )
        consumer.done = {}
        tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
        await asyncio.sleep(1)
        interval = 1 / rate
        started = time.perf_counter()
        for i in range(events):
            event = new_event(
                UploadIngested(upload_id=f"up-{i}", user_ids=[f"u{i}"], bucket="b", keys=[], as_of=None),
                user_id=f"u{i}",
            )
            async with profile.uow() as uow:
                uow.publish(event)
                written[event.id] = time.perf_counter()
                await uow.commit()
            await asyncio.sleep(max(0.0, started + (i + 1) * interval - time.perf_counter()))
        deadline = time.perf_counter() + 60
        while len(consumer.done) < events and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        relay.stop()
        consumer.stop()
        await asyncio.gather(*tasks)
    await profile.dispose()
    await features.dispose()
    latencies = [(consumer.done[i] - t) * 1000 for i, t in written.items() if i in consumer.done]
    return {
        "events": events,
        "delivered": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
    }


def make_settings(service: str, env: str, database_url: str, aws_url: str) -> ServiceSettings:
    return ServiceSettings(
        service_name=service,
        env=env,
        database_url=database_url,
        db_schema=f"{env}_{service}",
        aws_endpoint_url=aws_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        bus_wait_time_s=10,
        bus_concurrency=10,
    )


async def run(args: argparse.Namespace, database_url: str, aws_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": args.events,
        "rate_per_s": args.rate,
    }
    for mode in ("notify", "baseline"):
        env = f"bench{mode[:4]}{uuid.uuid4().hex[:6]}"
        settings = {s: make_settings(s, env, database_url, aws_url) for s in ("profile", "features")}
        await provision(Aws(settings["profile"]), build_topology(env))
        for service, service_settings in settings.items():
            await asyncio.to_thread(
                upgrade, f"spendsense_{service}", database_url, service_settings.schema_name
            )
        print(f"» {mode}: {args.events} events at {args.rate}/s …", flush=True)
        results[mode] = await measure(mode, settings, args.events, args.rate)
        print(f"  {results[mode]}", flush=True)
    results["p50_speedup_vs_baseline"] = round(results["baseline"]["p50_ms"] / results["notify"]["p50_ms"], 1)
    results["p95_speedup_vs_baseline"] = round(results["baseline"]["p95_ms"] / results["notify"]["p95_ms"], 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="events written per second")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    with tempfile.TemporaryDirectory(prefix="spendsense-bench-") as tmp:
        root = Path(tmp)
        pg_port, aws_port = free_port(), free_port()
        pg = postgres_process(root / "pg", pg_port, root / "pg.log", durable=False).start()
        aws = moto_process(aws_port, root / "aws.log").start()
        try:
            database_url = wait_for_postgres(pg, pg_port, "bench")
            aws_url = wait_for_moto(aws, aws_port)
            results = asyncio.run(run(args, database_url, aws_url))
        finally:
            aws.stop()
            pg.stop()
    print("\nEvent round trip, outbox commit → handler commit (ms):")
    print(f"  {'relay':<26}{'p50':>8}{'p95':>8}{'p99':>8}")
    for mode, label in (("notify", "LISTEN/NOTIFY (default)"), ("baseline", "poll every 0.5 s")):
        r = results[mode]
        print(f"  {label:<26}{r['p50_ms']:>8}{r['p95_ms']:>8}{r['p99_ms']:>8}")
    print(f"  speed-up p50 x{results['p50_speedup_vs_baseline']}, p95 x{results['p95_speedup_vs_baseline']}")
    out = Path(__file__).resolve().parent / "results" / "event_roundtrip.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
