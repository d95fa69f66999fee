"""The features service announces a batch's personas together (``personas.assigned``), never one event per
user: every publish costs the broker the same, and one per user made it the pipeline's bottleneck. A
batch is split only to keep each event small (at most ``ASSIGNMENTS_PER_EVENT_MAX`` assignments and
``ASSIGNMENTS_MAX_BYTES`` of them)."""

from __future__ import annotations

import json
import math
from datetime import date

import pytest

from spendsense_features.handlers import analysis
from spendsense_features.handlers.analysis import analyze_upload, assignment_batches
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_shared.messaging.catalog import (
    ASSIGNMENTS_MAX_BYTES,
    ASSIGNMENTS_PER_EVENT_MAX,
    MAX_EVENT_BYTES,
    PersonaAssignment,
    PersonasAssigned,
    new_event,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.testing.fakes import load_beside

handlers = load_beside(__file__, "test_handlers.py", "spendsense_features_unit_test_handlers")

EVERY_PERSONA = [
    "high_utilization",
    "variable_income_budgeter",
    "cash_flow_balancer",
    "subscription_heavy",
    "savings_builder",
    "general_wellness",
]


def an_assignment(user_id: str, matched: list[str]) -> PersonaAssignment:
    return PersonaAssignment(
        user_id=user_id,
        as_of=date(2026, 10, 31),
        personas={"30d": matched[0], "180d": matched[0]},
        matched={"30d": matched, "180d": matched},
        details=ClaimCheck(
            bucket="spendsense-data",
            key=f"features/users/{user_id}/analysis/0123456789abcdef.json",
            sha256="0" * 64,
            size_bytes=123_456,
        ),
    )


def wire_size(batch: list[PersonaAssignment]) -> int:
    """The event's size as the relay publishes it."""
    data = PersonasAssigned(
        upload_id="up_" + "0" * 32, rule_set_version="v1", reason="upload", assignments=batch
    )
    return len(json.dumps(new_event(data).model_dump(mode="json")))


def test_typical_assignments_are_cut_by_count_only():
    typical = EVERY_PERSONA[:2]  # a user matches one or two personas per window
    users = [f"syn-0-{i:06d}" for i in range(2 * ASSIGNMENTS_PER_EVENT_MAX + 7)]  # the generator's ids
    assignments = [an_assignment(user_id, typical) for user_id in users]
    batches = assignment_batches(assignments)
    assert [len(b) for b in batches] == [ASSIGNMENTS_PER_EVENT_MAX, ASSIGNMENTS_PER_EVENT_MAX, 7]
    assert [a for b in batches for a in b] == assignments  # every one, in order


@pytest.mark.parametrize("character", ["x", "é"])  # non-ASCII is escaped on the wire: six bytes each
def test_the_largest_assignments_are_cut_by_size_and_every_event_stays_well_under_the_limit(character):
    """The longest user ids (128 characters) and every persona matched in both windows."""
    assignments = [
        an_assignment(f"{i:03d}" + character * 125, EVERY_PERSONA) for i in range(ASSIGNMENTS_PER_EVENT_MAX)
    ]
    batches = assignment_batches(assignments)
    assert len(batches) > 1
    assert [a for b in batches for a in b] == assignments
    assert max(wire_size(b) for b in batches) < ASSIGNMENTS_MAX_BYTES + 2048 < MAX_EVENT_BYTES


async def test_an_upload_announces_its_users_in_as_few_events_as_the_limit_allows(
    uow, data_bucket, monkeypatch
):
    """Fails if features went back to one announcement per user."""
    monkeypatch.setattr(analysis, "ASSIGNMENTS_PER_EVENT_MAX", 2)
    users = {"u1": handlers.HU, "u2": handlers.SB, "u3": handlers.SH}
    for user_id in users:
        await handlers.consent(uow, user_id)
    event = await handlers.ingested(data_bucket, "up1", users, chunked=True)

    await handlers.handle(analyze_upload, event, uow, store=data_bucket, rule_sets=RuleSetStore())

    announced = handlers.events(uow, "personas.assigned")
    assert len(announced) == math.ceil(len(users) / 2)
    assert [len(e.data["assignments"]) for e in announced] == [2, 1]
    assert sorted(a.user_id for a in handlers.assigned(uow)) == sorted(users)
    assert handlers.events(uow, "persona.assigned") == []  # the per-user event is no longer published
    assert {(e.user_id, e.causation_id) for e in announced} == {(None, event.id)}
