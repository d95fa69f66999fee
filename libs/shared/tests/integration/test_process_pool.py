"""A worker told to stop by the embedded stack (``signal_to_stop``: ``spendsense down``, a restart)
drains the work in hand, and its pool of processes (:class:`~spendsense_shared.process_pool.ProcessPool`)
finishes the call that work waits on. The stack used to signal a worker's whole process group: the
pool's process (and the forkserver whose pipe tells the pool its processes are alive) died in the middle
of the call, and the event being drained failed. Checked in a worker of its own, started in a session of
its own as the stack starts one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from spendsense_shared.embedded.servers import signal_to_stop

WORKER = """
import asyncio, os, signal, time
from spendsense_shared.process_pool import ProcessPool

stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # a worker stops gracefully: it drains

async def main():
    pool = ProcessPool("json", 1)
    first = await pool.run(os.getpid)
    call = asyncio.ensure_future(pool.run(time.sleep, 2.0))
    print("busy", flush=True)
    await call
    print("finished", bool(stopping), await pool.run(os.getpid) == first, flush=True)
    pool.close()

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_a_worker_told_to_stop_finishes_the_call_in_its_pool(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"  # a file: the pool's processes import the main module again
    script.write_text(WORKER)
    worker = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the group the stack signals
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "busy"
        time.sleep(0.5)  # the call is in the pool's process
        signal_to_stop("features-worker", worker.pid, signal.SIGTERM)
        out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert worker.returncode == 0, err
    # the call finished, after the worker had been told to stop, in the same process as before
    assert out.split() == ["finished", "True", "True"]
