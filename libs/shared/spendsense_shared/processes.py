"""Child processes for CPU-bound work (parsing an upload, under budgets) from a ``forkserver``.

A forkserver is a clean, single-threaded process that imported the given modules once: each child forks
from it in milliseconds with those imports done, and holds nothing of its parent (no sockets, no event
loop, no threads). Every child runs its parent's main module again as ``__mp_main__`` (multiprocessing's
"spawn" semantics); preloading that module too makes that cost nothing. A main module run as ``-m``
must keep its work behind ``if __name__ == "__main__"`` (every worker module does).
"""

from __future__ import annotations

import multiprocessing
import sys
from multiprocessing.context import ForkServerContext


def forkserver_context(*modules: str) -> ForkServerContext:
    """The forkserver start method, preloading ``modules`` and the main module (when it is one)."""
    context = multiprocessing.get_context("forkserver")
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    context.set_forkserver_preload([*modules, *([name] if name and not name.endswith("__main__") else [])])
    return context


def start_forkserver() -> None:
    """Start the forkserver now, in the background (it imports its preloaded modules while the caller
    goes on), rather than at the first child: a worker's first upload then does not wait ~1 s for it."""
    from multiprocessing import forkserver

    forkserver.ensure_running()
