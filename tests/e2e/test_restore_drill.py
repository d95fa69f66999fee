"""The restore drill, on the embedded stack: a backup that is restored for real.

A batch of users goes through the whole pipeline (sign-up, consent, upload, analysis, recommendations,
review); `spendsense backup`; the stack keeps working (a second batch, through the whole pipeline too);
`spendsense restore` back to the backup point. Then every service must be consistent again, each checked
in its own schema: the first batch's rows exactly as they were at the backup point (the events the
restore sends again are discarded by the inboxes as duplicates, not applied twice), nothing of the second
batch anywhere, every outbox relayed, every queue and dead-letter queue empty, the buckets exactly the
backed-up objects, every trace chain intact and every decision reproducible, and the release smoke test
(infra/release.sh smoke, through the gateway) passing. The times are printed.

Uses the session's stack (the restore pauses its processes, it stops nothing): what other tests left
there before the backup stays, which the restore's own row-count check covers too.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest

from spendsense_cli.pipeline_demo import run_pipeline_demo
from spendsense_shared.embedded.servers import EMULATOR_CREDENTIALS
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")
Stack = support.Stack
SERVICES = support.SERVICES
ROOT = Path(__file__).resolve().parents[2]
BATCH_USERS = 3  # per batch: enough to cross every service; the drill is about the restore, not volume

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]


def run_batch(stack: Stack, work: Path, seed: int) -> list[str]:
    """New users through the whole pipeline; their user ids once every one of them is recommended."""
    result = run_pipeline_demo(
        stack.gateway,
        work,
        admin=stack.admin_credentials(),
        users=BATCH_USERS,
        seed=seed,
        progress=lambda m: None,
    )
    assert result.stages.get("recommended") == BATCH_USERS, result.stages
    accounts = json.loads((work / "demo" / "accounts.json").read_text())
    return [account["user_id"] for account in accounts.values()]


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    result = support.cli(*args, "--state-dir", str(stack.state_dir), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    return result


def database_url(stack: Stack) -> str:
    return str(stack.manifest()["env"]["SPENDSENSE_DATABASE_URL"]).replace("+asyncpg", "")


async def _rows_of(url: str, user_ids: list[str]) -> dict[str, int]:
    """Per service table with a user_id column ("schema.table"): the rows of these users."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.columns "
            "WHERE column_name = 'user_id' AND table_schema = ANY($1::text[]) ORDER BY 1, 2",
            list(SERVICES),
        )
        counts = {}
        for row in tables:
            name = f'"{row["table_schema"]}"."{row["table_name"]}"'
            counts[name] = int(
                await conn.fetchval(
                    f"SELECT count(*) FROM {name} WHERE user_id::text = ANY($1::text[])",  # noqa: S608 - catalog names
                    user_ids,
                )
            )
        return counts
    finally:
        await conn.close()


def rows_of(stack: Stack, user_ids: list[str]) -> dict[str, int]:
    return asyncio.run(_rows_of(database_url(stack), user_ids))


async def _unpublished(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return sum(
            [
                int(await conn.fetchval(f'SELECT count(*) FROM "{s}".outbox WHERE published_at IS NULL'))  # noqa: S608
                for s in SERVICES
            ]
        )
    finally:
        await conn.close()


def aws_client(stack: Stack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws,
        region_name="us-east-1",
        aws_access_key_id=EMULATOR_CREDENTIALS["SPENDSENSE_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["SPENDSENSE_AWS_SECRET_ACCESS_KEY"],
    )


def messages_waiting(stack: Stack) -> dict[str, int]:
    """Messages in every queue and dead-letter queue of the bus (visible or being handled)."""
    sqs = aws_client(stack, "sqs")
    waiting = {}
    for queue in build_topology(stack.manifest()["env"]["SPENDSENSE_ENV"]).queues.values():
        for name in (queue.name, queue.dlq):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            waiting[name] = sum(int(v) for v in attributes.values())
    return waiting


def settled(stack: Stack) -> bool | None:
    """Every outbox relayed and every queue drained: the events the restore sent again are handled."""
    quiet = asyncio.run(_unpublished(database_url(stack))) == 0 and not any(messages_waiting(stack).values())
    return True if quiet else None


def bucket_keys(stack: Stack, bucket: str) -> set[str]:
    s3 = aws_client(stack, "s3")
    return {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    }


def test_a_backup_is_restored_and_every_service_is_consistent_again(stack: Stack) -> None:
    work = Path(tempfile.mkdtemp(prefix="spendsense-drill-"))
    timings: dict[str, float] = {}
    try:
        started = time.monotonic()
        first = run_batch(stack, work / "first", seed=101)
        timings["first batch"] = time.monotonic() - started

        mark = time.monotonic()
        cli(stack, "backup", "--out", str(work / "backup"))
        timings["backup"] = time.monotonic() - mark
        manifest = json.loads((work / "backup" / "manifest.json").read_text())
        at_backup = rows_of(stack, first)
        assert sum(at_backup.values()) > 0

        mark = time.monotonic()
        second = run_batch(stack, work / "second", seed=202)
        timings["second batch"] = time.monotonic() - mark
        after_second = rows_of(stack, second)
        # The second batch reached every service that keeps per-user rows (else the drill proves nothing).
        for service in SERVICES:
            if any(t.startswith(f'"{service}".') for t in at_backup if at_backup[t]):
                assert any(n for t, n in after_second.items() if t.startswith(f'"{service}".')), service

        mark = time.monotonic()
        restored = json.loads(cli(stack, "restore", str(work / "backup")).stdout)
        timings["restore"] = time.monotonic() - mark
        support.wait_for(lambda: settled(stack), support.PIPELINE_WAIT_S, "outboxes relayed, queues drained")
        timings["restore until settled"] = time.monotonic() - mark

        # Each service, in its own schema: the first batch exactly as at the backup point, nothing of the
        # second batch anywhere.
        assert rows_of(stack, first) == at_backup
        assert {t: n for t, n in rows_of(stack, second).items() if n} == {}
        assert restored["backup_point"] == manifest["created_at"]
        assert restored["buckets"]["data"]["deleted"] > 0  # the second batch's uploads
        for kind, bucket in manifest["buckets"].items():
            assert bucket_keys(stack, bucket["name"]) == {o["key"] for o in bucket["objects"]}, kind
        assert not any(messages_waiting(stack).values())

        # The decision traces: every chain intact, every decision reproducible (as an operator checks).
        for user_id in first:
            verified = cli(stack, "traces", "verify", user_id).stdout
            assert "chain: intact" in verified, verified
            assert "decisions reproduce" in verified, verified
        signed_in = support.admin_login(stack)
        with stack.client(signed_in.json()["access_token"]) as admin:
            for user_id in second:  # gone from auth; to the admin too
                assert admin.get(f"/api/v1/users/{user_id}").status_code == 404
            for user_id in first:
                assert admin.get(f"/api/v1/users/{user_id}").status_code == 200
        if shutil.which("jq") and shutil.which("curl"):
            smoke = subprocess.run(
                ["bash", str(ROOT / "infra" / "release.sh"), "smoke"],
                env={"PATH": "/usr/bin:/bin", "NAME": "local", "API_URL": stack.gateway},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert smoke.returncode == 0, smoke.stderr
        timings["drill"] = time.monotonic() - started
        print(
            "\nrestore drill: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
            + f"; backup {manifest['bytes']:,} bytes; restored {sum(restored['rows'].values())} rows, "
            f"{restored['outbox_requeued']} events sent again, queues purged {restored['queues_purged']}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
