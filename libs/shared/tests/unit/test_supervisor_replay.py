"""The supervisor restarting the AWS emulator: once it has provisioned the bus again it has the outbox
events sent again from the moment the emulator went down (minus the window); not when provisioning
failed (the bus is not there to take them), and then from the first time it went down."""

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

from spendsense_shared.embedded.supervisor import Supervisor


class Recording(Supervisor):
    """The supervisor with the emulator's provisioning and the database replaced by records."""

    provisions: list[bool]  # what each provisioning answers, in turn

    def __init__(self, state_dir: Path, provisions: list[bool]):
        super().__init__(state_dir)
        self.provisions = provisions
        self.resent_from: list[float] = []

    def _provision(self) -> bool:
        return self.provisions.pop(0)

    def _resend_outbox(self, down_at: float) -> None:
        self.resent_from.append(down_at)

    def kill_and_restart(self) -> None:
        [proc] = self.watched
        (self.restart_dir / "aws").touch()  # at once, without the backoff
        os.kill(proc.pid, signal.SIGKILL)
        os.waitpid(proc.pid, 0)  # our child (not reaped by the supervisor's waitpid(-1): pytest's too)
        before = proc.entry.get("restarts", 0)
        deadline = time.monotonic() + 10
        while proc.entry.get("restarts", 0) == before and time.monotonic() < deadline:
            self._look_at(proc, time.monotonic())
            time.sleep(0.05)


@pytest.fixture
def aws_dir(tmp_path: Path) -> Iterator[Path]:
    argv = [sys.executable, "-c", "import time; time.sleep(600)"]
    first = subprocess.Popen(argv, start_new_session=True)
    (tmp_path / "logs").mkdir()
    manifest = {
        "env": {},
        "urls": {},
        "launch": "spawn",
        "processes": [
            {
                "name": "aws",
                "pid": first.pid,
                "log": str(tmp_path / "logs" / "aws.log"),
                "restarts": 0,
                "server": {"argv": argv, "env": {}, "user": None},
            }
        ],
    }
    (tmp_path / "stack.json").write_text(json.dumps(manifest))
    yield tmp_path
    last = json.loads((tmp_path / "stack.json").read_text())["processes"][0]["pid"]
    if last != first.pid:  # the last one the supervisor started
        os.kill(last, signal.SIGKILL)
        os.waitpid(last, 0)
    first.kill()
    first.wait()


def test_the_outbox_is_sent_again_once_the_emulator_is_provisioned_again(aws_dir: Path) -> None:
    supervisor = Recording(aws_dir, provisions=[False, True])
    first_down = time.time()
    supervisor.kill_and_restart()
    assert supervisor.resent_from == []  # provisioning failed: nothing to send to
    supervisor.kill_and_restart()
    [down_at] = supervisor.resent_from
    assert first_down <= down_at < first_down + 5  # from the first time it went down
    supervisor.provisions.append(True)
    later = time.time()
    supervisor.kill_and_restart()
    assert supervisor.resent_from[1] >= later  # a new outage: counted from its own start
