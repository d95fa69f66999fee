"""The embedded stack's supervisor: starts again whatever process of the stack exits.

``spendsense up`` starts it once everything is ready (``python -m spendsense_shared.embedded.supervisor
--state-dir DIR``, in the services' environment). It watches every process in ``stack.json`` (a pidfd
each: woken the moment one exits) and starts an exited one again after a backoff that grows while the
process keeps dying young (0.5 s, doubling up to 30 s; back to 0.5 s once it has lived a minute). It
records the new pid, the number of restarts and the last exit in ``stack.json`` (``spendsense status``
shows them).

- A service, worker or the gateway is forked from the supervisor, which imports the code every process
  shares once, at its first restart (``--launch spawn``: an interpreter of its own, as at start).
- PostgreSQL, Redis and the AWS emulator are started again with the command line they had. The emulator
  keeps everything in memory: once it answers again the supervisor provisions the topics, queues,
  subscriptions and buckets again, then has every service send again the outbox events it published in
  the ``SPENDSENSE_OUTBOX_REPLAY_WINDOW_S`` (900 s) before the emulator went down (the messages its
  queues held are lost; the consumers' inboxes discard what they had handled already). The services'
  reconcilers then finish what the lost buckets left half-done.
- ``supervisor/hold/NAME`` (a file in the state directory) holds NAME down while it exists (a chaos test
  keeping PostgreSQL down for 30 s); ``supervisor/restart/NAME`` asks for an immediate restart, without
  backoff (``spendsense restart NAME`` writes it, then stops the process).

SIGTERM stops the supervisor (``spendsense down`` stops it first), never what it supervises.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spendsense_shared.embedded.launcher import ChildSpec
from spendsense_shared.embedded.servers import moto_ready, process_alive

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
HEALTHY_AFTER_S = 60.0  # a process that lived this long has its backoff reset
TICK_S = 1.0  # the longest the supervisor sleeps without looking at its hold and restart requests


@dataclass
class Watched:
    """One process of the stack as the manifest describes it, and how it has fared."""

    entry: dict[str, Any]  # the manifest's entry (updated in place: pid, restarts, last_exit)
    started_at: float = field(default_factory=time.monotonic)
    due_at: float | None = None  # when to start it again (None: it runs, or nobody asked)
    delay: float = FIRST_DELAY_S

    @property
    def name(self) -> str:
        return str(self.entry["name"])

    @property
    def pid(self) -> int:
        return int(self.entry["pid"])


class Supervisor:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.manifest_path = state_dir / "stack.json"
        self.hold_dir = state_dir / "supervisor" / "hold"
        self.restart_dir = state_dir / "supervisor" / "restart"
        self.hold_dir.mkdir(parents=True, exist_ok=True)
        self.restart_dir.mkdir(parents=True, exist_ok=True)
        self.manifest: dict[str, Any] = json.loads(self.manifest_path.read_text())
        self.watched = [
            Watched(entry)
            for entry in self.manifest["processes"]
            if entry.get("spec") or entry.get("server")  # what we know how to start
        ]
        self.stopping = False
        self._preloaded = False
        self._aws_down_at: float | None = None  # when the emulator was seen gone (wall clock)

    def log(self, event: str, **fields: object) -> None:
        print(json.dumps({"event": event, "at": round(time.time(), 3), **fields}), flush=True)

    def save(self) -> None:
        """Write ``stack.json`` atomically (``spendsense status`` and ``down`` read it any time)."""
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2))
        tmp.replace(self.manifest_path)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.manifest["supervisor"] = {"pid": os.getpid()}
        self.save()
        self.log("supervisor_started", watching=[w.name for w in self.watched])
        self._preload()  # now, not at the first restart: a restart then costs only the service's own code
        while not self.stopping:
            self._reap()
            now = time.monotonic()
            for proc in self.watched:
                self._look_at(proc, now)
            self._wait()
        self.log("supervisor_stopped")

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _reap(self) -> None:
        """Collect the exit status of the processes we started (else they stay zombies)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for proc in self.watched:
                if proc.pid == pid:
                    proc.entry["last_exit"] = os.waitstatus_to_exitcode(status)

    def _look_at(self, proc: Watched, now: float) -> None:
        held = (self.hold_dir / proc.name).exists()
        requested = (self.restart_dir / proc.name).exists()
        if process_alive(proc.pid):
            if now - proc.started_at >= HEALTHY_AFTER_S:
                proc.delay = FIRST_DELAY_S
            return
        if held:
            proc.due_at = None
            return
        if proc.due_at is None:  # just noticed
            lived = now - proc.started_at
            if lived >= HEALTHY_AFTER_S:
                proc.delay = FIRST_DELAY_S
            wait = 0.0 if requested else proc.delay
            proc.due_at = now + wait
            if proc.name == "aws" and self._aws_down_at is None:
                self._aws_down_at = time.time()
            self.log(
                "process_exited", name=proc.name, pid=proc.pid, lived_s=round(lived, 1), restart_in_s=wait
            )
        if requested:
            proc.due_at = now
        if now >= proc.due_at:
            with contextlib.suppress(FileNotFoundError):
                (self.restart_dir / proc.name).unlink()
            self._restart(proc, requested)

    def _restart(self, proc: Watched, requested: bool) -> None:
        try:
            pid = self._start(proc.entry)
        except Exception:
            traceback.print_exc()
            proc.due_at = time.monotonic() + proc.delay
            proc.delay = min(MAX_DELAY_S, proc.delay * 2)
            return
        proc.entry["pid"] = pid
        proc.entry["restarts"] = int(proc.entry.get("restarts", 0)) + 1
        proc.entry["restarted_at"] = time.time()
        proc.started_at = time.monotonic()
        proc.due_at = None
        if not requested:
            proc.delay = min(MAX_DELAY_S, proc.delay * 2)
        self.save()
        self.log("process_restarted", name=proc.name, pid=pid, restarts=proc.entry["restarts"])
        if proc.name == "aws" and self._provision():
            down_at, self._aws_down_at = self._aws_down_at or time.time(), None
            self._resend_outbox(down_at)

    def _start(self, entry: dict[str, Any]) -> int:
        if entry.get("server"):
            server = entry["server"]
            with open(entry["log"], "ab") as log:
                process = subprocess.Popen(
                    server["argv"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **server.get("env", {})},
                    user=server.get("user"),
                    start_new_session=True,
                )
            return process.pid
        spec = ChildSpec(**entry["spec"])
        if self.manifest.get("launch") == "spawn":
            from spendsense_shared.embedded.launcher import spawn_child

            return spawn_child(spec)
        from spendsense_shared.embedded.launcher import fork_child

        self._preload()
        sys.stdout.flush()
        return fork_child(spec, close=[])

    def _preload(self) -> None:
        """Import what every process shares once (the launcher's list), so a fork starts fast."""
        if self._preloaded or self.manifest.get("launch") == "spawn":
            return
        from spendsense_shared.embedded.launcher import preload

        started = time.monotonic()
        preload(list(self.manifest.get("preload", [])))
        self._preloaded = True
        self.log("preloaded", seconds=round(time.monotonic() - started, 1))

    def _provision(self) -> bool:
        """Provision the bus and buckets again once the (in-memory) emulator answers; whether it did."""
        from spendsense_shared.aws import Aws
        from spendsense_shared.messaging.provision import provision
        from spendsense_shared.messaging.topology import build_topology
        from spendsense_shared.settings import ServiceSettings

        port = int(str(self.manifest["urls"]["aws"]).rsplit(":", 1)[-1])

        async def again() -> object:
            await moto_ready(port, 120)
            return await provision(
                Aws(ServiceSettings()), build_topology(str(self.manifest["env"]["SPENDSENSE_ENV"]))
            )

        started = time.monotonic()
        try:
            counts = asyncio.run(again())
        except Exception:
            traceback.print_exc()
            self.log("provision_failed")
            return False
        self.log("provisioned_again", counts=str(counts), seconds=round(time.monotonic() - started, 2))
        return True

    def _resend_outbox(self, down_at: float) -> None:
        """Every service sends again the outbox events it published in the replay window before the
        emulator went down that some consumer has not handled yet (its inbox, in the same database, says
        so): the messages its queues held went with it."""
        import asyncpg

        from spendsense_shared.db import asyncpg_dsn
        from spendsense_shared.messaging.catalog import CONSUMES
        from spendsense_shared.messaging.outbox_replay import (
            DEFAULT_REPLAY_WINDOW_S,
            outbox_schemas,
            resend_published,
        )
        from spendsense_shared.settings import ServiceSettings

        window_s = float(os.environ.get("SPENDSENSE_OUTBOX_REPLAY_WINDOW_S", DEFAULT_REPLAY_WINDOW_S))
        since = datetime.fromtimestamp(down_at - window_s, UTC)

        async def resend() -> dict[str, int]:
            dsn = asyncpg_dsn(ServiceSettings().database_url.get_secret_value())
            conn = await asyncpg.connect(dsn, timeout=30)
            try:
                return await resend_published(conn, await outbox_schemas(conn), since, consumers=CONSUMES)
            finally:
                await conn.close()

        try:
            resent = asyncio.run(resend())
        except Exception:  # PostgreSQL down too: the reconcilers still finish what is stuck
            traceback.print_exc()
            self.log("outbox_resend_failed")
            return
        self.log("outbox_resent", window_s=window_s, events=resent, total=sum(resent.values()))

    def _wait(self) -> None:
        """Sleep until a watched process exits (its pidfd turns readable) or ``TICK_S`` passes."""
        due = [p.due_at for p in self.watched if p.due_at is not None]
        timeout = TICK_S if not due else max(0.0, min(TICK_S, min(due) - time.monotonic()))
        fds: list[int] = []
        try:
            if hasattr(os, "pidfd_open"):
                for proc in self.watched:
                    if proc.due_at is None and process_alive(proc.pid):
                        with contextlib.suppress(OSError):
                            fds.append(os.pidfd_open(proc.pid))
            if fds:
                select.select(fds, [], [], timeout)
            else:
                time.sleep(timeout)
        except InterruptedError:
            pass
        finally:
            for fd in fds:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Restart the embedded stack's processes that exit.")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    Supervisor(Path(args.state_dir)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
