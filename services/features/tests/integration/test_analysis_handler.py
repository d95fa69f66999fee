"""``upload.ingested`` → AnalyzeUpload, with real Parquet snapshots in the S3 emulator and a real features
schema: signals, personas and their history are stored, and the outcome is announced per user."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlalchemy import select

from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.orm import (
    details_objects,
    messaging,
    persona_assignments,
    persona_history,
    signals,
)
from spendsense_features.bootstrap import SERVICE
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.handlers import analysis
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.aws import Aws
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.dataset import TABLES, chunk_snapshot_key, to_parquet
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    PersonasAssigned,
    UploadIngested,
    UserErasureRequested,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheck, ClaimCheckMismatch, redeem, redeem_many
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.storage import ObjectStore

RULE_SET_VERSION = load_rule_set().version
AS_OF = date(2026, 10, 31)  # the synthetic users' default as-of date


def synthetic(index: int, user_id: str, as_of: date = AS_OF) -> tuple[dict[str, Any], str]:
    """Synthetic user ``index`` renamed ``user_id``, and the persona it was built for."""
    user, label = build_user(index, as_of=as_of)
    return {**user, "user_id": user_id}, label["persona"]


def normalized(users: Iterable[dict[str, Any]]) -> dict[str, pa.Table]:
    """The users as the profile service stores them (its real parser)."""
    body = b"".join(json.dumps(u).encode() + b"\n" for u in users)
    parsed = parse_upload(body, filename="users.jsonl")
    assert parsed.ok, parsed.problems[:5]
    return parsed.tables


class Features:
    def __init__(self, platform: Any, store: ObjectStore):
        self.platform = platform
        self.db = platform.database
        self.store = store
        wiring = SERVICE.bootstrap(platform)  # wired as the worker wires it
        self.wiring = wiring
        self.uow = wiring.unit_of_work
        self.handler = wiring.event_handlers["upload.ingested"]

    async def consent(self, user_id: str, status: str, at: datetime) -> None:
        if status == "granted":
            data: Any = ConsentGranted(
                user_id=user_id,
                consent_id=f"c-{user_id}",
                policy_version="2026-01",
                scopes=["analysis"],
                granted_at=at,
            )
        else:
            data = ConsentRevoked(user_id=user_id, consent_id=f"c-{user_id}", revoked_at=at)
        event = new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})
        async with self.uow() as uow:
            await apply_consent_event(uow, event, data)  # type: ignore[arg-type]
            await uow.commit()

    async def grant(self, *user_ids: str) -> None:
        for user_id in user_ids:
            await self.consent(user_id, "granted", datetime.now(UTC) - timedelta(hours=1))

    async def ingested(
        self, upload_id: str, tables: dict[str, pa.Table], user_ids: list[str]
    ) -> EventEnvelope:
        """Write the users' snapshots where the profile service writes them (one object per table for the
        chunk of users); the event announcing them."""
        keys = []
        wanted = pa.array(user_ids, type=pa.string())
        for name in TABLES:
            table = tables[name].filter(pc.is_in(tables[name]["user_id"], value_set=wanted))
            key = f"profile/{chunk_snapshot_key(upload_id, '0000', name)}"
            keys.append(await self.store.put(key, to_parquet(table)))
        data = UploadIngested(upload_id=upload_id, user_ids=user_ids, bucket=self.store.bucket, keys=keys)
        return new_event(data, user_id=user_ids[0] if len(user_ids) == 1 else None)

    async def handle(self, envelope: EventEnvelope) -> None:
        async with self.uow() as uow:
            handler = self.wiring.event_handlers[envelope.type]
            await handler(envelope, parse_data(envelope), uow)
            await uow.commit()

    async def analyze(self, upload_id: str, users: list[dict[str, Any]]) -> EventEnvelope:
        envelope = await self.ingested(upload_id, normalized(users), sorted(u["user_id"] for u in users))
        await self.handle(envelope)
        return envelope

    async def rows(self, table: Any, *order: Any) -> list[Any]:
        async with self.db.engine.connect() as conn:
            return list((await conn.execute(select(table).order_by(*order))).all())

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        outbox = messaging.outbox
        query = select(outbox.c.payload).where(outbox.c.event_type == event_type).order_by(outbox.c.seq)
        async with self.db.engine.connect() as conn:
            return [r.payload for r in (await conn.execute(query)).all()]

    async def assignments(self) -> list[dict[str, Any]]:
        """Every user's assignment out of the published ``personas.assigned`` batches, with what its
        batch says of them all (upload, rule set, reason), as ``persona.assigned`` data."""
        return [
            {**{k: v for k, v in batch["data"].items() if k != "assignments"}, **one}
            for batch in await self.events("personas.assigned")
            for one in batch["data"]["assignments"]
        ]

    async def assert_nothing_stored(self) -> None:
        for table in (signals, persona_assignments, persona_history):
            assert await self.rows(table, table.c.user_id) == [], table.name
        assert await self.events("personas.assigned") == []


@pytest.fixture
async def features(migrated, settings_for, isolation_id):
    settings = await migrated(SERVICE)
    bucket = build_topology(isolation_id).buckets["data"]
    async with Aws(settings).client("s3") as s3:  # only the data bucket: the full topology is slower
        await s3.create_bucket(Bucket=bucket)
    platform = SERVICE.platform(settings)
    try:
        yield Features(platform, ObjectStore(platform.aws, bucket, ""))
    finally:
        await platform.close()


async def test_a_consented_users_signals_and_personas_are_stored_and_announced(features):
    user, persona = synthetic(4, "u1")
    assert persona == "high_utilization"
    await features.grant("u1")

    envelope = await features.analyze("up_1", [user])

    stored = await features.rows(signals, signals.c.window)
    assert [(r.user_id, r.window, r.as_of, r.upload_id) for r in stored] == [
        ("u1", "180d", AS_OF, "up_1"),
        ("u1", "30d", AS_OF, "up_1"),
    ]
    for row in stored:
        assert set(row.values) == {"credit", "subscriptions", "savings", "income", "cash_flow"}
        credit = row.values["credit"]
        assert 0.5 <= credit["max_utilization"] < 0.9
        assert (credit["flag_30"], credit["flag_50"]) == (True, True)
        assert credit["interest_charges"] > 0
    assignments = await features.rows(persona_assignments, persona_assignments.c.window)
    assert [(r.window, r.primary_persona, r.rule_set_version, r.as_of, r.upload_id) for r in assignments] == [
        ("180d", "high_utilization", RULE_SET_VERSION, AS_OF, "up_1"),
        ("30d", "high_utilization", RULE_SET_VERSION, AS_OF, "up_1"),
    ]
    assert all(r.matched[0]["id"] == "high_utilization" and r.matched[0]["criteria"] for r in assignments)
    history = await features.rows(persona_history, persona_history.c.window)
    assert [(r.window, r.primary_persona, r.previous_persona, r.upload_id) for r in history] == [
        ("180d", "high_utilization", None, "up_1"),
        ("30d", "high_utilization", None, "up_1"),
    ]

    [event] = await features.events("personas.assigned")
    assert event["producer"] == "features"
    assert event["user_id"] is None  # a batch event names no single user in its envelope
    assert event["causation_id"] == str(envelope.id)
    batch = parse_data(EventEnvelope.model_validate(event))
    assert isinstance(batch, PersonasAssigned)
    [one] = batch.each()
    assert (one.user_id, one.upload_id, one.as_of) == ("u1", "up_1", AS_OF)
    assert one.rule_set_version == RULE_SET_VERSION
    assert one.personas == {"30d": "high_utilization", "180d": "high_utilization"}
    assert one.matched["30d"][0] == "high_utilization"
    assert one.reason == "upload"
    # The report travels by claim check: a line of the batch's object in the real data bucket.
    assert one.details.bucket == features.store.bucket
    assert one.details.key.startswith("features/details/")
    assert (one.details.offset, one.details.size_bytes) == (0, len(await features.store.get(one.details.key)))
    redeemed = PersonaDetails.model_validate_json(await redeem(features.store, one.details))
    assert redeemed.report.user_id == "u1"
    assert redeemed.report.windows["180d"].persona.primary == "high_utilization"
    assert (
        redeemed.report.windows["30d"].signals.credit.max_utilization
        == stored[1].values["credit"]["max_utilization"]
    )
    assert {a.type for a in redeemed.accounts} >= {"credit"}
    assert await features.events("upload.failed") == []


@pytest.mark.parametrize("consent", ["never", "revoked"])
async def test_a_user_without_current_consent_is_not_analyzed(features, consent):
    user, _ = synthetic(4, "u1")
    if consent == "revoked":
        now = datetime.now(UTC)
        await features.consent("u1", "granted", now - timedelta(days=2))
        await features.consent("u1", "revoked", now - timedelta(days=1))

    envelope = await features.analyze("up_1", [user])

    await features.assert_nothing_stored()
    [failure] = await features.events("upload.failed")
    assert failure["user_id"] == "u1"
    assert failure["causation_id"] == str(envelope.id)
    assert failure["data"] == {
        "upload_id": "up_1",
        "user_id": "u1",
        "stage": "analysis",
        "reason": "consent_required",
        "detail": None,
    }


def _account_only(user_id: str, *, pending: bool) -> dict[str, Any]:
    checking = {
        "account_id": "acc",
        "name": "Checking",
        "type": "depository",
        "subtype": "checking",
        "balances": {"available": 90.0, "current": 100.0, "limit": None, "iso_currency_code": "USD"},
    }
    txns = [
        {
            "transaction_id": f"{user_id}-t1",
            "account_id": "acc",
            "date": "2026-10-30",
            "amount": 4.5,
            "iso_currency_code": "USD",
            "name": "COFFEE",
            "payment_channel": "in store",
            "personal_finance_category": {"primary": "FOOD_AND_DRINK"},
            "pending": True,
        }
    ]
    return {"user_id": user_id, "accounts": [checking], "transactions": txns if pending else []}


async def test_a_consented_user_without_posted_transactions_fails_with_a_reason_instead_of_stalling(
    features,
):
    """Nothing to analyze (a new account; only pending transactions) must still end the user's stage,
    or the upload would stay 'ingested' for ever (and a crash would send the event to the DLQ)."""
    users = [_account_only("u-new", pending=False), _account_only("u-pending", pending=True)]
    await features.grant("u-new", "u-pending")

    await features.analyze("up_1", users)

    await features.assert_nothing_stored()
    failures = await features.events("upload.failed")
    assert sorted((f["data"]["user_id"], f["data"]["reason"]) for f in failures) == [
        ("u-new", "no_transactions"),
        ("u-pending", "no_transactions"),
    ]
    assert {f["data"]["upload_id"] for f in failures} == {"up_1"}


async def test_a_later_upload_records_the_persona_transition_with_its_dates(features):
    first, first_persona = synthetic(4, "u1")
    later = date(2026, 11, 20)
    second, second_persona = synthetic(5, "u1", as_of=later)
    assert (first_persona, second_persona) == ("high_utilization", "savings_builder")
    await features.grant("u1")

    await features.analyze("up_1", [first])
    await features.analyze("up_2", [second])

    history = await features.rows(persona_history, persona_history.c.assigned_at, persona_history.c.window)
    assert [(r.window, r.primary_persona, r.previous_persona, r.as_of, r.upload_id) for r in history] == [
        ("180d", "high_utilization", None, AS_OF, "up_1"),
        ("30d", "high_utilization", None, AS_OF, "up_1"),
        ("180d", "savings_builder", "high_utilization", later, "up_2"),
        ("30d", "savings_builder", "high_utilization", later, "up_2"),
    ]
    assert history[2].assigned_at > history[0].assigned_at
    current = await features.rows(persona_assignments, persona_assignments.c.window)
    assert [(r.window, r.primary_persona, r.as_of, r.upload_id) for r in current] == [
        ("180d", "savings_builder", later, "up_2"),
        ("30d", "savings_builder", later, "up_2"),
    ]
    latest = await features.rows(signals, signals.c.window)
    assert [(r.window, r.as_of, r.upload_id) for r in latest] == [
        ("180d", later, "up_2"),
        ("30d", later, "up_2"),
    ]
    assert latest[0].values["savings"]["net_inflow_monthly"] > 350
    events = await features.assignments()
    assert [(e["upload_id"], e["personas"]["180d"]) for e in events] == [
        ("up_1", "high_utilization"),
        ("up_2", "savings_builder"),
    ]


async def test_one_event_for_many_users_analyzes_every_consented_user_in_one_batch(features):
    built = [synthetic(i, f"u{i}") for i in range(4)]
    users = [u for u, _ in built]
    expected = {u["user_id"]: persona for u, persona in built}
    outsider, _ = synthetic(4, "u-no-consent")
    await features.grant(*expected)

    envelope = await features.analyze(f"up_{uuid.uuid4().hex[:6]}", [*users, outsider])

    [batch] = await features.events("personas.assigned")  # one announcement for the batch, not one each
    assert batch["causation_id"] == str(envelope.id)
    assigned = await features.assignments()
    assert {e["user_id"]: e["personas"]["180d"] for e in assigned} == expected
    assert {e["upload_id"] for e in assigned} == {parse_data(envelope).upload_id}
    [failure] = await features.events("upload.failed")
    assert (failure["data"]["user_id"], failure["data"]["reason"]) == ("u-no-consent", "consent_required")
    stored = await features.rows(
        persona_assignments, persona_assignments.c.user_id, persona_assignments.c.window
    )
    assert [(r.user_id, r.window) for r in stored] == [
        (u, w) for u in sorted(expected) for w in ("180d", "30d")
    ]
    assert {r.user_id: r.primary_persona for r in stored if r.window == "180d"} == expected
    assert len(await features.rows(signals, signals.c.user_id)) == 8
    assert len(await features.rows(persona_history, persona_history.c.user_id)) == 8


async def test_a_batch_is_announced_in_as_few_events_as_the_limit_allows(features, monkeypatch):
    """Fails if features went back to one announcement per user: N users, ceil(N / limit) events."""
    limit = 2
    monkeypatch.setattr(analysis, "ASSIGNMENTS_PER_EVENT_MAX", limit)
    users = [synthetic(i, f"u{i}")[0] for i in range(5)]
    await features.grant(*(u["user_id"] for u in users))

    await features.analyze(f"up_{uuid.uuid4().hex[:6]}", users)

    batches = await features.events("personas.assigned")
    assert len(batches) == math.ceil(len(users) / limit)
    assert [len(b["data"]["assignments"]) for b in batches] == [2, 2, 1]
    assert sorted(a["user_id"] for a in await features.assignments()) == sorted(u["user_id"] for u in users)
    assert await features.events("persona.assigned") == []


async def details_claims(features: Features) -> dict[str, ClaimCheck]:
    """User id → the details claim of their announced assignment."""
    return {a["user_id"]: ClaimCheck.model_validate(a["details"]) for a in await features.assignments()}


async def test_a_batchs_details_are_one_object_written_once_and_read_once(features):
    """Fails if features went back to one details object per user."""
    users = [synthetic(i, f"u{i}")[0] for i in range(4)]
    await features.grant(*(u["user_id"] for u in users))

    await features.analyze(f"up_{uuid.uuid4().hex[:6]}", users)

    [key] = await features.store.list("features/")
    claims = await details_claims(features)
    assert {c.key for c in claims.values()} == {key}
    assert sorted(c.offset for c in claims.values()) == sorted({c.offset for c in claims.values()})
    redeemed = await redeem_many(features.store, list(claims.values()))
    assert [PersonaDetails.model_validate_json(b).report.user_id for b in redeemed] == list(claims)
    held = await features.rows(details_objects, details_objects.c.user_id)
    assert [(r.user_id, r.key, r.report_user_id) for r in held] == [(f"u{i}", key, f"u{i}") for i in range(4)]


async def test_an_erasure_blanks_the_users_line_and_the_others_claims_still_redeem(features):
    users = [synthetic(i, f"u{i}")[0] for i in range(3)]
    await features.grant(*(u["user_id"] for u in users))
    await features.analyze(f"up_{uuid.uuid4().hex[:6]}", users)
    claims = await details_claims(features)
    [key] = await features.store.list("features/")
    before = await features.store.get(key)

    erasure = new_event(UserErasureRequested(user_id="u1", requested_at=datetime.now(UTC)), user_id="u1")
    await features.handle(erasure)
    await features.handle(erasure)  # a redelivery: nothing left to blank

    after = await features.store.get(key)
    assert len(after) == len(before)
    gone = claims["u1"]
    assert after[gone.offset : gone.offset + gone.size_bytes].strip(b" ") == b""
    assert b'"u1"' not in after
    with pytest.raises(ClaimCheckMismatch):
        await redeem(features.store, gone)
    kept = [claims["u0"], claims["u2"]]
    assert [
        PersonaDetails.model_validate_json(b).report.user_id for b in await redeem_many(features.store, kept)
    ] == [
        "u0",
        "u2",
    ]
    held = await features.rows(details_objects, details_objects.c.user_id)
    assert [r.user_id for r in held] == ["u0", "u2"]


async def test_an_erasure_after_a_merge_blanks_the_merged_accounts_line_too(features):
    users = [synthetic(i, f"u{i}")[0] for i in range(3)]
    await features.grant(*(u["user_id"] for u in users))
    await features.analyze(f"up_{uuid.uuid4().hex[:6]}", users)
    claims = await details_claims(features)
    [key] = await features.store.list("features/")

    await features.handle(new_event(UserMerged(source_user_id="u2", target_user_id="u1")))
    held = await features.rows(details_objects, details_objects.c.user_id, details_objects.c.report_user_id)
    assert [(r.user_id, r.report_user_id) for r in held] == [("u0", "u0"), ("u1", "u1"), ("u1", "u2")]
    await features.handle(
        new_event(UserErasureRequested(user_id="u1", requested_at=datetime.now(UTC)), user_id="u1")
    )

    after = await features.store.get(key)
    for gone in ("u1", "u2"):
        assert b'"%s"' % gone.encode() not in after
    [kept] = await redeem_many(features.store, [claims["u0"]])
    assert PersonaDetails.model_validate_json(kept).report.user_id == "u0"
    assert [r.user_id for r in await features.rows(details_objects, details_objects.c.user_id)] == ["u0"]
