"""Use case: a rule set was activated → re-score every consented user from their latest snapshot,
in vectorized batches, keeping history (each assignment records its rule-set version).

A snapshot object holds a chunk of an upload's users: it is read once per batch, and only the rows of
the users whose latest snapshot it is are analyzed (another user of the chunk may have a later one)."""

from __future__ import annotations

from spendsense_features.domain.model import UserSnapshotKeys
from spendsense_features.handlers.analysis import Analyzer, analyze_on_a_thread, read_snapshots, score
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.messaging.catalog import EventData, RescoreRequested
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.errors import PermanentError

BATCH_USERS = 500


async def rescore_all(
    envelope: EventEnvelope,
    data: EventData,
    uow: FeaturesUnitOfWork,
    *,
    store: BlobStore,
    rule_sets: RuleSetStore,
    batch_users: int = BATCH_USERS,
    analyzer: Analyzer = analyze_on_a_thread,
) -> None:
    """Handler for ``personas.rescore_requested``."""
    assert isinstance(data, RescoreRequested)
    rule_set = await rule_sets.get(uow.rule_sets, data.rule_set_version)
    if rule_set is None:
        raise PermanentError(f"rule set {data.rule_set_version!r} does not exist")
    latest = await uow.snapshots.of_consented_users()
    for start in range(0, len(latest), batch_users):
        batch = latest[start : start + batch_users]
        snapshots = await read_snapshots(store, [k for s in batch for k in s.object_keys], users_of(batch))
        await score(
            uow,
            store,
            analyzer(snapshots, rule_set, {s.user_id for s in batch}),
            rule_set,
            upload_id=None,
            causation_id=envelope.id,
            reason="rescore",
        )


def users_of(snapshots: list[UserSnapshotKeys]) -> dict[str, set[str]]:
    """Object key → the users whose latest snapshot includes it."""
    found: dict[str, set[str]] = {}
    for snapshot in snapshots:
        for key in snapshot.object_keys:
            found.setdefault(key, set()).add(snapshot.user_id)
    return found
