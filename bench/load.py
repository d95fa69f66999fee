"""Load on the embedded stack (locust, headless): a realistic mix of signed-in users at 10, 50 and 200
concurrent clients; per endpoint p50/p95/p99, throughput and errors; and the same reads sent straight to
the services in the same run, so the gateway's cost shows.

Setup: ``spendsense up`` on free ports (as ``bench/stack_start.py``), or ``--gateway URL`` for a running
stack (its state directory with ``--state-dir``, for the service ports and the admin account). Then
``--users`` accounts are registered, give consent and upload a synthetic user's data
(``spendsense_cli.synthetic``); the run waits (``--prepare-timeout``) until their recommendations are
generated and the admin approves them, so the reads return real items.

Each simulated client is one of those users (clients share accounts round-robin beyond ``--users``) and
waits 0.5-1.5 s between requests (a person or an app, not a flood). The mix, per client:

* through the gateway, in proportion: recommendations 80, mobile recommendations 40, persona 40,
  profile 40, consent status 20, upload status 20, consent granted again 4, an upload 1;
* straight to the service (one client in four is such a client): the same reads, labelled ``direct``.

Figures depend on the machine: the load generator runs on it too, and so does whatever else runs there
(the load average is printed before each stage).

With ``--compare-without-cache`` the same stages then run on a second stack started with
``SPENDSENSE_READ_CACHE=false`` (every read queries the database), and p95 and throughput are printed
side by side: the read cache's effect, measured in the same run.

    .venv/bin/python bench/load.py [--clients 10,50,200] [--duration 30] [--users 40] [--json out.json]
                                   [--compare-without-cache]
"""

from __future__ import annotations

# locust patches the standard library (gevent) on import: it must come first
from locust import FastHttpUser, between, task  # isort: skip
from locust.env import Environment  # isort: skip

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gevent
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack_start import cli, free_block, port_args

from spendsense_cli.stack import StackConfig
from spendsense_cli.synthetic import build_user

PASSWORD = "Correct-Horse-9-Battery"


@dataclass(frozen=True)
class Account:
    user_id: str
    token: str
    upload_id: str


@dataclass
class Row:
    clients: int
    endpoint: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


class Setup:
    """What the simulated clients share (set before a stage starts)."""

    gateway = ""
    state_dir: Path | None = None
    services: dict[str, str] = {}
    accounts: list[Account] = []
    counter = 0


def next_account() -> Account:
    Setup.counter += 1
    return Setup.accounts[Setup.counter % len(Setup.accounts)]


class Client(FastHttpUser):
    """A signed-in user's app: one of the prepared accounts."""

    abstract = True
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.account = next_account()
        self.auth = {"Authorization": f"Bearer {self.account.token}"}
        self.me = self.account.user_id


class GatewayClient(Client):
    """Through the gateway, reads and writes."""

    weight = 3

    def get(self, path: str, name: str) -> None:
        self.client.get(path, headers=self.auth, name=name)

    @task(80)
    def recommendations(self) -> None:
        self.get(f"/api/v1/recommendations/{self.me}", "GET recommendations")

    @task(40)
    def mobile_recommendations(self) -> None:
        self.get(f"/api/v1/mobile/recommendations/{self.me}", "GET mobile recommendations")

    @task(40)
    def persona(self) -> None:
        self.get(f"/api/v1/profile/{self.me}/persona", "GET persona")

    @task(40)
    def profile(self) -> None:
        self.get(f"/api/v1/profile/{self.me}", "GET profile")

    @task(20)
    def consent(self) -> None:
        self.get(f"/api/v1/consent/{self.me}", "GET consent")

    @task(20)
    def upload_status(self) -> None:
        self.get(f"/api/v1/uploads/{self.account.upload_id}", "GET upload status")

    @task(4)
    def grant_again(self) -> None:
        self.client.post("/api/v1/consent", json={"user_id": self.me}, headers=self.auth, name="POST consent")

    @task(1)
    def upload(self) -> None:
        body = synthetic_upload(self.me, random.randrange(10_000))
        self.client.post("/api/v1/uploads", json=body, headers=self.auth, name="POST upload")


class DirectClient(Client):
    """The same reads, straight to each service: the gateway's cost is the difference."""

    weight = 1

    def direct(self, service: str, path: str, name: str) -> None:
        self.client.get(Setup.services[service] + path, headers=self.auth, name=f"direct {name}")

    @task(4)
    def recommendations(self) -> None:
        self.direct("recommender", f"/api/v1/recommendations/{self.me}", "GET recommendations")

    @task(2)
    def mobile_recommendations(self) -> None:
        self.direct("recommender", f"/api/v1/mobile/recommendations/{self.me}", "GET mobile recommendations")

    @task(2)
    def persona(self) -> None:
        self.direct("features", f"/api/v1/profile/{self.me}/persona", "GET persona")

    @task(2)
    def profile(self) -> None:
        self.direct("profile", f"/api/v1/profile/{self.me}", "GET profile")

    @task(1)
    def consent(self) -> None:
        self.direct("profile", f"/api/v1/consent/{self.me}", "GET consent")


# -- preparing the accounts ---------------------------------------------------------------------------------


def synthetic_upload(user_id: str, index: int) -> dict[str, Any]:
    record, _ = build_user(index, seed=11)
    record["user_id"] = user_id
    return record


def prepare_account(gateway: str, index: int) -> Account:
    email = f"load-{os.getpid()}-{index}-{random.randrange(10**9)}@example.com"
    with httpx.Client(base_url=gateway, timeout=120) as client:
        signed_up = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        signed_up.raise_for_status()
        token = signed_up.json()["access_token"]
        user_id = signed_up.json()["user"]["id"]
        auth = {"Authorization": f"Bearer {token}"}
        client.post("/api/v1/consent", json={"user_id": user_id}, headers=auth).raise_for_status()
        upload = client.post("/api/v1/uploads", json=synthetic_upload(user_id, index), headers=auth)
        upload.raise_for_status()
        return Account(user_id, token, upload.json()["upload_id"])


def prepare(gateway: str, admin: tuple[str, str], users: int, timeout_s: float) -> tuple[list[Account], int]:
    """``users`` accounts with data; how many had their recommendations approved within ``timeout_s``."""
    with ThreadPoolExecutor(8) as pool:
        accounts = list(pool.map(lambda i: prepare_account(gateway, i), range(users)))
    with httpx.Client(base_url=gateway, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"email": admin[0], "password": admin[1]})
        login.raise_for_status()
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        waiting = {a.user_id: a for a in accounts}
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            for user_id, account in list(waiting.items()):
                status = client.get(f"/api/v1/uploads/{account.upload_id}", headers=auth).json().get("status")
                if status in ("recommended", "failed"):
                    client.post("/api/v1/operator/approve", json={"user_id": user_id}, headers=auth)
                    del waiting[user_id]
            time.sleep(1)
    return accounts, users - len(waiting)


# -- CPU per request, per process ---------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process, with_children: bool) -> float:
    """User + system CPU seconds of ``process`` (with ``with_children``: and of its descendants, live or
    ended: PostgreSQL's backends)."""
    own = process.cpu_times()
    total = own.user + own.system
    if not with_children:
        return total
    total += own.children_user + own.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


# The service that answers each endpoint (by name, without ``direct ``): its CPU per request it served.
SERVED_BY = {
    "GET recommendations": "recommender",
    "GET mobile recommendations": "recommender",
    "GET persona": "features",
    "GET profile": "profile",
    "GET consent": "profile",
    "GET upload status": "profile",
    "POST consent": "profile",
    "POST upload": "profile",
}


def served(rows: list[Row]) -> dict[str, int]:
    """Requests each process answered: the gateway every request not labelled ``direct``."""
    out: dict[str, int] = {"gateway": sum(r.requests for r in rows if not r.endpoint.startswith("direct "))}
    for r in rows:
        service = SERVED_BY.get(r.endpoint.removeprefix("direct "))
        if service:
            out[service] = out.get(service, 0) + r.requests
    return out


def stack_cpu() -> dict[str, float]:
    """CPU seconds so far of each of the stack's processes (from its manifest), and of this one (the load
    generator). Wall-clock figures on a shared machine depend on what else runs; CPU per request does not."""
    out = {"locust (this process)": cpu_seconds(psutil.Process(), with_children=False)}
    if Setup.state_dir is None:
        return out
    manifest = json.loads((Setup.state_dir / "stack.json").read_text())
    for entry in manifest.get("processes", []):
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(int(entry["pid"]))
            out[str(entry["name"])] = cpu_seconds(process, with_children=entry["name"] == "postgres")
    return out


def print_cpu(before: dict[str, float], after: dict[str, float], rows: list[Row], elapsed: float) -> None:
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(used.values())
    requests = sum(r.requests for r in rows)
    answered = served(rows)
    print(
        f"  CPU over {elapsed:.0f} s: {total:.1f} s ({total / elapsed * 100:.0f} % of one core) for "
        f"{requests} requests = {total / max(requests, 1) * 1000:.2f} ms per request; by process "
        "(ms per request of the stage; ms per request the process answered):"
    )
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        if seconds < 0.05:
            continue
        mine = answered.get(name)
        own = f"{seconds / mine * 1000:6.2f} per own ({mine})" if mine else ""
        print(f"    {name:<22} {seconds / max(requests, 1) * 1000:6.2f}  {own:<24} ({seconds:.1f} s)")


# -- running the stages -------------------------------------------------------------------------------------


def run_stage(clients: int, duration_s: float) -> list[Row]:
    env = Environment(user_classes=[GatewayClient, DirectClient], host=Setup.gateway)
    runner = env.create_local_runner()
    runner.start(clients, spawn_rate=max(clients / 5, 1))
    gevent.sleep(min(10.0, clients / max(clients / 5, 1)) + 2)  # every client started, first requests out
    env.stats.reset_all()
    cpu_before = stack_cpu()
    started = time.monotonic()
    gevent.sleep(duration_s)
    elapsed = time.monotonic() - started
    cpu_after = stack_cpu()
    rows = [
        Row(
            clients,
            entry.name,
            entry.num_requests,
            entry.num_failures,
            round(entry.num_requests / elapsed, 1),
            entry.get_response_time_percentile(0.50) or 0.0,
            entry.get_response_time_percentile(0.95) or 0.0,
            entry.get_response_time_percentile(0.99) or 0.0,
        )
        for entry in sorted(env.stats.entries.values(), key=lambda e: e.name)
    ]
    errors = {f"{e.method} {e.name}: {e.error}": e.occurrences for e in env.stats.errors.values()}
    runner.quit()
    if errors:
        print(f"  errors at {clients} clients: " + "; ".join(f"{k} x{v}" for k, v in errors.items()))
    print_cpu(cpu_before, cpu_after, rows, elapsed)
    return rows


def print_table(rows: list[Row]) -> None:
    print(
        f"{'clients':>7} | {'endpoint':<36} | {'req':>6} | {'err':>4} | {'req/s':>6} | "
        f"{'p50 ms':>6} | {'p95 ms':>6} | {'p99 ms':>6}"
    )
    print("-" * 98)
    for r in rows + totals(rows):
        print(
            f"{r.clients:>7} | {r.endpoint:<36} | {r.requests:>6} | {r.failures:>4} | {r.rps:>6} | "
            f"{r.p50_ms:>6.0f} | {r.p95_ms:>6.0f} | {r.p99_ms:>6.0f}"
        )


def totals(rows: list[Row]) -> list[Row]:
    """One row per stage over every endpoint (percentiles: the worst endpoint's)."""
    out = []
    for clients in dict.fromkeys(r.clients for r in rows):
        stage = [r for r in rows if r.clients == clients]
        out.append(
            Row(
                clients,
                "ALL (worst percentiles)",
                sum(r.requests for r in stage),
                sum(r.failures for r in stage),
                round(sum(r.rps for r in stage), 1),
                max(r.p50_ms for r in stage),
                max(r.p95_ms for r in stage),
                max(r.p99_ms for r in stage),
            )
        )
    return out


def gateway_cost(rows: list[Row]) -> None:
    """p50 and p95 through the gateway minus straight to the service, per read and stage."""
    by_key = {(r.clients, r.endpoint): r for r in rows}
    print("\nthe gateway's cost (through the gateway - straight to the service):")
    for (clients, name), direct in sorted(by_key.items()):
        if not name.startswith("direct "):
            continue
        through = by_key.get((clients, name.removeprefix("direct ")))
        if through and direct.requests and through.requests:
            print(
                f"  {clients:>4} clients  {name.removeprefix('direct '):<28} "
                f"p50 {through.p50_ms - direct.p50_ms:+6.0f} ms   "
                f"p95 {through.p95_ms - direct.p95_ms:+6.0f} ms"
            )


def start_stack(env: dict[str, str] | None = None) -> tuple[Path, str]:
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-load-"))
    base = free_block()
    up = cli("up", "--state-dir", str(state_dir), *port_args(base), "--timeout", "600", env=env)
    if up.returncode != 0:
        raise SystemExit(up.stdout[-3000:] + up.stderr[-3000:])
    return state_dir, f"http://127.0.0.1:{base}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="10,50,200")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per stage")
    parser.add_argument("--users", type=int, default=40, help="accounts the clients use")
    parser.add_argument("--prepare-timeout", type=float, default=300.0)
    parser.add_argument("--gateway", help="a running stack's gateway (else one is started)")
    parser.add_argument("--state-dir", type=Path, help="the running stack's state directory")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--accounts",
        type=Path,
        help="a file of prepared accounts: read when it exists (a running stack's, tokens valid 1 h), else "
        "written after preparing them",
    )
    parser.add_argument(
        "--compare-without-cache",
        action="store_true",
        help="then run the same stages on a second stack with the read cache off (the baseline)",
    )
    args = parser.parse_args()

    rows = run_on_stack(args, args.gateway, args.state_dir)
    if args.compare_without_cache:
        print("\n=== the same stages on a stack with the read cache off (SPENDSENSE_READ_CACHE=false) ===")
        Setup.counter = 0
        baseline = run_on_stack(args, None, None, {"SPENDSENSE_READ_CACHE": "false"})
        compare(rows, baseline)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


def run_on_stack(
    args: argparse.Namespace, gateway: str | None, state_dir: Path | None, env: dict[str, str] | None = None
) -> list[Row]:
    """Every stage on the running stack at ``gateway``, or on one started here (with ``env``)."""
    started_here = gateway is None
    state_dir, gateway = start_stack(env) if started_here else (state_dir, gateway)
    assert state_dir is not None
    assert gateway is not None
    try:
        manifest = json.loads((state_dir / "stack.json").read_text())
        Setup.gateway = gateway
        Setup.state_dir = state_dir
        Setup.services = {s: str(manifest["urls"][s]) for s in ("profile", "features", "recommender")}
        admin = StackConfig(state_dir=state_dir).admin_credentials()
        t0 = time.monotonic()
        accounts = None if env else args.accounts  # the baseline's stack prepares its own
        if accounts and accounts.exists():
            Setup.accounts = [Account(**a) for a in json.loads(accounts.read_text())]
            print(f"{len(Setup.accounts)} accounts read from {accounts}; {os.cpu_count()} CPUs")
        else:
            Setup.accounts, approved = prepare(gateway, admin, args.users, args.prepare_timeout)
            print(
                f"{len(Setup.accounts)} accounts ready in {time.monotonic() - t0:.0f} s "
                f"({approved} with recommendations approved); {os.cpu_count()} CPUs"
            )
            if accounts:
                accounts.write_text(json.dumps([asdict(a) for a in Setup.accounts]))
        rows: list[Row] = []
        for clients in (int(c) for c in args.clients.split(",")):
            print(
                f"\n{clients} clients for {args.duration:.0f} s (load average before: "
                f"{os.getloadavg()[0]:.2f})"
            )
            stage = run_stage(clients, args.duration)
            print_table(stage)
            rows += stage
        print("\nall stages:")
        print_table(rows)
        gateway_cost(rows)
        return rows
    finally:
        if started_here:
            cli("down", "--state-dir", str(state_dir))
            shutil.rmtree(state_dir, ignore_errors=True)


def compare(cached: list[Row], uncached: list[Row]) -> None:
    """p95 and throughput of each endpoint with the read cache and without, stage by stage."""
    without = {(r.clients, r.endpoint): r for r in uncached}
    print("\nthe read cache's effect (p95 with / without; req/s with / without):")
    for r in cached:
        other = without.get((r.clients, r.endpoint))
        if other and r.endpoint.startswith(("GET", "direct GET", "ALL")):
            print(
                f"  {r.clients:>4} clients  {r.endpoint:<36} p95 {r.p95_ms:6.0f} / {other.p95_ms:6.0f} ms   "
                f"{r.rps:6.1f} / {other.rps:6.1f} req/s"
            )
    for clients in dict.fromkeys(r.clients for r in cached):
        a = next(r for r in totals(cached) if r.clients == clients)
        b = next((r for r in totals(uncached) if r.clients == clients), None)
        if b:
            print(
                f"  {clients:>4} clients  all: {a.requests} / {b.requests} requests, "
                f"{a.failures} / {b.failures} errors"
            )


if __name__ == "__main__":
    main()
