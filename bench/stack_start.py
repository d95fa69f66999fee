"""Start-up time and idle CPU of the embedded stack (``spendsense up``), against the old way in the same run.

Each variant starts a stack as a user does (``spendsense up`` in a fresh state directory under /tmp, on
free ports) and reports:
  * start-up: the wall time until ``spendsense up`` returned, and the manifest's ``ready_after_s`` (until
    every service reported ready through the gateway);
  * idle CPU: after ``--settle`` seconds, the CPU time (user + system) of every process of the stack and
    of their children (PostgreSQL's backends) over ``--idle`` seconds, read with psutil, as a percentage of
    one core, with the processes that cost most;
  * stop: the wall time of ``spendsense down``.

Variants, alternating when ``--rounds`` > 1:
  * now      — ``spendsense up`` as it is: one launcher imports the code and forks the services; workers
               long-poll SQS for 20 s; relays wait on LISTEN;
  * baseline — ``--launch spawn`` (every service its own interpreter, as before) with the stack's old
               ``SPENDSENSE_BUS_WAIT_TIME_S=2``. The relay (LISTEN with a 30 s recheck instead of a 0.5 s
               poll), the cancelled long poll and uvicorn's calmer tick are the same in both.

The machine's load average is printed too: other work on the machine slows every start.

    .venv/bin/python bench/stack_start.py [--idle 30] [--settle 5] [--rounds 1] [--only now] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from spendsense_shared.embedded.servers import port_open

VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "now": ([], {}),
    "baseline": (["--launch", "spawn"], {"SPENDSENSE_BUS_WAIT_TIME_S": "2"}),
}
PORTS = 9  # gateway, five services, PostgreSQL, Redis, the emulator


@dataclass
class Result:
    variant: str
    up_s: float
    ready_after_s: float
    idle_cpu_pct: float
    idle_processes: int
    down_s: float
    load_before: float
    top: list[tuple[str, float]] = field(default_factory=list)


def free_block(size: int = PORTS) -> int:
    """``size`` free consecutive ports below the kernel's ephemeral range (no client socket takes them)."""
    try:
        floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        floor = 32768
    for _ in range(200):
        base = random.randint(20000, max(floor, 20000 + 10 * size) - size - 1)
        if not any(port_open(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free port block")


def port_args(base: int) -> list[str]:
    """``spendsense up``'s port options for the block of :data:`PORTS` ports starting at ``base``."""
    return [
        "--gateway-port", str(base), "--service-base-port", str(base + 1), "--postgres-port", str(base + 6),
        "--redis-port", str(base + 7), "--aws-port", str(base + 8),
    ]  # fmt: skip


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spendsense_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def stack_processes(state_dir: Path) -> dict[int, tuple[str, psutil.Process]]:
    """Every process of the stack (from its manifest) and their children, by pid."""
    manifest = json.loads((state_dir / "stack.json").read_text())
    found: dict[int, tuple[str, psutil.Process]] = {}
    for entry in manifest["processes"]:
        try:
            root = psutil.Process(int(entry["pid"]))
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = (str(entry["name"]), proc)
        except psutil.NoSuchProcess:
            continue
    return found


def _cpu(proc: psutil.Process) -> float | None:
    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return None
    return float(times.user + times.system)


def cpu_by_name(state_dir: Path) -> dict[str, float]:
    """CPU seconds so far of the stack's processes and their live children, summed by process name."""
    used: dict[str, float] = {}
    for name, proc in stack_processes(state_dir).values():
        seconds = _cpu(proc)
        if seconds is not None:
            used[name] = used.get(name, 0.0) + seconds
    return used


def idle_cpu(state_dir: Path, seconds: float) -> tuple[float, int, dict[str, float]]:
    """CPU used by the stack over ``seconds``, as % of one core; how many processes; % by process name.
    A process born during the window counts in full; one that ended in it loses its last share."""
    before = {pid: (name, proc, _cpu(proc)) for pid, (name, proc) in stack_processes(state_dir).items()}
    time.sleep(seconds)
    used: dict[str, float] = {}
    after = stack_processes(state_dir)
    for pid, (name, proc) in after.items():
        now = _cpu(proc)
        if now is None:
            continue
        start = before[pid][2] if pid in before else 0.0
        used[name] = used.get(name, 0.0) + now - (start or 0.0)
    by_name = {name: 100 * cpu / seconds for name, cpu in used.items()}
    return sum(by_name.values()), len(after), by_name


def run_variant(name: str, idle_s: float, settle_s: float) -> Result:
    extra_args, extra_env = VARIANTS[name]
    state_dir = Path(tempfile.mkdtemp(prefix=f"spendsense-bench-{name}-"))
    load_before = os.getloadavg()[0]
    ports = port_args(free_block())
    try:
        started = time.perf_counter()
        up = cli("up", "--state-dir", str(state_dir), *ports, *extra_args, env=extra_env)
        up_s = time.perf_counter() - started
        if up.returncode != 0:
            raise RuntimeError(f"{name}: spendsense up failed:\n{up.stderr[-3000:]}")
        ready_after = float(json.loads((state_dir / "stack.json").read_text())["ready_after_s"])
        time.sleep(settle_s)
        cpu, processes, by_name = idle_cpu(state_dir, idle_s)
        started = time.perf_counter()
        down = cli("down", "--state-dir", str(state_dir))
        down_s = time.perf_counter() - started
        if down.returncode != 0:
            raise RuntimeError(f"{name}: spendsense down failed:\n{down.stderr[-2000:]}")
    finally:
        cli("down", "--state-dir", str(state_dir))
        shutil.rmtree(state_dir, ignore_errors=True)
    top = sorted(by_name.items(), key=lambda item: -item[1])[:4]
    return Result(
        name, round(up_s, 1), ready_after, round(cpu, 2), processes, round(down_s, 1), load_before, top
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle CPU measurement")
    parser.add_argument("--settle", type=float, default=5, help="seconds after ready before measuring")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=sorted(VARIANTS), help="run one variant")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    variants = [args.only] if args.only else list(VARIANTS)
    cores = os.cpu_count()
    print(f"{cores} cores; load average now {os.getloadavg()[0]:.1f} (other work slows every start)\n")
    columns = f"{'variant':<9} {'up (s)':>7} {'ready (s)':>9} {'idle CPU':>9} {'procs':>5} {'down (s)':>8}"
    print(f"{columns} {'load':>5}   idle CPU: top processes (% of a core)")
    results: list[Result] = []
    for _ in range(args.rounds):
        for variant in variants:
            result = run_variant(variant, args.idle, args.settle)
            results.append(result)
            top = ", ".join(f"{name} {pct:.2f}" for name, pct in result.top)
            print(
                f"{result.variant:<9} {result.up_s:>7.1f} {result.ready_after_s:>9.1f} "
                f"{result.idle_cpu_pct:>8.2f}% {result.idle_processes:>5} {result.down_s:>8.1f} "
                f"{result.load_before:>5.1f}   {top}",
                flush=True,
            )
    print()
    for variant in variants:
        mine = [r for r in results if r.variant == variant]
        print(
            f"{variant:<9} median: ready after {statistics.median(r.ready_after_s for r in mine):.1f} s, "
            f"idle {statistics.median(r.idle_cpu_pct for r in mine):.2f} % of a core "
            f"over {args.idle:.0f} s, down {statistics.median(r.down_s for r in mine):.1f} s"
        )
    if len(variants) == 2:
        now = [r for r in results if r.variant == "now"]
        base = [r for r in results if r.variant == "baseline"]
        ready = statistics.median(r.ready_after_s for r in base) / statistics.median(
            r.ready_after_s for r in now
        )
        idle_now = statistics.median(r.idle_cpu_pct for r in now)
        idle_base = statistics.median(r.idle_cpu_pct for r in base)
        print(
            f"now vs baseline: ready {ready:.1f}x sooner; idle CPU {idle_base:.2f} % -> {idle_now:.2f} % "
            f"({idle_base / idle_now if idle_now else float('inf'):.1f}x less)"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
