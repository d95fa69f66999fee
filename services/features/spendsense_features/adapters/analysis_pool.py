"""The analysis on every core: batches of users analyzed in a pool of processes.

The worker handles several chunks of an upload at a time, but in threads of one process they took turns
on one core (the analysis is mostly Python and pandas holding the GIL) while the other core had little
to do. Here each batch's tables go to a pool process (pickled Arrow buffers: a chunk of 100 users is a
few MB), which runs the pure domain function and sends the reports back.

Processes come from a ``forkserver`` that has imported the analysis once
(:mod:`spendsense_shared.processes`), so a process starts in milliseconds and holds nothing of the
worker's (no sockets, no event loop). The pool starts on first use
(a process that never analyzes, the API, never starts one) and lives as long as the process. A pool
process that dies (killed, out of memory) breaks the pool: the batch fails as any error would (retried,
then dead-lettered, never lost) and the next batch gets a new pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pyarrow as pa

from spendsense_features.domain import analysis
from spendsense_features.domain.rules import RuleSet
from spendsense_shared.logging import get_logger
from spendsense_shared.processes import forkserver_context

log = get_logger(__name__)


class AnalysisProcessDied(RuntimeError):
    """A pool process ended while analyzing (the batch is retried as after any error)."""


# One pool per process and size, shared by every analyzer made in it (a test session builds the service
# many times; the worker, once).
_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(processes: int) -> ProcessPoolExecutor:
    if processes not in _POOLS:
        _POOLS[processes] = ProcessPoolExecutor(processes, mp_context=forkserver_context(analysis.__name__))
        log.info("analysis_pool_started", processes=processes)
    return _POOLS[processes]


class ProcessPoolAnalyzer:
    """``await analyzer(tables, rule_set, user_ids)``: :func:`analysis.analyze` in one of ``processes``
    pool processes."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.processes = processes

    async def __call__(
        self, tables: Mapping[str, pa.Table], rule_set: RuleSet, user_ids: Collection[str]
    ) -> list[dict[str, Any]]:
        pool = _pool(self.processes)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, analysis.analyze, dict(tables), rule_set, set(user_ids))
        except BrokenProcessPool as exc:
            if _POOLS.get(self.processes) is pool:  # the next batch gets a new pool
                del _POOLS[self.processes]
                pool.shutdown(wait=False, cancel_futures=True)
            raise AnalysisProcessDied(f"an analysis process ended: {exc}") from exc

    def pids(self) -> list[int]:
        """The pool's processes (started as batches come)."""
        pool = _POOLS.get(self.processes)
        return [] if pool is None else list(pool._processes)  # no public accessor
