"""Children from the forkserver have its preloaded modules imported before they run a line (checked in
a fresh interpreter: a forkserver already running, e.g. the upload parser's in this test process, keeps
the modules it was started with)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import sys
from spendsense_shared.processes import forkserver_context, start_forkserver

def imported(name):
    return name in sys.modules

if __name__ == "__main__":
    context = forkserver_context("spendsense_shared.dataset")
    start_forkserver()
    with context.Pool(1) as pool:
        print(pool.apply(imported, ("spendsense_shared.dataset",)), pool.apply(imported, ("pandas",)))
"""


def test_a_child_of_the_started_forkserver_has_the_preloaded_modules(tmp_path: Path) -> None:
    script = tmp_path / "children.py"  # a file: children import the main module again to find `imported`
    script.write_text(PROGRAM)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
