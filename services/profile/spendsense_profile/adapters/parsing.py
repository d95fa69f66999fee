"""The upload parser port on a child process: the received bytes are fetched to a temporary file, and a
fresh process (:mod:`spendsense_profile.adapters.parse_child`) parses them under the upload's budgets.

Why a process and not a thread: a thread cannot be stopped, and a zip bomb or a pathological file must
be. The child limits its own CPU time (``RLIMIT_CPU``: the kernel ends it with SIGXCPU) and meters the
bytes it inflates; this side enforces the wall-clock budget (a parse that stalls is killed) and tells
the outcomes apart by how the child ended:

* it sent an outcome → that outcome (parsed, blank, over the decompressed budget, parser bug);
* killed by SIGXCPU → over the CPU budget;
* still running at the wall-clock deadline → killed, over the wall-clock budget;
* killed by SIGTERM, SIGINT or SIGKILL (the worker's shutdown, the OOM killer) → :class:`ParseInterrupted`:
  the upload stays ``received`` and a later attempt parses it again;
* any other end → :class:`ParserCrashed`.

Processes come from a ``forkserver`` that has imported the parser (and the worker's main module) once,
so each parse starts in milliseconds from a clean, single-threaded process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from spendsense_profile.adapters import parse_child
from spendsense_profile.adapters.upload_sources import S3UploadSources
from spendsense_profile.domain.uploads import (
    BudgetExceeded,
    ParseBudget,
    ParseOutcome,
    ParserCrashed,
    UploadSource,
)
from spendsense_profile.handlers.unit_of_work import ParseInterrupted
from spendsense_shared.logging import get_logger
from spendsense_shared.processes import forkserver_context

log = get_logger(__name__)
INTERRUPTED = {-signal.SIGTERM, -signal.SIGINT, -signal.SIGKILL}
POLL_S = 0.25  # how quickly a cancelled parse notices


class SandboxedParser:
    def __init__(
        self,
        sources: S3UploadSources,
        fx_rates: Mapping[str, float],
        *,
        parse: parse_child.Parse | None = None,
        start_method: str = "forkserver",
    ):
        """``parse``: the parser (``parse_upload`` by default; a module-level function with its signature,
        so the child can import it)."""
        self.sources = sources
        self.fx_rates = dict(fx_rates)
        self.parse_function = parse
        self.context = (
            # pandas too: pyarrow's compute functions import it on first use, which cost every parsing
            # process 0.3 s (a quarter of a 500,000-transaction parse) before it was preloaded
            forkserver_context(parse_child.__name__, "pandas")
            if start_method == "forkserver"
            else multiprocessing.get_context(start_method)
        )

    async def parse(self, source: UploadSource, budget: ParseBudget, *, default_user_id: str) -> ParseOutcome:
        scratch = scratch_dir(3 * budget.decompressed_bytes)
        with tempfile.TemporaryDirectory(prefix="spendsense-upload-", dir=scratch) as workdir:
            path = Path(workdir) / "source"
            await self.sources.download(source.name, path)
            stop = threading.Event()
            work = asyncio.ensure_future(
                asyncio.to_thread(self._run, path, source, budget, default_user_id, stop)
            )
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                stop.set()  # the thread kills the child and returns within POLL_S
                with contextlib.suppress(BaseException):
                    await work
                raise

    def _run(
        self,
        path: Path,
        source: UploadSource,
        budget: ParseBudget,
        default_user_id: str,
        stop: threading.Event,
    ) -> ParseOutcome:
        receiver, sender = self.context.Pipe(duplex=False)
        child = self.context.Process(  # type: ignore[union-attr]
            target=parse_child.main,
            args=(
                sender,
                str(path),
                source.filename,
                source.content_type,
                self.fx_rates,
                default_user_id,
                budget.cpu_seconds,
                budget.decompressed_bytes,
                self.parse_function,
            ),
            name="spendsense-upload-parse",
        )
        started = time.monotonic()
        child.start()
        sender.close()
        try:
            outcome = self._await_outcome(child, receiver, started + budget.wall_seconds, stop)
            if outcome is None:  # killed by the deadline
                log.warning("upload_parse_stopped", budget="wall_seconds", limit=budget.wall_seconds)
                return BudgetExceeded("wall_seconds", budget.wall_seconds)
            child.join(timeout=10)  # it exits once it has sent its outcome
            if isinstance(outcome, parse_child.TablesOnDisk):
                return outcome.load()
            if outcome is not _NOTHING:
                return cast(ParseOutcome, outcome)
            code = child.exitcode
            if code == -signal.SIGXCPU:
                log.warning("upload_parse_stopped", budget="cpu_seconds", limit=budget.cpu_seconds)
                return BudgetExceeded("cpu_seconds", budget.cpu_seconds)
            if code in INTERRUPTED:
                raise ParseInterrupted(f"the parsing process was killed (exit code {code})")
            return ParserCrashed(f"the parsing process ended with exit code {code} and no result")
        finally:
            if child.is_alive():
                child.kill()
            child.join(timeout=10)
            receiver.close()
            log.info(
                "upload_parse_process_ended", exit_code=child.exitcode, s=round(time.monotonic() - started, 2)
            )

    @staticmethod
    def _await_outcome(
        child: multiprocessing.process.BaseProcess, receiver: object, deadline: float, stop: threading.Event
    ) -> object:
        """The child's outcome; ``_NOTHING`` when it ended without one; None when the deadline passed."""
        while True:
            if stop.is_set():
                child.kill()
                raise ParseInterrupted("the worker is stopping")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                child.kill()
                return None
            if receiver.poll(min(remaining, POLL_S)):  # type: ignore[attr-defined]
                try:
                    return receiver.recv()  # type: ignore[attr-defined]
                except EOFError:  # it ended without sending
                    return _NOTHING


_NOTHING = object()
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - only a parent: each upload gets a private mkdtemp directory


def scratch_dir(needed_bytes: int) -> str | None:
    """Where an upload's working files go (the received bytes, the inflated upload, the parsed tables):
    memory-backed ``/dev/shm`` when it has room for ``needed_bytes``, else the system's temporary
    directory (None). The files live for a second or two; on a disk, writing them back cost the parsing
    process 0.3-0.5 s for a 230 MB upload (measured in the upload benchmark: 2.0-2.7 s against 1.5-1.8 s).
    A container's ``/dev/shm`` is 64 MB unless configured: too small, and passed over."""
    try:
        stats = os.statvfs(SHARED_MEMORY)
    except OSError:
        return None
    return str(SHARED_MEMORY) if stats.f_bavail * stats.f_frsize >= needed_bytes else None
