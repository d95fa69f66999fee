"""A real worker process for the SIGTERM test: the shared runtime with handlers that take 1.5 s."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bus_support.effects import count_effect, messaging
from spendsense_shared.db import Database, UnitOfWork
from spendsense_shared.logging import configure_logging
from spendsense_shared.messaging.catalog import EventData
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.worker import run_worker


async def slow_handler(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
    Path(os.environ["SLOW_WORKER_MARKER"]).touch()
    await asyncio.sleep(1.5)
    await count_effect(envelope, data, uow)


if __name__ == "__main__":
    settings = ServiceSettings(service_name="features")
    configure_logging("slow-worker", "INFO")
    asyncio.run(run_worker(settings, Database(settings, messaging), {"consent.revoked": slow_handler}))
