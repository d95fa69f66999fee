"""The operator's consent projection on real PostgreSQL: consent events and the merge of two accounts
(``user.merged``) through the handlers the service wires, each in one unit of work as the consumer runs
them; a redelivery changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from spendsense_operator.adapters.orm import consent_projection
from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.bootstrap import SERVICE
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.envelope import EventEnvelope

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class Operator:
    def __init__(self, client: Any):
        self.client = client
        self.uow = client.platform.database.uow_factory(SqlOperatorUnitOfWork)
        self.handlers = SERVICE.bootstrap(client.platform).event_handlers

    async def deliver(self, event: EventEnvelope) -> None:
        async with self.uow() as uow:
            await self.handlers[event.type](event, parse_data(event), uow)
            await uow.commit()

    async def consent(self, user_id: str, consent_id: str, granted: bool, hours: int) -> None:
        at = T0 + timedelta(hours=hours)
        data: Any = (
            ConsentGranted(
                user_id=user_id, consent_id=consent_id, policy_version="1", scopes=["analysis"], granted_at=at
            )
            if granted
            else ConsentRevoked(user_id=user_id, consent_id=consent_id, revoked_at=at)
        )
        await self.deliver(new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}))

    async def rows(self) -> dict[str, tuple[str, str, datetime]]:
        async with self.client.platform.database.engine.connect() as conn:
            rows = await conn.execute(select(consent_projection))
            return {r.user_id: (r.consent_id, r.status, r.as_of) for r in rows}


@pytest.fixture
async def operator(service_client):
    return Operator(await service_client(SERVICE))


def merged(source: str, target: str) -> EventEnvelope:
    return new_event(UserMerged(source_user_id=source, target_user_id=target))


async def test_merging_accounts_in_the_sql_consent_projection(operator):
    # both current: the target's stays
    await operator.consent("a-old", "c1", True, 0)
    await operator.consent("a-new", "c2", True, 1)
    # only the source's current: it becomes the target's, as of the later row
    await operator.consent("b-old", "c3", True, 0)
    await operator.consent("b-new", "c4", False, 2)
    # the target has no row: the source's moves
    await operator.consent("c-old", "c5", True, 3)
    # the source has no row: the target's is untouched
    await operator.consent("d-new", "c6", False, 1)
    await operator.consent("bystander", "c7", True, 0)

    merges = [merged(f"{p}-old", f"{p}-new") for p in "abcd"]
    for event in merges:
        await operator.deliver(event)

    expected = {
        "a-new": ("c2", "granted", T0 + timedelta(hours=1)),
        "b-new": ("c3", "granted", T0 + timedelta(hours=2)),
        "c-new": ("c5", "granted", T0 + timedelta(hours=3)),
        "d-new": ("c6", "revoked", T0 + timedelta(hours=1)),
        "bystander": ("c7", "granted", T0),
    }
    assert await operator.rows() == expected
    async with operator.uow() as uow:
        assert await uow.consent.granted(["a-old", "b-old", "c-old", "a-new", "b-new", "c-new"]) == {
            "a-new",
            "b-new",
            "c-new",
        }

    for event in merges:  # a redelivery changes nothing
        await operator.deliver(event)
    assert await operator.rows() == expected

    await operator.consent("b-new", "c4", True, 1)  # an older event of the target, arriving late
    assert (await operator.rows())["b-new"] == expected["b-new"]
