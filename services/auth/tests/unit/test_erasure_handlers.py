"""The end of a user's data as auth tracks it: the account goes at once, every service's confirmation
is counted under the pseudonym, and ``user.erased`` follows the last one — once, whatever the order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_auth.domain.accounts import VerifiedIdentity, hash_refresh_token
from spendsense_auth.domain.commands import GetErasure, ListIncompleteErasures
from spendsense_auth.domain.erasure import ERASING_SERVICES, ErasureProgress
from spendsense_auth.handlers import erasure
from spendsense_auth.handlers.identities import sign_in_with_identity
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import (
    ERASURE_CONFIRMATIONS,
    UserErasureRequested,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.envelope import EventEnvelope

from .fakes import FakeAuthUnitOfWork

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def requested(user_id: str) -> EventEnvelope:
    event = new_event(UserErasureRequested(user_id=user_id, requested_at=T0), user_id=user_id)
    return event.model_copy(update={"occurred_at": T0})


def confirmed(service: str, user_id: str, minutes: int = 1) -> EventEnvelope:
    data = ERASURE_CONFIRMATIONS[service](
        subject=pseudonym(user_id), erased_at=T0 + timedelta(minutes=minutes)
    )
    return new_event(data)


async def deliver(uow: Any, event: EventEnvelope) -> None:
    handler = erasure.erase_user if event.type == "user.erasure_requested" else erasure.record_confirmation
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


async def test_the_account_goes_at_once_and_user_erased_follows_the_last_confirmation(uow, tokens):
    signed_in = await sign_in_with_identity(uow, tokens, VerifiedIdentity("phone", "+14155552671"))
    user_id = signed_in.user.id

    await deliver(uow, requested(user_id))

    assert await uow.users.get(user_id) is None
    assert await uow.users.identities(user_id) == []
    assert await uow.sessions.by_hash(hash_refresh_token(signed_in.tokens.refresh_token)) is None
    progress = await erasure.get_erasure(GetErasure(user_id), uow)
    assert progress is not None
    assert progress.requested_at == T0
    assert progress.pending == ["profile", "features", "recommender", "operator"]
    assert "user.erased" not in uow.published_types()

    for minutes, service in enumerate(["operator", "profile", "features"], start=1):
        await deliver(uow, confirmed(service, user_id, minutes))
    assert "user.erased" not in uow.published_types()
    await deliver(uow, confirmed("recommender", user_id, 9))

    [erased] = [e for e in uow.published if e.type == "user.erased"]
    assert erased.data["subject"] == pseudonym(user_id)
    assert erased.data["completed_at"] == (T0 + timedelta(minutes=9)).isoformat().replace("+00:00", "Z")
    assert erased.user_id is None
    assert user_id not in erased.model_dump_json()
    done = await erasure.get_erasure(GetErasure(user_id), uow)
    assert done is not None
    assert done.complete
    assert done.completed_at == T0 + timedelta(minutes=9)
    assert await erasure.incomplete_erasures(ListIncompleteErasures(), uow) == []


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(["request", *ERASURE_CONFIRMATIONS]), repeats=st.sets(st.integers(0, 4)))
async def test_any_order_and_any_redelivery_publish_user_erased_exactly_once(order, repeats):
    uow = FakeAuthUnitOfWork()
    events = {"request": requested("u-1"), **{s: confirmed(s, "u-1") for s in ERASURE_CONFIRMATIONS}}
    for n, step in enumerate(order):
        await deliver(uow, events[step])
        if n in repeats:
            await deliver(uow, events[step])  # a redelivery (or a second request) changes nothing
    assert uow.published_types().count("user.erased") == 1
    progress = await erasure.get_erasure(GetErasure("u-1"), uow)
    assert progress is not None
    assert set(progress.confirmed) == set(ERASING_SERVICES)


async def test_incomplete_erasures_list_the_oldest_first_and_name_only_pseudonyms(uow):
    for user_id in ("u-a", "u-b"):
        await deliver(uow, requested(user_id))
    await deliver(uow, confirmed("profile", "u-c"))  # its request has not reached auth yet
    waiting = await erasure.incomplete_erasures(ListIncompleteErasures(limit=10), uow)
    assert [p.subject for p in waiting][-1] == pseudonym("u-c")  # no request time yet: last
    assert {p.subject for p in waiting} == {pseudonym(u) for u in ("u-a", "u-b", "u-c")}


def test_only_services_that_keep_user_data_confirm():
    progress = ErasureProgress("s", requested_at=T0)
    with pytest.raises(ValueError, match="gateway"):
        progress.confirm("gateway", T0)
    once = progress.confirm("profile", T0)
    assert once.confirm("profile", T0 + timedelta(hours=1)).confirmed == {"profile": T0}
    assert list(itertools.chain(once.pending)) == ["auth", "features", "recommender", "operator"]
