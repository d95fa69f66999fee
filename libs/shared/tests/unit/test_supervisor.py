"""The embedded stack's supervisor on processes of its own kind (a server entry: a command line): one that
exits is started again and counted in ``stack.json``; a held one stays down until released; its own
SIGTERM stops the supervisor and nothing it supervises."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendsense_shared.embedded.servers import process_alive, wait_exited


def entry(state_dir: Path) -> dict[str, object]:
    manifest = json.loads((state_dir / "stack.json").read_text())
    return dict(manifest["processes"][0])


def eventually(check, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Path]:
    argv = [sys.executable, "-c", "import time; time.sleep(600)"]
    first = subprocess.Popen(argv, start_new_session=True)
    (tmp_path / "logs").mkdir()
    manifest = {
        "env": {},
        "urls": {},
        "launch": "spawn",
        "processes": [
            {
                "name": "sleeper",
                "pid": first.pid,
                "log": str(tmp_path / "logs" / "sleeper.log"),
                "stop_signal": int(signal.SIGTERM),
                "restarts": 0,
                "server": {"argv": argv, "env": {}, "user": None},
            }
        ],
    }
    (tmp_path / "stack.json").write_text(json.dumps(manifest))
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "spendsense_shared.embedded.supervisor", "--state-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert eventually(lambda: "supervisor" in json.loads((tmp_path / "stack.json").read_text()))
    try:
        yield tmp_path
    finally:
        supervisor.terminate()
        supervisor.wait(10)
        pid = int(entry(tmp_path)["pid"])
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        first.kill()
        first.wait()


def test_an_exited_process_is_started_again_and_counted(supervised: Path) -> None:
    old = int(entry(supervised)["pid"])
    os.killpg(old, signal.SIGKILL)

    assert eventually(lambda: int(entry(supervised)["pid"]) != old)
    restarted = entry(supervised)
    assert restarted["restarts"] == 1
    assert process_alive(int(restarted["pid"]))  # type: ignore[call-overload]


def test_a_held_process_stays_down_until_released(supervised: Path) -> None:
    (supervised / "supervisor" / "hold" / "sleeper").touch()
    old = int(entry(supervised)["pid"])
    os.killpg(old, signal.SIGKILL)
    time.sleep(2)  # the supervisor would have restarted it after 0.5 s
    assert int(entry(supervised)["pid"]) == old

    (supervised / "supervisor" / "hold" / "sleeper").unlink()
    assert eventually(lambda: int(entry(supervised)["pid"]) != old)


def test_stopping_the_supervisor_leaves_what_it_supervises_running(supervised: Path) -> None:
    pid = int(entry(supervised)["pid"])
    supervisor = int(json.loads((supervised / "stack.json").read_text())["supervisor"]["pid"])
    os.kill(supervisor, signal.SIGTERM)
    assert wait_exited(supervisor, 10)
    assert process_alive(pid)
