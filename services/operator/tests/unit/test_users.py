"""The operator's projection of ``persona.assigned`` (history per window, the latest signals; nothing
without current consent; idempotent; older events never replace newer signals) and the user detail an
operator reads (signals, persona history newest first and capped, the user's review items; 403 without
current consent, 404 when the operator knows nothing of the user or they were erased)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from functools import partial

import pytest

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.domain.commands import Decide, GetUser
from spendsense_operator.domain.model import ConsentRequired, UserNotFound
from spendsense_operator.domain.users import PERSONA_HISTORY_MAX, USER_RECOMMENDATIONS_MAX, PersonaRecord
from spendsense_operator.handlers.erasure import erase_user
from spendsense_operator.handlers.personas import ForeignReport
from spendsense_operator.handlers.review import decide
from spendsense_operator.handlers.users import get_user
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.messaging.catalog import CONSUMES, UserErasureRequested, new_event
from spendsense_shared.messaging.errors import PermanentError
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "support.py", "spendsense_operator_unit_support")
consent, assigned, project, T0 = support.consent, support.assigned, support.project, support.T0
AS_OF = date(2026, 10, 31)


async def test_persona_assigned_is_consumed_and_wired():
    platform = SERVICE.platform(OperatorSettings())
    try:
        wiring = SERVICE.bootstrap(platform)
    finally:
        await platform.close()
    assert "persona.assigned" in CONSUMES["operator"]
    assert "persona.assigned" in wiring.event_handlers


async def test_an_assignment_adds_a_history_row_per_window_and_the_windows_signals(uow, data_bucket):
    await consent(uow, "u1")
    event = await assigned(
        data_bucket,
        "u1",
        personas={"30d": "subscription_heavy", "180d": "high_utilization"},
        matched={"30d": ["subscription_heavy", "high_utilization"], "180d": ["high_utilization"]},
    )
    await project(uow, data_bucket, event)
    await project(uow, data_bucket, event)  # a redelivery adds nothing
    # features publishing its stored analysis again: another event, the same assignment, nothing added
    again = event.model_copy(update={"id": uuid.uuid4(), "occurred_at": T0 + timedelta(hours=1)})
    await project(uow, data_bucket, again)

    rows = sorted(uow.personas.rows, key=lambda r: r.window)
    assert [(r.window, r.persona, r.matched, r.rule_set_version, r.as_of, r.event_id) for r in rows] == [
        ("180d", "high_utilization", ["high_utilization"], "personas-v1", AS_OF, str(event.id)),
        (
            "30d",
            "subscription_heavy",
            ["subscription_heavy", "high_utilization"],
            "personas-v1",
            AS_OF,
            str(event.id),
        ),
    ]
    signals = await uow.personas.signals("u1")
    assert set(signals) == {"30d", "180d"}
    assert signals["30d"].signals["credit"]["max_utilization"] == 0.68
    assert signals["180d"].signals["window_days"] == 180
    assert (signals["30d"].as_of, signals["30d"].assigned_at) == (AS_OF, T0)
    assert uow.published == []


async def test_without_current_consent_nothing_is_stored_and_nothing_is_read(uow, data_bucket):
    await project(uow, data_bucket, await assigned(data_bucket, "stranger"))
    await consent(uow, "u2", granted=False)
    event = await assigned(data_bucket, "u2")
    data_bucket.objects.clear()  # had the handler read the claim, it would fail
    await project(uow, data_bucket, event)
    assert uow.personas.rows == []
    assert uow.personas.latest == {}


async def test_older_signals_never_replace_newer_but_every_assignment_is_history(uow, data_bucket):
    await consent(uow, "u1")
    newer = await assigned(data_bucket, "u1", as_of=AS_OF, at=T0 + timedelta(hours=2))
    older = await assigned(
        data_bucket, "u1", as_of=AS_OF - timedelta(days=30), at=T0, analysis=support.report("u1", AS_OF, 0.9)
    )
    rescore = await assigned(
        data_bucket,
        "u1",
        as_of=AS_OF,
        at=T0 + timedelta(hours=3),
        rule_set_version="personas-v2",
        reason="rescore",
        analysis=support.report("u1", AS_OF, 0.5),
    )
    await project(uow, data_bucket, newer)
    await project(uow, data_bucket, older)  # arrives late
    assert (await uow.personas.signals("u1"))["30d"].signals["credit"]["max_utilization"] == 0.68
    await project(uow, data_bucket, rescore)  # same as-of, assigned later: replaces
    latest = (await uow.personas.signals("u1"))["30d"]
    assert (latest.signals["credit"]["max_utilization"], latest.rule_set_version) == (0.5, "personas-v2")
    history = await uow.personas.history("u1", 10)
    assert [(r.rule_set_version, r.reason, r.assigned_at) for r in history[::2]] == [
        ("personas-v2", "rescore", T0 + timedelta(hours=3)),
        ("personas-v1", "upload", T0 + timedelta(hours=2)),
        ("personas-v1", "upload", T0),
    ]


async def test_a_report_of_another_user_is_refused_for_good(uow, data_bucket):
    await consent(uow, "u1")
    event = await assigned(data_bucket, "u1", analysis=support.report("someone-else", AS_OF))
    with pytest.raises(ForeignReport) as refused:
        await project(uow, data_bucket, event)
    assert isinstance(refused.value, PermanentError)  # dead-lettered: retrying cannot help
    assert uow.personas.rows == []


# --- the user detail ----------------------------------------------------------------------------------


async def test_the_user_detail_has_signals_history_newest_first_and_the_review_items(uow, data_bucket):
    await consent(uow, "u1")
    for hours in range(3):  # three uploads
        event = await assigned(data_bucket, "u1", at=T0 + timedelta(hours=hours), upload_id=f"up{hours}")
        await project(uow, data_bucket, event)
    await support.deliver(uow, data_bucket, support.generated("u1", [support.item("r1"), support.item("r2")]))
    await decide(Decide("rejected", "op-1", recommendation_ids=("r2",), reason="not for them"), uow)
    await support.queued(uow, data_bucket, "u2", support.item("x1"))

    detail = await get_user(GetUser("u1"), uow)

    assert set(detail.signals) == {"30d", "180d"}
    assert [r.assigned_at for r in detail.personas] == [T0 + timedelta(hours=h) for h in (2, 2, 1, 1, 0, 0)]
    assert not detail.more_personas
    assert {(i.recommendation_id, i.status, i.reason) for i in detail.recommendations} == {
        ("r1", "pending", None),
        ("r2", "rejected", "not for them"),
    }
    assert detail.counts == {"pending": 1, "approved": 0, "rejected": 1, "flagged": 0, "overridden": 0}


def record(n: int) -> PersonaRecord:
    return PersonaRecord(
        user_id="u1",
        window="30d",
        persona="saver",
        matched=["saver"],
        rule_set_version="personas-v1",
        as_of=AS_OF,
        upload_id=None,
        reason="upload",
        assigned_at=T0 + timedelta(minutes=n),
        event_id=f"e{n}",
    )


async def test_the_user_detail_caps_the_history_and_the_items(uow, data_bucket):
    await consent(uow, "u1")
    uow.personas.rows = [record(n) for n in range(PERSONA_HISTORY_MAX + 5)]  # more than a detail shows
    items = [support.item(f"r{n:03d}") for n in range(USER_RECOMMENDATIONS_MAX + 1)]
    await support.deliver(uow, data_bucket, support.generated("u1", items))
    detail = await get_user(GetUser("u1"), uow)
    assert len(detail.personas) == PERSONA_HISTORY_MAX
    assert detail.more_personas
    assert detail.personas[0].assigned_at == T0 + timedelta(minutes=PERSONA_HISTORY_MAX + 4)
    assert len(detail.recommendations) == USER_RECOMMENDATIONS_MAX
    assert detail.more_recommendations


async def test_the_user_detail_needs_current_consent_and_something_known(uow, data_bucket):
    with pytest.raises(ConsentRequired):  # never heard of: no consent either
        await get_user(GetUser("nobody"), uow)
    await consent(uow, "quiet")
    with pytest.raises(UserNotFound):  # consented, but nothing analyzed or queued
        await get_user(GetUser("quiet"), uow)

    await consent(uow, "u1")
    await project(uow, data_bucket, await assigned(data_bucket, "u1"))
    assert (await get_user(GetUser("u1"), uow)).personas
    await consent(uow, "u1", granted=False, hours=1)
    with pytest.raises(ConsentRequired) as refused:
        await get_user(GetUser("u1"), uow)
    assert refused.value.user_ids == ["u1"]


async def test_an_erased_user_is_gone_from_the_projection_and_the_detail_answers_not_found(uow, data_bucket):
    for user_id in ("gone", "kept"):
        await consent(uow, user_id)
        await project(uow, data_bucket, await assigned(data_bucket, user_id))
    erasure = new_event(UserErasureRequested(user_id="gone", requested_at=T0), user_id="gone")
    await support.handle(uow, partial(erase_user, store=data_bucket), erasure)

    assert {r.user_id for r in uow.personas.rows} == {"kept"}
    assert {u for u, _ in uow.personas.latest} == {"kept"}
    with pytest.raises(UserNotFound):
        await get_user(GetUser("gone"), uow)
    await project(uow, data_bucket, await assigned(data_bucket, "gone", at=T0 + timedelta(days=1)))  # late
    assert {r.user_id for r in uow.personas.rows} == {"kept"}
