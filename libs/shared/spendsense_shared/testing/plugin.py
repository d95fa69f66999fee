"""pytest plugin (``-p spendsense_shared.testing.plugin``).

Starts real PostgreSQL, Redis and the AWS emulator once per test session, or uses the servers named by
``SPENDSENSE_TEST_DATABASE_URL``, ``SPENDSENSE_TEST_REDIS_URL`` and ``SPENDSENSE_TEST_AWS_ENDPOINT_URL``.
Each test gets its own isolation id: its own database schemas, bus resource names and Redis prefix.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from spendsense_shared.aws import Aws
from spendsense_shared.embedded.servers import (
    ManagedProcess,
    free_port,
    moto_process,
    postgres_process,
    redis_process,
    wait_for_moto,
    wait_for_postgres,
    wait_for_redis,
)
from spendsense_shared.jwk import SigningKey
from spendsense_shared.messaging.provision import provision
from spendsense_shared.messaging.topology import Topology, build_topology
from spendsense_shared.migrations import upgrade
from spendsense_shared.platform import Platform
from spendsense_shared.security import TokenVerifier
from spendsense_shared.service import ServiceDefinition, build_app
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.testing.fakes import InMemoryBlobStore

ISSUER = "spendsense-auth"
AUDIENCE = "spendsense"


@dataclass(frozen=True)
class Infra:
    database_url: str
    redis_url: str
    aws_endpoint_url: str


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """The real servers every integration test talks to."""
    given = {
        "database_url": os.environ.get("SPENDSENSE_TEST_DATABASE_URL"),
        "redis_url": os.environ.get("SPENDSENSE_TEST_REDIS_URL"),
        "aws_endpoint_url": os.environ.get("SPENDSENSE_TEST_AWS_ENDPOINT_URL"),
    }
    root = tmp_path_factory.mktemp("embedded")
    started: list[ManagedProcess] = []
    try:
        if not given["database_url"]:
            port = free_port()
            pg = postgres_process(root / "postgres", port, root / "postgres.log", durable=False).start()
            started.append(pg)
        if not given["redis_url"]:
            redis_port = free_port()
            redis = redis_process(root / "redis", redis_port, root / "redis.log").start()
            started.append(redis)
        if not given["aws_endpoint_url"]:
            aws_port = free_port()
            aws = moto_process(aws_port, root / "aws.log").start()
            started.append(aws)
        if not given["database_url"]:
            given["database_url"] = wait_for_postgres(pg, port, "spendsense_test")
        if not given["redis_url"]:
            given["redis_url"] = wait_for_redis(redis, redis_port)
        if not given["aws_endpoint_url"]:
            given["aws_endpoint_url"] = wait_for_moto(aws, aws_port)
        yield Infra(**given)  # type: ignore[arg-type]
    finally:
        for proc in reversed(started):
            proc.stop()


@pytest.fixture
def isolation_id() -> str:
    return "t" + uuid.uuid4().hex[:10]


SettingsFactory = Callable[..., ServiceSettings]


ServiceRef: TypeAlias = str | ServiceDefinition


def make_settings(infra: Infra, isolation_id: str, service: ServiceRef, **overrides: Any) -> ServiceSettings:
    """Settings isolated to one test. Given the service's definition (its tests hand it over), they are
    of the service's own settings class, so its extra settings apply; given a name, the base class."""
    settings_class = service.settings_class if isinstance(service, ServiceDefinition) else ServiceSettings
    service = service.name if isinstance(service, ServiceDefinition) else service
    values: dict[str, Any] = {
        "service_name": service,
        "env": isolation_id,
        "database_url": infra.database_url,
        "db_schema": f"{isolation_id}_{service}",
        "redis_url": infra.redis_url,
        "aws_endpoint_url": infra.aws_endpoint_url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "bus_wait_time_s": 1,
        "bus_retry_base_s": 0.2,
        "bus_retry_max_s": 1.0,
        "outbox_poll_interval_s": 0.2,
        "log_json": True,
        **overrides,
    }
    return settings_class(**values)


@pytest.fixture
def settings_for(infra: Infra, isolation_id: str) -> SettingsFactory:
    """``settings_for(SERVICE, bus_max_receives=2)`` (or a service's name): settings isolated to this test."""

    def make(service: ServiceRef, **overrides: Any) -> ServiceSettings:
        return make_settings(infra, isolation_id, service, **overrides)

    return make


@pytest_asyncio.fixture
async def topology(settings_for: SettingsFactory, isolation_id: str) -> Topology:
    """This test's own topics, queues, DLQs and buckets, provisioned on the emulator."""
    settings = settings_for("profile", bus_max_receives=3, bus_visibility_timeout_s=5)
    declared = build_topology(isolation_id, max_receives=3, visibility_timeout_s=5)
    await provision(Aws(settings), declared)
    return declared


Migrator = Callable[..., Awaitable[ServiceSettings]]


@pytest_asyncio.fixture
async def migrated(infra: Infra, isolation_id: str) -> AsyncIterator[Migrator]:
    """``await migrated(SERVICE)`` (or a service's name) applies that service's migrations to this test's
    schema and returns its settings (``**overrides`` applied)."""
    schemas: list[str] = []

    async def migrate(service: ServiceRef, **overrides: Any) -> ServiceSettings:
        settings = make_settings(infra, isolation_id, service, **overrides)
        package = f"spendsense_{settings.service_name}"
        await asyncio.to_thread(upgrade, package, infra.database_url, settings.schema_name)
        schemas.append(settings.schema_name)
        return settings

    yield migrate
    await drop_schemas(infra.database_url, schemas)


async def drop_schemas(database_url: str, schemas: list[str]) -> None:
    if not schemas:
        return
    engine = create_async_engine(database_url, poolclass=NullPool)
    async with engine.begin() as conn:
        for schema in schemas:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture
def data_bucket() -> InMemoryBlobStore:
    """An in-memory data bucket, for handler unit tests (the S3 adapter has integration tests)."""
    return InMemoryBlobStore()


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="session")
def token_verifier(signing_key: SigningKey) -> TokenVerifier:
    """The production verifier, trusting the test key."""
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=signing_key.jwks())


@pytest.fixture(scope="session")
def mint(signing_key: SigningKey) -> Callable[..., str]:
    """``mint("u1", roles=["operator"])`` → a signed access token."""

    def make(subject: str, roles: list[str] | None = None, **kwargs: Any) -> str:
        return signing_key.sign(subject, roles=roles or ["user"], issuer=ISSUER, audience=AUDIENCE, **kwargs)

    return make


class ServiceClient(httpx.AsyncClient):
    """An HTTP client on one service's real app (in process), whose database is migrated for this test."""

    app: FastAPI
    mint: Callable[..., str]

    @property
    def platform(self) -> Platform:
        platform: Platform = self.app.state.platform
        return platform

    def as_(self, user: str, *roles: str) -> dict[str, str]:
        """Headers of a request made by ``user`` with ``roles`` (default: user)."""
        return {"Authorization": f"Bearer {self.mint(user, roles=list(roles) or ['user'])}"}


ClientFactory = Callable[..., Awaitable[ServiceClient]]


@pytest_asyncio.fixture
async def service_client(
    migrated: Migrator, token_verifier: TokenVerifier, mint: Callable[..., str]
) -> AsyncIterator[ClientFactory]:
    """``await service_client(SERVICE, **setting_overrides)``: the service's app, built by its bootstrap
    on this test's migrated schema and bus, trusting the test signing key, behind an HTTP client."""
    clients: list[ServiceClient] = []

    async def make(definition: ServiceDefinition, **overrides: Any) -> ServiceClient:
        settings = await migrated(definition, **overrides)
        app = build_app(definition, settings, token_verifier=token_verifier)
        client = ServiceClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{definition.name}")
        client.app, client.mint = app, mint
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
        await client.platform.close()


def repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Makefile").exists() and (parent / "services").is_dir():
            return parent
    raise RuntimeError("repository root not found")
