"""``personas.assigned`` (a batch of users' assignments, one event per chunk) against the in-memory unit of
work and data bucket: each consented user gets what ``persona.assigned`` gives them, in one transaction,
and still one ``recommendations.generated`` each (one review per user)."""

from __future__ import annotations

from functools import partial
from typing import Any

from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.recommend import generate_for_batch, generate_recommendations
from spendsense_shared.messaging.catalog import PersonaAssigned, new_event, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
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
    announced = [e for e in uow.published if e.type == "recommendations.generated"]
    assert sorted(e.user_id for e in announced) == ["u1", "u3"]  # one review each
    assert {e.causation_id for e in announced} == {batch.id}
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
