"""``user.erasure_requested`` on the in-memory unit of work: the user's recommendations, traces, feedback,
objects and consent row go (a tombstone stays under a one-way hash); others' stay; a redelivery, a late
``consent.granted``, a late ``persona.assigned`` or a late ``recommendation.reviewed`` recreates nothing;
``recommender.user_erased`` confirms it, naming only the pseudonym, and no later erasure forgets it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.erasure import erase_user
from spendsense_recommender.handlers.recommend import generate_for_batch, generate_recommendations
from spendsense_shared.consent import project_consent
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    RecommendationsBatchGenerated,
    RecommenderUserErased,
    UserErasureRequested,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheckMismatch, redeem, redeem_many
from spendsense_shared.messaging.contracts import ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.events import assigned_together
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_recommender_unit_fakes")
assigned = fakes.assigned  # persona.assigned with its details checked into the bucket


def granted(user_id: str, at: datetime) -> EventEnvelope:
    data = ConsentGranted(
        user_id=user_id, consent_id=f"c-{user_id}", policy_version="1", scopes=["analysis"], granted_at=at
    )
    return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})


async def handle(handler: Any, event: EventEnvelope, uow: Any) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


def state(uow: Any) -> Any:
    repo = uow.recommendations
    return copy.deepcopy(
        (repo.rows, repo.user_of, repo.trace_rows, repo.chain_of, repo.feedback, uow.consent.rows)
    )


@pytest.fixture
def generate(data_bucket):
    return partial(generate_recommendations, store=data_bucket, writer=TemplateWriter())


async def test_erasure_deletes_everything_of_the_user_and_nothing_brings_it_back(
    uow, data_bucket, real_users, generate
):
    users = real_users["users"]
    earlier = datetime.now(UTC) - timedelta(hours=3)
    for user_id in ("gone", "kept"):
        await handle(project_consent, granted(user_id, earlier), uow)
    await handle(generate, await assigned(data_bucket, users["high_utilization"][0], "gone", "up1"), uow)
    await handle(generate, await assigned(data_bucket, users["savings_builder"][0], "kept", "up2"), uow)
    approved = await fakes.approve_all(uow, "gone")
    await fakes.approve_all(uow, "kept")
    repo = uow.recommendations
    assert "gone" in repo.user_of.values()
    assert "kept" in repo.user_of.values()
    repo.feedback.append({"user_id": "gone", "recommendation_id": "r", "item_id": "i", "kind": "dismissed"})
    await data_bucket.put_many([("recommender/users/gone/review/x.json", b"{}")], "application/json")
    await data_bucket.put_many([("recommender/users/gone-2/review/x.json", b"{}")], "application/json")

    erasure = new_event(UserErasureRequested(user_id="gone", requested_at=datetime.now(UTC)), user_id="gone")
    await handle(partial(erase_user, store=data_bucket), erasure, uow)

    assert "gone" not in repo.user_of.values()
    assert all(user != "gone" for _, user, _, _ in repo.trace_rows)
    assert all(f["user_id"] != "gone" for f in repo.feedback)
    assert "kept" in repo.user_of.values()
    assert not [k for k in data_bucket.objects if k.startswith("recommender/users/gone/")]
    assert "recommender/users/gone-2/review/x.json" in data_bucket.objects
    assert "gone" not in uow.consent.rows
    assert pseudonym("gone") in uow.consent.rows
    assert not [e for e in uow.published if e.user_id == "gone"]  # its published events are forgotten

    after = state(uow)
    await handle(partial(erase_user, store=data_bucket), erasure, uow)  # a redelivery
    await handle(project_consent, granted("gone", datetime.now(UTC)), uow)  # a late or replayed grant
    await handle(generate, await assigned(data_bucket, users["high_utilization"][0], "gone", "up3"), uow)
    await fakes.review(uow, fakes.reviewed(approved[0], "gone", "rejected", reason="late"))  # a late review
    assert state(uow) == after


def confirmations(uow: Any) -> list[EventEnvelope]:
    return [e for e in uow.published if e.type == "recommender.user_erased"]


async def test_the_erasure_is_confirmed_naming_only_the_pseudonym_and_no_erasure_forgets_it(
    uow, data_bucket, real_users, generate
):
    await handle(project_consent, granted("gone", datetime.now(UTC) - timedelta(hours=1)), uow)
    await handle(
        generate, await assigned(data_bucket, real_users["users"]["savings_builder"][0], "gone", "up1"), uow
    )
    await fakes.approve_all(uow, "gone")
    assert "recommendations.published" in uow.published_types()
    requested = new_event(
        UserErasureRequested(user_id="gone", requested_at=datetime.now(UTC)), user_id="gone"
    )

    await handle(partial(erase_user, store=data_bucket), requested, uow)

    [confirmed] = confirmations(uow)
    assert confirmed.producer == "recommender"
    assert confirmed.user_id is None
    assert confirmed.causation_id == requested.id
    data = parse_data(confirmed)
    assert isinstance(data, RecommenderUserErased)
    assert data.subject == pseudonym("gone")
    assert data.erased_at == requested.occurred_at
    assert '"gone"' not in confirmed.model_dump_json()  # it names nobody
    assert uow.published == [confirmed]  # every event that mentioned the user is forgotten

    await handle(partial(erase_user, store=data_bucket), requested, uow)  # a redelivery
    again = new_event(UserErasureRequested(user_id="gone", requested_at=datetime.now(UTC)), user_id="gone")
    await handle(partial(erase_user, store=data_bucket), again, uow)  # or a second request
    assert confirmations(uow)[0] == confirmed  # still there: forget_published does not match it
    assert [parse_data(e).subject for e in confirmations(uow)] == [pseudonym("gone")] * 3


async def test_erasure_blanks_the_users_line_and_every_other_claim_still_redeems(
    uow, data_bucket, real_users
):
    users = real_users["users"]
    earlier = datetime.now(UTC) - timedelta(hours=3)
    for user_id in ("gone", "kept"):
        await handle(project_consent, granted(user_id, earlier), uow)
    each = [
        parse_data(await assigned(data_bucket, users[persona][0], user_id, "up1"))
        for user_id, persona in (("gone", "high_utilization"), ("kept", "savings_builder"))
    ]
    batch = new_event(assigned_together(each))  # type: ignore[arg-type]
    await handle(partial(generate_for_batch, store=data_bucket, writer=TemplateWriter()), batch, uow)
    data = parse_data(uow.published[-1])
    assert isinstance(data, RecommendationsBatchGenerated)
    claims = {g.user_id: g.items_claim for g in data.generated}
    [key] = {c.key for c in claims.values() if c is not None}
    before = data_bucket.objects[key]

    erasure = new_event(UserErasureRequested(user_id="gone", requested_at=datetime.now(UTC)), user_id="gone")
    await handle(partial(erase_user, store=data_bucket), erasure, uow)

    after = data_bucket.objects[key]
    assert len(after) == len(before)
    assert b"gone" not in after  # the line named them, and held their items
    gone, kept = claims["gone"], claims["kept"]
    assert gone is not None
    assert kept is not None
    with pytest.raises(ClaimCheckMismatch):
        await redeem(data_bucket, gone)
    [line] = await redeem_many(data_bucket, [kept])
    assert ReviewItems.model_validate_json(line).user_id == "kept"
    assert {u for u, _, _ in uow.review_objects.rows} == {"kept"}
