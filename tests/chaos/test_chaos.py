"""Chaos on the embedded stack, each scenario with a batch of 50 users uploaded by an operator through
the gateway: every worker SIGKILLed, then SIGTERMed, mid-batch; PostgreSQL down for 30 s; Redis killed;
the AWS emulator killed (its queues, topics and buckets gone). Nobody steps in: the supervisor restarts
what died (and provisions the emulator again), consumers retry infrastructure errors in place, relays
LISTEN again, reconcilers announce stuck work again. Each ends with every user recommended exactly once
(counted per table), every trace chain verified and every DLQ empty.

Recovery is waited for (minutes at most) and measured, never asserted on as a time; the figures are
printed at the end of the run (and by ``bench/chaos.py``)."""

from __future__ import annotations

import signal

import pytest

from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "chaos_support.py", "spendsense_chaos_support")

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]


def scenario(chaos, name: str, fault, seed: int, when: str = "received"):  # type: ignore[no-untyped-def]
    assert chaos.wait_for(chaos.healthy, "the stack healthy before the scenario") >= 0
    figures, upload_id = support.run_scenario(chaos, name, fault, seed=seed, when=when)
    support.FIGURES.append(figures)
    counts = support.check_outcome(chaos, upload_id)
    return figures, counts


def test_every_worker_sigkilled_mid_batch(chaos):
    figures, _ = scenario(chaos, "SIGKILL workers", support.kill_each_worker, seed=101)
    assert all(figures.restarts.get(w, 0) >= 1 for w in support.WORKERS), figures.restarts


def test_every_worker_sigtermed_mid_batch(chaos):
    figures, _ = scenario(chaos, "SIGTERM workers", support.sigterm_every_worker, seed=102)
    assert all(figures.restarts.get(w, 0) >= 1 for w in support.WORKERS), figures.restarts


def test_postgresql_down_for_30_seconds(chaos):
    figures, _ = scenario(chaos, "PostgreSQL down 30 s", support.postgres_down(30), seed=103, when="ingested")
    assert figures.restarts.get("postgres") == 1
    assert figures.dead_lettered == 0
    # Every relay opened its LISTEN connection again once PostgreSQL was back.
    assert figures.relistened >= 5


def test_redis_killed_and_restarted(chaos):
    figures, _ = scenario(
        chaos, "Redis killed", support.kill_and_let_restart("redis"), seed=104, when="ingested"
    )
    assert figures.restarts.get("redis") == 1


def test_the_emulator_killed_and_restarted(chaos):
    figures, _ = scenario(
        chaos, "emulator killed", support.kill_and_let_restart("aws"), seed=105, when="ingested"
    )
    assert figures.restarts.get("aws") == 1
    # What the emulator's queues held was lost. The supervisor has the outboxes send again what some
    # consumer had not handled (its inbox says so; the others discard it as a duplicate), the reconcilers
    # announce again what is still stuck, and every table ends as after a batch without a fault
    # (the scenario's check_outcome). How much is sent again (figures.resent) and how much an inbox
    # discards depend on where the kill lands: possibly nothing.


def test_restart_command_restarts_one_process(chaos):
    before = chaos.process("features-worker")
    result = support.cli("restart", "features-worker", "--state-dir", str(chaos.state_dir))
    assert result.returncode == 0, result.stderr
    after = chaos.process("features-worker")
    assert after["pid"] != before["pid"]
    assert after["restarts"] == before.get("restarts", 0) + 1
    status = support.cli("status", "--state-dir", str(chaos.state_dir))
    [line] = [x for x in status.stdout.splitlines() if "features-worker" in x]
    assert "restarted" in line, status.stdout


def test_a_dead_worker_makes_its_service_not_ready_until_restarted(chaos):
    chaos.hold("operator-worker", True)
    try:
        chaos.signal("operator-worker", signal.SIGKILL)
        # Its heartbeat expires (20 s): the operator service, and so the gateway's health, say not ready.
        chaos.wait_for(lambda: not _ready(chaos, "operator"), "operator not ready without its worker", 120)
    finally:
        chaos.hold("operator-worker", False)
    chaos.wait_for(lambda: _ready(chaos, "operator"), "operator ready once its worker is back")


def _ready(chaos, service: str) -> bool:  # type: ignore[no-untyped-def]
    import httpx

    url = chaos.manifest()["urls"][service]
    try:
        return httpx.get(f"{url}/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
