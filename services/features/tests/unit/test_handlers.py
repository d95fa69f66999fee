"""Every use case of the features service against the in-memory unit of work and data bucket
(milliseconds, no servers): the SQL repositories are tested against PostgreSQL in ``integration``."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.commands import (
    ActivateRuleSet,
    AddRuleSet,
    GetPersona,
    GetSignals,
    ListRuleSets,
)
from spendsense_features.domain.model import HistoryPosition, RuleSetConflict, RuleSetNotFound
from spendsense_features.domain.rules import RuleSetError, load_rule_set
from spendsense_features.handlers.analysis import analyze_upload
from spendsense_features.handlers.profile import get_persona, get_signals
from spendsense_features.handlers.rescore import rescore_all
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.handlers.rules import activate_rule_set, add_rule_set, list_rule_sets
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.consent import project_consent
from spendsense_shared.dataset import TABLES, chunk_snapshot_key, snapshot_key, to_parquet
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    PersonaAssigned,
    PersonasAssigned,
    RescoreRequested,
    UploadIngested,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheckMismatch, redeem
from spendsense_shared.messaging.contracts import AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.errors import PermanentError

RULES = load_rule_set()
AS_OF = date(2026, 10, 31)
HU, SB, SH = 4, 5, 1  # synthetic users built as high_utilization, savings_builder, subscription_heavy


@cache
def _tables(index: int, user_id: str, as_of: date = AS_OF) -> dict[str, pa.Table]:
    user = {**build_user(index, as_of=as_of)[0], "user_id": user_id}
    parsed = parse_upload(json.dumps(user).encode())
    assert parsed.ok
    return parsed.tables


def report(index: int, user_id: str, as_of: date = AS_OF) -> dict[str, Any]:
    [result] = analyze(_tables(index, user_id, as_of), RULES)
    return result


async def ingested(
    bucket: Any, upload_id: str, users: dict[str, int], as_of: date = AS_OF, *, chunked: bool = False
) -> EventEnvelope:
    """Snapshots of synthetic users (user id → index) in the bucket, as the profile service writes them:
    one object per table for the chunk of users (``chunked``), or one per user and table (as it did)."""
    parts: dict[str, list[pa.Table]] = {}
    for user_id, index in users.items():
        tables = _tables(index, user_id, as_of)
        for name in TABLES:
            parts.setdefault(name, []).append(tables[name].filter(pc.equal(tables[name]["user_id"], user_id)))
    if chunked:
        items = [
            (f"profile/{chunk_snapshot_key(upload_id, '0000', name)}", to_parquet(pa.concat_tables(tables)))
            for name, tables in parts.items()
        ]
    else:
        items = [
            (f"profile/{snapshot_key(user_id, upload_id, name)}", to_parquet(table))
            for name, tables in parts.items()
            for user_id, table in zip(users, tables, strict=True)
        ]
    await bucket.put_many(items, "application/octet-stream")
    keys = [key for key, _ in items]
    data = UploadIngested(upload_id=upload_id, user_ids=sorted(users), bucket=bucket.bucket, keys=keys)
    return new_event(data)


async def consent(uow: Any, user_id: str, granted: bool = True, at: datetime | None = None) -> None:
    at = at or datetime.now(UTC) - timedelta(hours=1)
    data: Any = (
        ConsentGranted(
            user_id=user_id, consent_id="c", policy_version="1", scopes=["analysis"], granted_at=at
        )
        if granted
        else ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=at)
    )
    event = new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})
    await project_consent(event, data, uow)


async def handle(handler: Any, event: EventEnvelope, uow: Any, **ports: Any) -> None:
    """As the consumer runs an event handler: inside the unit of work, committing after it."""
    async with uow:
        await handler(event, parse_data(event), uow, **ports)
        await uow.commit()


def events(uow: Any, event_type: str) -> list[EventEnvelope]:
    return [e for e in uow.published if e.type == event_type]


def assigned(uow: Any) -> list[PersonaAssigned]:
    """Every user's assignment the service published, out of its ``personas.assigned`` batches."""
    batches = [parse_data(e) for e in events(uow, "personas.assigned")]
    return [one for batch in batches if isinstance(batch, PersonasAssigned) for one in batch.each()]


class CountingBucket:
    """Counts ``put_many`` calls of the wrapped store."""

    def __init__(self, store: Any) -> None:
        self.store, self.bucket, self.batches = store, store.bucket, []

    async def put_many(self, items: list[tuple[str, bytes]], content_type: str) -> list[str]:
        self.batches.append([k for k, _ in items])
        return await self.store.put_many(items, content_type)

    async def get_many(self, names: list[str]) -> list[bytes]:
        self.reads = [*getattr(self, "reads", []), *names]
        return await self.store.get_many(names)

    async def get(self, name: str) -> bytes:
        return await self.store.get(name)


# --- upload.ingested ---------------------------------------------------------------------------------


async def test_consented_users_are_analyzed_stored_and_announced_with_a_claim_checked_report(
    uow, data_bucket
):
    await consent(uow, "u1")
    await consent(uow, "u2")
    event = await ingested(data_bucket, "up1", {"u1": HU, "u2": SB, "u3": SH})
    bucket = CountingBucket(data_bucket)
    uploads_before = len(data_bucket.objects)

    await handle(analyze_upload, event, uow, store=bucket, rule_sets=RuleSetStore())

    assert uow.commits == 1
    [batch_event] = events(uow, "personas.assigned")  # the batch's users in one announcement
    assert batch_event.user_id is None  # it names many users: no single one in the envelope
    by_user = {a.user_id: a for a in assigned(uow)}
    assert set(by_user) == {"u1", "u2"}
    assert [(f.user_id, f.data["reason"]) for f in events(uow, "upload.failed")] == [
        ("u3", "consent_required")
    ]
    assert {e.causation_id for e in uow.published} == {event.id}
    # One object of details for every user of the batch, in the data bucket: one PUT, not one per user.
    [[batch_key]] = bucket.batches
    assert re.fullmatch(r"features/details/[0-9a-f]{32}\.jsonl", batch_key)
    assert len(data_bucket.objects) == uploads_before + 1
    lines = data_bucket.objects[batch_key].split(b"\n")  # JSON Lines, a line per user (by user id)
    assert [json.loads(line)["report"]["user_id"] for line in lines] == ["u1", "u2"]
    assert uow.details_objects.rows == {("u1", batch_key, "u1"), ("u2", batch_key, "u2")}
    for user_id, index in (("u1", HU), ("u2", SB)):
        data = by_user[user_id]
        assert (data.upload_id, data.as_of, data.rule_set_version, data.reason) == (
            "up1",
            AS_OF,
            RULES.version,
            "upload",
        )
        assert data.details.key == batch_key
        assert data.details.offset is not None
        assert data.details.bucket == data_bucket.bucket
        details = PersonaDetails.model_validate_json(await redeem(data_bucket, data.details))
        expected = AnalysisReport.model_validate(report(index, user_id))
        assert details.report == expected
        assert data.personas == {w: r.persona.primary for w, r in expected.windows.items()}
        assert data.matched["180d"] == [m.id for m in expected.windows["180d"].persona.matched]
        assert details.accounts
        assert all(a.type for a in details.accounts)
        assert "account_id" not in json.loads(await redeem(data_bucket, data.details))["accounts"][0]
        stored = await uow.analyses.signals(user_id, "180d")
        assert stored.upload_id == "up1"
        assert stored.values == report(index, user_id)["windows"]["180d"]["signals"]
    assert await uow.analyses.signals("u3", "30d") is None
    assert set(uow.snapshots.rows) == {"u1", "u2"}
    assert all(k.startswith("profile/users/u1/") for k in uow.snapshots.rows["u1"][1])


async def test_a_chunk_of_users_shares_one_snapshot_per_table_and_each_user_is_analyzed_from_its_rows(
    uow, data_bucket
):
    await consent(uow, "u1")
    await consent(uow, "u2")
    event = await ingested(data_bucket, "up1", {"u1": HU, "u2": SB}, chunked=True)
    bucket = CountingBucket(data_bucket)

    await handle(analyze_upload, event, uow, store=bucket, rule_sets=RuleSetStore())

    assert sorted(bucket.reads) == sorted(event.data["keys"])  # the chunk's three objects, once each
    for user_id, index in (("u1", HU), ("u2", SB)):
        stored = await uow.analyses.signals(user_id, "180d")
        assert stored.values == report(index, user_id)["windows"]["180d"]["signals"]
        assert uow.snapshots.rows[user_id][1] == event.data["keys"]  # a re-score reads the chunk


async def test_a_tampered_details_object_is_refused_by_its_claim(uow, data_bucket):
    await consent(uow, "u1")
    await handle(
        analyze_upload,
        await ingested(data_bucket, "up1", {"u1": HU}),
        uow,
        store=data_bucket,
        rule_sets=RuleSetStore(),
    )
    claim = assigned(uow)[0].details
    assert claim.offset is not None
    stored = data_bucket.objects[claim.key]
    at = claim.offset + claim.size_bytes // 2  # a byte of the user's part changed
    data_bucket.objects[claim.key] = (
        stored[:at] + (b"0" if stored[at : at + 1] != b"0" else b"1") + stored[at + 1 :]
    )
    with pytest.raises(ClaimCheckMismatch):
        await redeem(data_bucket, claim)


async def test_nobody_consented_means_no_analysis_and_one_failure_each(uow, data_bucket):
    await consent(uow, "u1", granted=False)
    bucket = CountingBucket(data_bucket)
    await handle(
        analyze_upload,
        await ingested(data_bucket, "up1", {"u1": HU, "u2": SB}),
        uow,
        store=bucket,
        rule_sets=RuleSetStore(),
    )
    assert sorted((e.user_id, e.data["reason"]) for e in uow.published) == [
        ("u1", "consent_required"),
        ("u2", "consent_required"),
    ]
    assert bucket.batches == []
    assert uow.snapshots.rows == {}
    assert uow.analyses.signal_rows == {}


async def test_a_consented_user_without_posted_transactions_fails_with_a_reason(uow, data_bucket):
    await consent(uow, "u1")
    event = await ingested(data_bucket, "up1", {"u1": HU}, as_of=AS_OF)
    tables = _tables(HU, "u1", AS_OF)
    empty = tables["transactions"].slice(0, 0)
    key = next(k for k in parse_data(event).keys if k.endswith("transactions.parquet"))
    data_bucket.objects[key] = to_parquet(empty)

    await handle(analyze_upload, event, uow, store=data_bucket, rule_sets=RuleSetStore())

    [failure] = uow.published
    assert (failure.type, failure.data["reason"], failure.data["detail"]) == (
        "upload.failed",
        "no_transactions",
        "no posted transactions to analyze",
    )
    assert uow.analyses.signal_rows == {}


async def test_the_active_rule_set_is_the_one_analysis_uses(uow, data_bucket):
    rule_sets = RuleSetStore()
    await add_rule_set(AddRuleSet(subscription_free_rule_set(), "root"), uow, rule_sets)
    await activate_rule_set(ActivateRuleSet("personas-test-v2", "root"), uow, rule_sets)
    await consent(uow, "u1")
    await handle(
        analyze_upload,
        await ingested(data_bucket, "up1", {"u1": SH}),
        uow,
        store=data_bucket,
        rule_sets=rule_sets,
    )
    [one] = assigned(uow)
    assert one.rule_set_version == "personas-test-v2"
    assert "subscription_heavy" not in one.personas.values()


# --- personas.rescore_requested ----------------------------------------------------------------------


def subscription_free_rule_set() -> dict[str, Any]:
    document = copy.deepcopy(dict(RULES.document))
    document["version"] = "personas-test-v2"
    for persona in document["personas"]:
        if persona["id"] == "subscription_heavy":
            persona["when"]["all"][0]["value"] = 1000
    return document


async def test_a_rescore_rescores_every_consented_user_from_the_latest_snapshot_in_batches(uow, data_bucket):
    rule_sets = RuleSetStore()
    for user_id in ("u1", "u2", "u3"):
        await consent(uow, user_id)
    await handle(
        analyze_upload,
        await ingested(data_bucket, "up1", {"u1": SH, "u2": HU, "u3": SB}),
        uow,
        store=data_bucket,
        rule_sets=rule_sets,
    )
    await consent(uow, "u3", granted=False, at=datetime.now(UTC))
    await add_rule_set(AddRuleSet(subscription_free_rule_set(), "root"), uow, rule_sets)
    await activate_rule_set(ActivateRuleSet("personas-test-v2", "root"), uow, rule_sets)
    [request] = events(uow, "personas.rescore_requested")
    uow.published.clear()
    bucket = CountingBucket(data_bucket)

    await handle(rescore_all, request, uow, store=bucket, rule_sets=rule_sets, batch_users=1)

    rescored = assigned(uow)
    assert sorted(e.user_id for e in rescored) == ["u1", "u2"]
    assert {e.reason for e in rescored} == {"rescore"}
    assert {e.upload_id for e in rescored} == {None}
    assert {e.rule_set_version for e in rescored} == {"personas-test-v2"}
    assert len(bucket.batches) == 2  # one claim-check batch per batch of users
    assert len(events(uow, "personas.assigned")) == 2  # and one announcement per batch
    [u1] = [e for e in rescored if e.user_id == "u1"]
    assert u1.personas["180d"] != "subscription_heavy"
    [moved] = [
        t
        for t in uow.analyses.history["u1"]
        if t.rule_set_version == "personas-test-v2" and t.window == "180d"
    ]
    assert moved.previous == "subscription_heavy"


async def test_a_rescore_reads_each_chunk_once_and_only_the_rows_of_users_whose_latest_snapshot_it_is(
    uow, data_bucket
):
    rule_sets = RuleSetStore()
    for user_id in ("u1", "u2"):
        await consent(uow, user_id)
    first = await ingested(data_bucket, "up1", {"u1": SH, "u2": HU}, chunked=True)
    await handle(analyze_upload, first, uow, store=data_bucket, rule_sets=rule_sets)
    later = await ingested(data_bucket, "up2", {"u1": SB}, chunked=True)  # u1's later, different data
    await handle(analyze_upload, later, uow, store=data_bucket, rule_sets=rule_sets)
    await add_rule_set(AddRuleSet(subscription_free_rule_set(), "root"), uow, rule_sets)
    await activate_rule_set(ActivateRuleSet("personas-test-v2", "root"), uow, rule_sets)
    [request] = events(uow, "personas.rescore_requested")
    uow.published.clear()
    bucket = CountingBucket(data_bucket)

    await handle(rescore_all, request, uow, store=bucket, rule_sets=rule_sets)

    assert sorted(e.user_id for e in assigned(uow)) == ["u1", "u2"]
    assert sorted(bucket.reads) == sorted({*first.data["keys"], *later.data["keys"]})
    # u1's rows of the first chunk are not theirs any more: only the later snapshot's are analyzed.
    for user_id, index in (("u1", SB), ("u2", HU)):
        stored = await uow.analyses.signals(user_id, "180d")
        assert stored.values == report(index, user_id)["windows"]["180d"]["signals"]


async def test_a_rescore_for_an_unknown_rule_set_is_a_permanent_error(uow, data_bucket):
    event = new_event(RescoreRequested(rule_set_version="nope", requested_by="root"))
    with pytest.raises(PermanentError):
        await handle(rescore_all, event, uow, store=data_bucket, rule_sets=RuleSetStore())
    assert uow.published == []


# --- rule-set commands and query ---------------------------------------------------------------------


async def test_adding_a_rule_set_validates_and_stores_it_once(uow):
    rule_sets = RuleSetStore()
    assert (
        await add_rule_set(AddRuleSet(subscription_free_rule_set(), "root"), uow, rule_sets)
        == "personas-test-v2"
    )
    assert uow.commits == 1
    assert uow.rule_sets.rows["personas-test-v2"].created_by == "root"
    with pytest.raises(RuleSetConflict, match="already exists"):
        await add_rule_set(AddRuleSet(subscription_free_rule_set(), "other"), uow, rule_sets)
    with pytest.raises(RuleSetConflict, match="packaged"):
        await add_rule_set(AddRuleSet(dict(RULES.document), "root"), uow, rule_sets)
    bad = {
        "version": "x",
        "personas": [
            {"id": "p", "when": {"all": [{"name": "c", "signal": "credit.nope", "op": ">=", "value": 1}]}}
        ],
    }
    with pytest.raises(RuleSetError, match=r"credit\.nope"):
        await add_rule_set(AddRuleSet(bad, "root"), uow, rule_sets)
    assert uow.commits == 1
    assert set(uow.rule_sets.rows) == {"personas-test-v2"}
    assert uow.published == []


async def test_activating_publishes_a_rescore_request_and_an_unknown_version_is_not_found(uow):
    rule_sets = RuleSetStore()
    await add_rule_set(AddRuleSet(subscription_free_rule_set(), "root"), uow, rule_sets)
    with pytest.raises(RuleSetNotFound):
        await activate_rule_set(ActivateRuleSet("nope", "root"), uow, rule_sets)
    assert uow.published == []

    await activate_rule_set(ActivateRuleSet("personas-test-v2", "admin-1"), uow, rule_sets)
    [request] = uow.published
    assert request.type == "personas.rescore_requested"
    assert request.data == {"rule_set_version": "personas-test-v2", "requested_by": "admin-1"}
    assert (await rule_sets.active(uow.rule_sets)).version == "personas-test-v2"

    await activate_rule_set(ActivateRuleSet(RULES.version, "root"), uow, rule_sets)  # back to packaged
    assert uow.rule_sets.rows[RULES.version].created_by == "packaged"
    assert (await rule_sets.active(uow.rule_sets)).version == RULES.version
    assert [e.data["rule_set_version"] for e in uow.published] == ["personas-test-v2", RULES.version]


async def test_listing_shows_the_packaged_and_stored_versions_and_which_is_active(uow):
    rule_sets = RuleSetStore()
    [packaged] = await list_rule_sets(ListRuleSets(), uow, rule_sets)
    assert (packaged.version, packaged.source, packaged.active, packaged.packaged) == (
        RULES.version,
        "packaged",
        True,
        True,
    )
    await add_rule_set(AddRuleSet(subscription_free_rule_set(), "root"), uow, rule_sets)
    await activate_rule_set(ActivateRuleSet("personas-test-v2", "root"), uow, rule_sets)
    listed = await list_rule_sets(ListRuleSets(), uow, rule_sets)
    assert [(v.version, v.source, v.active) for v in listed] == [
        (RULES.version, "packaged", False),
        ("personas-test-v2", "root", True),
    ]
    assert listed[1].activated_at is not None


# --- profile queries ---------------------------------------------------------------------------------


async def test_signals_are_answered_per_window_and_none_before_analysis(uow):
    assert await get_signals(GetSignals("u1", "30d"), uow) is None
    await uow.analyses.save(report(HU, "u1"), "up1", RULES.version)
    stored = await get_signals(GetSignals("u1", "30d"), uow)
    assert (stored.user_id, stored.window, stored.as_of, stored.upload_id) == ("u1", "30d", AS_OF, "up1")
    assert stored.values == report(HU, "u1")["windows"]["30d"]["signals"]


async def test_persona_history_pages_newest_first_and_the_cursor_splits_windows(uow):
    assert await get_persona(GetPersona("u1", limit=10), uow) is None
    for index, upload in ((HU, "up1"), (SB, "up2"), (SH, "up3")):
        await uow.analyses.save(report(index, "u1"), upload, RULES.version)

    whole = await get_persona(GetPersona("u1", limit=10), uow)
    assert whole.current["180d"].primary == "subscription_heavy"
    assert [(t.window, t.persona, t.previous) for t in whole.history] == [
        ("30d", "subscription_heavy", "savings_builder"),
        ("180d", "subscription_heavy", "savings_builder"),
        ("30d", "savings_builder", "high_utilization"),
        ("180d", "savings_builder", "high_utilization"),
        ("30d", "high_utilization", None),
        ("180d", "high_utilization", None),
    ]
    assert whole.next_after is None

    seen, after = [], None
    for _ in range(10):
        page = await get_persona(GetPersona("u1", limit=4, after=after), uow)
        seen += page.history
        after = page.next_after
        if after is None:
            break
        assert isinstance(after, HistoryPosition)
    assert seen == whole.history
    one = await get_persona(GetPersona("u1", limit=1), uow)
    assert one.next_after == HistoryPosition(whole.history[0].assigned_at, whole.history[0].window)
