"""``forget_published_of`` on real PostgreSQL: the SQL pseudonym matches :func:`pseudonym`, and only the
published events whose envelope names the erased user go; ``forget_published`` finds a user inside a
batch event too."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select, update

from spendsense_profile.adapters.orm import messaging
from spendsense_shared.db import Database, SqlUnitOfWork
from spendsense_shared.erasure import forget_erased_user, pseudonym
from spendsense_shared.messaging.catalog import (
    ConsentRevoked,
    PersonaAssignment,
    PersonasAssigned,
    UserErased,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import FakeUnitOfWork


def revoked(user_id: str) -> EventEnvelope:
    data = ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=datetime(2026, 11, 29, tzinfo=UTC))
    return new_event(data, user_id=user_id)


async def test_published_events_about_the_erased_user_go_and_nothing_else(migrated):
    database = Database(await migrated("profile"), messaging)
    outbox = database.tables.outbox
    events = {
        name: revoked(user) for name, user in (("gone", "u-gone"), ("kept", "u-kept"), ("pending", "u-gone"))
    }
    async with database.uow_factory(SqlUnitOfWork)() as uow:
        for event in events.values():
            uow.publish(event)
        await uow.commit()
    async with database.engine.begin() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.event_id != events["pending"].id).values(published_at=func.now())
        )
    done = datetime(2026, 11, 29, 0, 1, tzinfo=UTC)
    erased = new_event(UserErased(subject=pseudonym("u-gone"), requested_at=None, completed_at=done))
    async with database.uow_factory(SqlUnitOfWork)() as uow:
        await forget_erased_user(erased, parse_data(erased), uow)
        await uow.commit()
    async with database.engine.connect() as conn:
        left = {r.event_id for r in await conn.execute(select(outbox.c.event_id))}
    assert left == {events["kept"].id, events["pending"].id}  # unpublished ones wait for the relay
    await database.dispose()


async def test_the_fake_forgets_the_same_events():
    uow = FakeUnitOfWork()
    kept, gone = revoked("u-kept"), revoked("u-gone")
    uow.published = [kept, gone]
    assert await uow.forget_published_of(pseudonym("u-gone")) == 1
    assert uow.published == [kept]


def assigned_to(*user_ids: str) -> EventEnvelope:
    """``personas.assigned`` for the users, as the features service announces a chunk: the envelope names
    nobody, the users are inside the data."""
    claim = {"bucket": "b", "sha256": "0" * 64, "size_bytes": 2}
    data = PersonasAssigned(
        upload_id="up1",
        rule_set_version="v1",
        reason="upload",
        assignments=[
            PersonaAssignment(
                user_id=user_id,
                as_of=date(2026, 11, 1),
                personas={"30d": "general_wellness", "180d": "general_wellness"},
                details=ClaimCheck(key=f"features/users/{user_id}/analysis/x.json", **claim),
            )
            for user_id in user_ids
        ],
    )
    return new_event(data)


async def test_a_published_batch_that_names_the_erased_user_goes_with_the_user(migrated):
    """``forget_published`` (the erasure's, by the id as a JSON string anywhere in the payload) finds the
    user inside a batch event whose envelope names nobody; a batch of others stays, and so does one of a
    user whose id merely begins with the erased one's."""
    database = Database(await migrated("profile"), messaging)
    outbox = database.tables.outbox
    events = {"with": assigned_to("u-kept", "u-gone"), "others": assigned_to("u-kept", "u-gone-2")}
    async with database.uow_factory(SqlUnitOfWork)() as uow:
        for event in events.values():
            uow.publish(event)
        await uow.commit()
    async with database.engine.begin() as conn:
        await conn.execute(update(outbox).values(published_at=func.now()))
    async with database.uow_factory(SqlUnitOfWork)() as uow:
        assert await uow.forget_published("u-gone") == 1
        await uow.commit()
    async with database.engine.connect() as conn:
        left = {r.event_id for r in await conn.execute(select(outbox.c.event_id))}
    assert left == {events["others"].id}
    await database.dispose()

    fake = FakeUnitOfWork()
    fake.published = list(events.values())
    assert await fake.forget_published("u-gone") == 1
    assert fake.published == [events["others"]]
