"""The operator's projection of ``personas.assigned`` (a batch of users' assignments, one event per chunk):
each consented user's assignment is projected as ``persona.assigned`` projects it, in one transaction;
a user without current consent is skipped and the others proceed."""

from __future__ import annotations

from functools import partial

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.handlers.personas import assignment_event_id, project_personas
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.messaging.catalog import CONSUMES, PersonaAssigned, new_event, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.events import assigned_together
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "support.py", "spendsense_operator_unit_support")
consent, assigned, T0 = support.consent, support.assigned, support.T0


async def batch_of(bucket: object, *user_ids: str) -> EventEnvelope:
    """``personas.assigned`` for the users, their details checked into ``bucket``."""
    each = [parse_data(await assigned(bucket, user_id)) for user_id in user_ids]
    assert all(isinstance(one, PersonaAssigned) for one in each)
    return new_event(assigned_together(each)).model_copy(update={"occurred_at": T0})  # type: ignore[arg-type]


async def project_batch(uow: object, bucket: object, event: EventEnvelope) -> None:
    await support.handle(uow, partial(project_personas, store=bucket), event)


async def test_personas_assigned_is_consumed_and_wired():
    platform = SERVICE.platform(OperatorSettings())
    try:
        wiring = SERVICE.bootstrap(platform)
    finally:
        await platform.close()
    assert "personas.assigned" in CONSUMES["operator"]
    assert "personas.assigned" in wiring.event_handlers


async def test_each_consented_user_of_a_batch_gets_history_and_signals_once(uow, data_bucket):
    await consent(uow, "u1")
    await consent(uow, "u2", granted=False)  # skipped; the others proceed
    await consent(uow, "u3")
    event = await batch_of(data_bucket, "u1", "u2", "u3")
    commits = uow.commits

    await project_batch(uow, data_bucket, event)
    await project_batch(uow, data_bucket, event)  # a redelivery adds nothing

    assert uow.commits == commits + 2
    rows = sorted((r.user_id, r.window, r.event_id) for r in uow.personas.rows)
    assert rows == [
        (user_id, window, assignment_event_id(event.id, user_id))
        for user_id in ("u1", "u3")
        for window in ("180d", "30d")
    ]
    assert assignment_event_id(event.id, "u1") != assignment_event_id(event.id, "u3")
    assert {u for u, _ in uow.personas.latest} == {"u1", "u3"}
    assert (await uow.personas.signals("u3"))["30d"].assigned_at == T0


async def test_the_same_assignments_from_per_user_events_and_from_a_batch_are_projected_once(
    uow, data_bucket
):
    """persona.assigned events published before the upgrade are still handled, and agree with a batch."""
    for user_id in ("u1", "u2"):
        await consent(uow, user_id)
        await support.project(uow, data_bucket, await assigned(data_bucket, user_id))
    before = list(uow.personas.rows)

    await project_batch(uow, data_bucket, await batch_of(data_bucket, "u1", "u2"))

    assert uow.personas.rows == before  # the same user, upload, window, as-of, rule set and persona
