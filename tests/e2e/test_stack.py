"""``spendsense up`` on this checkout: every service ready through the gateway within 60 s, requests
carry their correlation id into the services' logs, and ``spendsense down`` leaves no process behind."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from spendsense_cli.stack import pid_alive
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")
cli = support.cli
Stack = support.Stack
SERVICES = support.SERVICES

pytestmark = pytest.mark.stack


def test_all_five_services_report_ready_through_the_gateway(stack: Stack) -> None:
    # How long it took is a figure (printed by `spendsense up`), not a test: a busy machine is slower.
    assert stack.manifest()["ready_after_s"] > 0
    response = httpx.get(f"{stack.gateway}/api/v1/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["services"] == {s: "ready" for s in SERVICES}
    assert "docs" in stack.up_result.stdout  # type: ignore[attr-defined]


def test_each_service_checks_database_redis_bus_and_its_worker(stack: Stack) -> None:
    urls = stack.manifest()["urls"]
    for service in SERVICES:
        body = httpx.get(f"{urls[service]}/ready", timeout=10).json()
        # "worker": the worker's heartbeat in Redis (the embedded stack requires it).
        assert body["checks"] == {"database": "ok", "redis": "ok", "bus": "ok", "worker": "ok"}, service
        metrics = httpx.get(f"{urls[service]}/metrics", timeout=10).text
        assert "http_requests_total" in metrics


def test_gateway_routes_by_the_table_and_carries_the_correlation_id(stack: Stack) -> None:
    jwks = httpx.get(
        f"{stack.gateway}/api/v1/auth/.well-known/jwks.json", headers={"X-Correlation-ID": "corr-e2e-1"}
    )
    assert jwks.status_code == 200
    assert jwks.headers["x-correlation-id"] == "corr-e2e-1"
    assert jwks.json()["keys"][0]["alg"] == "RS256"
    unknown = httpx.get(f"{stack.gateway}/api/v1/nowhere")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    log_lines = (stack.state_dir / "logs" / "auth.log").read_text().splitlines()
    entries = [json.loads(line) for line in log_lines if line.startswith("{")]
    assert any(e.get("correlation_id") == "corr-e2e-1" and e.get("event") == "http_request" for e in entries)


def test_a_token_minted_by_the_cli_is_verified_by_a_service_through_jwks(stack: Stack) -> None:
    token = cli("token", "u-e2e", "--state-dir", str(stack.state_dir)).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    # A user nobody registered: no profile yet (404), until their first consent creates it.
    assert httpx.get(f"{stack.gateway}/api/v1/consent/u-e2e", headers=auth).status_code == 404
    granted = httpx.post(f"{stack.gateway}/api/v1/consent", json={"user_id": "u-e2e"}, headers=auth)
    assert granted.status_code == 201, granted.text
    ok = httpx.get(f"{stack.gateway}/api/v1/consent/u-e2e", headers=auth)
    assert ok.status_code == 200, ok.text
    assert ok.json()["current"]["status"] == "granted"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    denied = httpx.get(f"{stack.gateway}/api/v1/consent/u-e2e", headers={"Authorization": f"Bearer {forged}"})
    assert denied.status_code == 401


def test_smoke_flow_follows_each_event_into_every_consuming_worker(stack: Stack) -> None:
    result = cli("smoke", "--state-dir", str(stack.state_dir), "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    for service in ("features", "recommender", "operator"):
        assert f"handled by {service}" in result.stdout
    assert "403 forbidden" in result.stdout


def test_status_then_down_leaves_no_process_behind(stack: Stack) -> None:
    assert cli("status", "--state-dir", str(stack.state_dir)).returncode == 0
    pids = [p["pid"] for p in stack.manifest()["processes"]]
    assert len(pids) == 14  # postgres, redis, aws, 5 services, 5 workers, gateway
    result = cli("down", "--state-dir", str(stack.state_dir))
    assert result.returncode == 0, result.stderr
    time.sleep(0.5)
    assert [pid for pid in pids if pid_alive(pid)] == []
    leftovers = subprocess.run(
        ["pgrep", "-f", str(stack.state_dir)], capture_output=True, text=True
    ).stdout.split()
    assert [int(pid) for pid in leftovers if pid_alive(int(pid))] == []
    assert cli("status", "--state-dir", str(stack.state_dir)).returncode == 1
