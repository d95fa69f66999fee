"""``spendsense eval --offline FILE``: the whole pipeline in-process, with the services' own domain code.

Per chunk of users: the profile service's parser (``parse_upload``), the features service's analysis and
packaged rule set (``analyze``), then per user the recommender's ``build_recommendations`` with the
template writer (the same selection, guardrails and sealed traces as the service), the trace chain
verified and every decision replayed (``records``), and the documented demo review policy
(``spendsense_cli.review.demo_decision``) applied with the recommender's ``append_operator_action``, so
approval rates and operator actions exist offline too. Users are read and evaluated a chunk at a time
(JSON Lines are streamed; other formats are read whole) and each user's traces are written as soon as
they exist, so memory stays flat whatever the number of users. Chunks are shared between processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spendsense_cli.evaluation.metrics import UserOutcome
from spendsense_cli.evaluation.records import (
    behaviours,
    chain_verified,
    decisions_shared_between_replays,
    distribution_values,
    rec_outcome,
    refusals,
)
from spendsense_cli.review import demo_decision

Json = dict[str, Any]
Progress = Callable[[int, int | None], None]
CHUNK_USERS = 50
OFFLINE_UPLOAD_ID = "offline-eval"
REVIEWER = "demo-policy (offline)"


@dataclass(frozen=True)
class Evaluated:
    outcome: UserOutcome
    traces: bytes  # the user's decision traces, a JSON array


def iter_user_lines(path: Path) -> Iterator[bytes]:
    """One JSON document per user: JSON Lines streamed, a JSON file (one user, a list, or
    ``{"users": [...]}``) read whole."""
    if path.suffix.lower() in (".json",):
        body = json.loads(path.read_bytes())
        users = body.get("users", [body]) if isinstance(body, dict) else body
        for user in users:
            yield json.dumps(user, separators=(",", ":")).encode()
        return
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r\n")


def count_users(path: Path) -> int | None:
    if path.suffix.lower() == ".json":
        return None
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def _chunks(lines: Iterator[bytes], size: int) -> Iterator[tuple[int, list[bytes]]]:
    chunk: list[bytes] = []
    start = 0
    for index, line in enumerate(lines):
        if not chunk:
            start = index
        chunk.append(line)
        if len(chunk) == size:
            yield start, chunk
            chunk = []
    if chunk:
        yield start, chunk


# -- one chunk (runs in a worker process) ----------------------------------------------------------


def evaluate_chunk(start: int, lines: list[bytes]) -> list[Evaluated]:
    """Users ``start…`` of the file: parsed, analyzed, recommended, traced, verified and reviewed."""
    from spendsense_features.domain.analysis import analyze
    from spendsense_features.domain.rules import load_rule_set
    from spendsense_profile.domain.ingest import parse_upload

    began = time.perf_counter()
    parsed = parse_upload(b"\n".join(lines), filename="users.jsonl")
    if not parsed.ok:
        problems = "\n".join(str(p) for p in parsed.problems[:20])
        raise ValueError(
            f"users {start + 1}-{start + len(lines)} of the file are not a valid upload:\n{problems}"
        )
    rule_set = load_rule_set()
    reports = analyze(parsed.tables, rule_set)
    shared_ms = (time.perf_counter() - began) * 1000 / max(1, len(reports))
    accounts = {}
    order = {}
    for offset, line in enumerate(lines):
        user = json.loads(line)
        accounts[str(user.get("user_id"))] = user.get("accounts") or []
        order[str(user.get("user_id"))] = start + offset
    with decisions_shared_between_replays():
        return asyncio.run(_recommend_all(reports, accounts, order, rule_set.version, shared_ms))


async def _recommend_all(
    reports: list[Json],
    accounts: dict[str, list[Json]],
    order: dict[str, int],
    version: str,
    shared_ms: float,
) -> list[Evaluated]:
    return [
        await _recommend(
            report, accounts.get(report["user_id"], []), order.get(report["user_id"], 0), version, shared_ms
        )
        for report in reports
    ]


async def _recommend(
    report: Json, accounts: list[Json], index: int, version: str, shared_ms: float
) -> Evaluated:
    from spendsense_recommender.domain import TemplateWriter, UserFacts, build_recommendations
    from spendsense_recommender.domain.snapshot import snapshot_of
    from spendsense_shared.messaging.contracts import AnalysisReport

    started = time.perf_counter()
    snapshot = snapshot_of(AnalysisReport.model_validate(report))
    result = await build_recommendations(
        snapshot,
        UserFacts.derive(snapshot, accounts),
        rule_set_version=version,
        upload_id=OFFLINE_UPLOAD_ID,
        writer=TemplateWriter(),
    )
    generation_ms = (time.perf_counter() - started) * 1000
    traces = [item.trace for item in result.items]
    chain_ok = chain_verified(traces)
    reviewed, statuses = review_offline(traces, index)
    signals = report["windows"]["180d"]["signals"]
    outcome = UserOutcome(
        user_id=str(report["user_id"]),
        personas={w: str(body["persona"]["primary"]) for w, body in report["windows"].items()},
        behaviours=behaviours(signals),
        recommendations=[
            rec_outcome(trace, chain_ok=chain_ok, status=status)
            for trace, status in zip(reviewed, statuses, strict=True)
        ],
        refusals=refusals(result.decision.rejected_offers),
        generation_ms=round(generation_ms, 3),
        end_to_end_ms=round(shared_ms + generation_ms, 3),
        signals=distribution_values(signals),
    )
    return Evaluated(outcome, json.dumps(reviewed, separators=(",", ":"), ensure_ascii=False).encode())


def review_offline(traces: list[Json], user_index: int) -> tuple[list[Json], list[str]]:
    """The demo review policy applied to one user's items, each decision chained onto its trace as an
    operator action (as the recommender records a reviewer's decision)."""
    from spendsense_recommender.domain import append_operator_action

    offers = [t for t in traces if t["catalog"]["kind"] == "offer"]
    lowest = max(offers, key=lambda t: t["selection"]["rank"]) if offers else None
    at = datetime.now(UTC).isoformat(timespec="seconds")
    reviewed, statuses = [], []
    for trace in traces:
        item = {
            "kind": trace["catalog"]["kind"],
            "guardrails": {
                name: bool((trace.get("guardrails") or {}).get(name, {}).get("passed"))
                for name in ("tone", "grounding", "disclosure", "length")
            },
        }
        decision, reason = demo_decision(item, user_index, trace is lowest)
        status = "approved" if decision == "approve" else "rejected"
        action = {"operator_id": REVIEWER, "action": status, "at": at, "reason": reason}
        reviewed.append(append_operator_action(trace, action))
        statuses.append(status)
    return reviewed, statuses


# -- the run ---------------------------------------------------------------------------------------


def run_offline(
    path: Path,
    labels: dict[str, Json],
    on_user: Callable[[Evaluated], None],
    progress: Progress,
    processes: int = 1,
    chunk_users: int = CHUNK_USERS,
) -> int:
    """Evaluates every user of ``path``, calling ``on_user`` for each, in file order; returns how many.
    ``labels``: ground truth by user id (``persona`` and the demographic groups)."""
    total = count_users(path)
    done = 0

    def deliver(batch: list[Evaluated]) -> None:
        nonlocal done
        for evaluated in batch:
            on_user(label_one(evaluated, labels))
        done += len(batch)
        progress(done, total)

    chunks = _chunks(iter_user_lines(path), chunk_users)
    if processes <= 1:
        for start, lines in chunks:
            deliver(evaluate_chunk(start, lines))
        return done
    # At most two chunks per process in flight: memory stays bounded, results come in file order.
    in_flight: list[Future[list[Evaluated]]] = []
    with ProcessPoolExecutor(max_workers=processes, mp_context=_fork_context()) as pool:
        for start, lines in chunks:
            in_flight.append(pool.submit(evaluate_chunk, start, lines))
            if len(in_flight) >= 2 * processes:
                deliver(in_flight.pop(0).result())
        for future in in_flight:
            deliver(future.result())
    return done


def _fork_context() -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork" if os.name == "posix" else "spawn")


def label_one(evaluated: Evaluated, labels: dict[str, Json]) -> Evaluated:
    """The user's record with the ground truth and demographic groups of their label, if any."""
    label = labels.get(evaluated.outcome.user_id)
    if label is None:
        return evaluated
    outcome = replace(
        evaluated.outcome,
        truth=label.get("persona"),
        groups={k: str(label[k]) for k in ("age_band", "region", "income_band") if label.get(k) is not None},
    )
    return Evaluated(outcome, evaluated.traces)


def read_labels(path: Path | None) -> dict[str, Json]:
    """JSON Lines ``{"user_id", "persona", "age_band"?, "region"?, "income_band"?}`` by user id."""
    if path is None:
        return {}
    labels: dict[str, Json] = {}
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or "user_id" not in row:
                raise ValueError(f"{path}:{number}: a label needs user_id (and persona)")
            labels[str(row["user_id"])] = row
    return labels
