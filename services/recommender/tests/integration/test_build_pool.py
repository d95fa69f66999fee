"""The worker's pool of processes (``BuildPool``) builds, with the template writer, the very
recommendations the worker builds itself, in the order asked, whatever the batch's size; the worker is
wired to it when it writes from templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from spendsense_recommender.adapters import build_pool
from spendsense_recommender.adapters.build_pool import BuildPool
from spendsense_recommender.domain.eligibility import UserFacts
from spendsense_recommender.domain.recommend import BuildInput, RecommendationSet
from spendsense_recommender.domain.snapshot import snapshot_of
from spendsense_recommender.domain.trace import verify_chain
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.recommend import in_process
from spendsense_shared.messaging.contracts import AnalysisReport, PersonaDetails

REPORTS = Path(__file__).parents[1] / "unit" / "data" / "reports.json"


def _inputs() -> list[BuildInput]:
    """Every user of the real reports (three per persona), some with a chain to continue and dismissed
    items."""
    data: dict[str, Any] = json.loads(REPORTS.read_text())
    entries = [entry for users in data["users"].values() for entry in users]
    inputs = []
    for k, entry in enumerate(entries):
        details = PersonaDetails(
            report=AnalysisReport.model_validate(entry["report"]), accounts=entry["accounts"]
        )
        snapshot = snapshot_of(details.report)
        inputs.append(
            BuildInput(
                snapshot,
                UserFacts.derive(snapshot, details.accounts),
                rule_set_version=data["rule_set_version"],
                upload_id=f"up{k % 2}",
                as_of=details.report.as_of,
                dismissed=frozenset({"edu-credit-utilization-101"} if k % 3 == 0 else set()),
                previous_hash=f"{k:064x}" if k % 2 else None,
            )
        )
    return inputs


def _unmeasured(built: list[RecommendationSet]) -> list[dict[str, Any]]:
    """What was built but the writer's measured latency, which the traces record, and so their hashes."""
    found = []
    for one in built:
        dumped = one.model_dump(exclude={"last_hash"})  # Python values: a date is not its text
        for item in dumped["items"]:
            del item["trace"]["generator"]["latency_ms"], item["trace"]["chain"]
        found.append(dumped)
    return found


async def test_the_pool_builds_what_the_worker_builds_in_order() -> None:
    inputs = _inputs()
    here = await in_process(TemplateWriter())(inputs)
    pool = BuildPool(2)
    try:
        built = await pool(inputs)
        assert _unmeasured(built) == _unmeasured(here)
        for one, given_input in zip(built, inputs, strict=True):  # each chain continues the user's own
            traces = [item.trace for item in one.items]
            assert verify_chain(traces, given_input.previous_hash).ok
            assert one.last_hash == traces[-1]["chain"]["hash"]
        assert [r.user_id for r in built] == [i.snapshot.user_id for i in inputs]
        assert _unmeasured(await pool(inputs[:1])) == _unmeasured(here[:1])  # fewer users than processes
        assert await pool([]) == []
    finally:
        pool.close()


@given(st.integers(0, 40), st.integers(1, 8))
def test_a_batch_is_cut_into_even_runs_of_consecutive_users(n: int, parts: int) -> None:
    runs = build_pool._runs(list(range(n)), parts)  # type: ignore[arg-type]
    assert [x for run in runs for x in run] == list(range(n))
    assert max(map(len, runs)) - min(map(len, runs)) <= 1
