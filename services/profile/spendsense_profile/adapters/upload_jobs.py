"""The worker's upload jobs: every upload whose received bytes are still in the bucket (``source_key`` set)
is work to do — parse a ``received`` one, or finish tidying one that was decided — and the uploads table
itself is the queue (no event type, no broker).

* **Woken, not polling.** A committed received upload sends ``NOTIFY uploads_<schema>``; the runner
  LISTENs and looks again at once, and otherwise only every ``poll_interval_s`` (a missed notification,
  another worker's retry) — an idle worker does nothing.
* **One worker per upload, and none lost.** Before it works on an upload a runner takes a session-level
  advisory lock on it (``pg_try_advisory_lock``) on a connection it holds for the whole job; other
  runners skip a locked upload. If the worker dies mid-parse, its connection closes, PostgreSQL releases
  the lock, and the upload — still ``received`` — is picked up by the next runner, or by this one when it
  restarts. The job itself is idempotent (an upload decided meanwhile is only tidied up).
* **Failures back off.** A job that raises (the bucket or the database unavailable) is logged and tried
  again later, with exponential backoff; the use case counts the attempts and fails an upload after too
  many.
* **Stopping** (SIGTERM) cancels the jobs in flight: their parsing processes are killed and their uploads
  stay ``received`` for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from spendsense_profile.adapters.orm import uploads, uploads_channel
from spendsense_profile.handlers.unit_of_work import ParseInterrupted
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

Job = Callable[[str], Awaitable[object]]
BACKOFF_MAX_S = 300.0


class UploadJobs:
    def __init__(
        self,
        engine: AsyncEngine,
        schema: str,
        job: Job,
        *,
        listen_dsn: str | None = None,
        concurrency: int = 1,
        poll_interval_s: float = 30.0,
    ):
        self.engine = engine
        self.schema = schema
        self.job = job
        self.listen_dsn = listen_dsn
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # upload id → (failures, not before)

    # -- running ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Work until :meth:`stop`: start jobs while there are free slots and waiting uploads."""
        listener = await self._listen()
        log.info("upload_jobs_started", listen=listener is not None, concurrency=self.concurrency)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self._start_jobs()
                except Exception:
                    log.exception("upload_jobs_poll_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._next_wait())
        finally:
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            log.info("upload_jobs_stopped")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run_pending(self) -> int:
        """Do every job there is now, one after the other (tests, and one-off runs); how many ran."""
        done = 0
        for upload_id in await self.waiting(limit=10_000):
            claim = _Claim(self.engine, f"{self.schema}:{upload_id}")
            if not await claim.acquire():
                continue
            try:
                await self.job(upload_id)
                done += 1
            finally:
                await claim.release()
        return done

    async def waiting(self, limit: int = 100) -> list[str]:
        """Uploads with work left, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(uploads.c.upload_id)
                .where(uploads.c.source_key.is_not(None))
                .order_by(uploads.c.created_at)
                .limit(limit)
            )
            return [r.upload_id for r in rows]

    async def _start_jobs(self) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        now = time.monotonic()
        candidates = [
            u
            for u in await self.waiting(limit=self.concurrency * 4 + len(self._failures))
            if u not in self._running and self._failures.get(u, (0, 0.0))[1] <= now
        ]
        for upload_id in candidates:
            if free <= 0:
                break
            claim = _Claim(self.engine, f"{self.schema}:{upload_id}")
            if not await claim.acquire():
                continue  # another worker has it
            self._running[upload_id] = asyncio.create_task(self._work(upload_id, claim), name=upload_id)
            free -= 1

    async def _work(self, upload_id: str, claim: _Claim) -> None:
        try:
            await self.job(upload_id)
            self._failures.pop(upload_id, None)
        except ParseInterrupted as exc:
            log.info("upload_job_interrupted", upload=upload_id, reason=str(exc))
        except Exception:
            failures = self._failures.get(upload_id, (0, 0.0))[0] + 1
            delay = min(BACKOFF_MAX_S, self.poll_interval_s * 2 ** (failures - 1))
            self._failures[upload_id] = (failures, time.monotonic() + delay)
            log.exception("upload_job_failed", upload=upload_id, failures=failures, retry_in_s=delay)
        finally:
            await asyncio.shield(claim.release())
            self._running.pop(upload_id, None)
            self._wake.set()  # a slot is free

    def _next_wait(self) -> float:
        wait = self.poll_interval_s
        now = time.monotonic()
        for _, not_before in self._failures.values():
            wait = min(wait, max(0.05, not_before - now))
        return wait

    async def _listen(self) -> asyncpg.Connection | None:
        if not self.listen_dsn:
            return None
        try:
            conn = await asyncpg.connect(self.listen_dsn)
            await conn.add_listener(uploads_channel(self.schema), lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError):
            log.warning("upload_jobs_listen_unavailable", fallback="polling")
            return None


class _Claim:
    """A session-level advisory lock on one upload, on a connection of its own: a worker that dies
    releases it with its connection."""

    def __init__(self, engine: AsyncEngine, key: str):
        self.engine = engine
        self.lock_id = func.hashtextextended(key, 0)
        self.conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        self.conn = await self.engine.connect()
        try:
            held = bool((await self.conn.execute(select(func.pg_try_advisory_lock(self.lock_id)))).scalar())
            await self.conn.commit()  # the lock is the session's: don't sit idle in a transaction
        except BaseException:
            await self._close(invalidate=True)
            raise
        if not held:
            await self._close()
        return held

    async def release(self) -> None:
        if self.conn is None:
            return
        try:
            await self.conn.execute(select(func.pg_advisory_unlock(self.lock_id)))
            await self.conn.commit()
        except Exception:
            await self._close(invalidate=True)  # closing the connection releases the lock too
        await self._close()

    async def _close(self, *, invalidate: bool = False) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        with contextlib.suppress(Exception):
            if invalidate:
                await conn.invalidate()
            await conn.close()
