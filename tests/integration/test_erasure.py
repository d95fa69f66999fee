"""The right to be forgotten, end to end through the real services' handlers on real PostgreSQL and S3.

One user signs up (auth), consents and uploads their data through profile's API (and profile's worker
ingests it); features and the
recommender run their real handlers on the events (as ``test_event_sizes.py`` does), the operator queues
and approves the recommendations. Every outbox row is then marked published, as the relay would have.
The user asks to be erased (``DELETE /api/v1/consent/{id}?erase=true``) and ``user.erasure_requested``
(and ``consent.revoked``) reach every consumer's handler, twice (a redelivery). Every service confirms
(``<service>.user_erased``, naming only the pseudonym); auth, once all have, announces ``user.erased``
and every service forgets the events it sent about the user. Then no row of any table of any service's
schema mentions the user id — every text, varchar, JSON and array column is searched, the outboxes
too — no object in the data bucket has the id in its key (nor in the features' batch objects of details
or the recommender's of review items, whose other lines stay), the admin sees the erasure complete, and every
read of the user answers 404, for the user and for operators.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update

from spendsense_auth.bootstrap import SERVICE as AUTH
from spendsense_cli.synthetic import build_user
from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_operator.bootstrap import SERVICE as OPERATOR
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_profile.bootstrap import upload_jobs
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.dataset import from_parquet
from spendsense_shared.messaging.catalog import CONSUMES, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.platform import Platform
from spendsense_shared.service import Wiring
from spendsense_shared.storage import ObjectStore

SEARCHED_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")


async def unpublished(platform: Platform) -> list[EventEnvelope]:
    table = platform.database.tables.outbox
    async with platform.database.engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT payload FROM {table.name} WHERE published_at IS NULL ORDER BY seq")  # noqa: S608
        )
        return [EventEnvelope.model_validate(r.payload) for r in rows]


async def mark_published(platform: Platform) -> None:
    """What the relay does once it has sent them."""
    table = platform.database.tables.outbox
    async with platform.database.engine.begin() as conn:
        await conn.execute(
            update(table).where(table.c.published_at.is_(None)).values(published_at=text("now()"))
        )


async def deliver(wiring: Wiring, service: str, events: list[EventEnvelope]) -> None:
    """Hand each event the service consumes to its handler in its own unit of work, as the consumer does."""
    for event in (e for e in events if e.type in CONSUMES[service]):
        async with wiring.unit_of_work() as uow:
            await wiring.event_handlers[event.type](event, parse_data(event), uow)
            await uow.commit()


async def relay_round(services: dict[str, tuple[Platform, Wiring]]) -> int:
    """Every unpublished event of every service to every consumer, then marked published."""
    delivered = 0
    for producer, (platform, _) in services.items():
        events = await unpublished(platform)
        for consumer, (_, wiring) in services.items():
            if consumer != producer:
                await deliver(wiring, consumer, events)
        await mark_published(platform)
        delivered += len(events)
    return delivered


async def process_uploads(platform: Platform, wiring: Wiring) -> int:
    """What profile's worker does with received uploads: parse them, then ingest (or fail) them."""
    return await upload_jobs(platform, wiring).run_pending()


async def snapshots_holding(bucket: ObjectStore, user_id: str) -> list[str]:
    """The profile's Parquet snapshots holding a row of the user (their keys name no user)."""
    holding = []
    for key in sorted(k for k in await bucket.list("profile/") if k.endswith(".parquet")):
        if user_id in from_parquet(await bucket.get(key))["user_id"].to_pylist():
            holding.append(key)
    return holding


async def details_holding(bucket: ObjectStore, user_id: str, prefix: str = "features/details/") -> list[str]:
    """The features' batch objects of persona details (or, ``prefix`` ``recommender/reviews/``, the
    recommender's of review items) with a byte of the user id (their keys name no user; an erased user's
    line is blanked out)."""
    return [k for k in sorted(await bucket.list(prefix)) if user_id.encode() in await bucket.get(k)]


async def mentions(platform: Platform, user_id: str) -> list[tuple[str, str, Any]]:
    """(table, column, the row's outbox event type and published_at or None) of every value naming the user."""
    schema = platform.database.schema
    found: list[tuple[str, str, Any]] = []
    async with platform.database.engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = :schema AND data_type = ANY(:types) ORDER BY table_name, column_name"
                ),
                {"schema": schema, "types": list(SEARCHED_TYPES)},
            )
        ).all()
        assert columns, f"no searchable columns in {schema}"
        for table, column in columns:
            extra = "event_type, published_at" if table == "outbox" else "NULL, NULL"
            rows = await conn.execute(
                text(
                    f'SELECT {extra} FROM "{schema}"."{table}" '  # noqa: S608 - names from the catalog
                    f'WHERE strpos(CAST("{column}" AS text), :needle) > 0'
                ),
                {"needle": user_id},
            )
            found += [(table, column, (r[0], r[1])) for r in rows]
    return found


async def test_an_erased_user_is_gone_from_every_schema_and_the_data_bucket(service_client, topology):
    definitions = {d.name: d for d in (AUTH, PROFILE, FEATURES, RECOMMENDER, OPERATOR)}
    clients = {name: await service_client(d) for name, d in definitions.items()}
    services = {name: (c.platform, definitions[name].bootstrap(c.platform)) for name, c in clients.items()}
    auth, profile = clients["auth"], clients["profile"]

    registered = await auth.post(
        "/api/v1/auth/register", json={"email": "forget.me@example.com", "password": "Erasure-Test-2026!"}
    )
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["user"]["id"]
    me = profile.as_(user_id)
    await relay_round(services)  # user.registered → profile

    granted = await profile.post("/api/v1/consent", json={"user_id": user_id}, headers=me)
    assert granted.status_code == 201, granted.text
    data = {**build_user(0, seed=7)[0], "user_id": user_id}
    upload = await profile.post("/api/v1/uploads", json=data, headers=me)
    assert upload.status_code == 202, upload.text
    assert await process_uploads(*services["profile"]) == 1
    for _ in range(4):  # consent and upload → features → recommender → operator (and progress to profile)
        await relay_round(services)
    operator = clients["operator"]
    approved = await operator.post(
        "/api/v1/operator/approve", json={"user_id": user_id}, headers=operator.as_("op-1", "operator")
    )
    assert approved.status_code == 200, approved.text
    await relay_round(services)  # recommendation.reviewed → recommender

    holding = {name: await mentions(platform, user_id) for name, (platform, _) in services.items()}
    for name in ("profile", "features", "recommender", "operator"):
        assert [m for m in holding[name] if m[0] != "outbox"], f"{name} holds nothing of the user to erase"
    bucket = ObjectStore(profile.platform.aws, topology.buckets["data"], "")
    # before recommendations.batch_generated the recommender checked large review items in per user: put
    # one as it did (its erasure still deletes them)
    await bucket.put(f"recommender/users/{user_id}/review/large.json", b"{}", "application/json")
    assert {k.split("/", 1)[0] for k in await bucket.list() if user_id in k} == {"recommender"}
    assert await snapshots_holding(bucket, user_id)  # the profile's snapshots name no user: their rows
    assert await details_holding(bucket, user_id)  # nor do the features' batch objects: their lines
    assert await details_holding(bucket, user_id, "recommender/reviews/")  # nor the recommender's

    waiting = await profile.post("/api/v1/uploads", json=data, headers=me)  # received, not yet parsed
    assert waiting.status_code == 202, waiting.text
    assert await bucket.list(f"profile/uploads/{waiting.json()['upload_id']}/")

    erased = await profile.delete(f"/api/v1/consent/{user_id}", params={"erase": "true"}, headers=me)
    assert erased.status_code == 202, erased.text
    assert erased.json()["consent_revoked"] is True
    assert await bucket.list("profile/uploads/") == []  # the bytes of their upload that waited are gone
    assert await process_uploads(*services["profile"]) == 0
    in_flight = await unpublished(profile.platform)
    assert [e.type for e in in_flight] == ["consent.revoked", "user.erasure_requested", "profile.user_erased"]
    for name, (_, wiring) in services.items():
        if name != "profile":
            await deliver(wiring, name, in_flight)
            await deliver(wiring, name, in_flight)  # a redelivery changes nothing

    await relay_round(services)  # every service's confirmation → auth, which announces user.erased …
    await relay_round(services)  # … and every service forgets the events it sent about the user
    admin = auth.as_("admin-1", "admin")
    progress = await auth.get(f"/api/v1/admin/erasures/{user_id}", headers=admin)
    assert progress.status_code == 200, progress.text
    assert progress.json()["complete"] is True, progress.json()
    assert {s["service"] for s in progress.json()["services"]} == set(definitions)

    for name, (platform, _) in services.items():
        assert await mentions(platform, user_id) == [], name
    assert not [k for k in await bucket.list() if user_id in k]
    assert await snapshots_holding(bucket, user_id) == []
    assert await details_holding(bucket, user_id) == []  # the user's line blanked out
    assert await details_holding(bucket, user_id, "recommender/reviews/") == []

    # Every read of the user answers 404, for the user and for operators.
    staff = operator.as_("op-1", "operator")
    for path in (
        f"/api/v1/profile/{user_id}",
        f"/api/v1/consent/{user_id}",
        f"/api/v1/mobile/profile/{user_id}",
    ):
        for headers in (me, staff):
            assert (await profile.get(path, headers=headers)).status_code == 404, path
    assert (
        await auth.get(f"/api/v1/users/{user_id}", headers=auth.as_("admin-1", "admin"))
    ).status_code == 404
    for client, path in (
        (clients["features"], f"/api/v1/profile/{user_id}/signals"),
        (clients["features"], f"/api/v1/profile/{user_id}/persona"),
        (clients["recommender"], f"/api/v1/recommendations/{user_id}"),
        (clients["recommender"], f"/api/v1/recommendations/{user_id}/traces"),
        (clients["recommender"], f"/api/v1/mobile/recommendations/{user_id}"),
    ):
        for headers in (client.as_(user_id), client.as_("op-1", "operator")):
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"]["code"] == "not_found", (path, answer.text)
    queue = await operator.get("/api/v1/operator/review", params={"user_id": user_id}, headers=staff)
    assert queue.status_code == 200, queue.text
    assert queue.json()["items"] == []  # the operator's lists of every user: nothing of theirs is left


async def test_only_the_user_or_an_admin_erases_and_a_shared_batch_upload_keeps_the_others_part(
    service_client, topology
):
    profile = await service_client(PROFILE)
    wiring = PROFILE.bootstrap(profile.platform)
    users = [{**build_user(i, seed=7)[0], "user_id": f"batch-user-{i}"} for i in range(2)]
    gone, kept = (u["user_id"] for u in users)
    for user_id in (gone, kept):
        granted = await profile.post(
            "/api/v1/consent", json={"user_id": user_id}, headers=profile.as_(user_id)
        )
        assert granted.status_code == 201, granted.text
    upload = await profile.post(
        "/api/v1/uploads", json={"users": users}, headers=profile.as_("op-1", "operator")
    )
    assert upload.status_code == 202, upload.text
    upload_id = upload.json()["upload_id"]
    assert await process_uploads(profile.platform, wiring) == 1

    for actor in (profile.as_(kept), profile.as_("op-1", "operator")):
        refused = await profile.delete(f"/api/v1/consent/{gone}", params={"erase": "true"}, headers=actor)
        assert refused.status_code == 403, refused.text
    erased = await profile.delete(
        f"/api/v1/consent/{gone}", params={"erase": "true"}, headers=profile.as_("admin-1", "admin")
    )
    assert erased.status_code == 202, erased.text

    seen = await profile.get(f"/api/v1/uploads/{upload_id}", headers=profile.as_("op-1", "operator"))
    assert seen.status_code == 200, seen.text
    assert gone not in seen.text
    assert kept in seen.text
    assert [m for m in await mentions(profile.platform, gone) if m[0] != "outbox"] == []
    assert [m for m in await mentions(profile.platform, kept) if m[0] != "outbox"] != []
    bucket = ObjectStore(profile.platform.aws, topology.buckets["data"], "")
    assert not [k for k in await bucket.list() if gone in k]
    # The batch's chunk of users shares its snapshots: rewritten without the erased user's rows.
    assert await snapshots_holding(bucket, gone) == []
    assert await snapshots_holding(bucket, kept) == sorted(await bucket.list(f"profile/uploads/{upload_id}/"))
