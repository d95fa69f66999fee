"""``user.merged`` on the in-memory unit of work: the account merged away hands its snapshot pointer,
signals, current personas, persona history and consent to the account that remains, whose own current
data wins; a redelivery changes nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.commands import GetPersona, GetSignals
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.handlers.merge import merge_users
from spendsense_features.handlers.profile import get_persona, get_signals
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.consent import project_consent
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    UserMerged,
    UserRegistered,
    new_event,
    parse_data,
)

RULES = load_rule_set()
AS_OF = date(2026, 10, 31)
HU, SB = 4, 5  # synthetic users built as high_utilization, savings_builder
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@cache
def _report(index: int, user_id: str) -> str:
    user = {**build_user(index, as_of=AS_OF)[0], "user_id": user_id}
    parsed = parse_upload(json.dumps(user).encode())
    assert parsed.ok
    [result] = analyze(parsed.tables, RULES)
    return json.dumps(result, default=str)


def report(index: int, user_id: str) -> dict[str, Any]:
    return json.loads(_report(index, user_id))


async def consent(uow: Any, user_id: str, consent_id: str, granted: bool, at: datetime) -> None:
    data: Any = (
        ConsentGranted(
            user_id=user_id, consent_id=consent_id, policy_version="1", scopes=["analysis"], granted_at=at
        )
        if granted
        else ConsentRevoked(user_id=user_id, consent_id=consent_id, revoked_at=at)
    )
    await project_consent(new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}), data, uow)


async def merge(uow: Any, source: str = "old", target: str = "new", event: Any = None) -> Any:
    """Deliver ``user.merged`` as the consumer does; returns the event (to redeliver it)."""
    event = event or new_event(UserMerged(source_user_id=source, target_user_id=target))
    async with uow:
        await merge_users(event, parse_data(event), uow)
        await uow.commit()
    return event


def state(uow: Any) -> Any:
    return copy.deepcopy(
        (
            uow.analyses.signal_rows,
            uow.analyses.assignments,
            uow.analyses.history,
            uow.snapshots.rows,
            uow.consent.rows,
        )
    )


async def test_the_source_hands_everything_to_a_target_without_data_and_a_redelivery_changes_nothing(uow):
    await consent(uow, "old", "c-old", True, T0)
    await uow.snapshots.remember("old", "up1", ["profile/users/old/uploads/up1/transactions.parquet"], AS_OF)
    await uow.analyses.save(report(HU, "old"), "up1", RULES.version)
    await uow.analyses.save(report(SB, "old"), "up2", RULES.version)
    before = await get_persona(GetPersona("old", limit=10), uow)

    event = await merge(uow)

    moved = await get_persona(GetPersona("new", limit=10), uow)
    assert moved.current == before.current
    assert moved.history == before.history
    assert (await get_signals(GetSignals("new", "30d"), uow)).user_id == "new"
    assert (await get_signals(GetSignals("new", "180d"), uow)).upload_id == "up2"
    assert await get_persona(GetPersona("old", limit=10), uow) is None
    assert await get_signals(GetSignals("old", "30d"), uow) is None
    assert uow.snapshots.rows == {
        "new": ("up1", ["profile/users/old/uploads/up1/transactions.parquet"], AS_OF)
    }
    assert [s.user_id for s in await uow.snapshots.of_consented_users()] == ["new"]  # a re-score finds it
    assert uow.consent.rows == {"new": ("c-old", "granted", T0)}
    assert uow.published == []  # nothing is re-analyzed

    after = state(uow)
    await merge(uow, event=event)  # a redelivery
    await merge(uow)  # or the same merge again
    assert state(uow) == after


async def test_when_both_have_data_the_targets_current_wins_and_history_keeps_both(uow):
    await consent(uow, "old", "c-old", True, T0)
    await consent(uow, "new", "c-new", True, T0 + timedelta(days=1))
    await uow.snapshots.remember("old", "up-old", ["old.parquet"], AS_OF)
    await uow.snapshots.remember("new", "up-new", ["new.parquet"], AS_OF)
    await uow.analyses.save(report(HU, "old"), "up-old", RULES.version)
    await uow.analyses.save(report(SB, "new"), "up-new", RULES.version)
    target_before = await get_persona(GetPersona("new", limit=10), uow)
    source_history = (await get_persona(GetPersona("old", limit=10), uow)).history
    target_signals = await get_signals(GetSignals("new", "180d"), uow)

    await merge(uow)

    merged = await get_persona(GetPersona("new", limit=10), uow)
    assert merged.current == target_before.current
    assert {a.primary for a in merged.current.values()} >= {"savings_builder"}
    assert sorted(merged.history, key=repr) == sorted(target_before.history + source_history, key=repr)
    assert await get_signals(GetSignals("new", "180d"), uow) == target_signals
    assert await get_persona(GetPersona("old", limit=10), uow) is None
    assert uow.analyses.signal_rows.keys() == {("new", "30d"), ("new", "180d")}
    assert uow.snapshots.rows == {"new": ("up-new", ["new.parquet"], AS_OF)}
    assert uow.consent.rows == {"new": ("c-new", "granted", T0 + timedelta(days=1))}


async def test_a_target_analyzed_after_the_merge_keeps_its_newer_data_whatever_the_order(uow):
    """The target's later analysis may be applied before the merge arrives: the merge does not undo it."""
    await uow.analyses.save(report(HU, "old"), "up-old", RULES.version)
    await uow.analyses.save(report(SB, "new"), "up-later", RULES.version)  # happened after the merge
    await merge(uow)
    assert (await get_signals(GetSignals("new", "30d"), uow)).upload_id == "up-later"
    current = (await get_persona(GetPersona("new", limit=1), uow)).current
    later = report(SB, "new")["windows"]
    assert {w: a.primary for w, a in current.items()} == {
        w: r["persona"]["primary"] for w, r in later.items()
    }


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        # (granted?, consent id, at) of each; what the target's row becomes
        ((True, "c-old", 0), None, ("c-old", "granted", 0)),
        ((True, "c-old", 0), (True, "c-new", 1), ("c-new", "granted", 1)),
        ((True, "c-old", 2), (True, "c-new", 1), ("c-new", "granted", 1)),
        ((False, "c-old", 3), (True, "c-new", 1), ("c-new", "granted", 1)),
        # only the source's consent is current: it is the target's current one now (as in profile)
        ((True, "c-old", 1), (False, "c-new", 2), ("c-old", "granted", 2)),
        ((False, "c-old", 1), (False, "c-new", 2), ("c-new", "revoked", 2)),
        (None, (True, "c-new", 1), ("c-new", "granted", 1)),
        (None, None, None),
    ],
)
async def test_the_consent_projection_keeps_the_targets_row_and_deletes_the_sources(
    uow, source, target, expected
):
    for user, row in (("old", source), ("new", target)):
        if row is not None:
            granted, consent_id, hours = row
            await consent(uow, user, consent_id, granted, T0 + timedelta(hours=hours))
    await merge(uow)
    if expected is None:
        assert uow.consent.rows == {}
    else:
        consent_id, status, hours = expected
        assert uow.consent.rows == {"new": (consent_id, status, T0 + timedelta(hours=hours))}
    assert await uow.consent.is_granted("old") is False


async def test_the_merge_handler_refuses_other_events(uow):
    event = new_event(UserRegistered(user_id="u1", roles=["user"], registered_via="password"))
    with pytest.raises(TypeError):
        await merge(uow, event=event)
