"""The review queue from ``recommendations.batch_generated`` (a batch of users' recommendations, their
review items the lines of one object): each consented user's items are queued as
``recommendations.generated`` queues them, in one transaction, reading the object once; a user without
current consent, or announced again without items, is skipped and the others proceed."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.handlers.queue import ForeignReviewItems, enqueue_batch
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.messaging.catalog import (
    CONSUMES,
    GeneratedForUser,
    RecommendationsBatchGenerated,
    new_event,
)
from spendsense_shared.messaging.claim_check import check_in_batch
from spendsense_shared.messaging.contracts import ReviewItem, ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.counting import CountingStore
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "support.py", "spendsense_operator_unit_support")
consent, item, T0 = support.consent, support.item, support.T0


async def batch_of(
    bucket: Any, items: dict[str, list[ReviewItem]], *, line_user: dict[str, str] | None = None
) -> EventEnvelope:
    """``recommendations.batch_generated`` for ``items`` (user → items; an empty list: announced again
    without items), the users' lines checked into ``bucket`` as one object, as the recommender does."""
    named = line_user or {}
    with_items = [u for u, i in items.items() if i]
    bodies = [
        ReviewItems(items=items[u], user_id=named.get(u, u)).model_dump_json().encode() for u in with_items
    ]
    claims = dict(
        zip(with_items, await check_in_batch(bucket, "recommender/reviews/b.jsonl", bodies), strict=True)
    )
    data = RecommendationsBatchGenerated(
        upload_id="up1",
        generated=[
            GeneratedForUser(
                user_id=u,
                recommendation_ids=[i.id for i in reviewed] or [f"{u}-r"],
                persona="high_utilization",
                items_claim=claims.get(u),
            )
            for u, reviewed in items.items()
        ],
    )
    return new_event(data).model_copy(update={"occurred_at": T0})


async def deliver(uow: Any, bucket: Any, event: EventEnvelope, policy: str = "off") -> None:
    await support.handle(uow, partial(enqueue_batch, store=bucket, policy=policy), event)


async def test_the_batch_event_is_consumed_and_wired():
    platform = SERVICE.platform(OperatorSettings())
    try:
        wiring = SERVICE.bootstrap(platform)
    finally:
        await platform.close()
    assert "recommendations.batch_generated" in CONSUMES["operator"]
    assert "recommendations.batch_generated" in wiring.event_handlers
    assert "recommendations.generated" in wiring.event_handlers  # events in flight still handled


async def test_each_consented_user_of_a_batch_is_queued_once_reading_the_object_once(uow, data_bucket):
    await consent(uow, "u1")
    await consent(uow, "u2", granted=False)  # skipped; the others proceed
    await consent(uow, "u3")
    await consent(uow, "u4")
    event = await batch_of(
        data_bucket,
        {"u1": [item("r1"), item("r2")], "u2": [item("r3")], "u3": [item("r4")], "u4": []},
    )
    store = CountingStore(data_bucket)
    commits = uow.commits

    await deliver(uow, store, event)

    assert uow.commits == commits + 1
    assert store.reads == [["recommender/reviews/b.jsonl"]]  # one GET for the batch
    assert sorted(uow.queue.items) == ["r1", "r2", "r4"]  # u4 announced again without items
    assert {uow.queue.items[r].user_id for r in ("r1", "r2")} == {"u1"}
    assert uow.queue.items["r4"].user_id == "u3"

    await deliver(uow, store, event)  # a redelivery adds nothing
    assert sorted(uow.queue.items) == ["r1", "r2", "r4"]


async def test_nothing_is_read_when_no_user_of_the_batch_has_consent(uow, data_bucket):
    event = await batch_of(data_bucket, {"u1": [item("r1")]})
    store = CountingStore(data_bucket)
    await deliver(uow, store, event)
    assert store.reads == []
    assert uow.queue.items == {}


async def test_a_line_naming_another_user_is_refused(uow, data_bucket):
    await consent(uow, "u1")
    event = await batch_of(data_bucket, {"u1": [item("r1")]}, line_user={"u1": "someone-else"})
    with pytest.raises(ForeignReviewItems):
        await deliver(uow, data_bucket, event)
    assert uow.queue.items == {}
