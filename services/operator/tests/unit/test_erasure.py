"""``user.erasure_requested`` in the operator service: the user's review items go, the audit log keeps
every operator action with the user id replaced by a one-way hash, the consent row becomes a tombstone,
and a redelivery or a late consent event changes nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import partial
from typing import Any

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.domain.model import AuditEntry, AuditFilter, QueuedItem
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


def test_the_operator_consumes_and_wires_user_erasure_requested():
    assert "user.erasure_requested" in CONSUMES["operator"]
    assert SERVICE.settings_class is OperatorSettings


async def test_erasure_deletes_review_items_and_pseudonymizes_the_audit_log(uow):
    for user_id in ("gone", "kept"):
        await handle(project_consent, granted(user_id, T0), uow)
    await uow.queue.add([make_item("r-gone", "gone"), make_item("r-kept", "kept")])
    await uow.audit.add([entry("gone", "r-gone"), entry("kept", "r-kept")])
    blobs = InMemoryBlobStore()
    await blobs.put_many([("operator/users/gone/x.json", b"{}")], "application/json")

    event = new_event(UserErasureRequested(user_id="gone", requested_at=T0), user_id="gone")
    await handle(partial(erase_user, store=blobs), event, uow)

    assert [i.user_id for i in uow.queue.items.values()] == ["kept"]
    log = await uow.audit.page(AuditFilter(), None, None)
    assert {e.user_id for e in log} == {"kept", pseudonym("gone")}
    [kept_action] = [e for e in log if e.recommendation_id == "r-gone"]
    assert (kept_action.operator_id, kept_action.action, kept_action.reason) == ("op-1", "approve", "fine")
    assert blobs.objects == {}
    assert "gone" not in uow.consent.rows
    assert pseudonym("gone") in uow.consent.rows

    after = copy.deepcopy((uow.queue.items, uow.audit.entries, uow.consent.rows))
    await handle(partial(erase_user, store=blobs), event, uow)
    await handle(project_consent, granted("gone", datetime.now(UTC)), uow)
    assert copy.deepcopy((uow.queue.items, uow.audit.entries, uow.consent.rows)) == after
    assert not await uow.consent.is_granted("gone")
