"""Use case: a rule set was activated → re-score every consented user from their latest snapshot,
in vectorized batches, keeping history (each assignment records its rule-set version)."""

from __future__ import annotations

from sqlalchemy import select

from spendsense_features.adapters.orm import consent_projection, user_snapshots
from spendsense_features.adapters.rule_sets import RuleSetStore
from spendsense_features.handlers.analysis import read_tables, score
from spendsense_shared.db import UnitOfWork
from spendsense_shared.messaging.catalog import EventData, RescoreRequested
from spendsense_shared.messaging.consumer import PermanentError
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.storage import ObjectStore

BATCH_USERS = 500


class RescoreAll:
    """Handler for ``personas.rescore_requested``."""

    def __init__(self, store: ObjectStore, rule_sets: RuleSetStore):
        self.store = store
        self.rule_sets = rule_sets

    async def __call__(self, envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
        assert isinstance(data, RescoreRequested)
        rule_set = await self.rule_sets.get(uow.session, data.rule_set_version)
        if rule_set is None:
            raise PermanentError(f"rule set {data.rule_set_version!r} does not exist")
        rows = (
            await uow.session.execute(
                select(user_snapshots.c.user_id, user_snapshots.c.object_keys)
                .join(consent_projection, consent_projection.c.user_id == user_snapshots.c.user_id)
                .where(consent_projection.c.status == "granted")
                .order_by(user_snapshots.c.user_id)
            )
        ).all()
        for start in range(0, len(rows), BATCH_USERS):
            batch = rows[start : start + BATCH_USERS]
            tables = await read_tables(self.store, [k for r in batch for k in r.object_keys])
            await score(
                uow,
                tables,
                {r.user_id for r in batch},
                rule_set,
                upload_id=None,
                causation_id=envelope.id,
                reason="rescore",
            )
