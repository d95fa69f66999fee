"""The worker's analysis on every core: a pool of processes from a forkserver that imported the analysis
once (:mod:`spendsense_shared.processes`).

In the worker's own process the analysis shares one core's worth of Python (the GIL) with the event loop,
the database and the bucket; in the pool, chunks of an upload are analyzed side by side on every core.
What crosses: the chunk's tables (pickled as Arrow buffers: copied, not rebuilt), the rule set, and the
reports back as JSON bytes. A pool whose process died (the OOM killer) fails the calls waiting on it —
the messages are retried — and the next call gets a new pool.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from spendsense_features.domain.analysis import analyze_encoded
from spendsense_features.domain.rules import RuleSet
from spendsense_shared.processes import forkserver_context


class AnalysisPool:
    """An :data:`~spendsense_features.handlers.analysis.Analyzer` on ``processes`` processes (one per
    core by default), started at the first call."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(
        self, tables: Mapping[str, pa.Table], rule_set: RuleSet, user_ids: Collection[str]
    ) -> list[tuple[str, bytes]]:
        pool = self._running()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, analyze_encoded, dict(tables), rule_set, sorted(user_ids)
            )
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None  # the next call starts a new pool
            raise

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = forkserver_context("spendsense_features.domain.analysis")
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
