"""The recommender service end to end on real PostgreSQL: persona.assigned → recommendations stored for
review with sealed traces and announced; re-delivery adds nothing; consent gates it; reviews and
auto-approval chain onto the trace; the user API shows approved items only (ETag, pagination, feedback);
operators read traces whose chain verifies, and a tampered trace is found."""

from __future__ import annotations

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
from spendsense_recommender.adapters.orm import messaging, recommendations, traces
from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_recommender.bootstrap import SERVICE
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.recommend import apply_review, generate_recommendations
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    PersonaAssigned,
    RecommendationReviewed,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import check_in_many
from spendsense_shared.messaging.contracts import AccountKind, AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
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
