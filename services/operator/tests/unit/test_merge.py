"""``user.merged`` in the operator service: its consent projection keeps the target's row (or takes the
source's when only that one is current) and deletes the source's; a redelivery changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.consent import merge_consent, project_consent
from spendsense_shared.messaging.catalog import (
    CONSUMES,
    ConsentGranted,
    ConsentRevoked,
    UserMerged,
    UserRegistered,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.envelope import EventEnvelope

T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def handle(uow: Any, event: EventEnvelope) -> None:
    """As the consumer does, with the handler the service wires."""
    platform = SERVICE.platform(OperatorSettings())
    try:
        handlers = SERVICE.bootstrap(platform).event_handlers
    finally:
        await platform.close()
    async with uow:
        await handlers[event.type](event, parse_data(event), uow)
        await uow.commit()


async def consent(uow: Any, user_id: str, consent_id: str, granted: bool, hours: int) -> None:
    at = T0 + timedelta(hours=hours)
    data: Any = (
        ConsentGranted(
            user_id=user_id, consent_id=consent_id, policy_version="1", scopes=["analysis"], granted_at=at
        )
        if granted
        else ConsentRevoked(user_id=user_id, consent_id=consent_id, revoked_at=at)
    )
    await project_consent(new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}), data, uow)


def merged(source: str = "old", target: str = "new") -> EventEnvelope:
    return new_event(UserMerged(source_user_id=source, target_user_id=target))


async def test_the_merge_is_consumed_and_wired():
    platform = SERVICE.platform(OperatorSettings())
    try:
        wiring = SERVICE.bootstrap(platform)
    finally:
        await platform.close()
    assert "user.merged" in CONSUMES["operator"]
    assert {"consent.granted", "consent.revoked", "user.merged"} <= set(wiring.event_handlers)


async def test_the_targets_row_stays_the_sources_is_deleted_and_a_redelivery_changes_nothing(uow):
    await consent(uow, "old", "c-old", True, 0)
    await consent(uow, "new", "c-new", True, 1)
    await consent(uow, "bystander", "c-b", True, 0)
    event = merged()
    await handle(uow, event)
    assert uow.consent.rows == {
        "new": ("c-new", "granted", T0 + timedelta(hours=1)),
        "bystander": ("c-b", "granted", T0),
    }
    await handle(uow, event)  # a redelivery
    await handle(uow, merged())  # or the merge announced again
    assert uow.consent.rows["new"] == ("c-new", "granted", T0 + timedelta(hours=1))
    assert "old" not in uow.consent.rows
    assert uow.published == []


async def test_a_target_without_a_current_consent_takes_the_sources(uow):
    await consent(uow, "old", "c-old", True, 0)
    await consent(uow, "new", "c-new", False, 2)
    await handle(uow, merged())
    assert uow.consent.rows == {"new": ("c-old", "granted", T0 + timedelta(hours=2))}
    # an older event of the target arriving late cannot undo it
    await consent(uow, "new", "c-new", False, 1)
    assert await uow.consent.is_granted("new")
    # a later revocation of that consent (now the target's) applies
    await consent(uow, "new", "c-old", False, 3)
    assert not await uow.consent.is_granted("new")


async def test_a_source_without_a_row_changes_nothing(uow):
    await consent(uow, "new", "c-new", False, 1)
    await handle(uow, merged())
    assert uow.consent.rows == {"new": ("c-new", "revoked", T0 + timedelta(hours=1))}


async def test_the_merge_handler_refuses_other_events(uow):
    event = new_event(UserRegistered(user_id="u1", roles=["user"], registered_via="password"))
    with pytest.raises(TypeError):
        await merge_consent(event, parse_data(event), uow)


async def test_the_sources_review_items_become_the_targets(uow):
    from spendsense_operator.domain.model import QueuedItem

    def queued(rid: str, user_id: str) -> QueuedItem:
        checks = {"tone": True, "grounding": True, "disclosure": True, "length": True}
        return QueuedItem(
            rid, user_id, None, "saver", "education", "t", "b", "r", "d", "i", "catalog-v1", 1, checks,
            "template", False, 0, T0,
        )  # fmt: skip

    await consent(uow, "old", "c-old", True, 0)
    await uow.queue.add([queued("r1", "old"), queued("r2", "bystander")])
    await handle(uow, merged())
    await handle(uow, merged())  # a redelivery
    assert {rid: i.user_id for rid, i in uow.queue.items.items()} == {"r1": "new", "r2": "bystander"}
    assert await uow.consent.is_granted("new")


async def test_the_sources_persona_history_moves_and_per_window_the_newer_signals_stay(uow):
    from spendsense_operator.domain.users import PersonaRecord, WindowSignals

    def signals(user_id: str, window: str, hours: int) -> WindowSignals:
        at = T0 + timedelta(hours=hours)
        return WindowSignals(user_id, window, {"from": user_id}, at.date(), "personas-v1", None, at)

    def record(user_id: str, hours: int) -> PersonaRecord:
        at = T0 + timedelta(hours=hours)
        return PersonaRecord(
            user_id, "30d", "saver", [], "personas-v1", at.date(), None, "upload", at, f"e{hours}"
        )

    await uow.personas.record([record("old", 0)], [signals("old", "30d", 5), signals("old", "180d", 1)])
    await uow.personas.record([record("new", 2)], [signals("new", "30d", 3), signals("new", "180d", 4)])
    await handle(uow, merged())
    await handle(uow, merged())  # a redelivery

    assert [(r.user_id, r.event_id) for r in await uow.personas.history("new", 10)] == [
        ("new", "e2"),
        ("new", "e0"),
    ]
    assert await uow.personas.history("old", 10) == []
    latest = await uow.personas.signals("new")
    assert {w: s.signals["from"] for w, s in latest.items()} == {"30d": "old", "180d": "new"}
    assert await uow.personas.signals("old") == {}
