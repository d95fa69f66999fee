"""What a service declares about itself, and the two processes built from that declaration:
its HTTP API (``build_app``) and its worker (``run_worker_process``: outbox relay + queue consumer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI

from spendsense_shared.http.app import create_service_app
from spendsense_shared.logging import configure_logging
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.messaging.tables import MessagingTables
from spendsense_shared.platform import Platform
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.worker import run_worker

HandlerFactory = Callable[[Platform], Mapping[str, Handler]]
AppHook = Callable[[FastAPI, Platform], None]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    title: str
    settings_class: type[ServiceSettings]
    tables: MessagingTables
    routers: Sequence[APIRouter] = ()
    handlers: HandlerFactory = lambda platform: {}
    on_app: Sequence[AppHook] = field(default_factory=tuple)

    @property
    def migrations_package(self) -> str:
        return f"spendsense_{self.name}"

    def settings(self) -> ServiceSettings:
        return self.settings_class(service_name=self.name)

    def platform(self, settings: ServiceSettings | None = None) -> Platform:
        return Platform.create(settings or self.settings(), self.tables)


def build_app(definition: ServiceDefinition, settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or definition.settings()
    configure_logging(definition.name, settings.log_level, settings.log_json)
    platform = definition.platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await platform.close()

    app = create_service_app(
        settings,
        title=definition.title,
        routers=definition.routers,
        readiness=platform.readiness_checks(),
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.token_verifier = platform.verifier
    for hook in definition.on_app:
        hook(app, platform)
    return app


def run_worker_process(definition: ServiceDefinition) -> None:
    settings = definition.settings()
    configure_logging(f"{definition.name}-worker", settings.log_level, settings.log_json)
    platform = definition.platform(settings)
    asyncio.run(run_worker(settings, platform.database, definition.handlers(platform)))
