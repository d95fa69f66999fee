"""The smoke flow the demo runs through the live stack: a user signs up, grants and revokes consent
through the gateway, and each step's event is followed by its correlation id through the outbox, SNS
and SQS into every consuming worker's log."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from spendsense_cli.accounts import new_password, register
from spendsense_shared.messaging.catalog import CONSUMES

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StepResult:
    event_type: str
    correlation_id: str
    handled_after_ms: dict[str, float]


def handled_in_log(log_path: Path, correlation_id: str, event_type: str) -> bool:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return False
    for line in reversed(lines):
        if correlation_id in line and line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "event_handled" and entry.get("event_type") == event_type:
                return True
    return False


def follow(
    logs: Path, correlation_id: str, event_type: str, sent_at: float, timeout: float
) -> dict[str, float]:
    """Wait until every service consuming ``event_type`` logged handling it; ms after the request."""
    waiting = {s for s, types in CONSUMES.items() if event_type in types}
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for service in sorted(waiting):
            if handled_in_log(logs / f"{service}-worker.log", correlation_id, event_type):
                done[service] = round((time.monotonic() - sent_at) * 1000, 1)
                waiting.discard(service)
        time.sleep(0.05)
    if waiting:
        raise TimeoutError(
            f"{event_type} ({correlation_id}) not handled by {', '.join(sorted(waiting))} in {timeout}s"
        )
    return done


def run_smoke(
    gateway: str, state_dir: Path, progress: Progress = print, timeout: float = 30
) -> list[StepResult]:
    logs = state_dir / "logs"
    results = []
    with httpx.Client(base_url=gateway, timeout=30) as client:
        health = client.get("/api/v1/health").json()
        progress(f"services: {health['services']}")
        correlation_id = f"smoke-{uuid.uuid4().hex[:12]}"
        sent_at = time.monotonic()
        email = f"smoke-{uuid.uuid4().hex[:8]}@demo.example.com"
        client.headers["X-Correlation-ID"] = correlation_id
        account = register(client, email, new_password())
        del client.headers["X-Correlation-ID"]
        user_id = account.user_id
        progress(
            f"POST /api/v1/auth/register → 201 ({user_id}); following user.registered [{correlation_id}]"
        )
        handled = follow(logs, correlation_id, "user.registered", sent_at, timeout)
        for service, ms in handled.items():
            progress(f"  handled by {service:<12} {ms:>8.1f} ms after the request")
        results.append(StepResult("user.registered", correlation_id, handled))
        client.headers.update(account.headers())
        steps = [
            ("consent.granted", "POST", "/api/v1/consent", {"user_id": user_id}),
            ("consent.revoked", "DELETE", f"/api/v1/consent/{user_id}", None),
        ]
        for event_type, method, path, body in steps:
            correlation_id = f"smoke-{uuid.uuid4().hex[:12]}"
            sent_at = time.monotonic()
            response = client.request(method, path, json=body, headers={"X-Correlation-ID": correlation_id})
            if not response.is_success:
                raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text}")
            progress(f"{method} {path} → {response.status_code}; following {event_type} [{correlation_id}]")
            handled = follow(logs, correlation_id, event_type, sent_at, timeout)
            for service, ms in handled.items():
                progress(f"  handled by {service:<12} {ms:>8.1f} ms after the request")
            results.append(StepResult(event_type, correlation_id, handled))
        denied = client.get(f"/api/v1/consent/{user_id}-someone-else")
        code = denied.json()["error"]["code"]
        progress(f"reading another user's consent as a user → {denied.status_code} {code}")
    return results
