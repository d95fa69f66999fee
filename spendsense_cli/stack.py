"""The embedded stack: real PostgreSQL, Redis and AWS emulator, the five services, their workers and the
gateway, each a process of its own with a log under ``.spendsense/logs``. ``stack.json`` records what runs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spendsense_shared.aws import Aws
from spendsense_shared.embedded.servers import (
    EMULATOR_CREDENTIALS,
    ManagedProcess,
    moto_process,
    port_open,
    postgres_process,
    redis_process,
    wait_for_moto,
    wait_for_postgres,
    wait_for_redis,
    wait_until,
)
from spendsense_shared.jwk import SigningKey
from spendsense_shared.messaging.catalog import SERVICES
from spendsense_shared.messaging.provision import provision
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.migrations import upgrade
from spendsense_shared.settings import ServiceSettings

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
            "SPENDSENSE_PHONE_SMS_PER_IP_PER_HOUR": "100000",
            "SPENDSENSE_PHONE_VERIFY_PER_IP_PER_HOUR": "100000",
            "SPENDSENSE_OAUTH_REDIRECT_BASE_URL": urls["gateway"],
            "SPENDSENSE_BUS_WAIT_TIME_S": "2",
            "SPENDSENSE_LOG_JSON": "true" if self.log_json else "false",
            "SPENDSENSE_UPSTREAMS": json.dumps({s: urls[s] for s in SERVICES}),
            **self.extra_env,
        }


def read_manifest(config: StackConfig) -> dict[str, object] | None:
    try:
        return dict(json.loads(config.manifest.read_text()))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own localhost URLs
            return bool(response.status == 200)
    except OSError:
        return False


Progress = Callable[[str], None]


def _uvicorn(target: str, port: int, *, factory: bool = False) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]
    return [*argv, "--factory"] if factory else argv


def up(config: StackConfig, progress: Progress = print, timeout: float = 60) -> dict[str, object]:
    """Start everything; returns the manifest. Raises if something does not come up (and stops it all)."""
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
    config.state_dir.mkdir(parents=True, exist_ok=True)
    started: list[ManagedProcess] = []
    started_at = time.monotonic()
    try:
        progress("starting PostgreSQL 16, Redis and the AWS emulator")
        pg = postgres_process(config.state_dir / "postgres", config.postgres_port, config.log("postgres"))
        redis = redis_process(config.state_dir / "redis", config.redis_port, config.log("redis"))
        aws = moto_process(config.aws_port, config.log("aws"))
        for proc in (pg, redis, aws):
            started.append(proc.start())
        wait_for_postgres(pg, config.postgres_port, "spendsense")
        wait_for_redis(redis, config.redis_port)
        wait_for_moto(aws, config.aws_port)

        SigningKey.load_or_create(config.key_file)
        env = config.service_env()
        progress("provisioning topics, queues, dead-letter queues and buckets")
        settings = ServiceSettings(
            **{
                k.removeprefix("SPENDSENSE_").lower(): v
                for k, v in env.items()
                if k.removeprefix("SPENDSENSE_").lower() in ServiceSettings.model_fields
            }
        )
        counts = asyncio.run(provision(Aws(settings), build_topology(config.env)))
        progress(f"  {counts}")
        progress("migrating each service's schema")
        for service in SERVICES:
            upgrade(f"spendsense_{service}", env["SPENDSENSE_DATABASE_URL"], service)

        progress("starting the five services, their workers and the gateway")
        for service in SERVICES:
            api = ManagedProcess(
                service,
                _uvicorn(f"spendsense_{service}.main:app", config.service_port(service)),
                config.log(service),
                env=env,
            )
            worker = ManagedProcess(
                f"{service}-worker",
                [sys.executable, "-m", f"spendsense_{service}.worker"],
                config.log(f"{service}-worker"),
                env=env,
            )
            started += [api.start(), worker.start()]
        gateway = ManagedProcess(
            "gateway",
            _uvicorn("spendsense_shared.gateway.app:create_gateway", config.gateway_port, factory=True),
            config.log("gateway"),
            env=env,
        )
        started.append(gateway.start())
        manifest = _manifest(config, started)
        config.manifest.write_text(json.dumps(manifest, indent=2))
        health = f"{config.urls()['gateway']}/api/v1/health"
        remaining = max(5.0, timeout - (time.monotonic() - started_at))
        wait_until(
            lambda: http_ok(health) and all(p.alive() for p in started),
            remaining,
            "the services (gateway /api/v1/health)",
        )
        for proc in started:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        manifest["ready_after_s"] = round(time.monotonic() - started_at, 1)
        config.manifest.write_text(json.dumps(manifest, indent=2))
        return manifest
    except BaseException:
        progress(
            "start-up failed; stopping what was started (logs in " + str(config.state_dir / "logs") + ")"
        )
        for proc in reversed(started):
            proc.stop()
        config.manifest.unlink(missing_ok=True)
        raise


def _manifest(config: StackConfig, processes: list[ManagedProcess]) -> dict[str, object]:
    return {
        "env": config.service_env(),
        "urls": config.urls(),
        "processes": [
            {"name": p.name, "pid": p.pid, "log": str(p.log_path), "stop_signal": int(p.stop_signal)}
            for p in processes
        ],
    }


def down(config: StackConfig, progress: Progress = print, timeout: float = 20) -> int:
    """Stop every process of the stack (services first, then infrastructure); returns how many stopped."""
    manifest = read_manifest(config)
    if not manifest:
        return 0
    processes = list(manifest["processes"])  # type: ignore[call-overload]
    stopped = 0
    for proc in reversed(processes):
        pid = int(proc["pid"])
        if not pid_alive(pid):
            continue
        try:
            # Services are process-group leaders (uvicorn may have children); PostgreSQL manages its own.
            if proc["name"] == "postgres":
                os.kill(pid, proc["stop_signal"])
            else:
                os.killpg(pid, proc["stop_signal"])
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            progress(f"{proc['name']} did not stop in {timeout:.0f}s; killing it")
            os.killpg(pid, signal.SIGKILL)
        stopped += 1
        progress(f"stopped {proc['name']}")
    config.manifest.unlink(missing_ok=True)
    return stopped


def status(config: StackConfig) -> list[dict[str, object]]:
    manifest = read_manifest(config)
    if not manifest:
        return []
    return [{**p, "alive": pid_alive(int(p["pid"]))} for p in manifest["processes"]]  # type: ignore[attr-defined]
