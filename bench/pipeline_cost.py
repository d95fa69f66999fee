"""What one user's action costs the whole stack in CPU: a single-user upload pushed through the pipeline
(parsed, analyzed, recommended), a consent grant that changes something (a new grant: an event for three
services) and the same grant again (nothing to change), by process, on a real embedded stack.

Under load the web requests are cheap (a few ms each) and what a request sets off in the workers, the
AWS emulator and PostgreSQL is not: this shows where that CPU goes. Each process's CPU (user + system, with
PostgreSQL's backends, read with psutil from the stack's manifest) is read before and after each phase;
the stack's idle CPU over the same wall time, measured first, is subtracted (the baseline in the same
run).

Phases, in order, each on ``--users`` accounts that signed up and consented beforehand, after one warm-up
upload (none of it counted):
  * upload     - every account posts one synthetic user's data (``spendsense_cli.synthetic``, 4 at a
                 time); the phase ends when every upload is ``recommended``;
  * grant new  - every account grants consent with other scopes (a new grant: ``consent.granted``);
  * grant same - every account grants that consent again (already current: nothing is recorded).

    .venv/bin/python bench/pipeline_cost.py [--users 30] [--idle 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack_start import cli, cpu_by_name, free_block, port_args

from spendsense_cli.synthetic import build_user

PASSWORD = "Correct-Horse-9-Battery"
Account = tuple[str, dict[str, str]]  # user id, auth header


def sign_up(gateway: str, index: int) -> Account:
    email = f"cost-{os.getpid()}-{index}@example.com"
    with httpx.Client(base_url=gateway, timeout=120) as client:
        answer = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        answer.raise_for_status()
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        user_id = answer.json()["user"]["id"]
        client.post("/api/v1/consent", json={"user_id": user_id}, headers=auth).raise_for_status()
        return user_id, auth


def upload(gateway: str, account: Account, index: int) -> str:
    user_id, auth = account
    record, _ = build_user(index, seed=11)
    record["user_id"] = user_id
    with httpx.Client(base_url=gateway, timeout=120) as client:
        answer = client.post("/api/v1/uploads", json=record, headers=auth)
        answer.raise_for_status()
        upload_id: str = answer.json()["upload_id"]
    deadline = time.monotonic() + 600
    with httpx.Client(base_url=gateway, timeout=60) as client:
        while time.monotonic() < deadline:
            status = client.get(f"/api/v1/uploads/{upload_id}", headers=auth).json().get("status")
            if status in ("recommended", "failed"):
                return str(status)
            time.sleep(0.25)
    raise TimeoutError(f"upload {upload_id} not recommended within 600 s")


def grant(gateway: str, account: Account, scopes: list[str]) -> str:
    user_id, auth = account
    body = {"user_id": user_id, "scopes": scopes}
    answer = httpx.post(f"{gateway}/api/v1/consent", json=body, headers=auth, timeout=60)
    answer.raise_for_status()
    return str(answer.json()["consent_id"])


def settle(seconds: float = 5.0) -> None:
    """Let the events of the previous phase finish (the phases' own waits cover what they set off)."""
    time.sleep(seconds)


def phase(
    state_dir: Path, idle_rate: dict[str, float], actions: Sequence[Callable[[], object]]
) -> tuple[float, dict[str, float]]:
    """Run ``actions`` 4 at a time; CPU seconds by process, less the idle rate over the same time."""
    before, started = cpu_by_name(state_dir), time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda action: action(), actions))
    settle()  # what the last actions set off (events to the other services) counts too
    elapsed = time.monotonic() - started
    after = cpu_by_name(state_dir)
    used = {name: after[name] - before.get(name, 0.0) - idle_rate.get(name, 0.0) * elapsed for name in after}
    return elapsed, used


def report(name: str, count: int, elapsed: float, used: dict[str, float]) -> None:
    total = sum(used.values())
    each = total / count * 1000
    print(f"\n{name}: {count} in {elapsed:.1f} s; {each:.0f} ms CPU each above idle, by process:")
    for process, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        if abs(seconds) >= 0.02:
            print(f"  {process:<22} {seconds / count * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--idle", type=float, default=15, help="seconds of idle measurement (the baseline)")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state directory (else one starts)")
    parser.add_argument("--gateway", help="that stack's gateway URL")
    args = parser.parse_args()

    started_here = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-bench-cost-")) if started_here else args.state_dir
    base = free_block()
    gateway = f"http://127.0.0.1:{base}" if started_here else args.gateway
    try:
        if started_here:
            up = cli("up", "--state-dir", str(state_dir), *port_args(base), "--timeout", "600")
            if up.returncode != 0:
                raise SystemExit(up.stdout[-3000:] + up.stderr[-3000:])
        with ThreadPoolExecutor(4) as pool:
            accounts = list(pool.map(lambda i: sign_up(gateway, i), range(args.users)))
        # The first upload a worker handles pays one-off imports (pandas, ~0.7 s): one user's upload warms
        # the workers up, not counted.
        upload(gateway, sign_up(gateway, args.users), args.users)
        settle(10)
        print(f"{len(accounts)} accounts consented, workers warmed up; load average {os.getloadavg()[0]:.2f}")
        before = cpu_by_name(state_dir)
        time.sleep(args.idle)
        idle_rate = {n: (s - before.get(n, 0.0)) / args.idle for n, s in cpu_by_name(state_dir).items()}
        print(f"idle: {sum(idle_rate.values()) * 100:.1f} % of a core")

        uploads = [partial(upload, gateway, a, i) for i, a in enumerate(accounts)]
        report("upload (until recommended)", len(accounts), *phase(state_dir, idle_rate, uploads))
        scopes = ["analysis", "recommendations"]  # other than the default: a new grant the first time
        new = [partial(grant, gateway, a, scopes) for a in accounts]
        report("consent: a new grant", len(accounts), *phase(state_dir, idle_rate, new))
        same = [partial(grant, gateway, a, scopes) for a in accounts]
        report("consent: the same grant again", len(accounts), *phase(state_dir, idle_rate, same))
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        if started_here:
            cli("down", "--state-dir", str(state_dir))
            shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
