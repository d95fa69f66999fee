"""The worker's analysis in a pool of processes (``AnalysisPool``) gives the very reports of the analysis
on a thread, for chunks analyzed side by side; a pool whose process was killed fails the calls waiting on
it, and the next call gets a new pool."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import date

import pytest

from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.analysis_pool import NICENESS, AnalysisPool
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.domain.snapshots import Snapshots
from spendsense_features.handlers.analysis import analyze_on_a_thread
from spendsense_profile.domain.ingest import parse_upload

RULES = load_rule_set()


def _tables(first: int, count: int) -> dict:
    users = [build_user(k, seed=9, as_of=date(2026, 10, 31))[0] for k in range(first, first + count)]
    parsed = parse_upload("".join(json.dumps(u) + "\n" for u in users).encode(), filename="u.jsonl")
    assert parsed.ok, parsed.problems
    return parsed.tables


def _snapshots(first: int, count: int) -> Snapshots:
    return Snapshots.of_tables(_tables(first, count))


async def test_the_pool_gives_the_reports_of_a_thread() -> None:
    pool = AnalysisPool(2)
    try:
        chunks = [_snapshots(0, 3), _snapshots(3, 4), _snapshots(7, 2)]
        ids = [sorted(set(t.tables()["accounts"]["user_id"].to_pylist())) for t in chunks]
        in_pool = await asyncio.gather(*(pool(t, RULES, u) for t, u in zip(chunks, ids, strict=True)))
        on_thread = [await analyze_on_a_thread(t, RULES, u) for t, u in zip(chunks, ids, strict=True)]
        assert in_pool == on_thread
        assert [[user.user_id for user in scored] for scored in in_pool] == ids
        only = await pool(chunks[1], RULES, ids[1][:2])  # only the users asked for
        assert [user.user_id for user in only] == ids[1][:2]
    finally:
        pool.close()


async def test_the_pools_processes_run_below_the_worker() -> None:
    """The analysis ahead yields to the merge it runs beside (``NICENESS``)."""
    pool = AnalysisPool(1)
    try:
        niceness = await asyncio.wrap_future(pool._running().submit(os.nice, 0))
        assert niceness == os.nice(0) + NICENESS > os.nice(0)
    finally:
        pool.close()


async def test_a_killed_process_fails_its_call_and_the_next_call_gets_a_new_pool() -> None:
    from concurrent.futures.process import BrokenProcessPool

    pool = AnalysisPool(1)
    tables = _snapshots(0, 2)
    users = sorted(set(tables.tables()["accounts"]["user_id"].to_pylist()))
    try:
        expected = await pool(tables, RULES, users)
        running = pool._running()
        [pid] = list(running._processes)
        os.kill(pid, signal.SIGKILL)

        async def until_broken() -> None:
            for _ in range(50):  # until the pool has noticed
                await pool(tables, RULES, users)
                await asyncio.sleep(0.1)

        with pytest.raises(BrokenProcessPool):
            await until_broken()
        assert await pool(tables, RULES, users) == expected
        assert pool._running() is not running
    finally:
        pool.close()


WORKER = """
import asyncio, json, sys
from datetime import date
from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.analysis_pool import AnalysisPool, start_analysis_server
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.domain.snapshots import Snapshots
from spendsense_profile.domain.ingest import parse_upload

start_analysis_server()
user = build_user(0, seed=9, as_of=date(2026, 10, 31))[0]
tables = Snapshots.of_tables(parse_upload(json.dumps(user).encode()).tables)
pool = AnalysisPool(2)
asyncio.run(pool(tables, load_rule_set(), [user["user_id"]]))
print(json.dumps(list(pool._running()._processes)), flush=True)
sys.stdin.read()  # until killed
"""


def test_the_pools_processes_end_when_the_worker_is_killed_outright() -> None:
    import subprocess
    import sys
    import time

    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        pids = json.loads(worker.stdout.readline())
        assert len(pids) >= 1
        assert all(_alive(pid) for pid in pids)
        worker.kill()  # SIGKILL: no atexit, no shutdown of the pool
        worker.wait()
        deadline = time.monotonic() + 120  # a busy machine: generous
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids)
    finally:
        worker.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
