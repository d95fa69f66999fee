"""The recommender service end to end on real PostgreSQL: persona.assigned → recommendations stored for
review with sealed traces and announced; re-delivery adds nothing; consent gates it; reviews and
auto-approval chain onto the trace; the user API shows approved items only (ETag, pagination, feedback);
operators read traces whose chain verifies, and a tampered trace is found; a merge of two accounts moves
everything to the remaining one with each trace in the chain it was sealed in."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import func, select, text

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_recommender.adapters.orm import (
    consent_projection,
    feedback,
    messaging,
    recommendations,
    traces,
)
from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_recommender.bootstrap import SERVICE
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.recommend import apply_review, generate_recommendations
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    PersonaAssigned,
    RecommendationReviewed,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import check_in_many
from spendsense_shared.messaging.contracts import AccountKind, AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.migrations import upgrade
from spendsense_shared.storage import ObjectStore


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


def generator(service, auto_approve: bool = False):
    return partial(
        generate_recommendations, store=service.store, writer=TemplateWriter(), auto_approve=auto_approve
    )


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
                    messaging.outbox.c.event_type == "recommendations.generated"
                )
            )
        ).all()
    kinds = [r.kind for r in rows]
    assert 3 <= kinds.count("education") <= 5
    assert 1 <= kinds.count("offer") <= 3
    assert {r.status for r in rows} == {"pending_review"}
    assert all("not financial advice" in r.disclosure for r in rows)
    assert all(any(ch.isdigit() for ch in r.rationale) for r in rows), (
        "every rationale cites the user's figures"
    )
    [payload] = [a.payload for a in announced]
    assert sorted(payload["data"]["recommendation_ids"]) == sorted(r.id for r in rows)
    assert payload["data"]["upload_id"] == "up1"

    await handle(service, generate, event)  # redelivery / re-run of the same input
    assert await count(db, recommendations, user_id=user_id) == stored
    assert await count(db, traces, user_id=user_id) == stored


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
    await handle(service, generator(service, auto_approve=True), event)
    me = service.as_(user_id)
    items = (await service.get(f"/api/v1/recommendations/{user_id}", headers=me)).json()["items"]
    assert items, "auto-approve published them"
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

    await handle(
        service, generator(service, auto_approve=True), await persona_assigned(service.store, 2, "up2")
    )
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
        for table in (recommendations, traces, feedback, consent_projection):
            found[table.name] = sorted((tuple(r) for r in await conn.execute(select(table))), key=repr)
    return found


async def test_a_merge_moves_everything_to_the_target_and_keeps_each_trace_in_its_chain(service):
    db = service.db
    generate = generator(service, auto_approve=True)
    source_event = await persona_assigned(service.store, 0)
    target_event = await persona_assigned(service.store, 1)
    source, target = source_event.user_id, target_event.user_id
    assert source != target
    for user_id in (source, target):
        await grant(service, user_id)
    await handle(service, generate, source_event)
    await handle(service, generate, target_event)
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

    for table in (recommendations, traces, feedback, consent_projection):
        assert await count(db, table, user_id=source) == 0, table.name
    assert await count(db, recommendations, user_id=target, status="approved") == approved_before
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
