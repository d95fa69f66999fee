"""``user.erasure_requested`` in the operator service: the user's review items, persona history and
signals go, the audit log keeps every operator action with the user id replaced by a one-way hash, the
consent row becomes a tombstone, ``operator.user_erased`` names only the pseudonym, and a redelivery or a
late consent event changes nothing."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from functools import partial
from typing import Any

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.domain.model import AuditEntry, AuditFilter, QueuedItem
from spendsense_operator.domain.users import PersonaRecord, WindowSignals
from spendsense_operator.handlers.erasure import erase_user
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.consent import project_consent
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import (
    CONSUMES,
    ConsentGranted,
    UserErasureRequested,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import InMemoryBlobStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def handle(handler: Any, event: EventEnvelope, uow: Any) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


def granted(user_id: str, at: datetime) -> EventEnvelope:
    data = ConsentGranted(
        user_id=user_id, consent_id=f"c-{user_id}", policy_version="1", scopes=["analysis"], granted_at=at
    )
    return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})


def entry(user_id: str, recommendation_id: str) -> AuditEntry:
    return AuditEntry(
        operator_id="op-1",
        action="approve",
        recommendation_id=recommendation_id,
        user_id=user_id,
        before_status="pending_review",
        after_status="approved",
        reason="fine",
        at=T0,
    )


def make_item(recommendation_id: str, user_id: str) -> QueuedItem:
    return QueuedItem(
        recommendation_id=recommendation_id,
        user_id=user_id,
        upload_id="up-1",
        persona="high_utilization",
        kind="education",
        title="t",
        body="b",
        rationale="r",
        disclosure="d",
        catalog_item_id="item",
        catalog_version="catalog-v1",
        rank=1,
        guardrails={"tone": True},
        generator="template",
        fell_back_to_template=False,
        priority=0,
        created_at=T0,
    )


def persona(user_id: str) -> tuple[list[PersonaRecord], list[WindowSignals]]:
    record = PersonaRecord(
        user_id, "30d", "saver", ["saver"], "personas-v1", T0.date(), "up-1", "upload", T0, f"e-{user_id}"
    )
    return [record], [WindowSignals(user_id, "30d", {"credit": {}}, T0.date(), "personas-v1", "up-1", T0)]


def test_the_operator_consumes_and_wires_user_erasure_requested():
    assert "user.erasure_requested" in CONSUMES["operator"]
    assert SERVICE.settings_class is OperatorSettings


async def test_erasure_deletes_review_items_and_pseudonymizes_the_audit_log(uow):
    for user_id in ("gone", "kept"):
        await handle(project_consent, granted(user_id, T0), uow)
    await uow.queue.add([make_item("r-gone", "gone"), make_item("r-kept", "kept")])
    await uow.audit.add([entry("gone", "r-gone"), entry("kept", "r-kept")])
    text = {"rationale": "Your card ending in 4523 is at 68 % utilization."}
    await uow.audit.add(
        [dataclasses.replace(entry("gone", "r-gone"), action="override", before=text, after=text)]
    )
    for user_id in ("gone", "kept"):
        await uow.personas.record(*persona(user_id))
    blobs = InMemoryBlobStore()
    await blobs.put_many([("operator/users/gone/x.json", b"{}")], "application/json")

    event = new_event(UserErasureRequested(user_id="gone", requested_at=T0), user_id="gone")
    await handle(partial(erase_user, store=blobs), event, uow)

    assert [i.user_id for i in uow.queue.items.values()] == ["kept"]
    log = await uow.audit.page(AuditFilter(), None, None)
    assert {e.user_id for e in log} == {"kept", pseudonym("gone")}
    kept_approval, kept_override = sorted(
        (e for e in log if e.recommendation_id == "r-gone"), key=lambda e: e.action
    )
    assert (kept_approval.operator_id, kept_approval.action, kept_approval.reason) == (
        "op-1",
        "approve",
        "fine",
    )
    assert (kept_approval.before, kept_approval.after) == (None, None)
    assert (kept_override.before, kept_override.after) == (
        {"erased": True},
        {"erased": True},
    )  # the figures go
    assert blobs.objects == {}
    assert "gone" not in uow.consent.rows
    assert pseudonym("gone") in uow.consent.rows
    assert [r.user_id for r in uow.personas.rows] == ["kept"]
    assert list(uow.personas.latest) == [("kept", "30d")]

    [confirmed] = uow.published
    assert confirmed.type == "operator.user_erased"
    assert confirmed.data["subject"] == pseudonym("gone")
    assert confirmed.user_id is None
    assert confirmed.causation_id == event.id
    assert '"gone"' not in confirmed.model_dump_json()  # the confirmation names nobody
    assert await uow.forget_published("gone") == 0  # so forgetting the user's events never takes it

    state = (uow.queue.items, uow.audit.entries, uow.consent.rows, uow.personas.rows, uow.personas.latest)
    after = copy.deepcopy(state)
    await handle(partial(erase_user, store=blobs), event, uow)  # a second request: nothing left to delete
    await handle(project_consent, granted("gone", datetime.now(UTC)), uow)
    state = (uow.queue.items, uow.audit.entries, uow.consent.rows, uow.personas.rows, uow.personas.latest)
    assert copy.deepcopy(state) == after
    assert not await uow.consent.is_granted("gone")
    assert uow.published_types() == ["operator.user_erased"] * 2  # its confirmation repeats the first
