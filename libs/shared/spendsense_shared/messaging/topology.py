"""The one declaration of the bus: topics, queues, DLQs, subscriptions (with filter policies) and buckets.

It provisions the embedded stack (messaging.provision) and is exported for Terraform
(``spendsense infra bus-json``), so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from spendsense_shared.messaging.catalog import CATALOG, CONSUMES, SERVICES

BUCKET_KINDS = ("data", "reports", "logs", "frontend")


@dataclass(frozen=True)
class Subscription:
    topic: str
    queue: str
    event_types: tuple[str, ...]

    @property
    def filter_policy(self) -> dict[str, list[str]]:
        return {"type": list(self.event_types)}


@dataclass(frozen=True)
class Queue:
    name: str
    dlq: str
    service: str
    max_receives: int
    visibility_timeout_s: int


@dataclass(frozen=True)
class Topology:
    env: str
    topics: dict[str, str]  # producer service -> topic name
    queues: dict[str, Queue]  # consumer service -> queue
    subscriptions: list[Subscription]
    buckets: dict[str, str] = field(default_factory=dict)  # kind -> bucket name

    def to_dict(self) -> dict[str, object]:
        return {
            "env": self.env,
            "topics": self.topics,
            "queues": {
                s: {
                    "name": q.name,
                    "dlq": q.dlq,
                    "max_receives": q.max_receives,
                    "visibility_timeout_s": q.visibility_timeout_s,
                }
                for s, q in self.queues.items()
            },
            "subscriptions": [
                {"topic": s.topic, "queue": s.queue, "filter_policy": s.filter_policy}
                for s in self.subscriptions
            ],
            "buckets": self.buckets,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def topic_name(env: str, service: str) -> str:
    return f"spendsense-{env}-{service}-events"


def queue_name(env: str, service: str) -> str:
    return f"spendsense-{env}-{service}"


def build_topology(env: str, *, max_receives: int = 5, visibility_timeout_s: int = 30) -> Topology:
    producers = sorted({spec.producer for spec in CATALOG.values()})
    topics = {service: topic_name(env, service) for service in producers}
    queues = {
        service: Queue(
            name=queue_name(env, service),
            dlq=f"{queue_name(env, service)}-dlq",
            service=service,
            max_receives=max_receives,
            visibility_timeout_s=visibility_timeout_s,
        )
        for service in SERVICES
        if CONSUMES.get(service)
    }
    subscriptions = []
    for consumer, types in CONSUMES.items():
        for producer in producers:
            wanted = tuple(t for t in types if CATALOG[t].producer == producer)
            if wanted:
                subscriptions.append(Subscription(topics[producer], queues[consumer].name, wanted))
    buckets = {kind: f"spendsense-{kind}-{env}" for kind in BUCKET_KINDS}
    return Topology(env=env, topics=topics, queues=queues, subscriptions=subscriptions, buckets=buckets)
