"""Fuzzing every service's API (schemathesis) on the embedded stack, through the gateway, as an admin and
as a signed-in user: no answer may be a 5xx (but a
sign-in provider's deliberate 503 ``provider_not_configured``), break the response schema the service
documents, or break the error shape (``{"error": {"code", "message", "details"?}}``, SPEC §9).

Each service's own OpenAPI document (its port) drives the generation; the requests go to the gateway, as
clients send them. Positive and negative cases (schemathesis' generation modes). The whole run is bounded
in time (``FUZZ_BUDGET_S``, default 150 s): past it no new request is sent. The user's cases address the
user's own data (``user_id`` path parameter), so they get past authorization and reach the handlers.

Left out, because the stack is shared by the other e2e tests: logging out (it would revoke the token the
fuzz uses), redriving dead letters, and approving by ``user_id`` or ``filter`` (it would approve other
tests' items); the probes (``/health``, ``/ready``, ``/metrics``) are not routed by the gateway and have
their own tests.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance

from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")

pytestmark = pytest.mark.stack

SERVICES = ("auth", "profile", "features", "recommender", "operator")
BUDGET_S = float(os.environ.get("FUZZ_BUDGET_S", "150"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))  # per operation, generation mode and token
SKIPPED = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/admin/dead-letters/{service}/redrive"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
}


@dataclass
class Findings:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, case: Any, response: Any, problem: str) -> None:
        if len(self.failures) < 200:
            body = response.text[:300] if response is not None else ""
            status = response.status_code if response is not None else "-"
            self.failures.append(f"{case.method} {case.formatted_path} → {status}: {problem} | {body}")


def server_error(response: Any) -> str | None:
    """A 5xx is a bug — except the deliberate 503 of a sign-in provider this deployment did not
    configure (the e2e stack configures Google only)."""
    if response.status_code < 500:
        return None
    if response.status_code == 503 and "provider_not_configured" in response.text:
        return None
    return "server error"


def error_shape_problem(response: Any) -> str | None:
    """Why a 4xx/5xx answer breaks SPEC §9's error shape, or None."""
    if response.status_code < 400 or response.status_code == 304:
        return None
    try:
        body = response.json()
    except ValueError:
        return "error answer is not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        return "error answer is not {'error': {...}}"
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return "error without a string code and message"
    if set(error) - {"code", "message", "details"}:
        return f"unexpected keys in error: {sorted(set(error))}"
    return None


def fuzz_operation(
    operation: Any, base_url: str, token: str, user_id: str | None, findings: Findings, deadline: float
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    own = {"user_id": user_id} if user_id and "{user_id}" in operation.path else None
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=own)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            if time.monotonic() > deadline:
                return
            if operation.path == "/api/v1/operator/approve" and isinstance(case.body, dict):
                case.body.pop("user_id", None)  # never approve other tests' items
                case.body.pop("filter", None)
            try:
                response = case.call(base_url=base_url, headers=headers, timeout=30)
            except Exception as exc:
                findings.add(case, None, f"request failed: {type(exc).__name__}: {exc}"[:300])
                return
            findings.requests += 1
            findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
            problem = server_error(response) or error_shape_problem(response)
            if problem:
                findings.add(case, response, problem)
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except BaseExceptionGroup as failures:  # schemathesis' FailureGroup: the broken checks
                findings.add(case, response, f"{type(failures).__name__}: {str(failures)[:400]}")

        with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: positive cases only
            run()


@pytest.fixture(scope="module")
def tokens(stack) -> dict[str, tuple[str, str | None]]:
    email, password = stack.admin_credentials()
    admin = support.login(stack.gateway, email, password)
    assert admin.status_code == 200, admin.text
    user = support.register(stack.gateway)
    user_id = user["user"]["id"]
    with stack.client(user["access_token"]) as client:
        consent = client.post("/api/v1/consent", json={"user_id": user_id})
        assert consent.status_code == 201, consent.text
        upload = client.post("/api/v1/uploads", json=support.card_user(user_id))
        assert upload.status_code == 202, upload.text
    return {"admin": (admin.json()["access_token"], None), "user": (user["access_token"], user_id)}


def service_port(stack: Any, service: str) -> str:
    return str(stack.manifest()["urls"][service])


# The stack may start inside this test's time (it is often the first e2e test): its readiness limit, the
# budget, and the time the last operation's examples may take past the budget.
@pytest.mark.timeout(300 + BUDGET_S + 120)
def test_no_fuzzed_request_gets_a_5xx_or_breaks_the_documented_shapes(stack, tokens):
    operations = []
    for service in SERVICES:
        document = httpx.get(f"{service_port(stack, service)}/openapi.json", timeout=30).json()
        for result in schemathesis.openapi.from_dict(document).get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) not in SKIPPED:
                operations.append(operation)
    runs = [(operation, token, user_id) for operation in operations for token, user_id in tokens.values()]
    findings = Findings()
    started = time.monotonic()
    for done, (operation, token, user_id) in enumerate(runs):
        # an equal share of what is left of the budget: every operation is fuzzed, however slow the stack
        share = (BUDGET_S - (time.monotonic() - started)) / (len(runs) - done)
        fuzz_operation(operation, stack.gateway, token, user_id, findings, time.monotonic() + max(share, 0.5))
    report = (
        f"fuzz: {findings.requests} requests over {len(operations)} operations x {len(tokens)} tokens in "
        f"{time.monotonic() - started:.0f} s (budget {BUDGET_S:.0f} s); "
        f"statuses {dict(sorted(findings.statuses.items()))}"
    )
    print(report)
    assert findings.requests > len(runs), report
    assert not findings.failures, report + "\n" + "\n".join(findings.failures)
