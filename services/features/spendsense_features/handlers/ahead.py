"""Analysis ahead of ingest: a chunk of an upload is analyzed on its ``upload.staged`` (its snapshots are
written while the profile service still merges the upload), and its ``upload.ingested`` takes the
result instead of analyzing it then. The merge keeps one core busy in PostgreSQL for seconds on a large
upload; the analysis runs meanwhile.

Nothing is stored or announced ahead: the results wait in this process (:class:`Prepared`) until the
chunk's ``upload.ingested`` takes them, so an upload that fails after staging leaves nothing behind. A
hint that is lost, comes late, reaches another worker or finds its chunk gone only costs time: the
chunk is analyzed on its ``upload.ingested`` as it always was. What was analyzed ahead is used only for
the same rule set and for users whose consent was current then and still is.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from spendsense_features.domain.publication import ScoredUser
from spendsense_features.handlers.analysis import Analyzer, analyze_on_a_thread, read_snapshots
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import EventData, UploadStaged
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)

CHUNKS_KEPT = 32  # 12,800 users of 400: a large import's chunks, ~2.5 MB of results each
KEPT_S = 300.0  # a chunk whose upload.ingested has not come by then is dropped (its upload failed)

_Key = tuple[str, tuple[str, ...]]  # upload id, the chunk's snapshot keys


@dataclass
class _Ahead:
    rule_set_version: str
    users: frozenset[str]
    analysis: asyncio.Task[list[ScoredUser]]
    started: float


class Prepared:
    """The chunks analyzed ahead in this process, each until its ``upload.ingested`` takes it."""

    def __init__(self, capacity: int = CHUNKS_KEPT, kept_s: float = KEPT_S) -> None:
        self.capacity, self.kept_s = capacity, kept_s
        self._ahead: OrderedDict[_Key, _Ahead] = OrderedDict()
        self._taken: OrderedDict[_Key, None] = OrderedDict()  # a hint after its chunk: nothing to do

    def start(
        self,
        upload_id: str,
        keys: Sequence[str],
        rule_set_version: str,
        users: Collection[str],
        analyze: Callable[[], Awaitable[list[ScoredUser]]],
    ) -> bool:
        """Start analyzing a chunk (``analyze()``) unless it is analyzed or taken already."""
        key = (upload_id, tuple(keys))
        if key in self._ahead or key in self._taken:
            return False
        self._drop_stale()
        task = asyncio.ensure_future(analyze())
        task.add_done_callback(_retrieve)
        self._ahead[key] = _Ahead(rule_set_version, frozenset(users), task, time.monotonic())
        return True

    def take(
        self, upload_id: str, keys: Sequence[str], rule_set_version: str, users: Collection[str]
    ) -> Awaitable[list[ScoredUser]] | None:
        """The chunk's analysis of ``users`` (still running, or done), if it was analyzed ahead with this
        rule set for all of them and did not fail; else None (the caller analyzes it)."""
        key = (upload_id, tuple(keys))
        self._taken[key] = None
        while len(self._taken) > 4 * self.capacity:
            self._taken.popitem(last=False)
        ahead = self._ahead.pop(key, None)
        if ahead is None:
            return None
        wanted = set(users)
        if ahead.rule_set_version != rule_set_version or not wanted <= ahead.users:
            ahead.analysis.cancel()
            return None
        if ahead.analysis.done() and (ahead.analysis.cancelled() or ahead.analysis.exception()):
            return None
        log.info("analysis_taken_ahead", upload_id=upload_id, users=len(wanted), done=ahead.analysis.done())
        return _only(ahead.analysis, wanted)

    def close(self) -> None:
        for ahead in self._ahead.values():
            ahead.analysis.cancel()
        self._ahead.clear()

    def _drop_stale(self) -> None:
        now = time.monotonic()
        while self._ahead:
            key, oldest = next(iter(self._ahead.items()))
            if len(self._ahead) < self.capacity and now - oldest.started < self.kept_s:
                return
            oldest.analysis.cancel()
            del self._ahead[key]


async def _only(analysis: Awaitable[list[ScoredUser]], users: set[str]) -> list[ScoredUser]:
    return [user for user in await analysis if user.user_id in users]


def _retrieve(task: asyncio.Task[list[ScoredUser]]) -> None:
    """A failure of a chunk nobody takes is logged, not left for asyncio to complain about."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("analysis_ahead_failed", error=type(error).__name__)


async def analyze_ahead(
    envelope: EventEnvelope,
    data: EventData,
    uow: FeaturesUnitOfWork,
    *,
    store: BlobStore,
    rule_sets: RuleSetStore,
    prepared: Prepared,
    analyzer: Analyzer = analyze_on_a_thread,
) -> None:
    """Handler for ``upload.staged``: start analyzing the chunk's users whose consent is current; the
    handler returns at once (the analysis goes on in this process)."""
    assert isinstance(data, UploadStaged)
    users = await uow.consent.granted(list(data.user_ids))
    if not users:
        return
    rule_set = await rule_sets.active(uow.rule_sets)
    keys = list(data.keys)

    async def analyze() -> list[ScoredUser]:
        return await analyzer(await read_snapshots(store, keys), rule_set, users)

    if prepared.start(data.upload_id, keys, rule_set.version, users, analyze):
        log.info("analysis_started_ahead", upload_id=data.upload_id, users=len(users))
