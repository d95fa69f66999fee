"""The analysis in a pool of processes gives the reports of the analysis in the worker's own thread, and a
pool whose processes died fails the batch at hand (to be retried) and serves the next one again."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.analysis_pool import AnalysisProcessDied, ProcessPoolAnalyzer
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.handlers.analysis import analyze_in_thread
from spendsense_profile.domain.ingest import parse_upload

USERS = [build_user(i, seed=3)[0] for i in range(6)]


@pytest.fixture(scope="module")
def tables():
    parsed = parse_upload(json.dumps({"users": USERS}).encode(), filename="users.json")
    assert parsed.ok, parsed.problems
    return parsed.tables


async def test_the_pool_writes_the_reports_of_the_analysis_in_a_thread(tables):
    rule_set = load_rule_set()
    wanted = {u["user_id"] for u in USERS[1:5]}
    pooled = await ProcessPoolAnalyzer(2)(tables, rule_set, wanted)
    assert pooled == await analyze_in_thread(tables, rule_set, wanted)
    assert sorted(r["user_id"] for r in pooled) == sorted(wanted)


async def test_a_pool_whose_processes_died_fails_one_batch_and_serves_the_next(tables):
    analyzer, rule_set = ProcessPoolAnalyzer(1), load_rule_set()
    wanted = {USERS[0]["user_id"]}
    first = await analyzer(tables, rule_set, wanted)
    [pid] = analyzer.pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the pool notices the death on its own thread
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(AnalysisProcessDied):
        await analyzer(tables, rule_set, wanted)
    assert await analyzer(tables, rule_set, wanted) == first
    assert analyzer.pids() != [pid]
