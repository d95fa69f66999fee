"""A pool of processes for a worker's CPU-bound work, from a forkserver that imported that work once
(:mod:`spendsense_shared.processes`).

In a worker's own process such work shares one core's worth of Python (the GIL) with the event loop, the
database and the bucket; in the pool it runs side by side on every core. The pool starts at its first
call. A pool whose process died (the OOM killer) fails the calls waiting on it (their messages are
retried) and the next call gets a new pool. Its processes end with the worker, however the worker ends.
"""

from __future__ import annotations

import asyncio
import os
import select
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from spendsense_shared.processes import forkserver_context, start_forkserver, use_system_allocator

T = TypeVar("T")


def start_pool_server(preload: str) -> None:
    """Start the forkserver with the worker, in the background (it imports ``preload``, about a second,
    while the worker starts), rather than at the first call."""
    forkserver_context(preload)
    start_forkserver()


class ProcessPool:
    """``processes`` processes (one per core by default) forked from a server that imported ``preload``,
    each running ``niceness`` below the worker (``os.nice``)."""

    def __init__(self, preload: str, processes: int | None = None, *, niceness: int = 0) -> None:
        self.preload = preload
        self.processes = processes or os.cpu_count() or 1
        self.niceness = niceness
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in one of the pool's processes (both pickled, and the result)."""
        pool = self._running()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None  # the next call starts a new pool
            raise

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=forkserver_context(self.preload),
                initializer=_start_process,
                initargs=(os.getpid(), self.niceness),
            )
        return self._pool

    def close(self) -> None:
        """Stop the pool's processes (they also end with the worker, however it ends: see
        :func:`_end_with_worker`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _start_process(worker_pid: int, niceness: int) -> None:
    """Each of the pool's processes, as it starts: its priority, Arrow's buffers from malloc (which keeps
    freed pages for the next call) where the work uses Arrow, and an end with the worker."""
    if niceness:
        os.nice(niceness)
    if "pyarrow" in sys.modules:  # work on Arrow tables (what the server preloaded imported it)
        use_system_allocator()
    _end_with_worker(worker_pid)


def _end_with_worker(worker_pid: int) -> None:
    """In each of the pool's processes: end when the worker ends, however it ends. A worker killed outright
    (SIGKILL, the OOM killer) never shuts its pool down; a pool process would wait on its queue for ever,
    and keep the forkserver alive too (every process it forks holds its liveness pipe). A thread waits on
    the worker's pidfd (no polling); where there is none (not Linux), the pool ends with an orderly exit
    only."""
    try:
        pidfd = os.pidfd_open(worker_pid)
    except ProcessLookupError:  # it has ended already
        os._exit(0)
    except (AttributeError, OSError):
        return

    def wait() -> None:
        select.select([pidfd], [], [])
        os._exit(0)

    threading.Thread(target=wait, name="end-with-worker", daemon=True).start()
