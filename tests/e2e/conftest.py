"""ONE embedded stack for every e2e module: ``spendsense up`` on free ports once per session, with a
local OAuth/OIDC provider (``services/auth/tests/oauth_provider.py``) standing in for Google."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")
oauth_provider = load_beside(
    str(Path(__file__).parents[2] / "services" / "auth" / "tests" / "integration"),
    "oauth_provider.py",
    "spendsense_auth_tests_oauth_provider",
)

# Tests that stop the shared stack run last, whatever the selection order.
STOPS_THE_STACK = ("test_status_then_down_leaves_no_process_behind",)
# Readiness is waited for, not asserted on: a busy machine (CI, other test sessions) starts slower, and
# that makes the session slower, never red. How long it took is reported at the end of the session.
READY_LIMIT_S = 300
STARTED: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STARTED:
        terminalreporter.write_line(
            f"e2e stack: `spendsense up` returned after {STARTED['up_s']:.1f} s, every service ready through "
            f"the gateway after {STARTED['ready_s']:.1f} s (limit {READY_LIMIT_S} s)"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [i for i in items if i.name in STOPS_THE_STACK]
    if last:
        items[:] = [i for i in items if i.name not in STOPS_THE_STACK] + last


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    # Not under pytest's basetemp: run as root, PostgreSQL runs as another user that must traverse the
    # state directory's parents, and every pytest session (others may run concurrently) resets
    # /tmp/pytest-of-<user> to mode 0700.
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-e2e-"))
    providers = oauth_provider.LocalProviders().start()
    running = support.Stack(state_dir, support.free_block(9))
    env = {
        # Sign-in with Google points at the local provider; GitHub, Facebook and Apple stay unconfigured.
        **{f"SPENDSENSE_{k.upper()}": str(v) for k, v in providers.settings("google").items()},
        # Every test signs in from 127.0.0.1: one address for the whole session, which the per-address
        # login limit (30 a minute) is not meant for. The per-account limit stays the shipped one.
        "SPENDSENSE_RATE_LIMIT_LOGIN_PER_IP": "1000",
    }
    try:
        for _ in range(3):  # another process may take a port of the block before a server binds it
            started = time.monotonic()
            result = support.cli(
                "up", *running.args, "--timeout", str(READY_LIMIT_S), env=env, timeout=READY_LIMIT_S + 100
            )
            if result.returncode == 0 or "already in use" not in result.stdout + result.stderr:
                break
            running = support.Stack(state_dir, support.free_block(9))
        running.providers = providers
        running.up_seconds = time.monotonic() - started
        running.up_result = result
        assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
        STARTED.update(up_s=running.up_seconds, ready_s=float(running.manifest().get("ready_after_s", 0)))
        yield running
    finally:
        support.cli("down", "--state-dir", str(running.state_dir))
        providers.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
