"""Chaos scenarios on a running embedded stack: a batch of synthetic users uploaded through the gateway,
a fault injected while it flows (workers SIGKILLed or SIGTERMed, PostgreSQL down, the emulator or Redis
killed), then the stack left alone until every user is recommended, and the outcome checked per table.

Shared by ``tests/chaos`` (asserts) and ``bench/chaos.py`` (prints the figures). Loaded by path.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from spendsense_cli.accounts import Account, login, register_many
from spendsense_cli.synthetic import generate
from spendsense_shared.embedded.servers import wait_exited

WORKERS = ("auth-worker", "profile-worker", "features-worker", "recommender-worker", "operator-worker")
DLQ_SERVICES = ("auth", "profile", "features", "recommender", "operator")
# Recovery is waited for, never asserted on as a time: a loaded machine recovers slower, which makes the
# run slower, not red. Generous, yet a healthy run finishes as soon as the batch is done.
RECOVERY_LIMIT_S = 420.0
Progress = Callable[[str], None]
FIGURES: list[Figures] = []  # every scenario run in this process (the chaos tests print them at the end)


@dataclass
class Figures:
    scenario: str
    users: int
    seconds_to_recommended: float = 0.0
    seconds_to_healthy: float = 0.0  # from the fault to every process running and the gateway ready
    events_retried: int = 0  # handling attempts retried in place after an infrastructure error
    duplicates_discarded: int = 0  # deliveries the inboxes discarded as already processed
    dead_lettered: int = 0
    restarts: dict[str, int] = field(default_factory=dict)
    reconciled: int = 0  # items the reconcilers published again
    relistened: int = 0  # relays that opened their LISTEN connection again
    resent: int = 0  # outbox events sent again after the emulator came back (the supervisor's replay)

    def line(self) -> str:
        restarts = ", ".join(f"{k} {v}" for k, v in sorted(self.restarts.items())) or "none"
        return (
            f"{self.scenario:<20} {self.users} users: recommended after {self.seconds_to_recommended:6.1f} s, "
            f"healthy after {self.seconds_to_healthy:5.1f} s; retried {self.events_retried}, duplicates "
            f"discarded {self.duplicates_discarded}, reconciled {self.reconciled}, re-LISTENed "
            f"{self.relistened}, re-sent {self.resent}, dead-lettered {self.dead_lettered}; "
            f"restarts: {restarts}"
        )


class ChaosStack:
    """A running embedded stack (``spendsense up`` done) seen from outside: its manifest, logs, database."""

    def __init__(self, state_dir: Path, gateway: str, admin: tuple[str, str]):
        self.state_dir = state_dir
        self.gateway = gateway
        self.admin = admin
        self.accounts: dict[str, Account] = {}
        self._operator: dict[str, str] | None = None

    def operator(self, again: bool = False) -> dict[str, str]:
        """The admin's authorization header: signed in once (sign-ins are rate-limited per account)."""
        if self._operator is None or again:
            with httpx.Client(base_url=self.gateway, timeout=60) as client:
                self._operator = login(client, *self.admin).headers()
        return self._operator

    def get(self, path: str, **params: Any) -> httpx.Response:
        with httpx.Client(base_url=self.gateway, timeout=60) as client:
            response = client.get(path, params=params, headers=self.operator())
            if response.status_code == 401:  # the token expired
                response = client.get(path, params=params, headers=self.operator(again=True))
        return response

    # --- the stack ---------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "stack.json").read_text()))

    def process(self, name: str) -> dict[str, Any]:
        return next(p for p in self.manifest()["processes"] if p["name"] == name)

    def restarts(self) -> dict[str, int]:
        return {p["name"]: int(p.get("restarts", 0)) for p in self.manifest()["processes"]}

    def signal(self, name: str, signum: int) -> int:
        pid = int(self.process(name)["pid"])
        try:
            if name == "postgres":
                os.kill(pid, signum)
            else:
                os.killpg(pid, signum)
        except ProcessLookupError:
            pass
        return pid

    def hold(self, name: str, held: bool) -> None:
        """Keep the supervisor from starting ``name`` again (a dependency kept down on purpose)."""
        path = self.state_dir / "supervisor" / "hold" / name
        if held:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def healthy(self) -> bool:
        from spendsense_shared.embedded.servers import process_alive

        if not all(process_alive(int(p["pid"])) for p in self.manifest()["processes"]):
            return False
        try:
            return httpx.get(f"{self.gateway}/api/v1/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def database_url(self) -> str:
        return str(self.manifest()["urls"]["database"]).replace("postgresql+asyncpg", "postgresql")

    def log_sizes(self) -> dict[str, int]:
        logs = self.state_dir / "logs"
        return {p.name: p.stat().st_size for p in logs.glob("*.log")}

    def log_events(self, since: dict[str, int], pattern: str = "*-worker.log") -> list[dict[str, Any]]:
        """The JSON log records written to the logs named by ``pattern`` (the workers') since ``since``
        (offsets per file)."""
        records = []
        for path in (self.state_dir / "logs").glob(pattern):
            with path.open("rb") as log:
                log.seek(since.get(path.name, 0))
                for line in log:
                    if line.startswith(b"{"):
                        try:
                            records.append(json.loads(line))
                        except ValueError:
                            continue
        return records

    # --- users and batches -------------------------------------------------------------------------

    def sign_up(self, users: int, progress: Progress) -> None:
        """``users`` accounts, each consenting (as themself): the people every batch is about."""
        emails = [f"chaos-{i:04d}@chaos.example.com" for i in range(users)]
        by_email = register_many(self.gateway, emails)
        with httpx.Client(base_url=self.gateway, timeout=60) as client:
            for account in by_email.values():
                response = client.post(
                    "/api/v1/consent", json={"user_id": account.user_id}, headers=account.headers()
                )
                response.raise_for_status()
        self.accounts = {f"user-{i:04d}": by_email[email] for i, email in enumerate(emails)}
        progress(f"signed up and consented {len(self.accounts)} users")

    def batch_file(self, seed: int) -> Path:
        """Synthetic data for every account (the generator's users mapped onto the accounts)."""
        out = self.state_dir / "chaos" / f"batch-{seed}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = generate(users=len(self.accounts), seed=seed, out=out.with_suffix(".raw.jsonl"))
        user_ids = [a.user_id for a in self.accounts.values()]
        with summary.path.open() as source, out.open("w") as target:
            for line, user_id in zip(source, user_ids, strict=True):
                user = json.loads(line)
                user["user_id"] = user_id
                target.write(json.dumps(user) + "\n")
        return out

    def upload(self, path: Path) -> str:
        with httpx.Client(base_url=self.gateway, timeout=120) as client, path.open("rb") as body:
            response = client.post(
                "/api/v1/uploads",
                files={"file": (path.name, body, "application/x-ndjson")},
                headers=self.operator(),
            )
        assert response.status_code == 202, response.text[:500]
        return str(response.json()["upload_id"])

    def upload_status(self, upload_id: str) -> dict[str, Any] | None:
        try:
            response = self.get(f"/api/v1/uploads/{upload_id}")
        except Exception:  # the stack is recovering
            return None
        return dict(response.json()) if response.status_code == 200 else None

    def wait_for(self, check: Callable[[], bool], what: str, limit: float = RECOVERY_LIMIT_S) -> float:
        started = time.monotonic()
        delay = 0.2
        while not check():
            if time.monotonic() - started > limit:
                raise AssertionError(f"{what}: not within {limit:.0f} s")
            time.sleep(delay)
            delay = min(2.0, delay * 1.5)
        return time.monotonic() - started

    def recommended(self, upload_id: str) -> bool:
        body = self.upload_status(upload_id)
        if body is None:
            return False
        assert body["status"] != "failed", json.dumps(body)[:1000]
        stages = [u["stage"] for u in body["users"]]
        return len(stages) == len(self.accounts) and set(stages) == {"recommended"}

    # --- the outcome -------------------------------------------------------------------------------

    def counts(self, upload_id: str) -> dict[str, Any]:
        return asyncio.run(self._counts(upload_id))

    async def _counts(self, upload_id: str) -> dict[str, Any]:
        conn = await asyncpg.connect(self.database_url)
        try:
            q = conn.fetchval
            return {
                "profile_users": await q(
                    "SELECT count(*) FROM profile.upload_users WHERE upload_id=$1", upload_id
                ),
                "profile_not_recommended": await q(
                    "SELECT count(*) FROM profile.upload_users WHERE upload_id=$1 AND stage <> 'recommended'",
                    upload_id,
                ),
                # Exactly once: one persona_history row per user and window of the upload…
                "features_users": await q(
                    "SELECT count(DISTINCT user_id) FROM features.persona_history WHERE upload_id=$1",
                    upload_id,
                ),
                "features_repeated": await q(
                    "SELECT count(*) FROM (SELECT 1 FROM features.persona_history WHERE upload_id=$1 "
                    'GROUP BY user_id, "window" HAVING count(*) > 1) AS r',
                    upload_id,
                ),
                "operator_personas_repeated": await q(
                    "SELECT count(*) FROM (SELECT 1 FROM operator.persona_history WHERE upload_id=$1 "
                    'GROUP BY user_id, "window" HAVING count(*) > 1) AS r',
                    upload_id,
                ),
                # …one set of recommendations per user, each with one trace and one review item.
                "recommended_users": await q(
                    "SELECT count(DISTINCT user_id) FROM recommender.recommendations WHERE upload_id=$1",
                    upload_id,
                ),
                "recommendations": await q(
                    "SELECT count(*) FROM recommender.recommendations WHERE upload_id=$1", upload_id
                ),
                "recommendation_sets_repeated": await q(
                    "SELECT count(*) FROM (SELECT 1 FROM recommender.recommendations WHERE upload_id=$1 "
                    "GROUP BY user_id, kind, rank HAVING count(*) > 1) AS r",
                    upload_id,
                ),
                "traces": await q(
                    "SELECT count(*) FROM recommender.traces t JOIN recommender.recommendations r "
                    "ON r.id = t.recommendation_id WHERE r.upload_id=$1",
                    upload_id,
                ),
                "review_items": await q(
                    "SELECT count(*) FROM operator.review_queue WHERE upload_id=$1", upload_id
                ),
            }
        finally:
            await conn.close()

    def chains_intact(self, user_ids: list[str]) -> list[str]:
        """The users whose trace chain does not verify (through the gateway, as the admin)."""
        broken = []
        for user_id in user_ids:
            response = self.get(f"/api/v1/recommendations/{user_id}/traces", limit=200)
            if response.status_code != 200 or not response.json()["chain"]["ok"]:
                broken.append(user_id)
        return broken

    def dead_letters(self) -> dict[str, int]:
        return asyncio.run(self._dead_letters())

    async def _dead_letters(self) -> dict[str, int]:
        from spendsense_shared.aws import Aws
        from spendsense_shared.messaging.provision import queue_address
        from spendsense_shared.messaging.topology import build_topology
        from spendsense_shared.settings import ServiceSettings

        env = self.manifest()["env"]
        settings = ServiceSettings(
            env=env["SPENDSENSE_ENV"],
            aws_endpoint_url=env["SPENDSENSE_AWS_ENDPOINT_URL"],
            aws_access_key_id=env["SPENDSENSE_AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["SPENDSENSE_AWS_SECRET_ACCESS_KEY"],
        )
        aws = Aws(settings)
        topology = build_topology(settings.env)
        depths = {}
        async with aws.client("sqs") as sqs:
            for service in DLQ_SERVICES:
                address = await queue_address(aws, topology.queues[service].name)
                attributes = await sqs.get_queue_attributes(
                    QueueUrl=address.dlq_url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )
                depths[service] = sum(int(v) for v in attributes["Attributes"].values())
        return depths


# --- faults ------------------------------------------------------------------------------------------


def stages(stack: ChaosStack, upload_id: str) -> dict[str, int]:
    body = stack.upload_status(upload_id) or {"users": []}
    counts: dict[str, int] = {}
    for user in body["users"]:
        counts[user["stage"]] = counts.get(user["stage"], 0) + 1
    return counts


def through_the_pipeline(signum: int) -> Callable[[ChaosStack, str, Progress], None]:
    """Signal each worker while its stage of the batch is busy: the profile's as it parses the upload,
    the features' once it is ingested, the recommender's and operator's once users are analyzed, the
    auth's and the profile's again once users are recommended."""

    signaled: list[tuple[str, int]] = []

    def hit(stack: ChaosStack, name: str, progress: Progress) -> None:
        pid = stack.signal(name, signum)
        signaled.append((name, pid))
        progress(f"{signal.Signals(signum).name} {name} (pid {pid})")

    def started_again(stack: ChaosStack) -> bool:
        """Every signaled worker runs under a new pid: until the supervisor has reaped a killed one, its
        pid still answers (a zombie), so "alive" alone would count a batch done before the restart."""
        return all(stack.process(name)["pid"] != pid for name, pid in signaled)

    def fault(stack: ChaosStack, upload_id: str, progress: Progress) -> None:
        signaled.clear()
        hit(stack, "profile-worker", progress)
        stack.wait_for(lambda: bool(stages(stack, upload_id)), "the upload parsed")
        hit(stack, "features-worker", progress)
        analyzed = ("analyzed", "recommended")
        stack.wait_for(lambda: any(stages(stack, upload_id).get(s) for s in analyzed), "a user analyzed")
        hit(stack, "recommender-worker", progress)
        hit(stack, "operator-worker", progress)
        stack.wait_for(lambda: bool(stages(stack, upload_id).get("recommended")), "a user recommended")
        hit(stack, "auth-worker", progress)
        hit(stack, "profile-worker", progress)
        stack.wait_for(lambda: started_again(stack), "every signaled worker started again")

    return fault


kill_each_worker = through_the_pipeline(signal.SIGKILL)
sigterm_every_worker = through_the_pipeline(signal.SIGTERM)


def postgres_down(seconds: float) -> Callable[[ChaosStack, str, Progress], None]:
    def fault(stack: ChaosStack, upload_id: str, progress: Progress) -> None:
        stack.hold("postgres", True)
        try:
            pid = stack.signal("postgres", signal.SIGINT)  # fast shutdown: every connection dropped
            wait_exited(pid, 60)
            progress(f"PostgreSQL down (pid {pid}); keeping it down {seconds:.0f} s")
            time.sleep(seconds)
        finally:
            stack.hold("postgres", False)  # the supervisor starts it again
        progress("PostgreSQL released to the supervisor")

    return fault


def kill_and_let_restart(name: str) -> Callable[[ChaosStack, str, Progress], None]:
    def fault(stack: ChaosStack, upload_id: str, progress: Progress) -> None:
        pid = stack.signal(name, signal.SIGKILL)
        wait_exited(pid, 30)
        progress(f"SIGKILL {name} (pid {pid}); the supervisor starts it again")

    return fault


def in_flight(stack: ChaosStack, upload_id: str) -> bool:
    """The batch is being worked on: parsed, and not yet recommended."""
    body = stack.upload_status(upload_id)
    return body is not None and body["status"] in ("ingested", "analyzed", "recommended")


def run_scenario(
    stack: ChaosStack,
    name: str,
    fault: Callable[[ChaosStack, str, Progress], None],
    *,
    seed: int,
    progress: Progress = print,
    when: str = "received",
) -> tuple[Figures, str]:
    """Upload a batch, inject ``fault`` (at once, or once the batch is parsed: ``when="ingested"``), wait
    until every user is recommended and the stack healthy; the figures and the upload id."""
    path = stack.batch_file(seed)
    sizes = stack.log_sizes()
    restarts_before = stack.restarts()
    upload_id = stack.upload(path)
    started = time.monotonic()
    progress(f"[{name}] upload {upload_id} of {len(stack.accounts)} users accepted")
    if when == "ingested":
        stack.wait_for(lambda: in_flight(stack, upload_id), f"[{name}] upload {upload_id} parsed")
    fault_at = time.monotonic()
    fault(stack, upload_id, progress)
    healthy_after = stack.wait_for(stack.healthy, f"[{name}] stack healthy again")
    healthy_s = time.monotonic() - fault_at
    stack.wait_for(lambda: stack.recommended(upload_id), f"[{name}] every user recommended")
    recommended_s = time.monotonic() - started
    records = stack.log_events(sizes)
    supervisor = stack.log_events(sizes, "supervisor.log")
    figures = Figures(
        scenario=name,
        users=len(stack.accounts),
        seconds_to_recommended=round(recommended_s, 1),
        seconds_to_healthy=round(max(healthy_s, healthy_after), 1),
        events_retried=sum(1 for r in records if r.get("event") == "event_retry_transient"),
        duplicates_discarded=sum(
            1 for r in records if r.get("event") == "event_handled" and r.get("outcome") == "duplicate"
        ),
        dead_lettered=sum(1 for r in records if r.get("event") == "event_dead_lettered"),
        restarts={
            k: v - restarts_before.get(k, 0)
            for k, v in stack.restarts().items()
            if v > restarts_before.get(k, 0)
        },
        reconciled=sum(int(r.get("items", 0)) for r in records if r.get("event") == "reconciled"),
        relistened=sum(1 for r in records if r.get("event") == "outbox_listen_restored"),
        resent=sum(int(r.get("total", 0)) for r in supervisor if r.get("event") == "outbox_resent"),
    )
    progress(f"[{name}] {figures.line()}")
    return figures, upload_id


def check_outcome(stack: ChaosStack, upload_id: str) -> dict[str, Any]:
    """Every user recommended exactly once (per table), every DLQ empty, every trace chain intact; the
    counts. Every problem is reported, not only the first."""
    users = len(stack.accounts)

    def table_problems() -> tuple[dict[str, Any], list[str]]:
        counts = stack.counts(upload_id)
        expected = {
            "profile_users": users,
            "profile_not_recommended": 0,
            "features_users": users,
            "features_repeated": 0,
            "operator_personas_repeated": 0,
            "recommended_users": users,
            "recommendation_sets_repeated": 0,
            "traces": counts["recommendations"],
            "review_items": counts["recommendations"],
        }
        return counts, [f"{k}: {counts[k]} (expected {v})" for k, v in expected.items() if counts[k] != v]

    # The profile (stages) and the operator (review queue, persona projection) consume the same events
    # from queues of their own: "every user recommended" in the profile does not mean the operator got
    # there too. Waited for (bounded, like recovery); a count that went wrong (a row twice) never comes
    # right by waiting, so this only lets a lagging consumer finish.
    started = time.monotonic()
    counts, problems = table_problems()
    while problems and time.monotonic() - started < RECOVERY_LIMIT_S:
        time.sleep(2.0)
        counts, problems = table_problems()
    dead = stack.dead_letters()
    if sum(dead.values()):
        problems.append(f"dead letters: {dead}")
    broken = stack.chains_intact([a.user_id for a in stack.accounts.values()])
    if broken:
        problems.append(f"trace chains broken for {len(broken)} users, e.g. {broken[:3]}")
    assert not problems, "; ".join(problems)
    return counts


def cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "spendsense_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
