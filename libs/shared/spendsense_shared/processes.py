"""Child processes for CPU-bound work (parsing an upload, under budgets) from a ``forkserver``.

A forkserver is a clean, single-threaded process that imported the given modules once: each child forks
from it in milliseconds with those imports done, and holds nothing of its parent (no sockets, no event
loop, no threads). Every child runs its parent's main module again as ``__mp_main__`` (multiprocessing's
"spawn" semantics); preloading that module too makes that cost nothing. A main module run as ``-m``
must keep its work behind ``if __name__ == "__main__"`` (every worker module does).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # multiprocessing is imported where a forkserver is wanted (12 ms: not in `analyze`)
    from multiprocessing.context import ForkServerContext


def forkserver_context(*modules: str) -> ForkServerContext:
    """The forkserver start method, preloading ``modules`` and the main module (when it is one)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    context.set_forkserver_preload([*modules, *([name] if name and not name.endswith("__main__") else [])])
    return context


def use_system_allocator() -> None:
    """Arrow's buffers from the C library's ``malloc`` rather than Arrow's default pool (mimalloc), for the
    rest of this process. Over a pass of allocating and freeing large buffers, mimalloc hands pages back to
    the system and faults them in again: twice the kernel time for ``spendsense analyze`` on half of a
    230 MB document (0.65-0.8 s of system time against 0.3 s), 0.5-0.65 s against 0.27-0.36 s for an
    upload's parsing process, 0.4 s against 0.25 s over the analysis pool's first seven chunks. For
    processes that do one large job, or the same one again and again."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def start_forkserver() -> None:
    """Start the forkserver now, in the background (it imports its preloaded modules while the caller
    goes on), rather than at the first child: a worker's first upload then does not wait ~1 s for it."""
    from multiprocessing import forkserver

    forkserver.ensure_running()
