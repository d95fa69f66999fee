"""``GET /api/v1/operator/users/{user_id}`` on the operator's real app and PostgreSQL, fed through the
handlers the service wires: ``personas.assigned`` and ``persona.assigned`` (each analysis report by claim
check from the data bucket on the AWS emulator) and ``recommendations.generated``. Signals of both windows, the persona history
newest first, the user's review items with their decisions; nothing stored without current consent;
403 consent_required (logged) once consent is revoked, 404 for a user the operator knows nothing of or
who was erased; operators and admins only."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from spendsense_operator.adapters.orm import persona_history, user_signals
from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.handlers.personas import project_personas
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import (
    PersonaAssigned,
    UserErasureRequested,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheck, ClaimCheckMismatch, check_in_batch
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.counting import CountingStore
from spendsense_shared.testing.events import assigned_together
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "review_support.py", "spendsense_operator_review_support")
item, T0 = support.review_item, support.T0
AS_OF = date(2026, 10, 31)


@pytest.fixture
async def operator(service_client):
    return support.Operator(await service_client(SERVICE))


async def rows(op: support.Operator) -> tuple[int, int]:
    async with op.client.platform.database.engine.connect() as conn:
        history = (await conn.execute(select(func.count()).select_from(persona_history))).scalar_one()
        signals = (await conn.execute(select(func.count()).select_from(user_signals))).scalar_one()
    return history, signals


async def test_an_operator_reads_a_users_signals_personas_and_review_items(operator):
    await operator.consent("u1")
    first = await operator.assigned("u1", as_of=AS_OF - timedelta(days=30), utilization=0.9)
    second = await operator.assigned(
        "u1", at=T0 + timedelta(hours=1), personas={"30d": "subscription_heavy", "180d": "high_utilization"}
    )
    await operator.deliver(second)
    await operator.deliver(first)  # arrives late: history, but not the latest signals
    await operator.deliver(second)  # a redelivery adds nothing
    await operator.deliver(support.generated("u1", [item("r1"), item("r2", "offer")]))
    client = operator.client
    rejected = await client.post(
        "/api/v1/operator/reject",
        json={"recommendation_ids": ["r2"], "reason": "not now"},
        headers=operator.headers(),
    )
    assert rejected.status_code == 200, rejected.text

    for headers in (operator.headers(), operator.headers("admin-1", "admin")):
        answer = await client.get("/api/v1/operator/users/u1", headers=headers)
        assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user_id"] == "u1"
    assert set(body["signals"]) == {"30d", "180d"}
    thirty = body["signals"]["30d"]
    assert (thirty["as_of"], thirty["rule_set_version"], thirty["upload_id"]) == (
        "2026-10-31",
        "personas-v1",
        "up1",
    )
    assert thirty["signals"]["credit"]["max_utilization"] == 0.68
    assert body["signals"]["180d"]["signals"]["window_days"] == 180
    assert body["personas"] == {"30d": "subscription_heavy", "180d": "high_utilization"}
    assert [(p["window"], p["persona"], p["as_of"]) for p in body["persona_history"]] == [
        ("30d", "subscription_heavy", "2026-10-31"),
        ("180d", "high_utilization", "2026-10-31"),
        ("30d", "high_utilization", "2026-10-01"),
        ("180d", "high_utilization", "2026-10-01"),
    ]  # newest assignment first; one event's windows in reverse order of recording
    assert body["persona_history"][0]["matched"] == [body["persona_history"][0]["persona"]]
    assert body["persona_history_truncated"] is False
    assert {(r["recommendation_id"], r["status"], r["reason"]) for r in body["recommendations"]} == {
        ("r1", "pending", None),
        ("r2", "rejected", "not now"),
    }
    assert body["recommendations_truncated"] is False
    assert body["counts"] == {"pending": 1, "approved": 0, "rejected": 1, "flagged": 0, "overridden": 0}
    assert await rows(operator) == (4, 2)


async def test_nothing_is_stored_without_current_consent_and_refusals_are_precise(operator):
    await operator.deliver(await operator.assigned("stranger"))  # never consented
    await operator.consent("u2", granted=False)
    await operator.deliver(await operator.assigned("u2"))
    await operator.deliver(support.generated("u2", [item("r2")]))
    assert await rows(operator) == (0, 0)

    client, me = operator.client, operator.headers()
    unknown = await client.get("/api/v1/operator/users/stranger", headers=me)
    assert unknown.status_code == 403  # no current consent: nobody's data is shown, known or not
    assert unknown.json()["error"]["code"] == "consent_required"

    await operator.consent("quiet")
    nothing = await client.get("/api/v1/operator/users/quiet", headers=me)
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (404, "not_found")

    await operator.consent("u1")
    await operator.deliver(await operator.assigned("u1"))
    assert (await client.get("/api/v1/operator/users/u1", headers=me)).status_code == 200
    await operator.consent("u1", granted=False, hours=1)
    revoked = await client.get("/api/v1/operator/users/u1", headers=me)
    assert revoked.status_code == 403
    assert revoked.json()["error"] == {
        "code": "consent_required",
        "message": "the user has not given current consent",
    }

    await operator.consent("u1", granted=True, hours=2)
    assert (await client.get("/api/v1/operator/users/u1", headers=client.as_("u1"))).status_code == 403
    assert (await client.get("/api/v1/operator/users/u1", headers=client.as_("u9"))).status_code == 403
    assert (await client.get("/api/v1/operator/users/u1")).status_code == 401


async def test_merge_and_erasure_cover_the_projection(operator):
    for user_id in ("old", "new", "gone"):
        await operator.consent(user_id)
        await operator.deliver(await operator.assigned(user_id, upload_id=f"up-{user_id}"))
    await operator.deliver(support.generated("gone", [item("g1")]))
    await operator.deliver(new_event(UserMerged(source_user_id="old", target_user_id="new")))
    client, me = operator.client, operator.headers()
    merged = (await client.get("/api/v1/operator/users/new", headers=me)).json()
    assert len(merged["persona_history"]) == 4
    assert (
        await client.get("/api/v1/operator/users/old", headers=me)
    ).status_code == 403  # gone with the merge

    erasure = new_event(UserErasureRequested(user_id="gone", requested_at=T0), user_id="gone")
    await operator.deliver(erasure)
    answer = await client.get("/api/v1/operator/users/gone", headers=me)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")
    assert await rows(operator) == (4, 2)  # only "new"'s rows are left
    confirmations = [e for e in await operator.outbox() if e.type == "operator.user_erased"]
    [confirmed] = confirmations
    assert confirmed.user_id is None
    assert confirmed.data["subject"] == pseudonym("gone")
    assert "gone" not in confirmed.model_dump_json().replace(pseudonym("gone"), "")


async def test_an_assignment_published_again_in_another_event_is_projected_once(operator):
    """features publishes its stored analysis again (the profile's reconciler announced the upload again)
    while the outbox replay after an emulator restart sends the first event again: two event ids, one
    assignment, one history row per window. A new upload's assignment is projected as usual."""
    await operator.consent("u1")
    first = await operator.assigned("u1")
    again = first.model_copy(update={"id": uuid.uuid4(), "occurred_at": T0 + timedelta(hours=2)})
    for event in (first, again, first):
        await operator.deliver(event)
    assert await rows(operator) == (2, 2)
    body = (await operator.client.get("/api/v1/operator/users/u1", headers=operator.headers())).json()
    assert {datetime.fromisoformat(s["assigned_at"]) for s in body["signals"].values()} == {T0}

    await operator.deliver(await operator.assigned("u1", at=T0 + timedelta(hours=3), upload_id="up2"))
    assert await rows(operator) == (4, 2)


async def test_a_batch_of_assignments_is_projected_per_consented_user_once(operator):
    """``personas.assigned`` (one event per chunk of an upload) through the wired handler: each consented
    user's assignment projected as ``persona.assigned`` projects it, the others skipped; a redelivery
    and the same assignment from a per-user event (published before the upgrade) add nothing."""
    for user_id in ("u1", "u2"):
        await operator.consent(user_id)
    per_user = [await operator.assigned(u, at=T0) for u in ("u1", "u2", "u3")]  # u3: no consent
    await operator.deliver(per_user[0])
    each = [parse_data(e) for e in per_user]
    assert all(isinstance(one, PersonaAssigned) for one in each)
    batch = new_event(assigned_together(each)).model_copy(update={"occurred_at": T0})  # type: ignore[arg-type]

    for _ in range(2):
        await operator.deliver(batch)

    assert await rows(operator) == (4, 4)  # u1 and u2: a history row and signals per window
    for user_id in ("u1", "u2"):
        body = (
            await operator.client.get(f"/api/v1/operator/users/{user_id}", headers=operator.headers())
        ).json()
        assert sorted(p["window"] for p in body["persona_history"]) == ["180d", "30d"]


async def batched(operator: support.Operator, *user_ids: str) -> tuple[EventEnvelope, list[ClaimCheck]]:
    """``personas.assigned`` as features announces it: every user's details a line of one object."""
    bodies = [
        PersonaDetails(report=support.analysis(u, AS_OF, 0.68)).model_dump_json(by_alias=True).encode()
        for u in user_ids
    ]
    claims = await check_in_batch(
        await operator.data_bucket(), f"features/details/{uuid.uuid4().hex}.jsonl", bodies
    )
    each = [
        parse_data(await operator.assigned(u, at=T0)).model_copy(update={"details": claim})
        for u, claim in zip(user_ids, claims, strict=True)
    ]
    batch = new_event(assigned_together(each)).model_copy(update={"occurred_at": T0})  # type: ignore[arg-type]
    return batch, claims


async def test_a_batchs_details_are_read_once_for_all_its_users(operator):
    for user_id in ("u1", "u2", "u3"):
        await operator.consent(user_id)
    batch, claims = await batched(operator, "u1", "u2", "u3")
    store = CountingStore(await operator.data_bucket())

    async with operator.uow() as uow:
        await project_personas(batch, parse_data(batch), uow, store=store)
        await uow.commit()

    assert store.reads == [[claims[0].key]]  # one GET for the batch, not one per user
    assert await rows(operator) == (6, 6)


async def test_a_changed_part_of_a_batchs_details_fails_the_batch(operator):
    """A hash mismatch is permanent (dead-lettered) and, the batch being one transaction, nothing of its
    users is projected, as when each user's claim was redeemed in turn."""
    for user_id in ("u1", "u2"):
        await operator.consent(user_id)
    batch, claims = await batched(operator, "u1", "u2")
    store = await operator.data_bucket()
    whole = bytearray(await store.get(claims[1].key))
    whole[claims[1].offset + 2] ^= 0x01
    await store.put_many([(claims[1].key, bytes(whole))], "application/x-ndjson")

    with pytest.raises(ClaimCheckMismatch):
        await operator.deliver(batch)
    assert await rows(operator) == (0, 0)
