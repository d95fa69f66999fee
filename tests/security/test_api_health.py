"""Finding 9 of the security review: ``GET /api/v1/health`` took ~0.5 s idle and failed for every request
at 50 concurrent clients, each call checking the database, Redis and the bus of all five services.

Now liveness (``/health``) does no I/O; readiness (``/ready``) runs its named checks once for any
number of concurrent callers and keeps the result a few seconds (a failure only briefly, so recovery
shows at once); the gateway's aggregate is shared and kept the same way; the load balancer's checks
(Terraform) probe liveness.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.gateway.app import GatewaySettings, create_gateway
from spendsense_shared.http.app import create_service_app
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "security_support.py", "spendsense_security_support")
ROOT = Path(__file__).resolve().parents[2]


class SlowCheck:
    """A readiness check that takes a while and counts its runs; fails while ``healthy`` is false."""

    def __init__(self, seconds: float = 0.2):
        self.runs = 0
        self.seconds = seconds
        self.healthy = True

    async def __call__(self) -> None:
        self.runs += 1
        await asyncio.sleep(self.seconds)
        if not self.healthy:
            raise ConnectionError("down")


def app_with(check: SlowCheck, cache_s: float = 5.0):
    settings = ServiceSettings(service_name="t", readiness_cache_s=cache_s)
    return create_service_app(settings, title="t", readiness={"database": check})


async def many(client: httpx.AsyncClient, path: str, n: int = 50) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.get(path) for _ in range(n))))


async def test_liveness_does_no_io():
    check = SlowCheck()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_with(check)), base_url="http://t"
    ) as c:
        answers = await many(c, "/health")
    assert {a.status_code for a in answers} == {200}
    assert check.runs == 0


async def test_concurrent_readiness_callers_share_one_run_kept_for_a_while():
    check = SlowCheck()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_with(check)), base_url="http://t"
    ) as c:
        answers = await many(c, "/ready")
        again = await many(c, "/ready")
    assert {a.status_code for a in answers + again} == {200}
    assert check.runs == 1


async def test_a_failed_readiness_is_kept_only_briefly():
    check = SlowCheck(seconds=0.01)
    check.healthy = False
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_with(check)), base_url="http://t"
    ) as c:
        down = await c.get("/ready")
        check.healthy = True
        await asyncio.sleep(0.6)  # a failure is kept at most 0.5 s
        up = await c.get("/ready")
    assert down.status_code == 503
    assert down.json()["checks"]["database"].startswith("error: ConnectionError")
    assert up.status_code == 200


async def test_the_gateway_aggregate_under_50_concurrent_clients_probes_each_service_once():
    checks = {name: SlowCheck() for name in ("auth", "profile")}
    async with (
        support.serving(app_with(checks["auth"])) as auth,
        support.serving(app_with(checks["profile"])) as profile,
    ):
        gateway = create_gateway(
            GatewaySettings(upstreams={"auth": auth, "profile": profile}, readiness_cache_s=5),
            web_dist=Path("/nonexistent"),
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw:
            answers = await many(gw, "/api/v1/health")
            live = await many(gw, "/health")
    assert {a.status_code for a in answers} == {200}
    assert answers[0].json() == {"status": "ready", "services": {"auth": "ready", "profile": "ready"}}
    assert {a.status_code for a in live} == {200}
    assert [c.runs for c in checks.values()] == [1, 1]


async def test_a_real_service_stays_ready_for_50_concurrent_callers(service_client, topology):
    recommender = await service_client(RECOMMENDER)
    answers = await many(recommender, "/ready")
    assert {a.status_code for a in answers} == {200}, {a.text for a in answers if a.status_code != 200}
    checks = answers[0].json()["checks"]
    assert {"database", "redis", "bus"} <= set(checks)
    assert set(checks.values()) == {"ok"}


def test_the_load_balancer_probes_liveness():
    """The target groups and container health checks (Terraform, generated) use /health."""
    declared = json.loads((ROOT / "infra" / "terraform" / "generated" / "main.tf.json").read_text())
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if (
                "health_path" in node
                and "command" in node
                and "worker" not in json.dumps(node.get("command"))
            ):
                found.append(node["health_path"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(declared)
    assert len(found) == 5, found
    assert set(found) == {"/health"}
