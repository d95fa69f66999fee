"""The embedded stack's launcher: imports the services' code once, migrates every schema and provisions
the bus meanwhile, then forks the services, their workers and the gateway.

Each of those eleven processes used to be an interpreter of its own importing the same libraries
(FastAPI, SQLAlchemy, pydantic, aioboto3…): a few CPU-seconds each, eleven times over, on two cores.
Here the launcher

1. imports what migrating needs and forks the *preparer*, which migrates every schema as soon as
   PostgreSQL answers while it provisions the bus as soon as the emulator answers;
2. imports what every process shares, then forks a *group launcher* per service, which imports that
   service's own code (the five in parallel);
3. once the preparer is done, lets each group launcher fork its service's API and worker, and forks
   the gateway itself.

A forked process starts at once and shares the imported code copy-on-write (``gc.freeze()`` keeps the
collector from walking, and so copying, it). It leads its own session (``spendsense down`` signals its
group), writes to its own log and builds its app or worker from the environment, as an interpreter of
its own would. The launcher and its helpers exit once everything is forked.

Run by ``spendsense up`` (``spendsense_cli/stack.py``) as ``python -m spendsense_shared.embedded.launcher
--state-dir DIR``: the plan (:class:`LaunchPlan`, one JSON line) comes on stdin, the environment is the
services' own; progress comes back on stdout as JSON lines (``progress``, ``started`` with a pid,
``error``, then ``done``). Anything else the launcher prints goes to its log.

``fork=False`` (``spendsense up --launch spawn``) starts each process as an interpreter of its own
instead, as before: slower, for a platform without ``fork`` or for comparison (``bench/stack_start.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from types import FrameType
from typing import IO, Any

import uvicorn

from spendsense_shared.embedded.servers import moto_ready, postgres_ready


@dataclass(frozen=True)
class ChildSpec:
    """One process to start: an HTTP API (``target`` a uvicorn ``module:attr``) or a worker (``target``
    a module run as ``__main__``)."""

    name: str
    kind: str  # "api" | "worker"
    target: str
    log: str
    port: int = 0
    factory: bool = False
    group: str = ""  # whose launcher forks it (a service's); "" the launcher itself

    def argv(self) -> list[str]:
        """The command line of the same process started as its own interpreter."""
        if self.kind == "worker":
            return [sys.executable, "-m", self.target]
        argv = [sys.executable, "-m", "uvicorn", self.target, "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--no-access-log", "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S)]
        return [*argv, "--factory"] if self.factory else argv


@dataclass(frozen=True)
class LaunchPlan:
    postgres_port: int
    database: str
    aws_port: int
    env: str  # the deployment name the bus resources derive from
    migrate: list[str]  # services whose schemas to migrate (package spendsense_<service>)
    children: list[ChildSpec]
    # Modules to import before forking: what migrating needs (imported first), what every process shares,
    # and each group's own (imported by a launcher per group, in parallel).
    preload_prepare: list[str] = field(default_factory=list)
    preload: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    fork: bool = True
    timeout: float = 300

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LaunchPlan:
        raw: dict[str, Any] = json.loads(text)
        raw["children"] = [ChildSpec(**c) for c in raw["children"]]
        return cls(**raw)


GRACEFUL_SHUTDOWN_S = 10


class Reporter:
    """JSON lines to ``spendsense up`` on a descriptor of its own (stdout is the launcher's log)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.started = time.monotonic()

    def send(self, **message: object) -> None:
        self.stream.write(json.dumps(message) + "\n")
        self.stream.flush()

    def progress(self, text: str) -> None:
        self.send(progress=text, at=round(time.monotonic() - self.started, 2))


def preload(modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)


async def prepare(plan: LaunchPlan, report: Reporter) -> None:
    """Migrate every schema (one after the other: Alembic's context is process-global) while the bus and
    buckets are provisioned, each as soon as its server answers."""
    from spendsense_shared.aws import Aws
    from spendsense_shared.messaging.provision import provision
    from spendsense_shared.messaging.topology import build_topology
    from spendsense_shared.migrations import upgrade
    from spendsense_shared.settings import ServiceSettings

    async def migrate() -> None:
        url = await postgres_ready(plan.postgres_port, plan.database, plan.timeout)
        report.progress("PostgreSQL is ready; migrating " + ", ".join(plan.migrate))
        started = time.monotonic()
        for service in plan.migrate:
            await asyncio.to_thread(upgrade, f"spendsense_{service}", url, service)
        report.progress(f"migrated {len(plan.migrate)} schemas in {time.monotonic() - started:.1f} s")

    async def provision_bus() -> None:
        await moto_ready(plan.aws_port, plan.timeout)
        report.progress("the AWS emulator is ready; provisioning topics, queues, dead-letter queues, buckets")
        started = time.monotonic()
        counts = await provision(Aws(ServiceSettings()), build_topology(plan.env))
        report.progress(f"provisioned {counts} in {time.monotonic() - started:.1f} s")

    await asyncio.gather(migrate(), provision_bus())


def _name_process(name: str) -> None:
    """What ``ps``, ``top`` and ``pgrep`` show for a forked child (Linux: 15 characters)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _run_child(spec: ChildSpec) -> None:
    if spec.kind == "worker":
        import runpy

        sys.argv = [spec.target]
        runpy.run_module(spec.target, run_name="__main__", alter_sys=True)
        return
    sys.argv = ["uvicorn", spec.target]
    config = uvicorn.Config(
        spec.target,
        host="127.0.0.1",
        port=spec.port,
        factory=spec.factory,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    CalmServer(config).run()


def fork_child(spec: ChildSpec, close: list[int]) -> int:
    """Fork ``spec``'s process; returns its pid (in the parent). The child never returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # its own session and process group, as a spawned process had
        gc.enable()
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        log = os.open(spec.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        _name_process(spec.name)
        _run_child(spec)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            import logging

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def spawn_child(spec: ChildSpec) -> int:
    with open(spec.log, "ab") as log:
        process = subprocess.Popen(
            spec.argv(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return process.pid


class CalmServer(uvicorn.Server):
    """uvicorn's server without its 100 ms housekeeping tick: the loop wakes once a second (the ``Date``
    header has a one-second resolution), or at once when a signal asks it to stop."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # on_tick refreshes the Date header when counter % 10 == 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                self._loop.call_soon_threadsafe(self._wake.set)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--state-dir", help="the stack's state directory (so `pgrep -f DIR` finds us)")
    parser.parse_args(argv)

    # Our messages go to spendsense up on a descriptor of our own; whatever else prints goes to the log.
    report = Reporter(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    plan = LaunchPlan.from_json(sys.stdin.readline())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)

    forked: list[int] = []  # the preparer and group launchers (in our process group), then the gateway

    def stop_forked() -> None:
        for pid in forked:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                try:
                    os.killpg(pid, signal.SIGTERM)  # a service leads its group
                except ProcessLookupError:
                    os.kill(pid, signal.SIGTERM)  # a helper is in ours

    def stopped(signum: int, frame: FrameType | None) -> None:  # spendsense up gave up: take ours along
        stop_forked()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stopped)
    go: list[int] = []
    try:
        if plan.fork:
            launch_forked(plan, report, forked, go)
        else:
            asyncio.run(prepare(plan, report))
            report.progress("spawning " + ", ".join(c.name for c in plan.children))
            for spec in plan.children:
                report.send(started=spec.name, pid=spawn_child(spec), log=spec.log)
        report.send(done=True)
        return 0
    except BaseException as exc:
        traceback.print_exc()
        with contextlib.suppress(Exception):
            report.send(error=f"{type(exc).__name__}: {exc}")
        for fd in go:  # closed unwritten: the group launchers give up
            with contextlib.suppress(OSError):
                os.close(fd)
        stop_forked()
        return 1


def launch_forked(plan: LaunchPlan, report: Reporter, forked: list[int], go: list[int]) -> None:
    """Import what everything shares once; fork the preparer (migrations, bus) and, per service, a group
    launcher that imports that service's own code (the services import in parallel, on both cores); once
    the preparer is done, let each group launcher fork its API and worker, and fork the gateway."""
    started = time.monotonic()
    gc.disable()  # importing allocates much and frees little: collecting meanwhile is wasted
    private = [report.stream.fileno()]
    preload(plan.preload_prepare)
    # Migrating and provisioning wait mostly on PostgreSQL and the emulator: a process of their own.
    preparer = fork_helper(partial(run_preparer, plan, report), report, close=[])
    forked.append(preparer)
    preload(plan.preload)
    report.progress(
        f"imported the code every process shares in {time.monotonic() - started:.1f} s"
        f" ({time.process_time():.1f} s of CPU)"
    )
    pipes = {group: os.pipe() for group in plan.groups}  # the go signal, one pipe per group launcher
    open_fds = {fd for pair in pipes.values() for fd in pair}
    group_launchers = []
    for group, modules in plan.groups.items():
        read, write = pipes[group]
        specs = [c for c in plan.children if c.group == group]
        work = partial(run_group, group, modules, specs, read, report)
        pid = fork_helper(work, report, close=sorted(open_fds - {read}))
        forked.append(pid)
        group_launchers.append(pid)
        os.close(read)
        open_fds.discard(read)
        go.append(write)
    _, status = os.waitpid(preparer, 0)
    forked.remove(preparer)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("migrating or provisioning failed (see launcher.log)")
    report.progress("starting the services, their workers and the gateway")
    for fd in list(go):
        os.write(fd, b"1")
        os.close(fd)
        go.remove(fd)
    if threading.active_count() > 1:  # forking copies only this thread
        print(f"threads left before forking: {threading.enumerate()}", file=sys.stderr)
    gc.freeze()
    for spec in plan.children:
        if not spec.group:  # the gateway: nothing of its own to import
            forked.append(fork_child(spec, private))
            report.send(started=spec.name, pid=forked[-1], log=spec.log)
    for pid in group_launchers:  # each exits once it has forked its processes
        _, status = os.waitpid(pid, 0)
        forked.remove(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("a service's code failed to load (see launcher.log)")


def run_preparer(plan: LaunchPlan, report: Reporter) -> None:
    gc.enable()  # it allocates as it migrates, unlike the launcher that imports
    asyncio.run(prepare(plan, report))


def run_group(group: str, modules: list[str], specs: list[ChildSpec], go: int, report: Reporter) -> None:
    """A group launcher: import the service's own code, wait for the go (the schemas are migrated and the
    bus provisioned), fork its processes."""
    started = time.monotonic()
    cpu = time.process_time()
    preload(modules)
    report.progress(
        f"imported {group}'s own code in {time.monotonic() - started:.1f} s"
        f" ({time.process_time() - cpu:.1f} s of CPU)"
    )
    if os.read(go, 1) != b"1":  # the launcher gave up
        raise SystemExit(1)
    gc.freeze()  # what is imported stays shared: the children's collector never walks those objects
    for spec in specs:
        pid = fork_child(spec, [report.stream.fileno(), go])
        report.send(started=spec.name, pid=pid, log=spec.log)


def fork_helper(work: Callable[[], object], report: Reporter, close: list[int]) -> int:
    """Fork a helper that runs ``work`` and exits (0: done); returns its pid. It stays in the launcher's
    process group (stopped with it) and reports on the launcher's channel."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        work()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        traceback.print_exc()
        with contextlib.suppress(Exception):
            report.send(error=f"{type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
