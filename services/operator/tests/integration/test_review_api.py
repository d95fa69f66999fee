"""The operator's review API on its real app and real PostgreSQL: the queue filled from
``recommendations.batch_generated`` (every user's items a line of one object in the data bucket on the
AWS emulator, read once) and ``recommendations.generated`` (a large item set by claim check), listing with filters, sorts, pages and counts, approve / reject / flag (all or nothing,
audited, announced through the outbox), and the audit log as JSON and formula-safe CSV."""

from __future__ import annotations

import csv
import io
import json
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.handlers.queue import enqueue_batch
from spendsense_recommender.handlers.recommend import review_key, review_line
from spendsense_shared.messaging.catalog import (
    INLINE_ITEMS_MAX_BYTES,
    MAX_EVENT_BYTES,
    GeneratedForUser,
    RecommendationsBatchGenerated,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import check_in_batch, check_in_many
from spendsense_shared.messaging.contracts import ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.storage import ObjectStore
from spendsense_shared.testing.counting import CountingStore
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "review_support.py", "spendsense_operator_review_support")
item, generated, T0 = support.review_item, support.generated, support.T0
OPERATOR = ("op-1", "operator")


@pytest.fixture
async def operator(service_client):
    return support.Operator(await service_client(SERVICE))


async def data_bucket(op: Any) -> ObjectStore:
    """This test's data bucket on the AWS emulator (only the bucket: a whole topology's topics are
    not needed here)."""
    platform = op.client.platform
    name = platform.topology.buckets["data"]
    async with platform.aws.client("s3") as s3:
        await s3.create_bucket(Bucket=name)
    return ObjectStore(platform.aws, name, "")


def as_operator(op: Any, who: str = "op-1") -> dict[str, str]:
    return op.client.as_(who, "operator")


async def outbox(op: Any) -> list[EventEnvelope]:
    table = op.client.platform.database.tables.outbox
    async with op.client.platform.database.engine.connect() as conn:
        rows = await conn.execute(select(table.c.payload).order_by(table.c.seq))
        return [EventEnvelope.model_validate(r.payload) for r in rows]


async def test_a_large_item_set_goes_by_claim_check_and_the_operator_reads_it_back(operator):
    client = operator.client
    data = await data_bucket(operator)
    long_text = "Your card balance has been above 50 % of its limit for three months. " * 20
    items = [item(f"rec_{n:03d}", rationale=long_text[:600], body=long_text) for n in range(60)]

    # what the recommender put in recommendations.generated before the batch event: one object per user
    body = ReviewItems(items=items).model_dump_json().encode()
    [claim] = await check_in_many(data, [("recommender/users/u1/review/x.json", body)])
    assert claim.size_bytes > INLINE_ITEMS_MAX_BYTES
    event = generated("u1", items, items=None, items_claim=claim)
    assert len(json.dumps(event.model_dump(mode="json")).encode()) < 4 * 1024 < MAX_EVENT_BYTES

    await operator.consent("u1")
    await operator.deliver(event)
    await operator.deliver(event)  # a redelivery changes nothing

    listed = await client.get(
        "/api/v1/operator/review", params={"user_id": "u1", "limit": 200}, headers=as_operator(operator)
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert sorted(i["recommendation_id"] for i in body["items"]) == [i.id for i in items]
    assert body["counts"] == {"pending": 60, "approved": 0, "rejected": 0, "flagged": 0, "overridden": 0}
    assert {i["body"] for i in body["items"]} == {long_text}


async def test_every_consented_user_of_a_batch_event_is_queued_reading_its_object_once(operator):
    """``recommendations.batch_generated`` as the recommender publishes it: every user's review items a
    line of one object on the emulator, read with one GET for the batch; a user without current consent
    is skipped (the others proceed), one announced again without items queues nothing."""
    data = await data_bucket(operator)
    long_text = "Your card balance has been above 50 % of its limit for three months. " * 20
    users = {f"u{n}": [item(f"rec_{n}_{k:02d}", body=long_text) for k in range(20)] for n in range(1, 5)}
    with_items = ["u1", "u2", "u3"]  # u4: announced again without items
    lines = [review_line(u, users[u]) for u in with_items]
    claims = dict(zip(with_items, await check_in_batch(data, review_key, lines), strict=True))
    event = new_event(
        RecommendationsBatchGenerated(
            upload_id="up1",
            generated=[
                GeneratedForUser(
                    user_id=u,
                    recommendation_ids=[i.id for i in reviewed],
                    persona=reviewed[0].persona,
                    items_claim=claims.get(u),
                )
                for u, reviewed in users.items()
            ],
        )
    ).model_copy(update={"occurred_at": T0})
    assert len(json.dumps(event.model_dump(mode="json")).encode()) < MAX_EVENT_BYTES
    for user_id in ("u1", "u3", "u4"):
        await operator.consent(user_id)
    await operator.consent("u2", granted=False)
    assert "recommendations.batch_generated" in operator.handlers
    store = CountingStore(data)
    handler = partial(enqueue_batch, store=store)

    for _ in range(2):  # a redelivery changes nothing
        async with operator.uow() as uow:
            await handler(event, parse_data(event), uow)
            await uow.commit()

    assert store.reads == [[claims["u1"].key]] * 2  # one GET per delivery, for all its users
    listed = await operator.client.get(
        "/api/v1/operator/review", params={"limit": 200}, headers=as_operator(operator)
    )
    assert listed.status_code == 200, listed.text
    queued = listed.json()["items"]
    assert sorted(i["recommendation_id"] for i in queued) == sorted(
        i.id for u in ("u1", "u3") for i in users[u]
    )
    assert {i["user_id"] for i in queued} == {"u1", "u3"}
    assert {i["body"] for i in queued} == {long_text}


async def test_nothing_is_queued_for_a_user_without_current_consent(operator):
    await operator.consent("u1", granted=False)
    await operator.deliver(generated("u1", [item("r1")]))
    listed = await operator.client.get("/api/v1/operator/review", headers=as_operator(operator))
    assert listed.json()["items"] == []


async def test_the_queue_is_filtered_sorted_paged_and_counted(operator):
    failing = item("b1", persona="debtor").guardrails.model_copy(update={"tone": False})
    await operator.queue("u2", item("a1"), item("a2", "offer"), at=T0)
    await operator.queue("u1", item("b1", persona="debtor", guardrails=failing), at=T0.replace(hour=1))
    await operator.queue("u3", item("c1"), at=T0.replace(hour=2))
    client, me = operator.client, as_operator(operator)
    flagged = await client.post("/api/v1/operator/flag", json={"recommendation_ids": ["c1"]}, headers=me)
    assert flagged.status_code == 200, flagged.text

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/v1/operator/review", params=params, headers=me)
        assert response.status_code == 200, response.text
        return [i["recommendation_id"] for i in response.json()["items"]]

    assert await ids() == ["c1", "b1", "a2", "a1"]
    assert await ids(sort="priority") == ["b1", "a2", "c1", "a1"]
    assert await ids(sort="user") == ["b1", "a1", "a2", "c1"]
    assert await ids(kind="offer") == ["a2"]
    assert await ids(persona="debtor") == ["b1"]
    assert await ids(user_id="u2") == ["a2", "a1"]
    assert await ids(flagged="true") == ["c1"]
    assert await ids(status="pending", sort="priority") == ["b1", "a2", "a1"]

    seen: list[str] = []
    params: dict[str, Any] = {"sort": "priority", "limit": 3}
    while True:
        page = (await client.get("/api/v1/operator/review", params=params, headers=me)).json()
        seen += [i["recommendation_id"] for i in page["items"]]
        assert page["counts"] == {"pending": 3, "approved": 0, "rejected": 0, "flagged": 1, "overridden": 0}
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["b1", "a2", "c1", "a1"]

    first = (await client.get("/api/v1/operator/review", params={"limit": 1}, headers=me)).json()
    wrong_sort = await client.get(
        "/api/v1/operator/review", params={"sort": "user", "cursor": first["next_cursor"]}, headers=me
    )
    assert wrong_sort.status_code == 422
    assert wrong_sort.json()["error"]["code"] == "invalid_cursor"
    bad_status = await client.get("/api/v1/operator/review", params={"status": "lost"}, headers=me)
    assert bad_status.status_code == 422


async def test_decisions_update_the_queue_audit_and_announce_through_the_outbox(operator):
    await operator.queue("u1", item("r1"), item("r2"), item("r3"))
    client, me = operator.client, as_operator(operator)

    approved = await client.post("/api/v1/operator/approve", json={"recommendation_ids": ["r1"]}, headers=me)
    assert approved.status_code == 200, approved.text
    assert [(i["recommendation_id"], i["status"], i["decided_by"]) for i in approved.json()["items"]] == [
        ("r1", "approved", "op-1")
    ]
    rejected = await client.post(
        "/api/v1/operator/reject",
        json={"recommendation_ids": ["r2"], "reason": "=cmd|' /C calc'!A0"},
        headers=me,
    )
    assert rejected.status_code == 200, rejected.text
    by_user = await client.post("/api/v1/operator/approve", json={"user_id": "u1"}, headers=me)
    assert [i["recommendation_id"] for i in by_user.json()["items"]] == ["r3"]

    events = [e for e in await outbox(operator) if e.type == "recommendation.reviewed"]
    assert [(e.data["recommendation_id"], e.data["decision"], e.user_id) for e in events] == [
        ("r1", "approved", "u1"),
        ("r2", "rejected", "u1"),
        ("r3", "approved", "u1"),
    ]
    assert events[1].data["reason"] == "=cmd|' /C calc'!A0"
    assert {e.data["operator_id"] for e in events} == {"op-1"}

    audit = await client.get("/api/v1/operator/audit", params={"limit": 2}, headers=me)
    assert audit.status_code == 200, audit.text
    page = audit.json()
    assert [(e["recommendation_id"], e["before_status"], e["after_status"]) for e in page["items"]] == [
        ("r3", "pending", "approved"),
        ("r2", "pending", "rejected"),
    ]
    rest = await client.get(
        "/api/v1/operator/audit", params={"limit": 2, "cursor": page["next_cursor"]}, headers=me
    )
    assert [e["recommendation_id"] for e in rest.json()["items"]] == ["r1"]
    assert rest.json()["next_cursor"] is None

    exported = await client.get("/api/v1/operator/audit.csv", headers=me)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["recommendation_id"] for r in rows] == ["r3", "r2", "r1"]
    assert rows[1]["reason"] == "'=cmd|' /C calc'!A0"  # never evaluated as a formula
    assert rows[1]["operator_id"] == "op-1"
    assert rows[1]["action"] == "reject"


async def test_every_error_changes_nothing(operator):
    await operator.queue("u1", item("r1"))
    await operator.queue("u2", item("r2"))
    await operator.consent("u2", granted=False, hours=1)
    client, me = operator.client, as_operator(operator)

    unknown = await client.post(
        "/api/v1/operator/approve", json={"recommendation_ids": ["r1", "nope"]}, headers=me
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"] == {"recommendation_ids": ["nope"]}
    assert "nope" in unknown.json()["error"]["message"]

    revoked = await client.post(
        "/api/v1/operator/reject", json={"recommendation_ids": ["r1", "r2"], "reason": "x"}, headers=me
    )
    assert revoked.status_code == 403
    assert revoked.json()["error"]["code"] == "consent_required"

    no_reason = await client.post("/api/v1/operator/reject", json={"recommendation_ids": ["r1"]}, headers=me)
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["details"][0]["field"] == "reason"
    blank = await client.post(
        "/api/v1/operator/reject", json={"recommendation_ids": ["r1"], "reason": "  "}, headers=me
    )
    assert blank.status_code == 422
    both = await client.post(
        "/api/v1/operator/approve", json={"recommendation_ids": ["r1"], "user_id": "u1"}, headers=me
    )
    assert both.status_code == 422

    user = await client.post(
        "/api/v1/operator/approve", json={"recommendation_ids": ["r1"]}, headers=client.as_("u1")
    )
    assert user.status_code == 403
    assert (await client.get("/api/v1/operator/review", headers=client.as_("u1"))).status_code == 403
    assert (await client.get("/api/v1/operator/audit.csv", headers=client.as_("u1"))).status_code == 403
    assert (await client.get("/api/v1/operator/audit")).status_code == 401

    listed = (await client.get("/api/v1/operator/review", headers=me)).json()
    assert {i["status"] for i in listed["items"]} == {"pending"}
    assert (await client.get("/api/v1/operator/audit", headers=me)).json()["items"] == []
    assert [e for e in await outbox(operator) if e.type == "recommendation.reviewed"] == []
