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


def test_each_service_checks_database_redis_and_bus(stack: Stack) -> None:
    urls = stack.manifest()["urls"]
    for service in SERVICES:
        body = httpx.get(f"{urls[service]}/ready", timeout=10).json()
        assert body["checks"] == {"database": "ok", "redis": "ok", "bus": "ok"}, service
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


def card_user(user_id: str) -> dict:
    """A user whose Visa is at 68 % utilization: high_utilization in both windows."""
    from datetime import date, timedelta

    end = date(2026, 10, 31)
    transactions = []
    for month in range(6):
        pay_day = end - timedelta(days=30 * month + 3)
        transactions.append(
            {
                "transaction_id": f"{user_id}-pay-{month}",
                "account_id": "chk",
                "date": pay_day.isoformat(),
                "amount": -3200.0,
                "iso_currency_code": "USD",
                "name": "ACME CORP PAYROLL",
                "payment_channel": "other",
                "personal_finance_category": {"primary": "INCOME", "detailed": "INCOME_WAGES"},
                "pending": False,
            }
        )
        transactions.append(
            {
                "transaction_id": f"{user_id}-groc-{month}",
                "account_id": "visa",
                "date": (pay_day - timedelta(days=5)).isoformat(),
                "amount": 84.12 + month,
                "iso_currency_code": "USD",
                "name": "WHOLE FOODS",
                "merchant_name": "Whole Foods",
                "payment_channel": "in store",
                "personal_finance_category": {
                    "primary": "FOOD_AND_DRINK",
                    "detailed": "FOOD_AND_DRINK_GROCERIES",
                },
                "pending": False,
            }
        )
    return {
        "user_id": user_id,
        "accounts": [
            {
                "account_id": "chk",
                "name": "Checking",
                "type": "depository",
                "subtype": "checking",
                "holder_category": "individual",
                "mask": "1111",
                "balances": {
                    "available": 2500.0,
                    "current": 2500.0,
                    "limit": None,
                    "iso_currency_code": "USD",
                },
            },
            {
                "account_id": "visa",
                "name": "Visa Signature",
                "type": "credit",
                "subtype": "credit card",
                "holder_category": "individual",
                "mask": "4523",
                "balances": {
                    "available": 1600.0,
                    "current": 3400.0,
                    "limit": 5000.0,
                    "iso_currency_code": "USD",
                },
            },
        ],
        "transactions": transactions,
        "liabilities": {
            "credit": [
                {
                    "account_id": "visa",
                    "aprs": [
                        {
                            "apr_percentage": 24.99,
                            "apr_type": "purchase_apr",
                            "balance_subject_to_apr": 3400.0,
                            "interest_charge_amount": 61.2,
                        }
                    ],
                    "is_overdue": False,
                    "last_payment_amount": 100.0,
                    "last_payment_date": "2026-10-15",
                    "last_statement_balance": 3400.0,
                    "last_statement_issue_date": "2026-10-10",
                    "minimum_payment_amount": 100.0,
                    "next_payment_due_date": "2026-11-05",
                }
            ],
            "mortgage": [],
            "student": [],
        },
    }


# Readiness waits, not benchmarks: generous enough for a loaded CI machine.
PIPELINE_WAIT_S = 180


@pytest.mark.timeout(900)
def test_a_user_who_signs_up_through_the_gateway_gets_a_persona_and_recommendations(stack: Stack) -> None:
    signed_up = support.register(stack.gateway, support.unique_email("upload"))
    user_id = signed_up["user"]["id"]
    auth = support.bearer(signed_up["access_token"])
    with httpx.Client(base_url=stack.gateway, headers=auth, timeout=30) as client:
        refused = client.post("/api/v1/uploads", json=card_user(user_id))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "consent_required"
        assert client.post("/api/v1/consent", json={"user_id": user_id}).status_code == 201
        bad = client.post("/api/v1/uploads", json={**card_user(user_id), "transactions": [{"amount": "x"}]})
        assert bad.status_code == 422
        accepted = client.post(
            "/api/v1/uploads", files={"file": ("data.json", json.dumps(card_user(user_id)))}
        )
        assert accepted.status_code == 202, accepted.text
        upload_id = accepted.json()["upload_id"]
        assert accepted.json()["status"] == "ingested"

        def persona() -> dict | None:
            response = client.get(f"/api/v1/profile/{user_id}/persona")
            return response.json() if response.status_code == 200 else None

        found = support.wait_for(persona, PIPELINE_WAIT_S, "a persona for the upload")
        assert found["current"]["180d"]["primary"] == "high_utilization"

        def upload_status(*wanted: str) -> dict | None:
            status = client.get(f"/api/v1/uploads/{upload_id}").json()
            return status if status["status"] in wanted else None

        support.wait_for(lambda: upload_status("analyzed", "recommended"), PIPELINE_WAIT_S, "upload analyzed")
        signals = client.get(f"/api/v1/profile/{user_id}/signals", params={"window": "180d"}).json()
        assert signals["signals"]["credit"]["max_utilization"] == pytest.approx(0.68)
        # The stack auto-approves (no review queue yet): recommendations follow, citing the user's card.
        support.wait_for(lambda: upload_status("recommended"), PIPELINE_WAIT_S, "upload recommended")
        items = client.get(f"/api/v1/recommendations/{user_id}").json()["items"]
        assert 4 <= len(items) <= 8
        assert any("4523" in item["rationale"] for item in items)
        assert all(item["disclosure"].startswith("This is educational content") for item in items)
    verified = cli("traces", "verify", user_id, "--state-dir", str(stack.state_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain: intact" in verified.stdout
    assert f"{len(items)}/{len(items)} decisions reproduce" in verified.stdout


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
