"""``spendsense eval --offline`` on 100 generated users: the services' own domain code in-process, every
file written, metrics.json and metrics.csv in agreement and valid against docs/metrics.schema.json, the
traces exported one file per user with intact chains, and the figures the product promises."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from spendsense_cli.evaluation.report import flatten
from spendsense_cli.evaluation.runner import evaluate_offline
from spendsense_cli.main import app
from spendsense_cli.synthetic import generate
from spendsense_recommender.domain import verify_chain

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "metrics.schema.json").read_text())


def validate(metrics: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(metrics)


@pytest.fixture(scope="module")
def hundred(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("eval")
    summary = generate(users=100, seed=4242, out=folder / "users.jsonl")
    out = folder / "out"
    result = evaluate_offline(summary.path, out, labels=summary.labels_path, processes=2, say=print)
    print(f"\noffline evaluation of 100 users: {result.seconds:.1f} s")
    return out, result.metrics


def test_the_promised_figures_on_100_users(hundred: tuple[Path, dict]) -> None:
    _, metrics = hundred
    assert metrics["users"] == 100
    assert metrics["source"] == "offline"
    assert metrics["explainability"]["rate"] == 1.0
    assert metrics["auditability"]["rate"] == 1.0
    assert metrics["accuracy"]["180d"]["rate"] >= 0.95
    assert metrics["accuracy"]["labelled"] == 100
    # Every user gets 3-5 education items and 1-3 offers (SPEC §6).
    assert 4 * 100 <= metrics["recommendations"]["total"] <= 8 * 100
    assert metrics["latency"]["generation"]["count"] == 100
    assert metrics["latency"]["end_to_end"]["p95_ms"] >= metrics["latency"]["end_to_end"]["p50_ms"] > 0
    # The demo policy, applied offline: every fifth user's lowest offer held back, nothing else rejected.
    assert metrics["guardrails"]["operator_rejections"] == 20
    assert metrics["guardrails"]["tone_failures"] == 0
    assert sum(metrics["personas"]["180d"].values()) == 100
    assert 0.6 <= metrics["coverage"]["rate"] <= 1.0


def test_files_agree_and_validate(hundred: tuple[Path, dict]) -> None:
    out, metrics = hundred
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    validate(on_disk)
    with (out / "metrics.csv").open() as handle:
        rows = {row["metric"]: row["value"] for row in csv.DictReader(handle)}
    expected = {name: "" if value is None else str(value) for name, value in flatten(metrics)}
    assert rows == expected
    assert rows["explainability.rate"] == "1.0"
    markdown = (out / "report.md").read_text()
    assert "| Explainability | 100.0 % |" in markdown
    assert "<svg" in (out / "report.html").read_text()


def test_one_trace_file_per_user_with_an_intact_chain(hundred: tuple[Path, dict]) -> None:
    out, metrics = hundred
    files = sorted((out / "traces").glob("*.json"))
    assert len(files) == 100
    total = 0
    for path in files[:25]:
        traces = json.loads(path.read_text())
        assert verify_chain(traces).ok
        assert all(t["operator_actions"] for t in traces)  # the review is chained on
        total += len(traces)
    assert total > 0
    assert metrics["run"]["traces"] == 100


def test_a_tampered_trace_is_not_counted_as_audited(tmp_path: Path) -> None:
    from spendsense_cli.evaluation.records import chain_verified, rec_outcome

    out = tmp_path / "one"
    summary = generate(users=2, seed=1, out=tmp_path / "two.jsonl")
    evaluate_offline(summary.path, out, processes=1, say=lambda m: None)
    traces = json.loads(next((out / "traces").glob("*.json")).read_text())
    traces[0]["output"]["rationale"] = traces[0]["output"]["rationale"].replace("$", "$1")
    assert not chain_verified(traces)
    assert not rec_outcome(traces[0], chain_ok=chain_verified(traces)).trace_verified


def test_the_command_refuses_an_invalid_file_naming_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"user_id": "u1", "accounts": [{"account_id": 5}], "transactions": "no"}) + "\n"
    )
    result = CliRunner().invoke(app, ["eval", "--offline", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "not a valid upload" in result.output
    assert not (tmp_path / "o" / "metrics.json").exists()
