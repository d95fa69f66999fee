"""The adapters every service process holds: database, cache, AWS clients and the token verifier."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from spendsense_shared.aws import Aws
from spendsense_shared.cache import Cache
from spendsense_shared.db import Database
from spendsense_shared.messaging.heartbeat import check_worker_heartbeat
from spendsense_shared.messaging.tables import MessagingTables
from spendsense_shared.messaging.topology import Topology, build_topology
from spendsense_shared.read_cache import ReadCache
from spendsense_shared.revocation import RedisRevocationList
from spendsense_shared.security import TokenVerifier
from spendsense_shared.settings import ServiceSettings

ReadinessCheck = Callable[[], Awaitable[object]]


@dataclass
class Platform:
    settings: ServiceSettings
    database: Database
    cache: Cache
    aws: Aws
    topology: Topology
    verifier: TokenVerifier | None
    revocations: RedisRevocationList  # revoked access tokens (logout), read by every verifier
    read_cache: ReadCache = field(default_factory=ReadCache)  # answers only while an API process listens
    # What a bootstrap started beside the platform's own clients (a pool of processes), stopped by close()
    closers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def create(cls, settings: ServiceSettings, tables: MessagingTables) -> Platform:
        cache = Cache(settings.redis_url.get_secret_value(), settings.service_name, settings.env)
        revocations = RedisRevocationList(cache.client, settings.env)
        verifier = (
            TokenVerifier(
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                jwks_url=settings.jwks_url,
                cache_ttl_s=settings.jwks_cache_ttl_s,
                revocation=revocations,
                max_lifetime_s=settings.access_token_ttl_s,
            )
            if settings.jwks_url
            else None
        )
        return cls(
            settings=settings,
            database=Database(settings, tables),
            cache=cache,
            aws=Aws(settings, keep_clients=True),
            topology=build_topology(settings.env),
            verifier=verifier,
            revocations=revocations,
        )

    def trusting_revocations(self, verifier: TokenVerifier) -> TokenVerifier:
        """``verifier`` refusing the tokens on this platform's revocation list (unless it has a check)."""
        return verifier if verifier.revocation is not None else verifier.with_revocation(self.revocations)

    async def check_bus(self) -> None:
        service = self.settings.service_name
        async with self.aws.client("sqs") as sqs, self.aws.client("sns") as sns:
            if service in self.topology.queues:
                await sqs.get_queue_url(QueueName=self.topology.queues[service].name)
            if service in self.topology.topics:
                names: set[str] = set()
                async for page in sns.get_paginator("list_topics").paginate():  # 100 topics a page
                    names |= {t["TopicArn"].rsplit(":", 1)[-1] for t in page.get("Topics", [])}
                if self.topology.topics[service] not in names:
                    raise RuntimeError(f"topic {self.topology.topics[service]} missing")

    async def check_worker(self) -> None:
        await check_worker_heartbeat(self.cache.client, self.settings.env, self.settings.service_name)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        checks = {"database": self.database.ping, "redis": self.cache.ping, "bus": self.check_bus}
        if self.settings.worker_heartbeat_required:  # a dead worker makes the service not ready
            checks["worker"] = self.check_worker
        return checks

    async def close(self) -> None:
        for close in self.closers:
            close()
        await asyncio.gather(
            self.database.dispose(), self.cache.close(), self.aws.close(), return_exceptions=True
        )
