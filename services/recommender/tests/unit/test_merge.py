"""``user.merged`` on the in-memory unit of work: the merged-away account's recommendations, traces and
feedback become the remaining account's; every trace stays in the hash chain it was sealed in (no stored
hash is rewritten), each chain verifies on its own, and the remaining account's new traces continue its
own chain. A redelivery changes nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from spendsense_recommender.domain.commands import (
    ApprovedRecommendations,
    CheckTrace,
    ListTraces,
    RecordFeedback,
)
from spendsense_recommender.domain.trace import verify_chain
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.merge import merge_users
from spendsense_recommender.handlers.queries import (
    approved_recommendations,
    check_trace,
    list_traces,
    record_feedback,
)
from spendsense_recommender.handlers.recommend import generate_recommendations
from spendsense_shared.consent import project_consent
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    UserMerged,
    UserRegistered,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_recommender_unit_fakes")
assigned = fakes.assigned  # persona.assigned with its details checked into the bucket


async def grant(uow: Any, user_id: str, consent_id: str, hours_ago: int) -> None:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    data = ConsentGranted(
        user_id=user_id, consent_id=consent_id, policy_version="1", scopes=["analysis"], granted_at=at
    )
    await project_consent(new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}), data, uow)


async def handle(handler: Any, event: EventEnvelope, uow: Any) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


def merged(source: str = "old", target: str = "new") -> EventEnvelope:
    return new_event(UserMerged(source_user_id=source, target_user_id=target))


def state(uow: Any) -> Any:
    repo = uow.recommendations
    return copy.deepcopy(
        (
            repo.rows,
            repo.user_of,
            repo.trace_rows,
            repo.chain_of,
            repo.feedback,
            uow.consent.rows,
            uow.review_objects.rows,
        )
    )


@pytest.fixture
def generate(data_bucket):
    return partial(generate_recommendations, store=data_bucket, writer=TemplateWriter())


@pytest.fixture
async def both(uow, data_bucket, real_users, generate):
    """``old`` and ``new`` both consented, with approved recommendations; ``old`` dismissed one."""
    users = real_users["users"]
    await grant(uow, "old", "c-old", 3)
    await grant(uow, "new", "c-new", 2)
    await handle(generate, await assigned(data_bucket, users["high_utilization"][0], "old", "up1"), uow)
    await handle(generate, await assigned(data_bucket, users["savings_builder"][0], "new", "up2"), uow)
    await fakes.approve_all(uow, "old")
    await fakes.approve_all(uow, "new")
    dismissed = next(
        r for r in uow.recommendations.rows.values() if uow.recommendations.user_of[r.id] == "old"
    )
    await record_feedback(RecordFeedback("old", dismissed.id, "dismissed"), uow)
    return dismissed


async def test_the_sources_recommendations_traces_and_feedback_become_the_targets(uow, both):
    old_chain = await uow.recommendations.chain("old")
    new_chain = await uow.recommendations.chain("new")
    old_items = (await approved_recommendations(ApprovedRecommendations("old", limit=100), uow)).items
    new_items = (await approved_recommendations(ApprovedRecommendations("new", limit=100), uow)).items
    [(_, old_key, _)] = [r for r in uow.review_objects.rows if r[0] == "old"]
    [(_, new_key, _)] = [r for r in uow.review_objects.rows if r[0] == "new"]

    event = merged()
    await handle(merge_users, event, uow)

    approved = (await approved_recommendations(ApprovedRecommendations("new", limit=100), uow)).items
    assert sorted(r.id for r in approved) == sorted(r.id for r in old_items + new_items)
    assert (await approved_recommendations(ApprovedRecommendations("old", limit=100), uow)).items == []
    assert await uow.recommendations.dismissed_items("new") == {both.item_id}
    await record_feedback(RecordFeedback("new", old_items[-1].id, "saved"), uow)  # theirs now

    page = await list_traces(ListTraces("new", limit=100), uow)
    assert page.items == old_chain + new_chain  # stored as sealed: no hash rewritten
    assert page.chain["ok"] is True
    assert page.chain["checked"] == len(old_chain) + len(new_chain)
    assert [(c["chain_id"], c["ok"], c["checked"]) for c in page.chain["chains"]] == [
        ("old", True, len(old_chain)),
        ("new", True, len(new_chain)),
    ]
    assert not verify_chain(old_chain + new_chain).ok  # as one chain they would not verify
    checked = await check_trace(CheckTrace("new", old_chain[0]["recommendation_id"]), uow)
    assert checked is not None
    assert checked.chain["ok"] is True
    assert checked.replay["matches"] is True
    assert (await list_traces(ListTraces("old", limit=100), uow)).items == []

    assert uow.consent.rows.keys() == {"new"}
    assert uow.consent.rows["new"][0] == "c-new"  # the target's consent stays
    assert uow.published_types().count("recommendations.batch_generated") == 2  # the merge published nothing
    # the lines of review objects held for old are new's (still old's lines: an erasure of new blanks them)
    assert uow.review_objects.rows == {("new", old_key, "old"), ("new", new_key, "new")}

    after = state(uow)
    await handle(merge_users, event, uow)  # a redelivery
    await handle(merge_users, merged(), uow)  # or the merge announced again
    assert state(uow) == after


async def test_the_targets_new_traces_continue_its_own_chain(uow, both, data_bucket, real_users, generate):
    new_last = await uow.recommendations.last_trace_hash("new")
    await handle(merge_users, merged(), uow)
    assert await uow.recommendations.last_trace_hash("new") == new_last

    own_before = len((await uow.recommendations.chains("new"))["new"])
    entry = real_users["users"]["subscription_heavy"][0]
    await handle(generate, await assigned(data_bucket, entry, "new", "up3"), uow)

    chains = await uow.recommendations.chains("new")
    assert list(chains) == ["old", "new"]
    added = chains["new"][own_before:]
    assert added
    assert added[0]["chain"]["previous_hash"] == new_last
    assert (await list_traces(ListTraces("new", limit=200), uow)).chain["ok"] is True
    assert both.item_id not in {
        uow.recommendations.rows[rec].item_id
        for rec, chain in uow.recommendations.chain_of.items()
        if chain == "new" and uow.recommendations.upload_of[rec] == "up3"
    }  # what the merged-away account dismissed is not offered again


async def test_a_tampered_trace_of_a_merged_chain_is_found_in_its_chain(uow, both):
    await handle(merge_users, merged(), uow)
    repo = uow.recommendations
    index = next(i for i, (_, _, rec, _) in enumerate(repo.trace_rows) if repo.chain_of[rec] == "old")
    seq, user, rec, trace = repo.trace_rows[index]
    repo.trace_rows[index] = (seq, user, rec, {**trace, "catalog": {**trace["catalog"], "item_id": "forged"}})

    report = (await list_traces(ListTraces("new", limit=100), uow)).chain
    assert report["ok"] is False
    assert (report["chain_id"], report["broken_at"], report["trace_id"]) == ("old", 0, rec)
    assert [(c["chain_id"], c["ok"]) for c in report["chains"]] == [("old", False), ("new", True)]


async def test_the_sources_late_persona_event_generates_nothing_after_the_merge(
    uow, both, data_bucket, real_users, generate
):
    await handle(merge_users, merged(), uow)
    before = state(uow)
    late = await assigned(data_bucket, real_users["users"]["high_utilization"][1], "old", "up9")
    await handle(generate, late, uow)
    assert state(uow) == before


async def test_a_target_without_consent_takes_the_sources(uow, data_bucket, real_users, generate):
    await grant(uow, "old", "c-old", 3)
    await handle(
        generate, await assigned(data_bucket, real_users["users"]["high_utilization"][0], "old", "up1"), uow
    )
    await handle(merge_users, merged(), uow)
    assert await uow.consent.is_granted("new")
    assert not await uow.consent.is_granted("old")
    assert (await list_traces(ListTraces("new", limit=100), uow)).chain["chains"][0]["chain_id"] == "old"


async def test_the_merge_handler_refuses_other_events(uow):
    event = new_event(UserRegistered(user_id="u1", roles=["user"], registered_via="password"))
    with pytest.raises(TypeError):
        await handle(merge_users, event, uow)
