"""Chaos figures of the embedded stack: for each fault, a batch of synthetic users (an operator's upload
through the gateway) with the fault injected mid-batch, against a batch without a fault in the same run.

Starts its own stack (``spendsense up`` in a fresh state directory, on free ports; stopped at the end),
signs up ``--users`` users (each consents), then per scenario reports:
  * recommended after: from the upload accepted until every user of the batch is recommended;
  * healthy after: from the fault until every process runs and the gateway's health says ready;
  * retried: handling attempts retried in place after an infrastructure error (no delivery spent);
  * duplicates: deliveries the inboxes discarded as already processed;
  * reconciled: stuck items the reconcilers published again; re-LISTEN: relays that listened again;
  * dead-lettered, and the processes the supervisor restarted;
and checks the outcome (every user recommended exactly once per table, every trace chain intact, every
DLQ empty), printing what failed rather than stopping.

The machine's load average is printed: others' work on the machine slows every recovery.

    .venv/bin/python bench/chaos.py [--users 100] [--only baseline,kill,term,postgres,redis,emulator]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spendsense_shared.testing.fakes import load_beside

ROOT = Path(__file__).resolve().parents[1]
support = load_beside(
    str(ROOT / "tests" / "chaos" / "conftest.py"), "chaos_support.py", "spendsense_chaos_support"
)
e2e = load_beside(str(ROOT / "tests" / "e2e" / "conftest.py"), "e2e_support.py", "spendsense_e2e_support")

STACK_ENV = {"SPENDSENSE_RECONCILE_INTERVAL_S": "10", "SPENDSENSE_RECONCILE_STUCK_AFTER_S": "60"}
SCENARIOS: dict[str, tuple[str, Any, str]] = {
    "baseline": ("no fault (baseline)", lambda *_: None, "received"),
    "kill": ("SIGKILL workers", support.kill_each_worker, "received"),
    "term": ("SIGTERM workers", support.sigterm_every_worker, "received"),
    "postgres": ("PostgreSQL down 30 s", support.postgres_down(30), "ingested"),
    "redis": ("Redis killed", support.kill_and_let_restart("redis"), "ingested"),
    "emulator": ("emulator killed", support.kill_and_let_restart("aws"), "ingested"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios, in order")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-chaos-bench-"))
    running = e2e.Stack(state_dir, e2e.free_block(9))
    results: list[dict[str, Any]] = []
    try:
        started = time.monotonic()
        up = e2e.cli("up", *running.args, "--timeout", "300", env=STACK_ENV, timeout=400)
        if up.returncode != 0:
            print(up.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"stack up in {time.monotonic() - started:.1f} s", flush=True)
        stack = support.ChaosStack(state_dir, running.gateway, running.admin_credentials())
        started = time.monotonic()
        stack.sign_up(args.users, print)
        print(f"signed up {args.users} users in {time.monotonic() - started:.1f} s", flush=True)
        for seed, key in enumerate(chosen, start=1):
            name, fault, when = SCENARIOS[key]
            stack.wait_for(stack.healthy, "the stack healthy before the scenario")
            load = os.getloadavg()[0]
            try:
                figures, upload_id = support.run_scenario(stack, name, fault, seed=seed, when=when)
            except AssertionError as exc:
                print(f"[{name}] DID NOT RECOVER: {exc}", flush=True)
                results.append({"scenario": name, "recovered": False, "load": load, "error": str(exc)})
                continue
            try:
                support.check_outcome(stack, upload_id)
                outcome = "ok"
            except AssertionError as exc:
                outcome = f"FAILED: {str(exc)[:300]}"
            results.append({**figures.__dict__, "recovered": True, "outcome": outcome, "load": load})
    finally:
        e2e.cli("down", "--state-dir", str(state_dir))
        shutil.rmtree(state_dir, ignore_errors=True)

    print(
        f"\n{'scenario':<22} {'recommended':>12} {'healthy':>9} {'retried':>8} {'dupes':>6} "
        f"{'reconciled':>11} {'re-LISTEN':>9} {'DLQ':>4} {'load':>5}  outcome"
    )
    baseline = next((r for r in results if r["scenario"].startswith("no fault") and r["recovered"]), None)
    for r in results:
        if not r["recovered"]:
            print(f"{r['scenario']:<22} did not recover: {r['error'][:80]}")
            continue
        slower = ""
        if baseline and r is not baseline and baseline["seconds_to_recommended"]:
            ratio = r["seconds_to_recommended"] / baseline["seconds_to_recommended"]
            slower = f" ({ratio:.1f} times the baseline)"
        print(
            f"{r['scenario']:<22} {r['seconds_to_recommended']:>10.1f} s {r['seconds_to_healthy']:>7.1f} s "
            f"{r['events_retried']:>8} {r['duplicates_discarded']:>6} {r['reconciled']:>11} "
            f"{r['relistened']:>9} "
            f"{r['dead_lettered']:>4} {r['load']:>5.1f}  {r['outcome']}{slower}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
