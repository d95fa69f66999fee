"""The recommender service end to end on real PostgreSQL: persona.assigned → recommendations stored for
review with sealed traces and announced; re-delivery adds nothing; consent gates it; reviews chain onto
the trace; the user API shows approved items only (ETag, pagination, feedback); operators read traces
whose chain verifies, and a tampered trace is found; a merge of two accounts moves everything to the
remaining one with each trace in the chain it was sealed in. Overrides, refusals, announcements and
erasure: ``test_reviews_and_erasure.py``."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import func, select, text, update

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_recommender.adapters.build_pool import BuildPool
from spendsense_recommender.adapters.orm import (
    consent_projection,
    feedback,
    messaging,
    recommendations,
    review_objects,
    traces,
)
from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_recommender.bootstrap import SERVICE
from spendsense_recommender.domain.recommend import Recommendation
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.recommend import (
    apply_review,
    generate_for_batch,
    generate_recommendations,
)
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    OverrideText,
    PersonaAssigned,
    RecommendationReviewed,
    RecommendationsBatchGenerated,
    UserErasureRequested,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import (
    ClaimCheckMismatch,
    check_in_batch,
    check_in_many,
    redeem,
    redeem_many,
)
from spendsense_shared.messaging.contracts import AccountKind, AnalysisReport, PersonaDetails, ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.migrations import upgrade
from spendsense_shared.storage import ObjectStore
from spendsense_shared.testing.counting import CountingStore
from spendsense_shared.testing.events import assigned_together


async def persona_assigned(store: ObjectStore, index: int, upload_id: str = "up1") -> EventEnvelope:
    """The event as the features service publishes it: the report and account kinds checked into the
    data bucket, the event carrying the claim."""
    user, _ = build_user(index, seed=5)
    parsed = parse_upload(io.BytesIO(json.dumps(user).encode()), filename="u.json")
    [raw] = analyze(parsed.tables, load_rule_set())
    report = AnalysisReport.model_validate(raw)
    accounts = [
        AccountKind(**{k: a[k] for k in ("type", "subtype", "name", "official_name", "holder_category")})
        for a in parsed.tables["accounts"].to_pylist()
    ]
    body = PersonaDetails(report=report, accounts=accounts).model_dump_json(by_alias=True).encode()
    [claim] = await check_in_many(
        store, [(f"features/users/{report.user_id}/analysis/{upload_id}.json", body)]
    )
    assert report.as_of is not None
    data = PersonaAssigned(
        user_id=report.user_id,
        upload_id=upload_id,
        as_of=report.as_of,
        rule_set_version="personas-v1",
        personas={w: v.persona.primary or "general_wellness" for w, v in report.windows.items()},
        details=claim,
    )
    return new_event(data, user_id=report.user_id)


async def grant(service, user_id: str) -> None:
    event = new_event(
        ConsentGranted(
            user_id=user_id,
            consent_id="c",
            policy_version="1",
            scopes=["analysis"],
            granted_at=datetime.now(UTC),
        )
    )
    async with service.uow() as uow:
        await apply_consent_event(uow, event, parse_data(event))
        await uow.commit()


async def handle(service, handler, event: EventEnvelope) -> None:
    async with service.uow() as uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


async def count(database, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with database.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest.fixture
async def service(service_client, topology):
    client = await service_client(SERVICE)
    client.db = client.platform.database  # type: ignore[attr-defined]
    client.uow = client.db.uow_factory(SqlRecommenderUnitOfWork)  # type: ignore[attr-defined]
    # The data bucket of this test's provisioned topology, where features checks in persona details.
    client.store = ObjectStore(client.platform.aws, topology.buckets["data"], "")  # type: ignore[attr-defined]
    return client


def generator(service):
    return partial(generate_recommendations, store=service.store, writer=TemplateWriter())


async def approve_all(service, user_id: str) -> list[str]:
    """An operator approves each of the user's pending recommendations (one recommendation.reviewed each)."""
    async with service.db.engine.connect() as conn:
        pending = [
            r.id
            for r in await conn.execute(
                select(recommendations.c.id).where(
                    recommendations.c.user_id == user_id, recommendations.c.status == "pending_review"
                )
            )
        ]
    for recommendation_id in pending:
        decision = RecommendationReviewed(
            recommendation_id=recommendation_id, user_id=user_id, decision="approved", operator_id="op-1"
        )
        await handle(service, apply_review, new_event(decision, user_id=user_id))
    return pending


async def test_generation_is_stored_for_review_announced_and_idempotent(service):
    db = service.db
    event = await persona_assigned(service.store, 0)
    user_id = event.user_id
    generate = generator(service)

    await handle(service, generate, event)
    assert await count(db, recommendations, user_id=user_id) == 0, "nothing without consent"

    await grant(service, user_id)
    await handle(service, generate, event)
    stored = await count(db, recommendations, user_id=user_id)
    assert 4 <= stored <= 8
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(recommendations).where(recommendations.c.user_id == user_id))).all()
        announced = (
            await conn.execute(
                select(messaging.outbox.c.payload).where(
                    messaging.outbox.c.event_type == "recommendations.batch_generated"
                )
            )
        ).all()
        held = (await conn.execute(select(review_objects))).all()
    kinds = [r.kind for r in rows]
    assert 3 <= kinds.count("education") <= 5
    assert 1 <= kinds.count("offer") <= 3
    assert {r.status for r in rows} == {"pending_review"}
    assert all("not financial advice" in r.disclosure for r in rows)
    assert all(any(ch.isdigit() for ch in r.rationale) for r in rows), (
        "every rationale cites the user's figures"
    )
    [payload] = [a.payload for a in announced]
    assert payload["user_id"] is None  # a batch (of one) names no single user in its envelope
    assert payload["data"]["upload_id"] == "up1"
    assert {r.catalog_version for r in rows} == {"catalog-v1"}
    batch = parse_data(EventEnvelope.model_validate(payload))
    assert isinstance(batch, RecommendationsBatchGenerated)
    [generated] = batch.each()
    assert sorted(generated.recommendation_ids) == sorted(r.id for r in rows)
    assert generated.items_claim is not None
    assert generated.items_claim.key.startswith("recommender/reviews/")  # the object names no user
    assert [tuple(h) for h in held] == [(user_id, generated.items_claim.key, user_id)]  # for an erasure
    review = ReviewItems.model_validate_json(await redeem(service.store, generated.items_claim))
    assert review.user_id == user_id
    items = review.items
    for item in items:  # what the operator checks an edit against, and may swap in
        assert item.facts
        assert item.trusted_names == [next(r for r in rows if r.id == item.id).title]
    assert any(item.alternatives for item in items)

    await handle(service, generate, event)  # redelivery / re-run of the same input
    assert await count(db, recommendations, user_id=user_id) == stored
    assert await count(db, traces, user_id=user_id) == stored


async def test_persona_assigned_published_again_for_the_same_upload_adds_nothing_and_keeps_the_chain(
    service,
):
    # The features service publishes persona.assigned again from its stored analysis (the profile's
    # reconciler: no recommendations followed): a new event, the same data.
    event = await persona_assigned(service.store, 2)
    user_id = event.user_id
    await grant(service, user_id)
    await handle(service, generator(service), event)
    stored = await count(service.db, recommendations, user_id=user_id)
    await approve_all(service, user_id)  # the chain has moved on since the generation

    again = new_event(parse_data(event), user_id=user_id)
    assert again.id != event.id
    await handle(service, generator(service), again)

    assert await count(service.db, recommendations, user_id=user_id) == stored
    assert await count(service.db, traces, user_id=user_id) == stored
    # The progress is announced again (the first announcement may be what was lost), items not again.
    first, progress = await outbox_of(service, "recommendations.batch_generated")
    first_batch, progress_batch = parse_data(first), parse_data(progress)
    assert isinstance(first_batch, RecommendationsBatchGenerated)
    assert isinstance(progress_batch, RecommendationsBatchGenerated)
    [first_data], [progress_data] = first_batch.each(), progress_batch.each()
    assert sorted(progress_data.recommendation_ids) == sorted(first_data.recommendation_ids)
    assert progress_data.upload_id == "up1"
    # The same review items again (the re-run wrote the stored texts): a lost first announcement is made
    # good, under the same claim (the same content, the same object key).
    assert progress_data.items_claim == first_data.items_claim
    assert progress_data.items_claim is not None
    assert await outbox_of(service, "recommendations.generated") == []
    assert progress.causation_id == again.id
    operator = service.as_("op-1", "operator")
    body = (await service.get(f"/api/v1/recommendations/{user_id}/traces", headers=operator)).json()
    assert body["chain"]["ok"] is True
    assert len(body["items"]) == stored


async def test_users_see_only_approved_items_with_etag_and_operators_see_verifiable_traces(service):
    db = service.db
    event = await persona_assigned(service.store, 1)
    user_id = event.user_id
    await grant(service, user_id)
    await handle(service, generator(service), event)
    me = service.as_(user_id)

    assert (await service.get(f"/api/v1/recommendations/{user_id}", headers=me)).json()["items"] == []
    async with db.engine.connect() as conn:
        ids = [
            r.id
            for r in await conn.execute(
                select(recommendations.c.id).where(recommendations.c.user_id == user_id)
            )
        ]
    review = new_event(
        RecommendationReviewed(
            recommendation_id=ids[0], user_id=user_id, decision="approved", operator_id="op-1"
        )
    )
    await handle(service, apply_review, review)

    first = await service.get(f"/api/v1/recommendations/{user_id}", headers=me)
    assert [i["id"] for i in first.json()["items"]] == [ids[0]]
    etag = first.headers["etag"]
    again = await service.get(f"/api/v1/recommendations/{user_id}", headers={**me, "If-None-Match": etag})
    assert again.status_code == 304
    mobile = await service.get(f"/api/v1/mobile/recommendations/{user_id}", headers=me)
    assert set(mobile.json()["items"][0]) == {"id", "kind", "title", "rationale"}
    assert "max-age" in mobile.headers["cache-control"]

    other = await service.get(f"/api/v1/recommendations/{user_id}", headers=service.as_("someone-else"))
    assert other.status_code == 403
    assert (await service.get(f"/api/v1/recommendations/{user_id}/traces", headers=me)).status_code == 403

    operator = service.as_("op-1", "operator")
    body = (await service.get(f"/api/v1/recommendations/{user_id}/traces", headers=operator)).json()
    assert body["chain"]["ok"] is True
    approved = next(t for t in body["items"] if t["recommendation_id"] == ids[0])
    assert approved["operator_actions"][0]["action"] == "approved"
    one = (await service.get(f"/api/v1/recommendations/{user_id}/traces/{ids[0]}", headers=operator)).json()
    assert one["replay"] == {"matches": True, "differences": []}
    assert one["chain"]["ok"] is True

    async with db.engine.begin() as conn:  # tamper with a stored trace
        await conn.execute(
            text(
                "UPDATE traces SET trace = jsonb_set(trace, '{catalog,item_id}', '\"forged\"') "
                "WHERE recommendation_id = :id"
            ),
            {"id": ids[-1]},
        )
    body = (await service.get(f"/api/v1/recommendations/{user_id}/traces", headers=operator)).json()
    assert body["chain"]["ok"] is False
    forged = (
        await service.get(f"/api/v1/recommendations/{user_id}/traces/{ids[-1]}", headers=operator)
    ).json()
    assert forged["replay"]["matches"] is False


async def test_feedback_dismissal_keeps_an_item_from_coming_back(service):
    db = service.db
    event = await persona_assigned(service.store, 2)
    user_id = event.user_id
    await grant(service, user_id)
    await handle(service, generator(service), event)
    await approve_all(service, user_id)
    me = service.as_(user_id)
    items = (await service.get(f"/api/v1/recommendations/{user_id}", headers=me)).json()["items"]
    assert items, "the approvals published them"
    dismissed = items[0]
    response = await service.post(
        f"/api/v1/recommendations/{user_id}/feedback",
        json={"recommendation_id": dismissed["id"], "kind": "dismissed"},
        headers=me,
    )
    assert response.status_code == 201
    bad = await service.post(
        f"/api/v1/recommendations/{user_id}/feedback",
        json={"recommendation_id": dismissed["id"], "kind": "meh"},
        headers=me,
    )
    assert bad.status_code == 422

    await handle(service, generator(service), await persona_assigned(service.store, 2, "up2"))
    async with db.engine.connect() as conn:
        newer = (
            await conn.execute(
                select(recommendations.c.item_id, recommendations.c.title).where(
                    recommendations.c.user_id == user_id, recommendations.c.upload_id == "up2"
                )
            )
        ).all()
    assert newer
    assert dismissed["title"] not in {r.title for r in newer}


async def rows_of(database) -> dict[str, list[tuple]]:
    """Every row of the per-user tables, sorted (to compare before and after)."""
    found = {}
    async with database.engine.connect() as conn:
        for table in (recommendations, traces, feedback, consent_projection, review_objects):
            found[table.name] = sorted((tuple(r) for r in await conn.execute(select(table))), key=repr)
    return found


async def test_a_merge_moves_everything_to_the_target_and_keeps_each_trace_in_its_chain(service):
    db = service.db
    generate = generator(service)
    source_event = await persona_assigned(service.store, 0)
    target_event = await persona_assigned(service.store, 1)
    source, target = source_event.user_id, target_event.user_id
    assert source != target
    for user_id in (source, target):
        await grant(service, user_id)
    await handle(service, generate, source_event)
    await handle(service, generate, target_event)
    for user_id in (source, target):
        await approve_all(service, user_id)
    mine = service.as_(source)
    dismissed = (await service.get(f"/api/v1/recommendations/{source}", headers=mine)).json()["items"][0]
    response = await service.post(
        f"/api/v1/recommendations/{source}/feedback",
        json={"recommendation_id": dismissed["id"], "kind": "dismissed"},
        headers=mine,
    )
    assert response.status_code == 201
    async with db.engine.connect() as conn:
        sealed = {
            r.recommendation_id: (r.chain_id, r.hash, r.trace)
            for r in await conn.execute(select(traces).order_by(traces.c.seq))
        }
    assert {c for c, _, _ in sealed.values()} == {source, target}
    approved_before = await count(db, recommendations, status="approved")

    merge = new_event(UserMerged(source_user_id=source, target_user_id=target))
    handler = SERVICE.bootstrap(service.platform).event_handlers["user.merged"]
    await handle(service, handler, merge)

    for table in (recommendations, traces, feedback, consent_projection, review_objects):
        assert await count(db, table, user_id=source) == 0, table.name
    assert await count(db, recommendations, user_id=target, status="approved") == approved_before
    # the source's review lines are the target's to erase (they still name the source)
    assert await count(db, review_objects, user_id=target, report_user_id=source) == 1
    assert await count(db, feedback, user_id=target, kind="dismissed") == 1
    async with db.engine.connect() as conn:
        after = {
            r.recommendation_id: (r.chain_id, r.hash, r.trace)
            for r in await conn.execute(select(traces).order_by(traces.c.seq))
        }
    assert after == sealed  # no stored hash, trace or chain rewritten

    operator = service.as_("op-1", "operator")
    body = (await service.get(f"/api/v1/recommendations/{target}/traces", headers=operator)).json()
    assert {t["recommendation_id"] for t in body["items"]} == set(sealed)
    assert body["chain"]["ok"] is True
    assert body["chain"]["checked"] == len(sealed)
    assert [(c["chain_id"], c["ok"]) for c in body["chain"]["chains"]] == [(source, True), (target, True)]
    one = (
        await service.get(f"/api/v1/recommendations/{target}/traces/{dismissed['id']}", headers=operator)
    ).json()
    assert one["chain"]["ok"] is True
    assert one["replay"]["matches"] is True
    theirs = service.as_(target)
    listed = (await service.get(f"/api/v1/recommendations/{target}?limit=100", headers=theirs)).json()
    assert dismissed["id"] in {i["id"] for i in listed["items"]}

    snapshot = await rows_of(db)
    await handle(service, handler, merge)  # a redelivery changes nothing
    assert await rows_of(db) == snapshot

    # The target's next recommendations continue its own chain, and leave out what the source dismissed.
    async with service.uow() as uow:
        target_last = await uow.recommendations.last_trace_hash(target)
    assert target_last == [h for c, h, _ in sealed.values() if c == target][-1]
    await handle(service, generate, await persona_assigned(service.store, 1, "up2"))
    async with db.engine.connect() as conn:
        newer = (
            await conn.execute(
                select(traces.c.chain_id, traces.c.trace, recommendations.c.item_id)
                .join(recommendations, recommendations.c.id == traces.c.recommendation_id)
                .where(recommendations.c.upload_id == "up2")
                .order_by(traces.c.seq)
            )
        ).all()
    assert newer
    assert {r.chain_id for r in newer} == {target}
    assert newer[0].trace["chain"]["previous_hash"] == target_last
    assert dismissed["title"] not in {r.trace["output"]["title"] for r in newer}
    body = (await service.get(f"/api/v1/recommendations/{target}/traces?limit=100", headers=operator)).json()
    assert body["chain"]["ok"] is True
    assert [c["chain_id"] for c in body["chain"]["chains"]] == [source, target]

    async with db.engine.begin() as conn:  # tamper with a trace of the merged-away chain
        await conn.execute(
            text(
                "UPDATE traces SET trace = jsonb_set(trace, '{catalog,item_id}', '\"forged\"') "
                "WHERE recommendation_id = :id"
            ),
            {"id": dismissed["id"]},
        )
    body = (await service.get(f"/api/v1/recommendations/{target}/traces?limit=100", headers=operator)).json()
    assert (body["chain"]["ok"], body["chain"]["chain_id"], body["chain"]["trace_id"]) == (
        False,
        source,
        dismissed["id"],
    )
    assert [c["ok"] for c in body["chain"]["chains"]] == [False, True]


async def test_the_chain_migration_puts_every_existing_trace_in_its_users_chain(
    infra, settings_for, migrated
):
    settings = settings_for(SERVICE)
    await asyncio.to_thread(
        upgrade, "spendsense_recommender", infra.database_url, settings.schema_name, "recommender_0003"
    )
    platform = SERVICE.platform(settings)
    try:
        async with platform.database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO traces (recommendation_id, user_id, trace, hash) VALUES "
                    "('r1', 'u1', '{}', 'h1'), ('r2', 'u2', '{}', 'h2')"
                )
            )
        await migrated(SERVICE)  # to head, on the same schema
        async with platform.database.engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT recommendation_id, chain_id FROM traces ORDER BY seq"))
            ).all()
    finally:
        await platform.close()
    assert [tuple(r) for r in rows] == [("r1", "u1"), ("r2", "u2")]


# -- reviews: overrides, refusals, announcements -----------------------------------------------------


async def generated_for(service, index: int) -> tuple[str, list]:
    """A consented user with pending recommendations: their id and their rows (rank order)."""
    event = await persona_assigned(service.store, index)
    await grant(service, event.user_id)
    await handle(service, generator(service), event)
    async with service.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(recommendations, traces.c.trace)
                .join(traces, traces.c.recommendation_id == recommendations.c.id)
                .where(recommendations.c.user_id == event.user_id)
                .order_by(recommendations.c.kind, recommendations.c.rank)
            )
        ).all()
    return event.user_id, rows


def reviewed(row, decision: str = "approved", operator: str = "op-1", **fields) -> EventEnvelope:
    data = RecommendationReviewed(
        recommendation_id=row.id, user_id=row.user_id, decision=decision, operator_id=operator, **fields
    )
    return new_event(data, user_id=row.user_id)


def edit_of(row, **changes) -> OverrideText:
    text = {
        "title": "A calmer look at this",
        "body": row.body,
        "rationale": "Here is what we noticed. " + row.rationale,
        "disclosure": row.disclosure,
        "catalog_item_id": row.item_id,
        "catalog_version": row.catalog_version,
        "source": "edited",
    }
    return OverrideText(**{**text, **changes})


def alternative_of(row, index: int = 0) -> OverrideText:
    recorded = row.trace["alternatives"][index]
    fields = ("catalog_item_id", "catalog_version", "title", "body", "rationale", "disclosure")
    return OverrideText(**{k: recorded[k] for k in fields}, source="catalog_item")


async def outbox_of(service, event_type: str) -> list[EventEnvelope]:
    async with service.db.engine.connect() as conn:
        rows = await conn.execute(
            select(messaging.outbox.c.payload)
            .where(messaging.outbox.c.event_type == event_type)
            .order_by(messaging.outbox.c.seq)
        )
        return [EventEnvelope.model_validate(r.payload) for r in rows]


async def stored(service, recommendation_id: str):
    async with service.db.engine.connect() as conn:
        return (
            await conn.execute(select(recommendations).where(recommendations.c.id == recommendation_id))
        ).one()


async def test_overrides_are_shown_with_their_text_refusals_hidden_and_each_publication_announced(service):
    user_id, rows = await generated_for(service, 3)
    education = [r for r in rows if r.kind == "education"]
    offer = next(r for r in rows if r.kind == "offer" and r.trace["alternatives"])
    edited, refused, approved = education[0], education[1], education[2]
    handler = SERVICE.bootstrap(service.platform).event_handlers["recommendation.reviewed"]
    me, operator = service.as_(user_id), service.as_("op-1", "operator")

    edit = edit_of(edited)
    events = [
        reviewed(edited, "overridden", override=edit, reason="softer wording"),
        reviewed(offer, "overridden", override=alternative_of(offer)),
        reviewed(approved),
        reviewed(refused),
        reviewed(
            refused, "overridden", override=edit_of(refused, rationale=refused.rationale + " Save $9,999.")
        ),
        reviewed(approved, operator="op-2"),  # a second approval: recorded, not announced again
    ]
    for event in events:
        await handle(service, handler, event)

    shown = {
        i["id"]: i
        for i in (await service.get(f"/api/v1/recommendations/{user_id}", headers=me)).json()["items"]
    }
    assert set(shown) == {edited.id, offer.id, approved.id}  # the refused override hid its item
    assert (shown[edited.id]["title"], shown[edited.id]["rationale"]) == (edit.title, edit.rationale)
    assert shown[edited.id]["status"] == "overridden"
    assert shown[approved.id]["status"] == "approved"
    alternative = offer.trace["alternatives"][0]
    assert (shown[offer.id]["title"], shown[offer.id]["details"]) == (
        alternative["title"],
        alternative["details"],
    )
    mobile = (await service.get(f"/api/v1/mobile/recommendations/{user_id}", headers=me)).json()["items"]
    assert {i["id"]: i["title"] for i in mobile}[edited.id] == edit.title

    swapped = await stored(service, offer.id)
    assert (swapped.item_id, swapped.catalog_version) == (alternative["catalog_item_id"], "catalog-v1")
    assert (await stored(service, refused.id)).status == "override_refused"
    assert (await stored(service, refused.id)).rationale == refused.rationale

    announced = await outbox_of(service, "recommendations.published")
    assert [parse_data(e).recommendation_ids for e in announced] == [
        [edited.id],
        [offer.id],
        [approved.id],
        [refused.id],  # approved (announced), then hidden by its refused override
    ]
    assert [e.causation_id for e in announced] == [e.id for e in events[:4]]
    assert {e.user_id for e in announced} == {user_id}

    body = (await service.get(f"/api/v1/recommendations/{user_id}/traces?limit=100", headers=operator)).json()
    assert body["chain"]["ok"] is True
    by_id = {t["recommendation_id"]: t for t in body["items"]}
    [action] = by_id[edited.id]["operator_actions"]
    assert (action["actor"], action["reason"], action["outcome"]) == ("op-1", "softer wording", "applied")
    assert action["override"]["before"]["rationale"] == edited.rationale
    assert action["override"]["after"]["rationale"] == edit.rationale
    assert action["override"]["guardrails"]["passed"] is True
    refusal = by_id[refused.id]["operator_actions"][-1]
    assert (refusal["outcome"], refusal["override"]["guardrails"]["reasons"]) == ("refused", ["grounding"])
    assert [a["outcome"] for a in by_id[approved.id]["operator_actions"]] == ["applied", "unchanged"]
    one = (
        await service.get(f"/api/v1/recommendations/{user_id}/traces/{edited.id}", headers=operator)
    ).json()
    assert one["replay"] == {"matches": True, "differences": []}  # the decision's record is untouched

    response = await service.post(
        f"/api/v1/recommendations/{user_id}/feedback",
        json={"recommendation_id": offer.id, "kind": "dismissed"},
        headers=me,
    )
    assert response.status_code == 201
    async with service.uow() as uow:
        assert await uow.recommendations.dismissed_items(user_id) == {alternative["catalog_item_id"]}


async def test_two_reviews_of_one_item_at_once_apply_one_after_the_other(service):
    user_id, rows = await generated_for(service, 4)
    row = rows[0]
    await asyncio.gather(
        handle(service, apply_review, reviewed(row, operator="op-1")),
        handle(service, apply_review, reviewed(row, operator="op-2")),
    )
    async with service.db.engine.connect() as conn:
        trace = (
            await conn.execute(select(traces.c.trace).where(traces.c.recommendation_id == row.id))
        ).scalar_one()
    assert sorted(a["actor"] for a in trace["operator_actions"]) == ["op-1", "op-2"]  # neither lost
    assert sorted(a["outcome"] for a in trace["operator_actions"]) == ["applied", "unchanged"]
    assert len(await outbox_of(service, "recommendations.published")) == 1
    body = (
        await service.get(f"/api/v1/recommendations/{user_id}/traces", headers=service.as_("op", "operator"))
    ).json()
    assert body["chain"]["ok"] is True


# -- erasure -------------------------------------------------------------------------------------------


async def mark_published(service) -> None:
    """What the relay does once it has sent the outbox's events."""
    async with service.db.engine.begin() as conn:
        await conn.execute(
            update(messaging.outbox)
            .where(messaging.outbox.c.published_at.is_(None))
            .values(published_at=func.now())
        )


async def test_after_erasure_every_route_answers_404_and_the_confirmation_names_nobody(service):
    user_id, rows = await generated_for(service, 5)
    await approve_all(service, user_id)
    me, operator = service.as_(user_id), service.as_("op-1", "operator")
    routes = [
        ("GET", f"/api/v1/recommendations/{user_id}", None),
        ("GET", f"/api/v1/mobile/recommendations/{user_id}", None),
        ("GET", f"/api/v1/recommendations/{user_id}/traces", None),
        ("GET", f"/api/v1/recommendations/{user_id}/traces/{rows[0].id}", None),
        (
            "POST",
            f"/api/v1/recommendations/{user_id}/feedback",
            {"recommendation_id": rows[0].id, "kind": "saved"},
        ),
    ]
    before = [
        (await service.request(m, path, json=body, headers=operator)).status_code for m, path, body in routes
    ]
    assert before[:4] == [200, 200, 200, 200]
    await mark_published(service)

    handlers = SERVICE.bootstrap(service.platform).event_handlers
    erase = handlers["user.erasure_requested"]
    request = new_event(
        UserErasureRequested(user_id=user_id, requested_at=datetime.now(UTC)), user_id=user_id
    )
    await handle(service, erase, request)

    for headers in (me, operator):
        for method, path, body in routes:
            response = await service.request(method, path, json=body, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), path
    stranger = await service.get(f"/api/v1/recommendations/{user_id}", headers=service.as_("someone-else"))
    assert stranger.status_code == 403  # whoever could not see the user learns nothing

    [confirmed] = await outbox_of(service, "recommender.user_erased")
    assert confirmed.user_id is None
    assert confirmed.causation_id == request.id
    assert parse_data(confirmed).subject == pseudonym(user_id)
    async with service.db.engine.connect() as conn:
        payloads = [str(r.payload) for r in await conn.execute(select(messaging.outbox.c.payload))]
    assert not [p for p in payloads if user_id in p and "user.erasure_requested" not in p]

    await mark_published(service)  # sent; then the user is erased again (a second request)
    await handle(
        service, erase, new_event(UserErasureRequested(user_id=user_id, requested_at=datetime.now(UTC)))
    )
    confirmations = [e.id for e in await outbox_of(service, "recommender.user_erased")]
    assert confirmations[:1] == [confirmed.id]  # the first is kept (it names nobody)
    assert len(confirmations) == 2  # and the second request is confirmed too
    await handle(service, handlers["recommendation.reviewed"], reviewed(rows[0], "approved"))  # a late review
    assert await count(service.db, recommendations, user_id=user_id) == 0
    assert await count(service.db, traces, user_id=user_id) == 0


async def test_the_catalog_version_migration_takes_each_rows_version_from_its_trace(
    infra, settings_for, migrated
):
    settings = settings_for(SERVICE)
    await asyncio.to_thread(
        upgrade, "spendsense_recommender", infra.database_url, settings.schema_name, "recommender_0004"
    )
    platform = SERVICE.platform(settings)
    try:
        async with platform.database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO recommendations (id, user_id, kind, item_id, rank, persona, title, body, "
                    "rationale, disclosure, details, generator, status) VALUES "
                    "('r1', 'u1', 'education', 'i1', 1, 'p', 't', 'b', 'r', 'd', '{}', 'template', 'approved')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO traces (recommendation_id, user_id, chain_id, trace, hash) VALUES "
                    """('r1', 'u1', 'u1', '{"catalog": {"version": "catalog-v7"}}', 'h1')"""
                )
            )
        await migrated(SERVICE)  # to head, on the same schema
        async with platform.database.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, catalog_version FROM recommendations"))).all()
    finally:
        await platform.close()
    assert [tuple(r) for r in rows] == [("r1", "catalog-v7")]


async def test_a_batch_of_assignments_recommends_each_consented_user_in_one_transaction(service):
    """``personas.assigned`` (one event per chunk of an upload): each consented user is recommended as
    ``persona.assigned`` recommends them, and announced together in one ``recommendations.batch_generated``
    (an entry, one review, per user); a user without current consent is skipped, the others proceed; a
    redelivery stores nothing twice."""
    per_user = [await persona_assigned(service.store, index) for index in (0, 1, 3)]
    each = [parse_data(e) for e in per_user]
    assert all(isinstance(one, PersonaAssigned) for one in each)
    batch = new_event(assigned_together(each))  # type: ignore[arg-type]
    consented = [e.user_id for e in per_user[:2]]
    for user_id in consented:
        assert user_id is not None
        await grant(service, user_id)
    generate = partial(generate_for_batch, store=service.store, writer=TemplateWriter())
    wired = SERVICE.bootstrap(service.platform).event_handlers["personas.assigned"]
    assert isinstance(wired.keywords["build"], BuildPool)  # the template writer's: built on every core

    await handle(service, generate, batch)
    await handle(service, generate, batch)  # redelivered

    db = service.db
    stored = {u: await count(db, recommendations, user_id=u) for u in consented}
    assert all(4 <= n <= 8 for n in stored.values())
    assert await count(db, recommendations, user_id=per_user[2].user_id) == 0
    first_round, _ = await outbox_of(service, "recommendations.batch_generated")  # one event per delivery
    assert first_round.causation_id == batch.id
    data = parse_data(first_round)
    assert isinstance(data, RecommendationsBatchGenerated)
    assert sorted(g.user_id for g in data.generated) == sorted(consented)  # one review per user
    assert {g.user_id: len(g.recommendation_ids) for g in data.generated} == stored
    assert await outbox_of(service, "recommendations.generated") == []


async def batched(service, *indexes: int) -> tuple[EventEnvelope, list[str]]:
    """``personas.assigned`` as features announces it: every user's details a line of one object."""
    each = [parse_data(await persona_assigned(service.store, index)) for index in indexes]
    bodies = await redeem_many(service.store, [one.details for one in each])  # each user's own object
    claims = await check_in_batch(service.store, f"features/details/{uuid.uuid4().hex}.jsonl", bodies)
    each = [one.model_copy(update={"details": claim}) for one, claim in zip(each, claims, strict=True)]
    return new_event(assigned_together(each)), [one.user_id for one in each]  # type: ignore[arg-type]


async def test_a_batchs_details_are_read_once_for_all_its_users(service):
    batch, users = await batched(service, 0, 1, 3)
    for user_id in users:
        await grant(service, user_id)
    store = CountingStore(service.store)

    await handle(service, partial(generate_for_batch, store=store, writer=TemplateWriter()), batch)

    [key] = {a.details.key for a in parse_data(batch).assignments}
    assert store.reads == [[key]]  # one GET for the batch's object, not one per user
    assert all([await count(service.db, recommendations, user_id=u) >= 4 for u in users])


async def test_a_changed_part_of_a_batchs_details_fails_the_batch(service):
    """A hash mismatch is permanent (dead-lettered) and, the batch being one transaction, nothing is
    stored for any of its users, as when each user's claim was redeemed in turn."""
    batch, users = await batched(service, 0, 1)
    for user_id in users:
        await grant(service, user_id)
    claim = parse_data(batch).assignments[1].details
    whole = bytearray(await service.store.get(claim.key))
    whole[claim.offset + 2] ^= 0x01
    await service.store.put_many([(claim.key, bytes(whole))], "application/x-ndjson")

    with pytest.raises(ClaimCheckMismatch):
        await handle(
            service, partial(generate_for_batch, store=service.store, writer=TemplateWriter()), batch
        )
    assert [await count(service.db, recommendations, user_id=u) for u in users] == [0, 0]


async def test_a_batchs_review_items_are_one_object_and_an_erasure_blanks_only_the_users_line(service):
    """Every consented user's review items of a batch: one PUT (a line each, in one object), one index
    row per user in the same transaction, one ``recommendations.batch_generated``. An erasure overwrites
    the user's line with spaces: their claim no longer redeems, every other user's still does, and the
    per-user prefix of the claims made before the batch event is gone too."""
    batch, users = await batched(service, 0, 1, 3)
    for user_id in users:
        await grant(service, user_id)
    store = CountingStore(service.store)

    await handle(service, partial(generate_for_batch, store=store, writer=TemplateWriter()), batch)

    [announced] = await outbox_of(service, "recommendations.batch_generated")
    data = parse_data(announced)
    assert isinstance(data, RecommendationsBatchGenerated)
    claims = {g.user_id: g.items_claim for g in data.generated}
    assert set(claims) == set(users)
    [key] = {c.key for c in claims.values() if c is not None}
    assert store.puts == [[key]]  # one PUT for the batch's review items
    async with service.db.engine.connect() as conn:
        held = sorted(tuple(r) for r in await conn.execute(select(review_objects)))
    assert held == sorted((u, key, u) for u in users)

    gone, *kept = users
    await service.store.put(f"recommender/users/{gone}/review/large.json", b"{}", "application/json")
    erasure = new_event(UserErasureRequested(user_id=gone, requested_at=datetime.now(UTC)), user_id=gone)
    handler = SERVICE.bootstrap(service.platform).event_handlers["user.erasure_requested"]
    await handle(service, handler, erasure)

    body = await service.store.get(key)
    assert gone.encode() not in body
    with pytest.raises(ClaimCheckMismatch):
        await redeem(service.store, claims[gone])  # type: ignore[arg-type]
    lines = await redeem_many(service.store, [claims[u] for u in kept])  # type: ignore[misc]
    assert [ReviewItems.model_validate_json(line).user_id for line in lines] == kept
    assert await service.store.list(f"recommender/users/{gone}/") == []
    assert await count(service.db, review_objects, user_id=gone) == 0
    assert await count(service.db, review_objects) == len(kept)


def _recommendation(rec_id: str, user_id: str) -> Recommendation:
    return Recommendation(
        id=rec_id,
        user_id=user_id,
        kind="education",
        item_id=f"item-{rec_id}",
        catalog_version="catalog-v1",
        rank=1,
        persona="savings_builder",
        title="A title",
        body="A body",
        rationale="Because 42",
        disclosure="This is educational content, not financial advice.",
        generator="template",
        trace={"input": {"as_of": "2026-10-31"}, "chain": {"hash": f"hash-{rec_id}"}},
    )


async def test_add_stores_the_new_items_and_their_traces_in_the_items_order(service):
    """Two statements for a user's items: ids already stored are skipped, an id given twice is stored
    once, and the traces' sequence (the chain's order) is the items' order."""
    user_id = "repo-user"
    first = [_recommendation(i, user_id) for i in ("r-c", "r-a")]
    async with service.uow() as uow:
        assert await uow.recommendations.add(first, upload_id="up1", status="pending_review") == [
            "r-c",
            "r-a",
        ]
        await uow.commit()
    later = [_recommendation(i, user_id) for i in ("r-a", "r-z", "r-b", "r-z", "r-c")]
    async with service.uow() as uow:
        assert await uow.recommendations.add(later, upload_id="up2", status="pending_review") == [
            "r-z",
            "r-b",
        ]
        assert await uow.recommendations.add([], upload_id="up2", status="pending_review") == []
        await uow.commit()
    async with service.db.engine.connect() as conn:
        chain = (
            await conn.execute(
                select(traces.c.recommendation_id, traces.c.hash)
                .where(traces.c.user_id == user_id)
                .order_by(traces.c.seq)
            )
        ).all()
        uploads = dict(
            (
                await conn.execute(
                    select(recommendations.c.id, recommendations.c.upload_id).where(
                        recommendations.c.user_id == user_id
                    )
                )
            ).all()
        )
    assert [tuple(row) for row in chain] == [(i, f"hash-{i}") for i in ("r-c", "r-a", "r-z", "r-b")]
    assert uploads == {"r-c": "up1", "r-a": "up1", "r-z": "up2", "r-b": "up2"}


async def test_add_many_stores_a_batch_of_users_as_add_one_after_another(service):
    """A batch's users in two statements: each answer is what ``add`` of that user's items alone gives
    after the ones before (an id stored already skipped, an id given twice once, an empty batch none),
    and each user's chain is in their items' order, under their own upload."""
    async with service.uow() as uow:
        await uow.recommendations.add(
            [_recommendation("m-b1", "many-b")], upload_id="up0", status="pending_review"
        )
        await uow.commit()
    batches = [
        ([_recommendation(i, "many-a") for i in ("m-a2", "m-a1", "m-a2")], "up1"),
        ([], "up1"),
        ([_recommendation(i, "many-b") for i in ("m-b1", "m-b3", "m-b2")], "up2"),
    ]
    async with service.uow() as uow:
        assert await uow.recommendations.add_many(batches, status="pending_review") == [
            ["m-a2", "m-a1"],
            [],
            ["m-b3", "m-b2"],
        ]
        assert await uow.recommendations.add_many([], status="pending_review") == []
        await uow.commit()
    async with service.db.engine.connect() as conn:
        chains = (
            await conn.execute(
                select(traces.c.user_id, traces.c.recommendation_id)
                .where(traces.c.user_id.in_(["many-a", "many-b"]))
                .order_by(traces.c.seq)
            )
        ).all()
        uploads = dict(
            (
                await conn.execute(
                    select(recommendations.c.id, recommendations.c.upload_id).where(
                        recommendations.c.user_id.in_(["many-a", "many-b"])
                    )
                )
            ).all()
        )
    assert [row.recommendation_id for row in chains if row.user_id == "many-a"] == ["m-a2", "m-a1"]
    assert [row.recommendation_id for row in chains if row.user_id == "many-b"] == ["m-b1", "m-b3", "m-b2"]
    assert uploads == {"m-a2": "up1", "m-a1": "up1", "m-b1": "up0", "m-b3": "up2", "m-b2": "up2"}


async def test_a_batchs_histories_are_each_users_own_read_in_two_queries(service):
    """``histories`` reads a batch's users at once: for each, the end of their own chain (the latest
    trace, however many there are; None without one) and the items they dismissed — what the queries
    for one user at a time give."""
    async with service.uow() as uow:
        await uow.recommendations.add(
            [_recommendation(i, "hist-a") for i in ("ha-1", "ha-2", "ha-3")],
            upload_id="up1",
            status="pending_review",
        )
        await uow.recommendations.add(
            [_recommendation("hb-1", "hist-b")], upload_id="up1", status="pending_review"
        )
        await uow.recommendations.add_feedback("hist-a", "ha-2", "item-ha-2", "dismissed", None)
        await uow.recommendations.add_feedback("hist-a", "ha-3", "item-ha-3", "helpful", None)
        await uow.recommendations.add_feedback("hist-c", "hc-1", "item-hc-1", "dismissed", None)
        await uow.commit()
    users = ["hist-a", "hist-b", "hist-c", "hist-none", "hist-a"]
    async with service.uow() as uow:
        histories = await uow.recommendations.histories(users)
        one_at_a_time = {
            user: (
                await uow.recommendations.dismissed_items(user),
                await uow.recommendations.last_trace_hash(user),
            )
            for user in users
        }
    assert {u: (h.dismissed, h.last_trace_hash) for u, h in histories.items()} == one_at_a_time
    assert one_at_a_time == {
        "hist-a": ({"item-ha-2"}, "hash-ha-3"),
        "hist-b": (set(), "hash-hb-1"),
        "hist-c": ({"item-hc-1"}, None),
        "hist-none": (set(), None),
    }
    async with service.uow() as uow:
        assert await uow.recommendations.histories([]) == {}
