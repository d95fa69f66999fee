"""Recommendation generation time per user: the template path, and the LLM path against a local server.

Builds N synthetic users (``spendsense_cli.synthetic.iter_users``), parses them the way an upload is
parsed (``parse_upload``) and analyzes them with the features service's code, then times
``build_recommendations`` per user (report parsing, selection with every eligibility check and
guardrail, text, trace building and sealing):

  * template - the deterministic template writer (the default without an API key);
  * llm      - the OpenAI-backed writer (official SDK) against the real local HTTP server of the
               tests (``services/recommender/tests/llm_server.py``), answering every request after
               ``--latency`` seconds; concurrency, timeouts and retries as configured below;
  * stalled  - the same writer against a server that takes 10 s (beyond every timeout): each text
               falls back to the template once the 4.5 s deadline passes, so this is the worst case.

Users run one after another (the figure is the latency a worker sees for one user); the texts of one
user are written concurrently up to the writer's concurrency limit. The template run also reports the
CPU time per user (process time over the run, divided by the users): what a worker spends, however
busy the machine is. Credit scores are not in Plaid data: each user gets a deterministic pseudo-random
score (or none, for a fifth of them) so that offers with a score requirement are exercised both ways.
Prints the figures and writes bench/results/recommender.json. Targets: template p95 < 50 ms; LLM path
< 5 s per user.

    .venv/bin/python bench/recommender.py [--users 200] [--llm-users 200] [--latency 0.3] [--stalled-users 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from spendsense_cli.synthetic import iter_users
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_recommender.adapters.llm import LlmConfig, OpenAIWriter
from spendsense_recommender.domain import (
    RecommendationSet,
    TemplateWriter,
    UserFacts,
    Writer,
    build_recommendations,
    user_facts_from_report,
)
from spendsense_recommender.domain.snapshot import snapshot_of
from spendsense_shared.logging import configure_logging
from spendsense_shared.messaging.contracts import AnalysisReport

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "recommender.json"
SERVER_MODULE = ROOT / "services" / "recommender" / "tests" / "llm_server.py"
TEMPLATE_P95_TARGET_MS = 50.0
LLM_BUDGET_MS = 5000.0


def load_server_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recommender_llm_server", SERVER_MODULE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def credit_score(user_id: str) -> int | None:
    digest = int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16)
    return None if digest % 5 == 0 else 580 + digest % 241  # 580-820, or unknown


def build_population(users: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, UserFacts], str]:
    """Analysis reports and eligibility facts for ``users`` synthetic users."""
    generated = [user for user, _ in iter_users(users, seed=seed)]
    parsed = parse_upload("\n".join(json.dumps(u) for u in generated).encode(), filename="users.jsonl")
    if not parsed.ok:
        raise SystemExit(f"synthetic upload rejected: {parsed.problems[:3]}")
    rule_set = load_rule_set()
    reports = analyze(parsed.tables, rule_set)
    accounts = {u["user_id"]: u["accounts"] for u in generated}
    facts = {
        r["user_id"]: user_facts_from_report(r, accounts[r["user_id"]], credit_score(r["user_id"]))
        for r in reports
    }
    return reports, facts, rule_set.version


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(times_ms, 50), 2),
        "p95_ms": round(percentile(times_ms, 95), 2),
        "p99_ms": round(percentile(times_ms, 99), 2),
        "mean_ms": round(statistics.fmean(times_ms), 2),
        "max_ms": round(max(times_ms), 2),
    }


async def time_users(
    reports: list[dict[str, Any]], facts: dict[str, UserFacts], writer: Writer, rule_set_version: str
) -> tuple[list[float], list[RecommendationSet]]:
    times, results = [], []
    for report in reports:
        started = time.perf_counter()
        # As the service does: the typed report (validated at the edge) parsed once into a snapshot.
        snapshot = snapshot_of(AnalysisReport.model_validate(report))
        result = await build_recommendations(
            snapshot,
            facts[report["user_id"]],
            rule_set_version=rule_set_version,
            upload_id="bench",
            writer=writer,
        )
        times.append((time.perf_counter() - started) * 1000)
        results.append(result)
    return times, results


def coverage(results: list[RecommendationSet]) -> dict[str, Any]:
    def counts(result: RecommendationSet) -> tuple[int, int]:
        kinds = Counter(item.kind for item in result.items)
        return kinds["education"], kinds["offer"]

    shapes = [counts(r) for r in results]
    in_range = [3 <= e <= 5 and 1 <= o <= 3 for e, o in shapes]
    by_persona: Counter[str] = Counter(str(r.decision.persona["primary"]) for r in results)
    return {
        "users": len(results),
        "share_with_3_to_5_education_and_1_to_3_offers": round(sum(in_range) / len(results), 4),
        "education_per_user": dict(sorted(Counter(e for e, _ in shapes).items())),
        "offers_per_user": dict(sorted(Counter(o for _, o in shapes).items())),
        "primary_personas": dict(sorted(by_persona.items())),
    }


def generators(results: list[RecommendationSet]) -> dict[str, Any]:
    used = Counter(item.generator for r in results for item in r.items)
    reasons = Counter(
        item.trace["generator"]["fallback"]["reason"]
        for r in results
        for item in r.items
        if "fallback" in item.trace["generator"]
    )
    tokens = sum(
        int(item.trace["generator"].get("tokens", {}).get("total", 0)) for r in results for item in r.items
    )
    return {"texts": dict(used), "fallback_reasons": dict(reasons), "tokens": tokens}


async def run_template(
    reports: list[dict[str, Any]], facts: dict[str, UserFacts], version: str
) -> dict[str, Any]:
    writer = TemplateWriter()
    await time_users(reports[:5], facts, writer, version)  # warm-up: imports, regex and catalog caches
    cpu_started = time.process_time()
    times, results = await time_users(reports, facts, writer, version)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / len(reports)
    return {
        **summary(times),
        "cpu_ms_per_user": round(cpu_ms, 2),
        "target_p95_ms": TEMPLATE_P95_TARGET_MS,
        "coverage": coverage(results),
    }


async def run_llm(
    reports: list[dict[str, Any]],
    facts: dict[str, UserFacts],
    version: str,
    latency_s: float,
    concurrency: int,
) -> dict[str, Any]:
    server_module = load_server_module()
    with server_module.LlmServer(server_module.slow(latency_s)) as server:
        config = LlmConfig(
            api_key="bench-key",
            model="local-test-model",
            base_url=server.base_url,
            timeout_s=2.0,
            total_timeout_s=4.5,
            max_retries=2,
            max_concurrency=concurrency,
        )
        writer = OpenAIWriter(config)
        try:
            times, results = await time_users(reports, facts, writer, version)
        finally:
            await writer.aclose()
    return {
        **summary(times),
        "users": len(reports),
        "budget_ms": LLM_BUDGET_MS,
        "server_latency_s": latency_s,
        "writer": config.model_dump(mode="json", exclude={"api_key"}),
        "generators": generators(results),
    }


def report_line(name: str, figures: dict[str, Any]) -> str:
    p50, p95, top = figures["p50_ms"], figures["p95_ms"], figures["max_ms"]
    return f"{name:<9} p50 {p50:>8.2f} ms   p95 {p95:>8.2f} ms   max {top:>8.2f} ms"


async def main(args: argparse.Namespace) -> None:
    configure_logging("bench", level="WARNING", json=False)
    started = time.perf_counter()
    reports, facts, version = build_population(max(args.users, args.llm_users), args.seed)
    print(f"{len(reports)} users analyzed in {time.perf_counter() - started:.1f} s")
    template = await run_template(reports[: args.users], facts, version)
    print(report_line("template", template), f"(target p95 < {TEMPLATE_P95_TARGET_MS:g} ms)")
    print(f"          CPU: {template['cpu_ms_per_user']:.2f} ms per user (process time over the run)")
    share = template["coverage"]["share_with_3_to_5_education_and_1_to_3_offers"]
    print(f"          coverage: {share:.1%} of users get 3-5 education items and 1-3 offers")
    llm: dict[str, Any] | None = None
    if args.llm_users:
        llm = await run_llm(reports[: args.llm_users], facts, version, args.latency, args.concurrency)
        print(report_line("llm", llm), f"(server latency {args.latency:g} s, budget {LLM_BUDGET_MS:g} ms)")
        texts, fallbacks = llm["generators"]["texts"], llm["generators"]["fallback_reasons"]
        print(f"          texts: {texts}  fallbacks: {fallbacks}")
    stalled: dict[str, Any] | None = None
    if args.stalled_users:
        # The worst case: a server slower than every timeout. The deadline bounds the user's time.
        stalled = await run_llm(reports[: args.stalled_users], facts, version, 10.0, args.concurrency)
        print(report_line("stalled", stalled), "(server never answers in time: every text falls back)")
        texts, fallbacks = stalled["generators"]["texts"], stalled["generators"]["fallback_reasons"]
        print(f"          texts: {texts}  fallbacks: {fallbacks}")
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "seed": args.seed,
        "template": template,
        "llm": llm,
        "llm_stalled_server": stalled,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--llm-users", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3, help="local server answer latency (s)")
    parser.add_argument("--concurrency", type=int, default=8, help="writer's concurrent requests")
    parser.add_argument("--stalled-users", type=int, default=10, help="users timed against a stalled server")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
