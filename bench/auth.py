"""Sign-in throughput and latency through the gateway of the embedded stack, and whether bcrypt starves reads.

Starts its own embedded stack with ``spendsense up`` (free ports, a temporary state directory: it never
touches a running stack), registers N users through ``POST /api/v1/auth/register`` and grants each one
consent, then measures through the gateway, end to end, with pooled async httpx clients:

  * logins   - ``POST /api/v1/auth/login`` in closed loops of 1, 4, 16 concurrent clients for --seconds
               each (round-robin over the N users): logins per second and latency p50/p95/p99;
  * reads    - two token-checked reads, sent open-loop at --read-rate per second each with the users'
               access tokens: ``GET /api/v1/consent/{id}`` (profile service) and ``GET /api/v1/users/{id}``
               (the auth service itself, which also runs the bcrypt pool);
      baseline   - the reads alone, no sign-ins: --seconds before the login phases and --seconds after
                   them, pooled (the machine may be shared; both halves are in the JSON too);
      under load - the same reads while the largest number of login clients saturates the auth service.

Reference in the same run, before the stack starts: one bcrypt verify at cost 12 in this process (the
floor of a login's latency). Per phase, the CPU used by the auth service, the gateway and the whole
machine (from /proc, in cores), since the machine may be shared.

Auth runs with its defaults (bcrypt cost 12, ``password_hash_concurrency`` = CPU cores - 1 hashes at
once in a thread pool; ``SPENDSENSE_PASSWORD_HASH_CONCURRENCY`` in the environment overrides it) except
for rate limits: every request reaches the gateway from 127.0.0.1, so the per-IP login and registration
limits, and the per-account login limit, are raised through the environment given to
``spendsense up`` (the limiter still runs - one Redis round trip per attempt - it just never refuses);
429s would be counted as errors, never as logins. The bench client shares the machine with the stack.
Timings are printed and written to bench/results/auth.json, never asserted. The stack is stopped at the
end (also on failure, Ctrl-C or SIGTERM).

    .venv/bin/python bench/auth.py [--users 40] [--seconds 10] [--levels 1,4,16] [--read-rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from spendsense_shared.embedded.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "auth.json"
BCRYPT_ROUNDS = 12  # the auth service's default (AuthSettings.password_bcrypt_rounds)
HASH_CONCURRENCY_DEFAULT = max(1, (os.cpu_count() or 2) - 1)  # AuthSettings.password_hash_concurrency
# Passed to `spendsense up` (the services inherit its environment). All traffic comes from one address.
RATE_LIMITS_ENV = {
    "SPENDSENSE_RATE_LIMIT_LOGIN_PER_IP": "1000000",
    "SPENDSENSE_RATE_LIMIT_LOGIN_PER_ACCOUNT": "1000000",
    "SPENDSENSE_RATE_LIMIT_REGISTER_PER_IP": "1000000",
}
READS: dict[str, tuple[str, Callable[[str], str]]] = {
    "consent": ("profile GET /api/v1/consent/{id}", lambda user_id: f"/api/v1/consent/{user_id}"),
    "user": ("auth    GET /api/v1/users/{id}", lambda user_id: f"/api/v1/users/{user_id}"),
}


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    user_id: str
    access_token: str


@dataclass(frozen=True)
class Sample:
    ms: float
    status: int  # 0: no HTTP answer (connection error or client timeout)


class CpuMeter:
    """CPU used during a phase, in cores (CPU seconds per wall second), from /proc: the auth service's
    process (its event loop and bcrypt threads), the gateway's, and the whole machine's busy time. The
    machine may be shared: its busy cores minus the stack's show what else ran. Empty off Linux."""

    def __init__(self, state_dir: Path, names: tuple[str, ...] = ("auth", "profile", "gateway")):
        manifest = json.loads((state_dir / "stack.json").read_text())
        self.pids = {p["name"]: int(p["pid"]) for p in manifest["processes"] if p["name"] in names}
        self.tick = os.sysconf("SC_CLK_TCK")

    def _process_s(self, pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    def _machine_s(self) -> float:
        jiffies = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / self.tick  # all but idle and iowait

    def snapshot(self) -> dict[str, float]:
        try:
            taken = {name: self._process_s(pid) for name, pid in self.pids.items()}
            return {**taken, "machine": self._machine_s(), "at": time.perf_counter()}
        except (OSError, ValueError, IndexError):
            return {}

    def cores_since(self, before: dict[str, float]) -> dict[str, float]:
        after = self.snapshot()
        if not before or not after:
            return {}
        wall = after["at"] - before["at"]
        used = {
            f"{name}_cores": round((after[name] - before[name]) / wall, 2) for name in after if name != "at"
        }
        return {**used, "load_avg_1m": round(os.getloadavg()[0], 2)}


# --- the stack ---------------------------------------------------------------------------------------


def cli() -> list[str]:
    script = Path(sys.executable).parent / "spendsense"
    return [str(script)] if script.exists() else [sys.executable, "-m", "spendsense_cli.main"]


def free_port_run(count: int, attempts: int = 200) -> int:
    """The first of ``count`` consecutive ports that can all be bound now (the services' ports)."""
    for _ in range(attempts):
        base = 20000 + secrets.randbelow(30000)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def up_argv(state_dir: Path) -> tuple[list[str], str]:
    gateway_port = free_port()
    argv = [
        *cli(),
        "up",
        "--state-dir",
        str(state_dir),
        "--gateway-port",
        str(gateway_port),
        "--service-base-port",
        str(free_port_run(5)),
        "--postgres-port",
        str(free_port()),
        "--redis-port",
        str(free_port()),
        "--aws-port",
        str(free_port()),
        "--timeout",
        "180",
    ]
    return argv, f"http://127.0.0.1:{gateway_port}"


def stack_up(state_dir: Path) -> str:
    argv, gateway = up_argv(state_dir)
    print(f"» spendsense up --state-dir {state_dir} (free ports; rate limits raised) …", flush=True)
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **RATE_LIMITS_ENV}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"spendsense up failed ({done.returncode}):\n{done.stderr[-4000:]}")
    print(f"  up in {time.perf_counter() - started:.1f} s; gateway {gateway}", flush=True)
    return gateway


def stack_down(state_dir: Path) -> None:
    done = subprocess.run(
        [*cli(), "down", "--state-dir", str(state_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    print(f"» spendsense down: {done.stdout.strip() or done.stderr.strip()[-500:]}", flush=True)


# --- figures -----------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(samples: list[Sample], elapsed_s: float) -> dict[str, Any]:
    ok = [s.ms for s in samples if s.status == 200]
    errors = Counter(str(s.status) for s in samples if s.status != 200)
    figures: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": dict(sorted(errors.items())),
        "elapsed_s": round(elapsed_s, 2),
        "ok_per_s": round(len(ok) / elapsed_s, 2) if elapsed_s > 0 else 0.0,
    }
    if ok:
        figures |= {
            "p50_ms": round(percentile(ok, 50), 1),
            "p95_ms": round(percentile(ok, 95), 1),
            "p99_ms": round(percentile(ok, 99), 1),
            "mean_ms": round(statistics.fmean(ok), 1),
            "max_ms": round(max(ok), 1),
        }
    return figures


def bcrypt_verify_ms(repeat: int = 5) -> dict[str, float]:
    """One cost-12 verify in this process, the stack not yet started: the floor of a login's latency."""
    from passlib.hash import bcrypt  # the auth service's hasher

    hasher = bcrypt.using(rounds=BCRYPT_ROUNDS)
    hashed = hasher.hash("Bench-reference-Passw0rd!")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        hasher.verify("Bench-reference-Passw0rd!", hashed)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1)}


# --- traffic -----------------------------------------------------------------------------------------


def pooled_client(gateway: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=gateway,
        timeout=httpx.Timeout(60.0, connect=5.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def timed(client: httpx.AsyncClient, method: str, path: str, samples: list[Sample], **kw: Any) -> None:
    started = time.perf_counter()
    try:
        status = (await client.request(method, path, **kw)).status_code
    except httpx.HTTPError:
        status = 0
    samples.append(Sample((time.perf_counter() - started) * 1000, status))


async def register_users(client: httpx.AsyncClient, users: int, concurrency: int) -> list[Account]:
    """Register ``users`` accounts and grant each consent (so the consent read returns a real record)."""
    run = secrets.token_hex(4)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Account:
        email = f"bench-{run}-{i:05d}@bench.spendsense.dev"
        password = f"Bench-{secrets.token_urlsafe(9)}-{i}a!"
        async with slots:
            response = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
            if response.status_code != 201:
                raise RuntimeError(f"register answered {response.status_code}: {response.text[:300]}")
            body = response.json()
            account = Account(email, password, body["user"]["id"], body["access_token"])
            consent = await client.post(
                "/api/v1/consent",
                json={"user_id": account.user_id},
                headers={"Authorization": f"Bearer {account.access_token}"},
            )
            if consent.status_code != 201:
                raise RuntimeError(f"consent answered {consent.status_code}: {consent.text[:300]}")
        return account

    return list(await asyncio.gather(*(one(i) for i in range(users))))


async def login_clients(
    client: httpx.AsyncClient, accounts: Iterator[Account], clients: int, seconds: float
) -> tuple[list[Sample], float]:
    """``clients`` closed loops signing in until ``seconds`` have passed; (samples, wall time incl. tail)."""
    samples: list[Sample] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            account = next(accounts)
            body = {"email": account.email, "password": account.password}
            await timed(client, "POST", "/api/v1/auth/login", samples, json=body)

    await asyncio.gather(*(loop() for _ in range(clients)))
    return samples, time.perf_counter() - started


async def readers(
    client: httpx.AsyncClient, accounts: list[Account], rate: float, seconds: float
) -> dict[str, tuple[list[Sample], float]]:
    """Each read of READS sent open-loop at ``rate`` per second (a request every 1/rate s, whether or
    not earlier ones have answered), each as a different user with their own token."""

    async def read(name: str) -> tuple[list[Sample], float]:
        path_of = READS[name][1]
        samples: list[Sample] = []
        pending: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for i in itertools.count():
            at = started + i / rate
            if at >= started + seconds:
                break
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            account = accounts[i % len(accounts)]
            headers = {"Authorization": f"Bearer {account.access_token}"}
            pending.append(
                asyncio.create_task(timed(client, "GET", path_of(account.user_id), samples, headers=headers))
            )
        await asyncio.gather(*pending)
        return samples, time.perf_counter() - started

    names = list(READS)
    results = await asyncio.gather(*(read(name) for name in names))
    return dict(zip(names, results, strict=True))


def ratio(under: dict[str, Any], base: dict[str, Any], key: str) -> float | None:
    if key not in under or key not in base or not base[key]:
        return None
    return round(under[key] / base[key], 2)


async def measure(gateway: str, cpu: CpuMeter, args: argparse.Namespace, levels: list[int]) -> dict[str, Any]:
    top = max(levels)
    # Separate pools: a read never waits for a connection held by a sign-in (or the reverse).
    async with (
        pooled_client(gateway, max(top, 8) + 4) as logins,
        pooled_client(gateway, 200) as reads,
    ):
        print(f"» registering {args.users} users (+ consent), {args.register_concurrency} at a time …")
        started = time.perf_counter()
        accounts = await register_users(logins, args.users, args.register_concurrency)
        registration_s = time.perf_counter() - started
        print(f"  {args.users} users in {registration_s:.1f} s ({args.users / registration_s:.1f}/s)")
        cycle = itertools.cycle(accounts)

        # Warm-up (not recorded): connections, the services' JWKS caches, first queries.
        await asyncio.gather(
            login_clients(logins, cycle, min(4, top), 2.0), readers(reads, accounts, args.read_rate, 2.0)
        )

        print(f"» reads alone, {args.read_rate:g}/s each, {args.seconds:g} s …", flush=True)
        mark = cpu.snapshot()
        before = await readers(reads, accounts, args.read_rate, args.seconds)
        before_cpu = cpu.cores_since(mark)

        login_figures: dict[str, Any] = {}
        for clients in levels:
            print(f"» logins, {clients} concurrent client(s), {args.seconds:g} s …", flush=True)
            mark = cpu.snapshot()
            samples, elapsed = await login_clients(logins, cycle, clients, args.seconds)
            login_figures[str(clients)] = {**summary(samples, elapsed), "cpu": cpu.cores_since(mark)}
            print(f"  {login_figures[str(clients)]}", flush=True)

        print(f"» reads while {top} login clients run, {args.seconds:g} s …", flush=True)
        # The login clients start first and run past the reads at both ends: the auth pool is already
        # saturated when the first read is sent and still is when the last one is.
        loaded = asyncio.create_task(login_clients(logins, cycle, top, args.seconds + 2.0))
        await asyncio.sleep(1.0)
        mark = cpu.snapshot()
        under_load = await readers(reads, accounts, args.read_rate, args.seconds)
        load_cpu = cpu.cores_since(mark)
        during_samples, during_elapsed = await loaded

        # The machine may be shared: the baseline is the reads alone before and after the sign-ins, pooled.
        print(f"» reads alone again, {args.seconds:g} s …", flush=True)
        mark = cpu.snapshot()
        after = await readers(reads, accounts, args.read_rate, args.seconds)
        after_cpu = cpu.cores_since(mark)

    read_figures: dict[str, Any] = {}
    for name, (label, _) in READS.items():
        base = summary(before[name][0] + after[name][0], before[name][1] + after[name][1])
        under = summary(*under_load[name])
        read_figures[name] = {
            "endpoint": label.split(maxsplit=1)[1],
            "service": label.split()[0],
            "rate_per_s": args.read_rate,
            "baseline": base,
            "baseline_before": summary(*before[name]),
            "baseline_after": summary(*after[name]),
            "under_login_load": under,
            "p50_ratio": ratio(under, base, "p50_ms"),
            "p95_ratio": ratio(under, base, "p95_ms"),
        }
    return {
        "registration": {
            "users": args.users,
            "seconds": round(registration_s, 2),
            "per_s": round(args.users / registration_s, 2),
        },
        "logins": login_figures,
        "reads": read_figures,
        "logins_during_read_load": {"clients": top, **summary(during_samples, during_elapsed)},
        "cpu_during_reads": {
            "alone_before": before_cpu,
            "under_login_load": load_cpu,
            "alone_after": after_cpu,
        },
    }


# --- report ------------------------------------------------------------------------------------------


def cell(figures: dict[str, Any], key: str) -> str:
    value = figures.get(key)
    return "-" if value is None else f"{value:g}"


def print_report(result: dict[str, Any]) -> None:
    bcrypt_ms = result["bcrypt_verify_ms"]["median_ms"]
    slots = result["config"]["hash_concurrency"]
    print(
        f"\nSign-ins through the gateway (bcrypt cost {BCRYPT_ROUNDS}, {slots} "
        f"hashes at once in auth; {os.cpu_count()} CPUs; one cost-{BCRYPT_ROUNDS} verify alone: "
        f"{bcrypt_ms:g} ms):"
    )
    print(
        f"  {'clients':>7}{'logins/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'ok':>7}"
        f"{'auth CPU':>10}{'machine CPU':>13}  errors"
    )
    for clients, r in result["logins"].items():
        print(
            f"  {clients:>7}{r['ok_per_s']:>10g}{cell(r, 'p50_ms'):>9}{cell(r, 'p95_ms'):>9}"
            f"{cell(r, 'p99_ms'):>9}{r['ok']:>7}{cell(r['cpu'], 'auth_cores'):>10}"
            f"{cell(r['cpu'], 'machine_cores'):>13}  {r['errors'] or '-'}"
        )
    print(f"  (CPU in cores used during the phase, of {os.cpu_count()}; machine = every process on the box)")
    during = result["logins_during_read_load"]
    top = during["clients"]
    print(
        f"\nToken-checked reads, {result['config']['read_rate_per_s']:g}/s each, alone vs. with {top} "
        f"login clients running ({during['ok_per_s']:g} logins/s meanwhile):"
    )
    print(
        f"  {'read':<36}{'alone p50':>10}{'p95':>8}{'loaded p50':>12}{'p95':>8}"
        f"{'x p50':>8}{'x p95':>8}  errors"
    )
    for name, (label, _) in READS.items():
        r = result["reads"][name]
        base, under = r["baseline"], r["under_login_load"]
        errors = {k: v for k, v in {"alone": base["errors"], "loaded": under["errors"]}.items() if v}
        print(
            f"  {label:<36}{cell(base, 'p50_ms'):>10}{cell(base, 'p95_ms'):>8}{cell(under, 'p50_ms'):>12}"
            f"{cell(under, 'p95_ms'):>8}{cell(r, 'p50_ratio'):>8}{cell(r, 'p95_ratio'):>8}  {errors or '-'}"
        )
    halves = "; ".join(
        f"{name} {cell(r['baseline_before'], 'p50_ms')}/{cell(r['baseline_after'], 'p50_ms')}"
        for name, r in result["reads"].items()
    )
    machine = result["machine"]
    print(f"  (ms; alone = before and after the sign-ins, pooled; p50 before/after: {halves})")
    for phase, used in result["cpu_during_reads"].items():
        print(f"  CPU cores, reads {phase.replace('_', ' ')}: {used or '-'}")
    print(f"  (load average {machine['load_avg_start']} at start, {machine['load_avg_end']} at end)")


def terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the stack


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=40, help="pre-registered users (round-robin)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measured phase")
    parser.add_argument("--levels", default="1,4,16", help="concurrent login clients, comma-separated")
    parser.add_argument("--read-rate", type=float, default=20.0, help="requests per second of each read")
    parser.add_argument("--register-concurrency", type=int, default=8)
    args = parser.parse_args()
    levels = sorted({int(level) for level in args.levels.split(",")})
    if args.users < 1 or not levels or min(levels) < 1 or args.seconds <= 0 or args.read_rate <= 0:
        parser.error("--users, --levels, --seconds and --read-rate must be positive")
    signal.signal(signal.SIGTERM, terminate)

    load_start = os.getloadavg()
    reference = bcrypt_verify_ms()
    print(f"» one bcrypt verify at cost {BCRYPT_ROUNDS} in this process: {reference} ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="spendsense-bench-auth-") as tmp:
        state_dir = Path(tmp) / "state"
        try:
            gateway = stack_up(state_dir)
            figures = asyncio.run(measure(gateway, CpuMeter(state_dir), args, levels))
        finally:
            stack_down(state_dir)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/auth.py", *sys.argv[1:]]),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "config": {
            "path": "client → gateway → service (embedded stack, one process per service)",
            "users": args.users,
            "seconds_per_phase": args.seconds,
            "login_levels": levels,
            "read_rate_per_s": args.read_rate,
            "bcrypt_rounds": BCRYPT_ROUNDS,
            "hash_concurrency": int(
                os.environ.get("SPENDSENSE_PASSWORD_HASH_CONCURRENCY", HASH_CONCURRENCY_DEFAULT)
            ),
            "rate_limits_env": RATE_LIMITS_ENV,
        },
        "bcrypt_verify_ms": reference,
        **figures,
    }
    print_report(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
