"""The profile service's worker (`python -m spendsense_profile.worker`): outbox relay and event consumer,
as every service's, plus the upload jobs — each received upload parsed, then ingested or failed
(``bootstrap.upload_jobs``). SIGTERM stops all three; an upload being parsed then stays ``received`` and
is parsed again at the next start."""

from __future__ import annotations

import asyncio

from spendsense_profile.bootstrap import SERVICE, upload_jobs
from spendsense_shared.logging import configure_logging
from spendsense_shared.worker import run_worker


def main() -> None:
    settings = SERVICE.settings()
    configure_logging(f"{SERVICE.name}-worker", settings.log_level, settings.log_json)
    platform = SERVICE.platform(settings)
    wiring = SERVICE.bootstrap(platform)
    jobs = upload_jobs(platform, wiring)

    async def relay_and_consumer() -> None:
        try:
            await run_worker(settings, platform.database, wiring.event_handlers, wiring.unit_of_work)
        finally:  # they stop on SIGTERM (their signal handlers): the upload jobs stop with them
            jobs.stop()

    async def run() -> None:
        for hook in wiring.startup:
            await hook()
        try:
            await asyncio.gather(relay_and_consumer(), jobs.run())
        finally:
            await platform.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
