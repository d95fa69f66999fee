"""The profile service's worker (`python -m spendsense_profile.worker`): outbox relay and event consumer,
as every service's, plus the upload jobs — each received upload parsed, then ingested or failed
(``bootstrap.upload_jobs``). SIGTERM stops all three; an upload being parsed then stays ``received`` and
is parsed again at the next start."""

from __future__ import annotations

import asyncio

from spendsense_profile.bootstrap import SERVICE, upload_jobs
from spendsense_shared.logging import configure_logging
from spendsense_shared.processes import start_forkserver
from spendsense_shared.worker import Loop, run_worker


def main() -> None:
    settings = SERVICE.settings()
    configure_logging(f"{SERVICE.name}-worker", settings.log_level, settings.log_json)
    platform = SERVICE.platform(settings)
    wiring = SERVICE.bootstrap(platform)
    jobs = upload_jobs(platform, wiring)
    start_forkserver()  # the upload parser's (bootstrap set what it preloads)

    async def run() -> None:
        for hook in wiring.startup:
            await hook()
        try:  # SIGTERM stops the upload jobs with the consumer, before the relay publishes what they did
            await run_worker(
                settings,
                platform.database,
                wiring.event_handlers,
                wiring.unit_of_work,
                loops=[Loop("upload-jobs", jobs.run, jobs.stop)],
                reconcile=wiring.reconcile,
            )
        finally:
            await platform.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
