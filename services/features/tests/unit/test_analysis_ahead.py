"""Analysis ahead of ingest: a chunk analyzed on its ``upload.staged`` is taken by its
``upload.ingested`` (nothing analyzed twice, the same results stored and announced), and anything that
does not fit (another rule set, a user not analyzed ahead, a failed or lost analysis, a hint after its
chunk) is analyzed on ``upload.ingested`` as before. Nothing is stored or announced on the hint."""

from __future__ import annotations

import asyncio
from typing import Any

from spendsense_features.domain.publication import ScoredUser
from spendsense_features.handlers.ahead import Prepared, analyze_ahead
from spendsense_features.handlers.analysis import analyze_on_a_thread, analyze_upload
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_shared.messaging.catalog import UploadStaged, new_event
from spendsense_shared.testing.fakes import load_beside

handlers = load_beside(__file__, "test_handlers.py", "spendsense_features_unit_test_handlers_ahead")


class CountingAnalyzer:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, tables: Any, rule_set: Any, users: Any) -> list[ScoredUser]:
        self.calls.append(sorted(users))
        return await analyze_on_a_thread(tables, rule_set, users)


def staged_from(ingested: Any) -> Any:
    return new_event(UploadStaged.model_validate(ingested.data))


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0.01)


async def test_a_chunk_analyzed_ahead_is_taken_by_its_ingest_and_stored_as_if_analyzed_then(uow, data_bucket):
    for user in ("u1", "u2"):
        await handlers.consent(uow, user)
    event = await handlers.ingested(data_bucket, "up1", {"u1": handlers.HU, "u2": handlers.SB}, chunked=True)
    prepared, analyzer, rule_sets = Prepared(), CountingAnalyzer(), RuleSetStore()
    ports = {"store": data_bucket, "rule_sets": rule_sets, "analyzer": analyzer, "prepared": prepared}

    await handlers.handle(analyze_ahead, staged_from(event), uow, **ports)
    assert uow.published == []  # nothing stored or announced on a hint
    assert await uow.analyses.signals("u1", "180d") is None
    await handlers.handle(analyze_upload, event, uow, **ports)

    assert analyzer.calls == [["u1", "u2"]]  # once, ahead
    for user, index in (("u1", handlers.HU), ("u2", handlers.SB)):
        stored = await uow.analyses.signals(user, "180d")
        assert stored.values == handlers.report(index, user)["windows"]["180d"]["signals"]
    assert sorted(a.user_id for a in handlers.assigned(uow)) == ["u1", "u2"]

    await handlers.handle(analyze_ahead, staged_from(event), uow, **ports)  # a hint after its chunk
    assert analyzer.calls == [["u1", "u2"]]


async def test_what_was_not_analyzed_ahead_for_every_user_now_is_analyzed_on_ingest(uow, data_bucket):
    await handlers.consent(uow, "u1")
    event = await handlers.ingested(data_bucket, "up1", {"u1": handlers.HU, "u2": handlers.SB}, chunked=True)
    prepared, analyzer = Prepared(), CountingAnalyzer()
    ports = {"store": data_bucket, "rule_sets": RuleSetStore(), "analyzer": analyzer, "prepared": prepared}

    await handlers.handle(analyze_ahead, staged_from(event), uow, **ports)  # u2 had no consent then
    await _settle()
    await handlers.consent(uow, "u2")
    await handlers.handle(analyze_upload, event, uow, **ports)

    assert analyzer.calls == [["u1"], ["u1", "u2"]]
    assert sorted(a.user_id for a in handlers.assigned(uow)) == ["u1", "u2"]


async def test_a_consent_revoked_since_the_hint_keeps_that_users_result_out(uow, data_bucket):
    for user in ("u1", "u2"):
        await handlers.consent(uow, user)
    event = await handlers.ingested(data_bucket, "up1", {"u1": handlers.HU, "u2": handlers.SB}, chunked=True)
    prepared, analyzer = Prepared(), CountingAnalyzer()
    ports = {"store": data_bucket, "rule_sets": RuleSetStore(), "analyzer": analyzer, "prepared": prepared}

    await handlers.handle(analyze_ahead, staged_from(event), uow, **ports)
    await handlers.consent(uow, "u2", granted=False)
    await handlers.handle(analyze_upload, event, uow, **ports)

    assert analyzer.calls == [["u1", "u2"]]
    assert [a.user_id for a in handlers.assigned(uow)] == ["u1"]
    assert await uow.analyses.signals("u2", "180d") is None


def _scored(*users: str) -> list[ScoredUser]:
    return [ScoredUser(user, b"{}", b"{}") for user in users]


async def test_prepared_gives_a_chunk_once_for_its_rule_set_and_users_and_never_a_failure() -> None:
    prepared = Prepared()

    async def ok() -> list[ScoredUser]:
        return _scored("a", "b")

    async def fails() -> list[ScoredUser]:
        raise RuntimeError("the pool died")

    assert prepared.start("up", ["k1"], "v1", {"a", "b"}, ok)
    assert not prepared.start("up", ["k1"], "v1", {"a", "b"}, ok)  # analyzing already
    assert prepared.take("up", ["k2"], "v1", {"a"}) is None  # another chunk
    taken = prepared.take("up", ["k1"], "v1", {"b"})
    assert taken is not None
    assert await taken == _scored("b")
    assert prepared.take("up", ["k1"], "v1", {"b"}) is None  # taken once
    assert not prepared.start("up", ["k1"], "v1", {"a", "b"}, ok)  # its ingest came: a late hint

    prepared.start("up", ["k3"], "v1", {"a"}, ok)
    assert prepared.take("up", ["k3"], "v2", {"a"}) is None  # another rule set is active now
    prepared.start("up", ["k4"], "v1", {"a"}, fails)
    await _settle()
    assert prepared.take("up", ["k4"], "v1", {"a"}) is None


async def test_prepared_keeps_at_most_its_capacity_and_drops_what_waited_too_long() -> None:
    prepared = Prepared(capacity=2, kept_s=60)
    started = asyncio.Event()

    async def forever() -> list[ScoredUser]:
        started.set()
        await asyncio.Event().wait()
        return []

    prepared.start("up", ["k1"], "v1", {"a"}, forever)
    await started.wait()
    first = prepared._ahead[("up", ("k1",))].analysis
    prepared.start("up", ["k2"], "v1", {"a"}, forever)
    prepared.start("up", ["k3"], "v1", {"a"}, forever)  # the oldest goes, its analysis cancelled
    await asyncio.sleep(0)
    assert first.cancelled()
    assert list(prepared._ahead) == [("up", ("k2",)), ("up", ("k3",))]

    stale = Prepared(capacity=10, kept_s=0)
    stale.start("up", ["k1"], "v1", {"a"}, forever)
    stale.start("up", ["k2"], "v1", {"a"}, forever)
    assert list(stale._ahead) == [("up", ("k2",))]
    for one in (prepared, stale):
        one.close()
        assert not one._ahead
