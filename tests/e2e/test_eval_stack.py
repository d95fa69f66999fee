"""The demo's front door and ``spendsense eval`` against the shared e2e stack: six synthetic users sign up,
consent and upload their own data through the gateway (``run_pipeline_demo``), the admin reviews by the
demo policy, then the evaluation reads everything back through the gateway and its figures hold."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from spendsense_cli.pipeline_demo import run_pipeline_demo
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")
Stack = support.Stack
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "metrics.schema.json").read_text())


def test_the_demo_pipeline_then_eval_against_the_stack(stack: Stack, tmp_path: Path) -> None:
    result = run_pipeline_demo(
        stack.gateway, tmp_path, admin=stack.admin_credentials(), users=6, seed=3, progress=print, timeout=300
    )
    assert result.users == 6
    assert result.stages["recommended"] == 6
    assert result.review.rejected >= 1  # every fifth user's lowest offer is held back

    out = tmp_path / "evaluation"
    run = support.cli(
        "eval",
        "--state-dir",
        str(stack.state_dir),
        "--labels",
        str(result.labels_path),
        "--out",
        str(out),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Auditability" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(metrics)
    assert metrics["source"] == "stack"
    assert metrics["users"] == 6
    assert metrics["explainability"]["rate"] == 1.0
    assert metrics["auditability"]["rate"] == 1.0  # every reviewed trace carries the operator's action
    assert metrics["accuracy"]["180d"]["rate"] >= 5 / 6
    assert metrics["guardrails"]["operator_rejections"] == result.review.rejected
    assert metrics["latency"]["end_to_end"]["count"] == 6
    assert metrics["latency"]["end_to_end"]["p50_ms"] > 0
    assert len(list((out / "traces").glob("*.json"))) == 6

    again = run_pipeline_demo(
        stack.gateway, tmp_path, admin=stack.admin_credentials(), users=6, seed=3, progress=print, timeout=300
    )
    assert again.new_accounts == 0  # a second run signs the same people in again
    assert again.stages["recommended"] == 6
