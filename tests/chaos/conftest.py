"""The chaos tests' OWN embedded stack (they kill its processes: never the e2e session's shared one), one
per module, started on free ports with a short reconcile interval; the scenarios run in sequence on it."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "chaos_support.py", "spendsense_chaos_support")
e2e = load_beside(
    str(Path(__file__).parents[1] / "e2e" / "conftest.py"), "e2e_support.py", "spendsense_e2e_support"
)

# Each scenario uploads one batch of all of them (one chunk of the profile's 100-user chunks either way);
# bench/chaos.py runs the same scenarios with 100 users by default.
USERS = 50
READY_LIMIT_S = 300
# Stuck work is looked for every 10 s and counts as stuck after 60 s (production: 60 s and 5 minutes).
# Announcing an upload that was only slow (a loaded machine) is harmless: users analyzed are skipped.
STACK_ENV = {"SPENDSENSE_RECONCILE_INTERVAL_S": "10", "SPENDSENSE_RECONCILE_STUCK_AFTER_S": "60"}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for figures in support.FIGURES:
        terminalreporter.write_line(f"chaos: {figures.line()}")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def chaos() -> Iterator[object]:
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-chaos-"))
    running = e2e.Stack(state_dir, e2e.free_block(9))
    try:
        for _ in range(3):  # another process may take a port of the block before a server binds it
            result = e2e.cli(
                "up",
                *running.args,
                "--timeout",
                str(READY_LIMIT_S),
                env=STACK_ENV,
                timeout=READY_LIMIT_S + 100,
            )
            if result.returncode == 0 or "already in use" not in result.stdout + result.stderr:
                break
            running = e2e.Stack(state_dir, e2e.free_block(9))
        assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
        stack = support.ChaosStack(state_dir, running.gateway, running.admin_credentials())
        started = time.monotonic()
        stack.sign_up(USERS, print)
        print(f"signed up {USERS} users in {time.monotonic() - started:.1f} s")
        yield stack
    finally:
        e2e.cli("down", "--state-dir", str(state_dir))
        shutil.rmtree(state_dir, ignore_errors=True)
