"""An upload announced again (the profile's reconciler, after a lost ``upload.ingested`` or a lost
``personas.assigned``) is analyzed once per user: users already analyzed for it are not analyzed again but
their ``personas.assigned`` is published again from the stored analysis (same data, same details claim,
the details object checked in again if the emulator lost it), new ones are analyzed; and two
announcements handled at the same time (one still running when the other arrives) are analyzed in turn,
never both."""

from __future__ import annotations

import asyncio

from spendsense_features.adapters.orm import persona_history
from spendsense_shared.messaging.catalog import PersonasAssigned, parse_data
from spendsense_shared.messaging.claim_check import redeem
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import load_beside

handler_tests = load_beside(
    __file__, "test_analysis_handler.py", "spendsense_features_tests_analysis_handler"
)
features = handler_tests.features  # the fixture, shared


async def test_users_already_analyzed_for_the_upload_are_not_analyzed_again(features):
    first, _ = handler_tests.synthetic(4, "u1")
    second, _ = handler_tests.synthetic(5, "u2")
    await features.grant("u1", "u2")
    await features.analyze("up_again", [first])
    [original] = await features.events("personas.assigned")
    await features.store.delete_prefix("features/")  # the emulator restarted: the details are gone

    # Announced again, now with a user more (a new event: the inbox would not discard it).
    await features.analyze("up_again", [first, second])

    history = await features.rows(persona_history, persona_history.c.user_id, persona_history.c.window)
    assert [(r.user_id, r.window) for r in history] == [
        ("u1", "180d"),
        ("u1", "30d"),
        ("u2", "180d"),
        ("u2", "30d"),
    ]
    assert [a["user_id"] for a in await features.assignments()] == ["u1", "u1", "u2"]
    _, again, _ = await features.events("personas.assigned")  # u1's again, then u2's analysis
    assert again["id"] != original["id"]
    assert again["data"] == original["data"]  # the stored analysis, the same claim
    batch = parse_data(EventEnvelope.model_validate(again))
    assert isinstance(batch, PersonasAssigned)
    [one] = batch.each()
    details = PersonaDetails.model_validate_json(await redeem(features.store, one.details))
    assert details.report.user_id == "u1"
    assert details.accounts  # from the snapshots, as the first time


async def test_two_announcements_at_once_analyze_each_user_once(features):
    user, _ = handler_tests.synthetic(4, "u3")
    await features.grant("u3")
    tables = handler_tests.normalized([user])
    announcements = [await features.ingested("up_twice", tables, ["u3"]) for _ in range(2)]

    await asyncio.gather(*(features.handle(envelope) for envelope in announcements))

    history = await features.rows(persona_history, persona_history.c.window)
    assert [(r.user_id, r.window) for r in history] == [("u3", "180d"), ("u3", "30d")]
    first, second = await features.events("personas.assigned")  # the second: published again, not analyzed
    assert first["data"] == second["data"]


async def test_an_announcement_whose_snapshots_are_gone_is_left_to_be_announced_again(features):
    user, _ = handler_tests.synthetic(4, "u4")
    await features.grant("u4")
    tables = handler_tests.normalized([user])
    lost = await features.ingested("up_lost", tables, ["u4"])
    await features.store.delete_prefix("")  # the emulator restarted: its bucket is empty

    await features.handle(lost)  # no error: retrying could not bring the snapshots back

    assert await features.rows(persona_history, persona_history.c.window) == []
    assert await features.events("personas.assigned") == []
    # The profile writes the snapshots again and announces the upload again: analyzed then.
    await features.handle(await features.ingested("up_lost", tables, ["u4"]))
    assert len(await features.events("personas.assigned")) == 1
