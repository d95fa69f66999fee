"""``/api/v1/profile/{user_id}/signals`` and ``/persona`` against a real features schema: who may read
them (consent included), what they answer before and after analysis, and persona-history pages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.orm import (
    consent_projection,
    persona_assignments,
    persona_history,
    signals,
    user_snapshots,
)
from spendsense_features.adapters.unit_of_work import SqlFeaturesUnitOfWork
from spendsense_features.bootstrap import SERVICE
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    UserMerged,
    new_event,
    parse_data,
)

RULES = load_rule_set()
AS_OF = date(2026, 10, 31)
HU, SB, SH = 4, 5, 1  # synthetic users built as high_utilization, savings_builder, subscription_heavy
PERSONA_OF = {HU: "high_utilization", SB: "savings_builder", SH: "subscription_heavy"}


@cache
def report(index: int, user_id: str) -> dict[str, Any]:
    """The analysis report of synthetic user ``index`` renamed ``user_id`` (as the worker computes it)."""
    user = {**build_user(index, as_of=AS_OF)[0], "user_id": user_id}
    parsed = parse_upload(json.dumps(user).encode())
    assert parsed.ok
    [result] = analyze(parsed.tables, RULES)
    assert result["windows"]["180d"]["persona"]["primary"] == PERSONA_OF[index]
    return result


class Features:
    def __init__(self, client: Any):
        self.client = client
        self.uow = client.platform.database.uow_factory(SqlFeaturesUnitOfWork)

    def as_(self, user: str | None, *roles: str) -> dict[str, str]:
        return {} if user is None else dict(self.client.as_(user, *roles))

    async def consent(self, user_id: str, status: str) -> None:
        """Apply a consent event to the service's projection, as its worker would."""
        at = datetime.now(UTC)
        if status == "granted":
            data: Any = ConsentGranted(
                user_id=user_id, consent_id="c1", policy_version="2026-01", scopes=["analysis"], granted_at=at
            )
        else:
            data = ConsentRevoked(user_id=user_id, consent_id="c1", revoked_at=at)
        event = new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})
        async with self.uow() as uow:
            await apply_consent_event(uow, event, data)
            await uow.commit()

    async def analyzed(self, user_id: str, index: int, upload_id: str) -> None:
        """Store an analysis exactly as the ``upload.ingested`` handler does (one transaction)."""
        async with self.uow() as uow:
            await uow.analyses.save(report(index, user_id), upload_id, RULES.version)
            await uow.commit()

    async def merged(self, source: str, target: str, event: Any = None) -> Any:
        """Deliver ``user.merged`` to the handler the service wires, as its worker would; the event."""
        event = event or new_event(UserMerged(source_user_id=source, target_user_id=target))
        handler = SERVICE.bootstrap(self.client.platform).event_handlers["user.merged"]
        async with self.uow() as uow:
            await handler(event, parse_data(event), uow)
            await uow.commit()
        return event

    async def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the per-user tables, sorted (to compare before and after)."""
        tables = (signals, persona_assignments, persona_history, user_snapshots, consent_projection)
        found = {}
        async with self.client.platform.database.engine.connect() as conn:
            for table in tables:
                rows = await conn.execute(select(table))
                found[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return found

    async def get(self, path: str, actor: str | None, *roles: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.as_(actor, *roles))


@pytest.fixture
async def features(service_client):
    return Features(await service_client(SERVICE))


@pytest.mark.parametrize("path", ["/api/v1/profile/u1/signals?window=180d", "/api/v1/profile/u1/persona"])
async def test_who_may_read_a_users_signals_and_persona(features, path):
    await features.consent("u1", "granted")
    await features.analyzed("u1", HU, "up_1")

    async def expect(actor: str | None, roles: tuple[str, ...], status: int, code: str | None) -> None:
        response = await features.get(path, actor, *roles)
        assert response.status_code == status, (actor, roles, response.text)
        if code is not None:
            assert response.json()["error"]["code"] == code, (actor, roles)
        else:
            assert response.json()["user_id"] == "u1"

    await expect(None, (), 401, "unauthorized")
    await expect("u1", ("user",), 200, None)
    await expect("u2", ("user",), 403, "forbidden")
    await expect("u2", ("user", "auditor"), 403, "forbidden")  # an unknown role grants nothing
    await expect("ops", ("operator",), 200, None)
    await expect("root", ("admin",), 200, None)

    await features.consent("u1", "revoked")
    await expect("u1", ("user",), 403, "consent_required")
    await expect("ops", ("operator",), 403, "consent_required")
    await expect("root", ("admin",), 403, "consent_required")
    await expect("u2", ("user",), 403, "forbidden")
    await expect(None, (), 401, "unauthorized")


async def test_operators_and_admins_never_see_a_user_who_never_consented(features):
    await features.analyzed("u9", HU, "up_9")  # stored data, but no consent in the projection
    for actor, roles in [("u9", ("user",)), ("ops", ("operator",)), ("root", ("admin",))]:
        for path in ("/api/v1/profile/u9/signals", "/api/v1/profile/u9/persona"):
            response = await features.get(path, actor, *roles)
            assert response.status_code == 403, (actor, path, response.text)
            assert response.json()["error"]["code"] == "consent_required"


async def test_signals_per_window(features):
    await features.consent("u1", "granted")
    await features.analyzed("u1", HU, "up_1")
    expected = report(HU, "u1")["windows"]

    by_window = {}
    for window in ("30d", "180d"):
        response = await features.get("/api/v1/profile/u1/signals", "u1", window=window)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["user_id"], body["window"], body["as_of"], body["upload_id"]) == (
            "u1",
            window,
            AS_OF.isoformat(),
            "up_1",
        )
        assert body["signals"] == json.loads(json.dumps(expected[window]["signals"]))
        assert body["signals"]["credit"]["flag_50"] is True
        assert body["computed_at"]
        by_window[window] = body["signals"]
    assert by_window["30d"] != by_window["180d"]
    default = await features.get("/api/v1/profile/u1/signals", "u1")
    assert default.json()["window"] == "30d"


@pytest.mark.parametrize("window", ["7d", "30", "", "180D"])
async def test_an_unknown_window_is_refused_naming_the_field(features, window):
    await features.consent("u1", "granted")
    await features.analyzed("u1", HU, "up_1")
    response = await features.get("/api/v1/profile/u1/signals", "u1", window=window)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == ["window"]
    assert error["message"].startswith("window:")


async def test_nothing_to_show_before_the_first_analysis(features):
    await features.consent("u1", "granted")
    for path in ("/api/v1/profile/u1/signals?window=30d", "/api/v1/profile/u1/persona"):
        for actor, roles in [("u1", ("user",)), ("ops", ("operator",))]:
            response = await features.get(path, actor, *roles)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_analyzed"
    await features.analyzed("u2", HU, "up_2")  # another user's analysis changes nothing for u1
    assert (await features.get("/api/v1/profile/u1/persona", "u1")).status_code == 404


async def test_persona_history_is_paged_newest_first_with_a_cursor(features):
    await features.consent("u1", "granted")
    for index, upload_id in [(HU, "up_1"), (SB, "up_2"), (SH, "up_3")]:
        await features.analyzed("u1", index, upload_id)
    await features.analyzed("u2", SB, "up_x")  # someone else's history never shows

    whole = await features.get("/api/v1/profile/u1/persona", "u1")
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert {w: a["primary"] for w, a in body["current"].items()} == {
        "30d": "subscription_heavy",
        "180d": "subscription_heavy",
    }
    assert body["current"]["180d"]["rule_set_version"] == RULES.version
    assert body["current"]["180d"]["matched"][0]["id"] == "subscription_heavy"
    transitions = [(t["window"], t["persona"], t["previous"]) for t in body["history"]]
    assert transitions == [
        ("30d", "subscription_heavy", "savings_builder"),
        ("180d", "subscription_heavy", "savings_builder"),
        ("30d", "savings_builder", "high_utilization"),
        ("180d", "savings_builder", "high_utilization"),
        ("30d", "high_utilization", None),
        ("180d", "high_utilization", None),
    ]
    assert body["next_cursor"] is None
    times = [t["assigned_at"] for t in body["history"]]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) == 3  # one assignment time per analysis, shared by its two windows

    first = (await features.get("/api/v1/profile/u1/persona", "u1", limit=4)).json()
    assert [(t["window"], t["persona"]) for t in first["history"]] == [t[:2] for t in transitions[:4]]
    assert first["next_cursor"]
    second = (
        await features.get("/api/v1/profile/u1/persona", "u1", limit=4, cursor=first["next_cursor"])
    ).json()
    assert [(t["window"], t["persona"], t["previous"]) for t in second["history"]] == transitions[4:]
    assert second["next_cursor"] is None

    # One item a page: the cursor must also split the two windows of one analysis.
    seen, cursor = [], None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await features.get("/api/v1/profile/u1/persona", "ops", "operator", **params)).json()
        seen += [(t["window"], t["persona"], t["previous"]) for t in page["history"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == transitions

    bad = await features.get("/api/v1/profile/u1/persona", "u1", cursor="not-a-cursor")
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"
    too_many = await features.get("/api/v1/profile/u1/persona", "u1", limit=500)
    assert too_many.status_code == 422
    assert [d["field"] for d in too_many.json()["error"]["details"]] == ["limit"]


async def test_a_merge_moves_the_sources_data_to_the_target_whose_own_current_data_wins(features):
    """On the real schema: ``old`` is merged into ``new`` (both analyzed, both consented) and ``gone`` into
    ``fresh`` (who has nothing yet); ``other`` is untouched; a redelivery changes nothing."""
    for user in ("old", "new", "gone", "other"):
        await features.consent(user, "granted")
    await features.analyzed("old", HU, "up_old")
    await features.analyzed("new", SB, "up_new")
    await features.analyzed("gone", SH, "up_gone")
    await features.analyzed("other", HU, "up_other")
    async with features.uow() as uow:
        for user in ("old", "new", "gone", "other"):
            await uow.snapshots.remember(user, f"up_{user}", [f"profile/users/{user}/x.parquet"], AS_OF)
        await uow.commit()
    old_history = (await features.get("/api/v1/profile/old/persona", "old")).json()["history"]
    new_before = (await features.get("/api/v1/profile/new/persona", "new")).json()
    gone_before = (await features.get("/api/v1/profile/gone/persona", "gone")).json()
    other_before = [r for rows in (await features.rows()).values() for r in rows if "other" in r]

    event = await features.merged("old", "new")
    await features.merged("gone", "fresh")

    new_after = (await features.get("/api/v1/profile/new/persona", "new", limit=50)).json()
    assert new_after["current"] == new_before["current"]  # the target's own win
    assert {t["persona"] for t in new_after["history"]} == {"high_utilization", "savings_builder"}
    assert sorted(map(json.dumps, new_after["history"])) == sorted(
        map(json.dumps, new_before["history"] + old_history)
    )
    signals_after = (await features.get("/api/v1/profile/new/signals", "new", window="180d")).json()
    assert signals_after["upload_id"] == "up_new"
    fresh = (await features.get("/api/v1/profile/fresh/persona", "fresh")).json()
    assert (fresh["current"], fresh["history"]) == (gone_before["current"], gone_before["history"])
    assert (await features.get("/api/v1/profile/fresh/signals", "fresh")).json()["upload_id"] == "up_gone"

    rows = await features.rows()
    assert not [r for table in rows.values() for r in table if "old" in r or "gone" in r]
    assert {r[0]: r[1] for r in rows["user_snapshots"]} == {
        "new": "up_new",
        "fresh": "up_gone",
        "other": "up_other",
    }
    assert {r[0] for r in rows["consent_projection"]} == {"new", "fresh", "other"}
    assert [r for table in rows.values() for r in table if "other" in r] == other_before
    async with features.uow() as uow:
        assert [s.user_id for s in await uow.snapshots.of_consented_users()] == ["fresh", "new", "other"]

    await features.merged("old", "new", event)  # a redelivery
    await features.merged("gone", "fresh")  # or the same merge announced again
    assert await features.rows() == rows
