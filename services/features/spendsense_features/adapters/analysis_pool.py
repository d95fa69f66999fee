"""The worker's analysis on every core: a pool of processes from a forkserver that imported the analysis
once (:mod:`spendsense_shared.processes`).

In the worker's own process the analysis shares one core's worth of Python (the GIL) with the event loop,
the database and the bucket; in the pool, chunks of an upload are analyzed side by side on every core.
What crosses: the chunk's snapshot objects as read from the bucket (Parquet, decoded in the pool:
:mod:`spendsense_features.domain.snapshots`), the rule set, and back each user's report and details line
as JSON bytes (checking the reports against the contract and
encoding the details is done there too). A pool whose process died (the OOM killer) fails the calls
waiting on it — the messages are retried — and the next call gets a new pool.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from spendsense_features.domain.publication import ScoredUser, score_snapshots
from spendsense_features.domain.rules import RuleSet
from spendsense_features.domain.snapshots import Snapshots
from spendsense_shared.processes import forkserver_context, start_forkserver, use_system_allocator

_PRELOAD = "spendsense_features.domain.publication"
# How much lower the pool's processes run than the worker (os.nice). An upload's chunks are analyzed
# ahead, while PostgreSQL still merges the upload: on a shared machine that COPY is what the upload
# waits for, and the analysis is done long before it ends (the upload benchmark: the other core idle for
# the last second of the merge). At nice 10 the analysis takes what the merge leaves.
NICENESS = 10


def start_analysis_server() -> None:
    """Start the pool's forkserver with the worker, in the background (it imports the analysis, ~1 s,
    while the worker starts), rather than at the first upload."""
    forkserver_context(_PRELOAD)
    start_forkserver()


class AnalysisPool:
    """An :data:`~spendsense_features.handlers.analysis.Analyzer` on ``processes`` processes (one per
    core by default), started at the first call."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(
        self, snapshots: Snapshots, rule_set: RuleSet, user_ids: Collection[str]
    ) -> list[ScoredUser]:
        pool = self._running()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, score_snapshots, snapshots, rule_set, sorted(user_ids)
            )
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None  # the next call starts a new pool
            raise

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = forkserver_context(_PRELOAD)
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=_start_process, initargs=(os.getpid(),)
            )
        return self._pool

    def close(self) -> None:
        """Stop the pool's processes (they also end with the worker, however it ends: see
        :func:`_end_with_worker`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _start_process(worker_pid: int) -> None:
    """Each of the pool's processes, as it starts: a lower priority (:data:`NICENESS`), Arrow's buffers from
    malloc, which keeps freed pages for the next chunk, and an end with the worker."""
    os.nice(NICENESS)
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
