"""The embedded stack: real PostgreSQL, Redis and AWS emulator, the five services, their workers and the
gateway, each a process of its own with a log under ``.spendsense/logs``. ``stack.json`` records what runs.

Start-up, in order (see README, "The embedded stack"): Redis, the AWS emulator and the launcher start at
once; PostgreSQL's cluster is created (initdb, first start only) and started while the emulator and the
launcher import their code. The launcher (``spendsense_shared.embedded.launcher``) imports the code once
(what every process shares, then each service's own in a process per service, in parallel) while a
process of its own migrates every schema as soon as PostgreSQL answers and provisions the bus as soon as
the emulator answers; then the five APIs, their workers and the gateway are forked. Every wait is on an
event (a line from the launcher, a process exiting) or a check that backs off from a few milliseconds;
none sleeps a fixed interval."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spendsense_shared.embedded.launcher import ChildSpec, LaunchPlan
from spendsense_shared.embedded.servers import (
    EMULATOR_CREDENTIALS,
    AdoptedProcess,
    ManagedProcess,
    backoff,
    moto_process,
    port_open,
    postgres_process,
    process_alive,
    redis_process,
    signal_to_stop,
    wait_exited,
    wait_for_redis,
    wait_until,
)
from spendsense_shared.jwk import SigningKey
from spendsense_shared.messaging.catalog import SERVICES

DEFAULT_ADMIN_EMAIL = "admin@spendsense.local"


@dataclass
class StackConfig:
    state_dir: Path = Path(".spendsense")
    gateway_port: int = 8000
    service_base_port: int = 8001  # auth, profile, features, recommender, operator: 8001…8005
    postgres_port: int = 15432
    redis_port: int = 16379
    aws_port: int = 15566
    env: str = "local"
    log_json: bool = True
    # fork: the launcher imports the code once and forks every service (fast); spawn: each service is an
    # interpreter of its own (slower to start; to compare, and on macOS, where forking a process that has
    # loaded system frameworks is unsafe, as Python's multiprocessing also holds).
    launch: str = field(default_factory=lambda: "fork" if sys.platform.startswith("linux") else "spawn")
    extra_env: dict[str, str] = field(default_factory=dict)

    def service_port(self, service: str) -> int:
        return self.service_base_port + SERVICES.index(service)

    @property
    def manifest(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def key_file(self) -> Path:
        return self.state_dir / "keys" / "jwt.pem"

    @property
    def admin_file(self) -> Path:
        return self.state_dir / "admin.json"

    def admin_credentials(self) -> tuple[str, str]:
        """The bootstrap admin: ``SPENDSENSE_ADMIN_EMAIL`` / ``SPENDSENSE_ADMIN_PASSWORD`` when both are set,
        else the ones made for this state directory on the first start (kept, so restarts agree)."""
        email = os.environ.get("SPENDSENSE_ADMIN_EMAIL")
        password = os.environ.get("SPENDSENSE_ADMIN_PASSWORD")
        if email and password:
            return email, password
        if self.admin_file.exists():
            saved = json.loads(self.admin_file.read_text())
            return str(saved["email"]), str(saved["password"])
        # Meets the password policy: upper, lower, digit and symbol, 20+ characters.
        made = f"Ss-{secrets.token_urlsafe(15)}-7a!"
        self.admin_file.parent.mkdir(parents=True, exist_ok=True)
        self.admin_file.write_text(json.dumps({"email": DEFAULT_ADMIN_EMAIL, "password": made}))
        self.admin_file.chmod(0o600)
        return DEFAULT_ADMIN_EMAIL, made

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def urls(self) -> dict[str, str]:
        return {
            "database": f"postgresql+asyncpg://postgres@127.0.0.1:{self.postgres_port}/spendsense",
            "redis": f"redis://127.0.0.1:{self.redis_port}/0",
            "aws": f"http://127.0.0.1:{self.aws_port}",
            "gateway": f"http://127.0.0.1:{self.gateway_port}",
            **{s: f"http://127.0.0.1:{self.service_port(s)}" for s in SERVICES},
        }

    def service_env(self) -> dict[str, str]:
        urls = self.urls()
        admin_email, admin_password = self.admin_credentials()
        return {
            "SPENDSENSE_ENV": self.env,
            "SPENDSENSE_DATABASE_URL": urls["database"],
            "SPENDSENSE_REDIS_URL": urls["redis"],
            "SPENDSENSE_AWS_ENDPOINT_URL": urls["aws"],
            "SPENDSENSE_AWS_REGION": "us-east-1",
            **EMULATOR_CREDENTIALS,
            "SPENDSENSE_JWKS_URL": f"{urls['auth']}/api/v1/auth/.well-known/jwks.json",
            "SPENDSENSE_JWT_PRIVATE_KEY_FILE": str(self.key_file.resolve()),
            "SPENDSENSE_ADMIN_EMAIL": admin_email,
            "SPENDSENSE_ADMIN_PASSWORD": admin_password,
            # The gateway stands in front of auth: client addresses (rate limits) come from X-Forwarded-For.
            "SPENDSENSE_TRUST_PROXY": "true",
            # Every local client is 127.0.0.1: per-address limits would make one person's demo a flood.
            # Per-account and per-number limits stay as in production.
            "SPENDSENSE_RATE_LIMIT_LOGIN_PER_IP": "100000",
            "SPENDSENSE_RATE_LIMIT_REGISTER_PER_IP": "100000",
            "SPENDSENSE_RATE_LIMIT_PER_IP": "100000",  # requests without a token; per token stays as set
            "SPENDSENSE_PHONE_SMS_PER_IP_PER_HOUR": "100000",
            "SPENDSENSE_PHONE_VERIFY_PER_IP_PER_HOUR": "100000",
            "SPENDSENSE_OAUTH_REDIRECT_BASE_URL": urls["gateway"],
            "SPENDSENSE_LOG_JSON": "true" if self.log_json else "false",
            # A service whose worker died is not ready (the worker's heartbeat in Redis).
            "SPENDSENSE_WORKER_HEARTBEAT_REQUIRED": "true",
            "SPENDSENSE_UPSTREAMS": json.dumps({s: urls[s] for s in SERVICES}),
            **self.extra_env,
        }


def read_manifest(config: StackConfig) -> dict[str, object] | None:
    try:
        return dict(json.loads(config.manifest.read_text()))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    return process_alive(pid)


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own localhost URLs
            return bool(response.status == 200)
    except OSError:
        return False


Progress = Callable[[str], None]
INFRASTRUCTURE = ("postgres", "redis", "aws")


def children(config: StackConfig) -> list[ChildSpec]:
    """The processes the launcher starts: each service's API and worker, then the gateway."""
    specs: list[ChildSpec] = []
    for service in SERVICES:
        specs += [
            ChildSpec(
                service,
                "api",
                f"spendsense_{service}.main:app",
                str(config.log(service)),
                port=config.service_port(service),
                group=service,
            ),
            ChildSpec(
                f"{service}-worker",
                "worker",
                f"spendsense_{service}.worker",
                str(config.log(f"{service}-worker")),
                group=service,
            ),
        ]
    gateway = "spendsense_shared.gateway.app:create_gateway"
    specs.append(ChildSpec("gateway", "api", gateway, str(config.log("gateway")), config.gateway_port, True))
    return specs


# What the launcher imports before it forks: first what migrating and provisioning need (a forked process
# then does both while the launcher imports on), then everything the services, workers and gateway share;
# then a launcher per service imports that service's own code (its bootstrap imports its routers,
# handlers and adapters), all five in parallel, and forks the service's API and worker.
PRELOAD_PREPARE = [
    "asyncpg",
    "spendsense_shared.aws",
    "spendsense_shared.messaging.provision",
    "spendsense_shared.messaging.topology",
    "spendsense_shared.migrations",
    "alembic.command",
    "alembic.runtime.migration",
    *(f"spendsense_{service}.adapters.orm" for service in SERVICES),
]
PRELOAD = [
    "uvicorn",
    "uvloop",
    "httptools",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "encodings.idna",
    "spendsense_shared.service",
    "spendsense_shared.worker",
    "spendsense_shared.gateway.app",
]
GROUPS = {service: [f"spendsense_{service}.bootstrap"] for service in SERVICES}


class _Stack:
    """Every process started so far, for the readiness wait (any exit fails it at once) and cleanup."""

    def __init__(self, processes: list[ManagedProcess | AdoptedProcess]):
        self.processes = processes
        self.dead: ManagedProcess | AdoptedProcess | None = None

    def alive(self) -> bool:
        self.dead = next((p for p in self.processes if not p.alive()), None)
        return self.dead is None

    def tail(self, lines: int = 30) -> str:
        return f"{self.dead.name}: {self.dead.tail(lines)}" if self.dead else ""


def _launcher_events(
    launcher: subprocess.Popen[bytes], watched: _Stack, deadline: float
) -> Iterator[dict[str, Any]]:
    """The launcher's messages as they come (the wait is on its pipe); when none has come for half a
    second, whether a process has died."""
    assert launcher.stdout is not None
    fd = launcher.stdout.fileno()
    buffer = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the launcher did not finish in time (log: launcher.log)")
        readable, _, _ = select.select([fd], [], [], min(0.5, remaining))
        if not readable:
            if not watched.alive():
                raise RuntimeError(f"{watched.dead.name if watched.dead else '?'} exited:\n{watched.tail()}")
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict):
                    yield message


def _start_launcher(config: StackConfig, env: dict[str, str], plan: LaunchPlan) -> subprocess.Popen[bytes]:
    log = config.log("launcher")
    with log.open("ab") as stderr:
        launcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spendsense_shared.embedded.launcher",
                "--state-dir",
                str(config.state_dir.resolve()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **env},
            start_new_session=True,
        )
    assert launcher.stdin is not None
    launcher.stdin.write(plan.to_json().encode() + b"\n")
    launcher.stdin.close()
    return launcher


def up(config: StackConfig, progress: Progress = print, timeout: float = 300) -> dict[str, object]:
    """Start everything; returns the manifest. Raises if something does not come up (and stops it all).
    ``timeout`` is generous: a loaded machine starts slower, and that should make it slow, not fail."""
    manifest = read_manifest(config)
    if manifest and any(pid_alive(int(p["pid"])) for p in manifest["processes"]):  # type: ignore[attr-defined]
        raise RuntimeError(
            f"a stack is already running (state in {config.state_dir}); `spendsense down` first"
        )
    for name, port in {
        "gateway": config.gateway_port,
        "postgres": config.postgres_port,
        "redis": config.redis_port,
        "aws": config.aws_port,
        **{s: config.service_port(s) for s in SERVICES},
    }.items():
        if port_open(port):
            raise RuntimeError(
                f"port {port} (for {name}) is already in use; choose another with the --*-port options"
            )
    (config.state_dir / "logs").mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    deadline = started_at + timeout

    def step(message: str) -> None:
        progress(f"{time.monotonic() - started_at:5.1f} s  {message}")

    servers: list[ManagedProcess] = []
    forked: list[AdoptedProcess] = []
    launcher: subprocess.Popen[bytes] | None = None
    try:
        SigningKey.load_or_create(config.key_file)
        env = config.service_env()
        plan = LaunchPlan(
            postgres_port=config.postgres_port,
            database="spendsense",
            aws_port=config.aws_port,
            env=config.env,
            migrate=list(SERVICES),
            children=children(config),
            preload_prepare=PRELOAD_PREPARE,
            preload=PRELOAD,
            groups=GROUPS,
            fork=config.launch == "fork",
            timeout=timeout,
        )
        step("starting Redis, the AWS emulator and the launcher")
        redis = redis_process(config.state_dir / "redis", config.redis_port, config.log("redis"))
        aws = moto_process(config.aws_port, config.log("aws"))
        servers += [redis.start(), aws.start()]
        launcher = _start_launcher(config, env, plan)
        step(
            "starting PostgreSQL 16" + ("" if (config.state_dir / "postgres").exists() else " (new cluster)")
        )
        pg = postgres_process(config.state_dir / "postgres", config.postgres_port, config.log("postgres"))
        servers.insert(0, pg.start())
        wait_for_redis(redis, config.redis_port, timeout=max(5.0, deadline - time.monotonic()))
        step("Redis is ready")
        watched = _Stack([*servers])  # and each forked process as it is reported: any exit fails the start
        done = False
        for message in _launcher_events(launcher, watched, deadline):
            if "progress" in message:
                step(str(message["progress"]))
            elif "started" in message:
                forked.append(
                    AdoptedProcess(str(message["started"]), int(message["pid"]), Path(message["log"]))
                )
                watched.processes.append(forked[-1])
            elif "error" in message:
                raise RuntimeError(
                    f"the launcher failed: {message['error']}\n(log: {config.log('launcher')})"
                )
            elif message.get("done"):
                done = True
                break
        if not done:
            raise RuntimeError(f"the launcher exited early:\n{_tail(config.log('launcher'))}")
        with contextlib.suppress(subprocess.TimeoutExpired):  # it exits once it has said so
            launcher.wait(10)
        order = {spec.name: i for i, spec in enumerate(plan.children)}
        forked.sort(key=lambda proc: order.get(proc.name, len(order)))

        manifest = _manifest(config, [*servers, *forked])
        config.manifest.write_text(json.dumps(manifest, indent=2))
        health = f"{config.urls()['gateway']}/api/v1/health"
        ports = [config.service_port(s) for s in SERVICES] + [config.gateway_port]
        wait_until(
            lambda: all(port_open(p) for p in ports) and http_ok(health),
            max(5.0, deadline - time.monotonic()),
            "the services (gateway /api/v1/health)",
            _Stack([*servers, *forked]),
            delays=backoff(first=0.05, cap=0.5),
        )
        step("every service reports ready through the gateway")
        manifest["ready_after_s"] = round(time.monotonic() - started_at, 1)
        config.manifest.write_text(json.dumps(manifest, indent=2))
        manifest["supervisor"] = {"pid": _start_supervisor(config, env)}  # it records itself too
        step("the supervisor watches every process (restarted when it exits)")
        return manifest
    except BaseException:
        progress(
            "start-up failed; stopping what was started (logs in " + str(config.state_dir / "logs") + ")"
        )
        if launcher is not None and launcher.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launcher.pid, signal.SIGTERM)  # it stops what it forked
            with contextlib.suppress(subprocess.TimeoutExpired):
                launcher.wait(10)
        _stop_all(forked)
        _stop_all(servers)
        config.manifest.unlink(missing_ok=True)
        raise


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop_all(processes: Sequence[ManagedProcess | AdoptedProcess], timeout: float = 15) -> None:
    """Signal every process at once, then wait for each (they shut down in parallel)."""
    for proc in processes:
        if isinstance(proc, AdoptedProcess):
            if proc.alive():
                proc.signal()
        elif proc.alive() and proc.process is not None:
            proc.process.send_signal(proc.stop_signal)
    for proc in processes:
        proc.stop(timeout)


def _manifest(config: StackConfig, processes: list[ManagedProcess | AdoptedProcess]) -> dict[str, object]:
    """``stack.json``: what runs, and how the supervisor starts each process again (its spec, or the
    server's command line)."""
    specs = {spec.name: spec for spec in children(config)}

    def entry(p: ManagedProcess | AdoptedProcess) -> dict[str, object]:
        described: dict[str, object] = {
            "name": p.name,
            "pid": p.pid,
            "log": str(p.log_path),
            "stop_signal": int(p.stop_signal),
            "restarts": 0,
        }
        if isinstance(p, ManagedProcess):
            described["server"] = {"argv": p.argv, "env": p.env, "user": p.user}
        elif p.name in specs:
            described["spec"] = asdict(specs[p.name])
        return described

    return {
        "env": config.service_env(),
        "urls": config.urls(),
        "launch": config.launch,
        "preload": PRELOAD,
        "processes": [entry(p) for p in processes],
    }


def _start_supervisor(config: StackConfig, env: dict[str, str]) -> int:
    """The supervisor (``spendsense_shared.embedded.supervisor``) restarts whatever exits from now on."""
    with config.log("supervisor").open("ab") as log:
        supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spendsense_shared.embedded.supervisor",
                "--state-dir",
                str(config.state_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )
    return supervisor.pid


def _stop_supervisor(config: StackConfig, manifest: dict[str, Any], timeout: float = 10) -> None:
    pid = int(dict(manifest.get("supervisor") or {}).get("pid", 0))
    if pid and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_exited(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_exited(pid, 5)


def down(config: StackConfig, progress: Progress = print, timeout: float = 20) -> int:
    """Stop every process of the stack: the services, workers and gateway together, then the
    infrastructure together; returns how many stopped."""
    manifest = read_manifest(config)
    if not manifest:
        return 0
    _stop_supervisor(config, manifest)  # first: nothing is restarted while the stack stops
    manifest = read_manifest(config) or manifest  # the pids it last recorded
    processes = list(manifest["processes"])  # type: ignore[call-overload]
    stopped = 0
    services = [p for p in processes if p["name"] not in INFRASTRUCTURE]
    infrastructure = [p for p in processes if p["name"] in INFRASTRUCTURE]
    for group in (services, infrastructure):
        signalled = []
        for proc in group:
            pid = int(proc["pid"])
            if not pid_alive(pid):
                continue
            try:
                signal_to_stop(str(proc["name"]), pid, int(proc["stop_signal"]))
            except ProcessLookupError:
                continue
            signalled.append(proc)
        deadline = time.monotonic() + timeout
        for proc in signalled:
            pid = int(proc["pid"])
            if not wait_exited(pid, max(0.0, deadline - time.monotonic())):
                progress(f"{proc['name']} did not stop in {timeout:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                wait_exited(pid, 5)
            stopped += 1
            progress(f"stopped {proc['name']}")
    config.manifest.unlink(missing_ok=True)
    return stopped


def status(config: StackConfig) -> list[dict[str, object]]:
    """Every process with whether it runs and how often the supervisor restarted it; the supervisor last."""
    manifest = read_manifest(config)
    if not manifest:
        return []
    processes = [
        {**p, "alive": pid_alive(int(p["pid"])), "restarts": int(p.get("restarts", 0))}
        for p in manifest["processes"]  # type: ignore[attr-defined]
    ]
    supervisor = dict(manifest.get("supervisor") or {})  # type: ignore[call-overload]
    if supervisor.get("pid"):
        pid = int(supervisor["pid"])
        processes.append({"name": "supervisor", "pid": pid, "alive": pid_alive(pid), "restarts": 0})
    return processes


RESTART_WAIT_S = 120.0


def restart(config: StackConfig, name: str, timeout: float = RESTART_WAIT_S) -> dict[str, object]:
    """Stop ``name`` and have the supervisor start it again at once; returns its new manifest entry.
    Raises ``LookupError`` (no such process), ``RuntimeError`` (no supervisor), ``TimeoutError``."""
    manifest = read_manifest(config)
    if not manifest:
        raise RuntimeError("the stack is not running (`spendsense up`)")
    entries = {str(p["name"]): p for p in manifest["processes"]}  # type: ignore[attr-defined]
    if name not in entries:
        raise LookupError(f"no process {name!r}; one of {', '.join(entries)}")
    supervisor = int(dict(manifest.get("supervisor") or {}).get("pid", 0))  # type: ignore[call-overload]
    if not supervisor or not pid_alive(supervisor):
        raise RuntimeError(
            "no supervisor runs for this stack (restart it: `spendsense down`, `spendsense up`)"
        )
    old = dict(entries[name])
    requests = config.state_dir / "supervisor" / "restart"
    requests.mkdir(parents=True, exist_ok=True)
    (requests / name).touch()
    pid = int(old["pid"])
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            signal_to_stop(name, pid, int(old["stop_signal"]))
        if not wait_exited(pid, 30):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def restarted() -> dict[str, object] | None:
        current = {str(p["name"]): p for p in (read_manifest(config) or {}).get("processes", [])}  # type: ignore[attr-defined]
        entry = current.get(name)
        if entry and int(entry["pid"]) != pid and pid_alive(int(entry["pid"])):
            return dict(entry)
        return None

    found: list[dict[str, object]] = []

    def check() -> bool:
        entry = restarted()
        if entry:
            found.append(entry)
        return entry is not None

    wait_until(check, timeout, f"{name} restart", delays=backoff(first=0.05, cap=0.5))
    return found[0]
