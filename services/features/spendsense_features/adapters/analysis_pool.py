"""The worker's analysis on every core: a :class:`~spendsense_shared.process_pool.ProcessPool` whose
server imported the analysis once.

In the worker's own process the analysis shares one core's worth of Python (the GIL) with the event loop,
the database and the bucket; in the pool, chunks of an upload are analyzed side by side on every core.
What crosses: the chunk's snapshot objects as read from the bucket (Parquet, decoded in the pool:
:mod:`spendsense_features.domain.snapshots`), the rule set, and back each user's report and details line
as JSON bytes (checking the reports against the contract and encoding the details is done there too).
"""

from __future__ import annotations

from collections.abc import Collection

from spendsense_features.domain.publication import ScoredUser, score_snapshots
from spendsense_features.domain.rules import RuleSet
from spendsense_features.domain.snapshots import Snapshots
from spendsense_shared.process_pool import ProcessPool, start_pool_server

_PRELOAD = "spendsense_features.domain.publication"
# How much lower the pool's processes run than the worker (os.nice). An upload's chunks are analyzed
# ahead, while PostgreSQL still merges the upload: on a shared machine that COPY is what the upload
# waits for, and the analysis is done long before it ends (the upload benchmark: the other core idle for
# the last second of the merge). At nice 10 the analysis takes what the merge leaves.
NICENESS = 10


def start_analysis_server() -> None:
    """Start the pool's forkserver with the worker, in the background, rather than at the first upload."""
    start_pool_server(_PRELOAD)


class AnalysisPool(ProcessPool):
    """An :data:`~spendsense_features.handlers.analysis.Analyzer` on ``processes`` processes (one per
    core by default), started at the first call."""

    def __init__(self, processes: int | None = None) -> None:
        super().__init__(_PRELOAD, processes, niceness=NICENESS)

    async def __call__(
        self, snapshots: Snapshots, rule_set: RuleSet, user_ids: Collection[str]
    ) -> list[ScoredUser]:
        return await self.run(score_snapshots, snapshots, rule_set, sorted(user_ids))
