"""``personas.assigned`` (a batch of users' assignments, one event per chunk) against the in-memory unit of
work and data bucket: each consented user gets what ``persona.assigned`` gives them, in one transaction,
announced together in one ``recommendations.batch_generated`` whose review items are the lines of one
object (one PUT), never in a ``recommendations.generated`` per user."""

from __future__ import annotations

import dataclasses
import json
from functools import partial
from typing import Any

from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers import recommend
from spendsense_recommender.handlers.recommend import (
    generate_for_batch,
    generate_recommendations,
    generated_batches,
)
from spendsense_shared.messaging.catalog import (
    GENERATED_PER_EVENT_MAX,
    GeneratedForUser,
    PersonaAssigned,
    RecommendationsBatchGenerated,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheck, redeem_many
from spendsense_shared.messaging.contracts import ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.counting import CountingStore
from spendsense_shared.testing.events import assigned_together
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_recommender_unit_fakes")
handlers = load_beside(__file__, "test_handlers.py", "spendsense_recommender_unit_test_handlers")

USERS = ("u1", "u2", "u3")


async def per_user(bucket: Any, real_users: Any) -> list[EventEnvelope]:
    """``persona.assigned`` of each of USERS (real reports renamed), details in the bucket."""
    entry = handlers.entry(real_users)
    return [await fakes.assigned(bucket, entry, user_id, "up1") for user_id in USERS]


def batch_of(events: list[EventEnvelope]) -> EventEnvelope:
    each = [parse_data(e) for e in events]
    assert all(isinstance(one, PersonaAssigned) for one in each)
    return new_event(assigned_together(each))  # type: ignore[arg-type]


async def handle(handler: Any, event: EventEnvelope, uow: Any, bucket: Any) -> None:
    async with uow:
        await partial(handler, store=bucket, writer=TemplateWriter())(event, parse_data(event), uow)
        await uow.commit()


async def test_each_consented_user_of_a_batch_is_recommended_in_one_transaction(uow, data_bucket, real_users):
    batch = batch_of(await per_user(data_bucket, real_users))
    for user_id in ("u1", "u3"):  # u2 has no current consent: skipped, the others proceed
        await handlers.grant(uow, user_id)
    commits = uow.commits

    await handle(generate_for_batch, batch, uow, data_bucket)

    assert uow.commits == commits + 1
    assert set(uow.recommendations.user_of.values()) == {"u1", "u3"}
    [announced] = uow.published  # one event for the batch
    assert announced.type == "recommendations.batch_generated"
    assert announced.causation_id == batch.id
    data = parse_data(announced)
    assert isinstance(data, RecommendationsBatchGenerated)
    assert data.upload_id == "up1"
    assert [g.user_id for g in data.generated] == ["u1", "u3"]  # one entry (one review) each
    for one in data.each():
        assert sorted(one.recommendation_ids) == sorted(
            r for r, user in uow.recommendations.user_of.items() if user == one.user_id
        )
    assert set(uow.recommendations.upload_of.values()) == {"up1"}

    stored = dict(uow.recommendations.rows)
    await handle(generate_for_batch, batch, uow, data_bucket)  # redelivered: nothing stored twice
    assert uow.recommendations.rows.keys() == stored.keys()


async def test_a_batch_and_the_per_user_events_of_the_same_assignments_give_the_same_recommendations(
    uow, data_bucket, real_users
):
    """persona.assigned events published before the upgrade are still handled, and agree with a batch."""
    events = await per_user(data_bucket, real_users)
    for user_id in USERS:
        await handlers.grant(uow, user_id)
    for event in events:
        await handle(generate_recommendations, event, uow, data_bucket)
    by_user = dict(uow.recommendations.rows)

    await handle(generate_for_batch, batch_of(events), uow, data_bucket)

    assert uow.recommendations.rows.keys() == by_user.keys()  # the same ids: nothing new


async def test_a_batchs_review_items_are_one_object_written_once_and_read_once(uow, data_bucket, real_users):
    batch = batch_of(await per_user(data_bucket, real_users))
    for user_id in USERS:
        await handlers.grant(uow, user_id)
    store = CountingStore(data_bucket)

    await handle(generate_for_batch, batch, uow, store)

    [announced] = uow.published
    data = parse_data(announced)
    assert isinstance(data, RecommendationsBatchGenerated)
    claims = [g.items_claim for g in data.generated]
    assert all(isinstance(c, ClaimCheck) for c in claims)
    [key] = {c.key for c in claims if c is not None}
    assert store.puts == [[key]]  # one PUT for every user's review items
    assert key.startswith("recommender/reviews/")
    assert key.endswith(".jsonl")
    assert sorted(uow.review_objects.rows) == [(u, key, u) for u in USERS]  # for an erasure, per user
    store.reads.clear()
    lines = await redeem_many(store, [c for c in claims if c is not None])
    assert len(store.reads) == 1  # one GET for the batch
    for one, line in zip(data.each(), lines, strict=True):
        review = ReviewItems.model_validate_json(line)
        assert review.user_id == one.user_id
        assert [i.id for i in review.items] == one.recommendation_ids


async def test_the_recommender_never_publishes_a_recommendations_generated_per_user(
    uow, data_bucket, real_users
):
    """Back to one event per user (one publish each through the broker) would fail here, whichever of
    the two assignment events brought the users."""
    events = await per_user(data_bucket, real_users)
    for user_id in USERS:
        await handlers.grant(uow, user_id)
    await handle(generate_recommendations, events[0], uow, data_bucket)
    await handle(generate_for_batch, batch_of(events), uow, data_bucket)

    assert "recommendations.generated" not in uow.published_types()
    assert uow.published_types() == ["recommendations.batch_generated"] * 2
    assert [len(parse_data(e).generated) for e in uow.published] == [1, 3]  # type: ignore[attr-defined]


async def test_a_batch_announced_again_claims_the_same_lines_or_none_when_the_texts_differ(
    uow, data_bucket, real_users
):
    """The profile's reconciler gets personas.assigned published again: nothing is stored twice, the
    progress is announced again, with the same claims when the re-run wrote the stored texts."""
    batch = batch_of(await per_user(data_bucket, real_users))
    for user_id in USERS:
        await handlers.grant(uow, user_id)
    await handle(generate_for_batch, batch, uow, data_bucket)
    stored = dict(uow.recommendations.rows)

    again = new_event(parse_data(batch))  # the same assignments, another event
    await handle(generate_for_batch, again, uow, data_bucket)
    [first, second] = [parse_data(e) for e in uow.published]
    assert uow.recommendations.rows == stored
    assert first == second  # every user again, with the same claims (the same object)

    rows = uow.recommendations.rows
    u2 = {r for r, user in uow.recommendations.user_of.items() if user == "u2"}
    for key in u2:  # texts a re-run would not give (another writer's)
        rows[key] = dataclasses.replace(rows[key], rationale=rows[key].rationale + " (as first written)")
    puts = len(data_bucket.objects)
    await handle(generate_for_batch, new_event(parse_data(batch)), uow, data_bucket)
    third = parse_data(uow.published[-1])
    assert isinstance(third, RecommendationsBatchGenerated)
    by_user = {g.user_id: g for g in third.generated}
    assert by_user["u2"].items_claim is None  # progress only: no other text reviewed
    assert sorted(by_user["u2"].recommendation_ids) == sorted(u2)
    assert by_user["u1"].items_claim is not None
    assert len(data_bucket.objects) == puts + 1  # u1's and u3's lines, in an object of their own


def test_a_large_batch_is_split_by_count_and_by_size():
    def entry(user_id: str, ids: int) -> GeneratedForUser:
        return GeneratedForUser(
            user_id=user_id,
            recommendation_ids=[f"rec_{i:024d}" for i in range(ids)],
            persona="p",
            items_claim=None,
        )

    many = [entry(f"u{i}", 1) for i in range(GENERATED_PER_EVENT_MAX * 2 + 1)]
    assert [len(b) for b in generated_batches(many)] == [GENERATED_PER_EVENT_MAX, GENERATED_PER_EVENT_MAX, 1]
    heavy = [entry(f"u{i}", 400) for i in range(10)]  # ~12 KB each
    batches = generated_batches(heavy)
    assert [g for b in batches for g in b] == heavy
    for b in batches:
        assert (
            len(RecommendationsBatchGenerated(upload_id="up", generated=b).model_dump_json())
            <= 48 * 1024 + 100
        )
    assert len(batches) > 1


async def test_a_split_batch_is_still_one_object(uow, data_bucket, real_users, monkeypatch):
    monkeypatch.setattr(recommend, "GENERATED_PER_EVENT_MAX", 2)
    batch = batch_of(await per_user(data_bucket, real_users))
    for user_id in USERS:
        await handlers.grant(uow, user_id)
    store = CountingStore(data_bucket)

    await handle(generate_for_batch, batch, uow, store)

    assert [len(parse_data(e).generated) for e in uow.published] == [2, 1]  # type: ignore[attr-defined]
    assert len(store.puts) == 1


async def test_a_user_twice_in_a_batch_continues_the_chain_the_first_assignment_extended(
    uow, data_bucket, real_users
):
    """A batch's histories are read together, before any of its users is recommended: a user's second
    assignment in the batch must not start from that stale end of their chain."""
    from spendsense_recommender.domain.trace import verify_chains

    first, second = (
        handlers.entry(real_users, persona) for persona in ("high_utilization", "savings_builder")
    )
    events = [
        await fakes.assigned(data_bucket, e, "u1", "up1", name=n) for e, n in ((first, "a"), (second, "b"))
    ]
    await handlers.grant(uow, "u1")

    await handle(generate_for_batch, batch_of(events), uow, data_bucket)

    inputs = {
        json.dumps(t["input"]["selection_input"], sort_keys=True)
        for t in await uow.recommendations.chain("u1")
    }
    assert len(inputs) == 2  # each assignment added traces to the one chain
    chains = await uow.recommendations.chains("u1")
    assert [len(traces) for traces in chains.values()] == [len(uow.recommendations.rows)]
    assert verify_chains(chains).ok
