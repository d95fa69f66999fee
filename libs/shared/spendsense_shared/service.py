"""What a service declares about itself, and the two processes built from that declaration:
its HTTP API (``build_app``) and its worker (``run_worker_process``: outbox relay + queue consumer).

Each service's ``bootstrap.py`` is its one composition root: given the process's :class:`Platform`
(settings, database, cache, AWS, verifier) it builds the concrete adapters and returns a
:class:`Wiring` — the unit of work, the message bus of its use cases, its event handlers, its consent
view — which these two functions hand to the HTTP layer (as FastAPI dependencies) and to the consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI

from spendsense_shared import security
from spendsense_shared.db import asyncpg_dsn
from spendsense_shared.http.app import create_service_app
from spendsense_shared.http.cached import read_cache
from spendsense_shared.http.deps import is_wired, message_bus, provide
from spendsense_shared.logging import configure_logging
from spendsense_shared.messagebus import MessageBus
from spendsense_shared.messaging.tables import MessagingTables
from spendsense_shared.platform import Platform
from spendsense_shared.ratelimit import FixedWindowLimiter
from spendsense_shared.security import ConsentLookup, TokenVerifier
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.unit_of_work import EventHandler, UnitOfWorkFactory
from spendsense_shared.user_changes import UserChangeListener
from spendsense_shared.worker import run_worker


@dataclass(frozen=True)
class Wiring:
    """What a service's bootstrap builds from a platform."""

    unit_of_work: UnitOfWorkFactory
    bus: MessageBus = field(default_factory=lambda: MessageBus({}))
    event_handlers: Mapping[str, EventHandler] = field(default_factory=dict)
    consent: ConsentLookup | None = None
    token_verifier: TokenVerifier | None = None  # None: the platform's (the auth service's JWKS over HTTP)
    dependencies: Mapping[Callable[..., Any], Any] = field(default_factory=dict)  # FastAPI dependency → value
    # Run once when the API or the worker starts (idempotent: several processes run them), e.g. the
    # auth service's bootstrap admin.
    startup: Sequence[Callable[[], Awaitable[None]]] = ()
    # The worker's reconcile steps (``messaging.reconciler``): stuck work found and finished, by name.
    reconcile: Mapping[str, Callable[[], Awaitable[int]]] = field(default_factory=dict)


Bootstrap = Callable[[Platform], Wiring]


def _plain(platform: Platform) -> Wiring:
    return Wiring(unit_of_work=platform.database.uow)


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    title: str
    settings_class: type[ServiceSettings]
    tables: MessagingTables
    routers: Sequence[APIRouter] = ()
    bootstrap: Bootstrap = _plain
    # Its API answers hot reads from memory (``http.cached``): it listens for its schema's user changes.
    caches_reads: bool = False

    @property
    def migrations_package(self) -> str:
        return f"spendsense_{self.name}"

    def settings(self) -> ServiceSettings:
        return self.settings_class(service_name=self.name)

    def platform(self, settings: ServiceSettings | None = None) -> Platform:
        return Platform.create(settings or self.settings(), self.tables)


def build_app(
    definition: ServiceDefinition,
    settings: ServiceSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
) -> FastAPI:
    """The service's API. ``token_verifier`` replaces the wired one (tests trust their own key)."""
    settings = settings or definition.settings()
    configure_logging(definition.name, settings.log_level, settings.log_json)
    platform = definition.platform(settings)
    wiring = definition.bootstrap(platform)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in wiring.startup:
            await hook()
        listener = None
        if definition.caches_reads and settings.read_cache:
            dsn = asyncpg_dsn(settings.database_url.get_secret_value())
            listener = UserChangeListener(dsn, platform.database.schema, platform.read_cache)
            await listener.start()
            platform.database.commit_watcher = listener  # this process's writes wait to be seen
        yield
        if listener is not None:
            platform.database.commit_watcher = None
            await listener.stop()
        await platform.close()

    app = create_service_app(
        settings,
        title=definition.title,
        routers=definition.routers,
        readiness=platform.readiness_checks(),
        lifespan=lifespan,
        rate_limiter=FixedWindowLimiter(platform.cache),
    )
    verifier = token_verifier or wiring.token_verifier or platform.verifier
    if verifier is not None:  # every service refuses a revoked (logged out) token
        verifier = platform.trusting_revocations(verifier)
    provided: dict[Callable[..., Any], Any] = {
        message_bus: wiring.bus,
        read_cache: platform.read_cache,
        security.token_verifier: verifier,
        security.consent_lookup: wiring.consent,
        **wiring.dependencies,
    }
    provide(app, {d: v for d, v in provided.items() if v is not None and is_wired(d)})
    for dependency, value in provided.items():  # a dependency not marked ``wired``: the slow way
        if value is not None and not is_wired(dependency):
            app.dependency_overrides[dependency] = _provider(value)
    app.state.platform = platform  # for operations and tests (closing it, inspecting its database)
    return app


def _provider(value: Any) -> Callable[[], Awaitable[Any]]:
    # async: FastAPI runs a plain function dependency in its thread pool, a hop per dependency and
    # request that costs more than the value it returns (and queues behind 40 threads under load)
    async def provide() -> Any:
        return value

    return provide


def run_worker_process(definition: ServiceDefinition) -> None:
    settings = definition.settings()
    configure_logging(f"{definition.name}-worker", settings.log_level, settings.log_json)
    platform = definition.platform(settings)
    wiring = definition.bootstrap(platform)

    async def main() -> None:
        for hook in wiring.startup:
            await hook()
        try:
            await run_worker(
                settings,
                platform.database,
                wiring.event_handlers,
                wiring.unit_of_work,
                reconcile=wiring.reconcile,
            )
        finally:
            await platform.close()

    asyncio.run(main())
