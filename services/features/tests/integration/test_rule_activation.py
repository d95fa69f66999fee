"""A new rule-set version is validated, stored and activated by an admin; activation re-scores every
consented user through the bus, and history keeps both assignments with their versions."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime

import pytest
import yaml
from sqlalchemy import select

from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.orm import messaging, persona_assignments, persona_history
from spendsense_features.bootstrap import SERVICE
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.dataset import chunk_snapshot_key, to_parquet
from spendsense_shared.messaging.catalog import ConsentGranted, UploadIngested, new_event, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.storage import ObjectStore


def subscription_free_rule_set() -> dict:
    """v1 with the subscription-heavy persona effectively switched off (an absurd threshold)."""
    document = copy.deepcopy(dict(load_rule_set().document))
    document["version"] = "personas-test-v2"
    for persona in document["personas"]:
        if persona["id"] == "subscription_heavy":
            persona["when"]["all"][0]["value"] = 1000
    return document


async def outbox(database, event_type: str) -> list[EventEnvelope]:
    async with database.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(messaging.outbox.c.payload).where(messaging.outbox.c.event_type == event_type)
            )
        ).all()
    return [EventEnvelope.model_validate(r.payload) for r in rows]


@pytest.fixture
async def features(service_client, topology):
    client = await service_client(SERVICE)
    client.admin = client.as_("root", "admin")  # type: ignore[attr-defined]
    wiring = SERVICE.bootstrap(client.platform)  # as the worker wires it
    client.handlers = wiring.event_handlers  # type: ignore[attr-defined]
    client.uow = wiring.unit_of_work  # type: ignore[attr-defined]
    return client


async def ingest(features, users: list[dict]) -> None:
    platform = features.platform
    body = "\n".join(json.dumps(u) for u in users).encode()
    parsed = parse_upload(io.BytesIO(body), filename="u.jsonl")
    assert parsed.ok, parsed.problems[:3]
    store = ObjectStore(platform.aws, platform.topology.buckets["data"], "profile")
    keys = [  # as the profile writes them: one object per table for a chunk of users
        await store.put(chunk_snapshot_key("up1", "0000", name), to_parquet(table))
        for name, table in parsed.tables.items()
    ]
    for user in users:
        granted = new_event(
            ConsentGranted(
                user_id=user["user_id"],
                consent_id="c",
                policy_version="1",
                scopes=["analysis"],
                granted_at=datetime.now(UTC),
            )
        )
        async with features.uow() as uow:
            await apply_consent_event(uow, granted, parse_data(granted))
            await uow.commit()
    event = new_event(
        UploadIngested(
            upload_id="up1",
            user_ids=[u["user_id"] for u in users],
            bucket=platform.topology.buckets["data"],
            keys=keys,
        )
    )
    async with features.uow() as uow:
        await features.handlers["upload.ingested"](event, parse_data(event), uow)
        await uow.commit()


async def test_activating_a_rule_set_rescores_consented_users_and_keeps_history(features):
    users = [build_user(i, seed=11)[0] for i in range(12)]
    labels = [build_user(i, seed=11)[1]["persona"] for i in range(12)]
    assert "subscription_heavy" in labels
    await ingest(features, users)

    refused = await features.post(
        "/api/v1/personas/rules",
        content=yaml.safe_dump(
            {
                "version": "x",
                "personas": [
                    {
                        "id": "p",
                        "when": {
                            "all": [{"name": "c", "signal": "credit.no_such_signal", "op": ">=", "value": 1}]
                        },
                    }
                ],
            }
        ),
        headers={**features.admin, "content-type": "application/yaml"},
    )
    assert refused.status_code == 422
    assert "credit.no_such_signal" in refused.json()["error"]["message"]

    added = await features.post(
        "/api/v1/personas/rules",
        content=yaml.safe_dump(subscription_free_rule_set()),
        headers={**features.admin, "content-type": "application/yaml"},
    )
    assert added.status_code == 201, added.text
    activated = await features.post(
        "/api/v1/personas/rules/personas-test-v2/activate", headers=features.admin
    )
    assert activated.status_code == 202
    [request] = await outbox(features.platform.database, "personas.rescore_requested")

    async with features.uow() as uow:
        await features.handlers["personas.rescore_requested"](request, parse_data(request), uow)
        await uow.commit()

    async with features.platform.database.engine.connect() as conn:
        current = {
            r.user_id: (r.primary_persona, r.rule_set_version)
            for r in await conn.execute(
                select(persona_assignments).where(persona_assignments.c.window == "180d")
            )
        }
        history = (
            await conn.execute(select(persona_history).where(persona_history.c.window == "180d"))
        ).all()
    assert {version for _, version in current.values()} == {"personas-test-v2"}
    assert "subscription_heavy" not in {persona for persona, _ in current.values()}
    assert {r.rule_set_version for r in history} == {"personas-v1", "personas-test-v2"}
    moved = [
        r
        for r in history
        if r.rule_set_version == "personas-test-v2" and r.previous_persona == "subscription_heavy"
    ]
    assert moved, "the transition away from subscription_heavy is recorded"
    rescored = [
        one
        for e in await outbox(features.platform.database, "personas.assigned")
        if e.data["reason"] == "rescore"
        for one in e.data["assignments"]
    ]
    assert len(rescored) == 12

    listed = (await features.get("/api/v1/personas/rules", headers=features.admin)).json()["items"]
    assert [i["version"] for i in listed if i["active"]] == ["personas-test-v2"]


async def test_only_admins_change_rule_sets(features):
    operator = features.as_("op", "operator")
    response = await features.post("/api/v1/personas/rules/personas-v1/activate", headers=operator)
    assert response.status_code == 403
    missing = await features.post("/api/v1/personas/rules/nope/activate", headers=features.admin)
    assert missing.status_code == 404
