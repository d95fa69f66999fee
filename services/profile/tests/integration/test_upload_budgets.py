"""The worker's parse of an upload under its budgets, against real PostgreSQL and the S3 emulator: a zip
bomb, a gzip bomb, a file of blank lines and a never-ending stream each end ``failed`` — naming the
budget — within that budget, and nothing of them is kept but the upload's row; a parse that burns CPU or
stalls is stopped by the CPU or the wall-clock budget; a worker that dies mid-parse loses nothing (the
upload is parsed again when the worker is back), and two workers never ingest an upload twice."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import parse_hooks
import pytest
from integration.test_uploads_api import Profile, plaid_user
from plaid_files import to_jsonl
from sqlalchemy import select

from spendsense_cli.synthetic import build_user
from spendsense_profile.adapters.orm import uploads
from spendsense_profile.adapters.parsing import SandboxedParser
from spendsense_profile.adapters.upload_sources import S3UploadSources
from spendsense_profile.bootstrap import SERVICE
from spendsense_profile.domain.ingest import ParsedUpload, parse_upload
from spendsense_profile.domain.uploads import ParseBudget, UploadSource
from spendsense_shared.aws import Aws
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.storage import ObjectStore

MiB = 1024 * 1024
SLACK_S = 20.0  # a busy test machine: process start, the bucket, the database


@pytest.fixture
async def data_bucket(settings_for, isolation_id) -> str:
    """This test's data bucket on the emulator."""
    bucket = build_topology(isolation_id).buckets["data"]
    async with Aws(settings_for("profile")).client("s3") as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


def gzip_members(member: bytes, times: int) -> bytes:
    """A gzip stream of ``times`` copies of ``member``, built in milliseconds: one compressed member
    repeated (a multi-member stream is one valid gzip file)."""
    return gzip.compress(member, compresslevel=9) * times


def zip_of(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


async def profile_with(service_client: Any, data_bucket: str, parse: Any = None, **settings: Any) -> Profile:
    client = await service_client(SERVICE, **settings)
    parser = None
    if parse is not None:
        store = ObjectStore(client.platform.aws, data_bucket, "profile")
        parser = SandboxedParser(S3UploadSources(store), {}, parse=parse)
    return Profile(client, data_bucket, parser=parser)


async def upload_and_work(
    profile: Profile, content: bytes, headers: dict[str, str]
) -> tuple[dict[str, Any], float]:
    """POST as an operator, let the worker process it; the upload's error and how long the worker took."""
    response = await profile.client.post(
        "/api/v1/uploads", content=content, headers={**profile.as_("ops", "operator"), **headers}
    )
    started = time.monotonic()
    assert await profile.work() == 1
    took = time.monotonic() - started
    return await profile.failure(response, "ops", "operator"), took


def budget(error: dict[str, Any]) -> str:
    assert error["code"] == "budget_exceeded", error
    return str(error["details"]["budget"])


# -- bombs -----------------------------------------------------------------------------------------------


async def test_a_zip_bomb_fails_on_its_declared_size_before_anything_is_inflated(service_client, data_bucket):
    profile = await profile_with(service_client, data_bucket, upload_max_decompressed_bytes=64 * MiB)
    bomb = zip_of("export/transactions.csv", b"\n" * (512 * MiB))  # 512 MiB in about half a megabyte
    assert len(bomb) < MiB

    error, took = await upload_and_work(profile, bomb, {"Content-Type": "application/zip"})

    assert budget(error) == "decompressed_bytes"
    assert error["details"]["limit"] == 64 * MiB
    assert took < SLACK_S
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_a_gzip_bomb_is_stopped_once_it_has_inflated_to_the_budget(service_client, data_bucket):
    profile = await profile_with(service_client, data_bucket, upload_max_decompressed_bytes=16 * MiB)
    bomb = gzip_members(b"A" * MiB, 4096)  # 4 GiB of one letter

    error, took = await upload_and_work(profile, bomb, {"Content-Type": "application/gzip"})

    assert budget(error) == "decompressed_bytes"
    assert took < SLACK_S
    await profile.assert_nothing_stored(but_failed_uploads=1)


@pytest.mark.parametrize("container", ["zip", "gzip"])
async def test_a_file_of_blank_lines_fails_within_budget(service_client, data_bucket, container):
    """200 MiB of blank CSV lines in 200 KB: over a decompressed budget it stops there; under it, the
    CPU budget (or the parser's own verdict, whichever comes first) ends it — never a busy worker."""
    blank = b"\n" * (200 * MiB)
    content = zip_of("transactions.csv", blank) if container == "zip" else gzip_members(b"\n" * MiB, 200)
    headers = {"Content-Type": "application/zip" if container == "zip" else "application/gzip"}

    small = await profile_with(service_client, data_bucket, upload_max_decompressed_bytes=64 * MiB)
    error, took = await upload_and_work(small, content, headers)
    assert budget(error) == "decompressed_bytes"
    assert took < SLACK_S
    await small.assert_nothing_stored(but_failed_uploads=1)


@pytest.mark.parametrize("container", ["zip", "gzip"])
async def test_a_file_of_blank_lines_under_the_decompressed_budget_ends_within_the_cpu_budget(
    service_client, migrated, data_bucket, container
):
    profile = await profile_with(
        service_client, data_bucket, upload_max_decompressed_bytes=1024 * MiB, upload_parse_cpu_seconds=2
    )
    content = (
        zip_of("transactions.csv", b"\n" * (200 * MiB))
        if container == "zip"
        else gzip_members(b"\n" * MiB, 200)
    )
    error, took = await upload_and_work(
        profile, content, {"Content-Type": "application/zip" if container == "zip" else "application/gzip"}
    )
    if container == "gzip":  # blank from end to end: told before any parsing
        assert error["code"] == "empty_upload", error
    else:  # the parser, given its CPU budget
        assert error["code"] in ("budget_exceeded", "invalid_upload", "empty_upload"), error
        if error["code"] == "budget_exceeded":
            assert budget(error) == "cpu_seconds"
    assert took < 2 + SLACK_S
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_a_never_ending_stream_of_valid_users_is_stopped_at_the_decompressed_budget(
    service_client, data_bucket
):
    profile = await profile_with(service_client, data_bucket, upload_max_decompressed_bytes=16 * MiB)
    line = to_jsonl([plaid_user("u1")])
    endless = gzip_members(line * (MiB // len(line)), 2048)  # 2 GiB of the same user, again and again

    error, took = await upload_and_work(
        profile, endless, {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    )

    assert budget(error) in ("decompressed_bytes", "cpu_seconds")
    assert took < SLACK_S + 120
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_compressed_uploads_within_budget_are_ingested(service_client, data_bucket):
    profile = await profile_with(service_client, data_bucket, upload_max_decompressed_bytes=MiB)
    await profile.grant("u1")
    users = [plaid_user("u1")]
    me = profile.as_("u1")
    sent = [
        await profile.client.post(
            "/api/v1/uploads",
            content=gzip.compress(to_jsonl(users)),
            headers={**me, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        ),
        await profile.client.post(
            "/api/v1/uploads", files={"file": ("users.jsonl.gz", gzip.compress(to_jsonl(users)))}, headers=me
        ),
    ]
    assert await profile.work() == 2
    for response in sent:
        record = await profile.status(response.json()["upload_id"], "u1", "user")
        assert (record["status"], [u["user_id"] for u in record["users"]]) == ("ingested", ["u1"])
    assert [k for k in await profile.objects() if "/uploads/up_" in k and k.endswith("/source")] == []


# -- the CPU and wall-clock budgets ---------------------------------------------------------------------------


async def test_a_parse_that_burns_cpu_is_stopped_by_the_cpu_budget(service_client, data_bucket):
    profile = await profile_with(service_client, data_bucket, parse_hooks.spin, upload_parse_cpu_seconds=1)
    await profile.grant("u1")
    response = await profile.upload("u1", work=False)

    started = time.monotonic()
    assert await profile.work() == 1
    took = time.monotonic() - started

    error = await profile.failure(response, "u1")
    assert error == {
        "code": "budget_exceeded",
        "message": "parsing stopped: the upload exceeds its cpu_seconds budget (1)",
        "details": {"budget": "cpu_seconds", "limit": 1},
    }
    assert took < 1 + SLACK_S
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_a_parse_that_stalls_is_stopped_by_the_wall_clock_budget(service_client, data_bucket):
    profile = await profile_with(
        service_client, data_bucket, parse_hooks.sleep_forever, upload_parse_wall_seconds=2
    )
    await profile.grant("u1")
    response = await profile.upload("u1", work=False)

    started = time.monotonic()
    assert await profile.work() == 1
    took = time.monotonic() - started

    error = await profile.failure(response, "u1")
    assert (error["code"], error["details"]) == ("budget_exceeded", {"budget": "wall_seconds", "limit": 2.0})
    assert 2 <= took < 2 + SLACK_S
    await profile.assert_nothing_stored(but_failed_uploads=1)


# -- crashes and concurrency --------------------------------------------------------------------------------


WORKER = """
import asyncio, sys
import parse_hooks
from spendsense_profile.adapters.parsing import SandboxedParser
from spendsense_profile.adapters.upload_sources import S3UploadSources
from spendsense_profile.bootstrap import SERVICE, upload_jobs
from spendsense_shared.storage import ObjectStore

async def main():
    platform = SERVICE.platform()
    store = ObjectStore(platform.aws, platform.topology.buckets["data"], "profile")
    parser = SandboxedParser(S3UploadSources(store), {}, parse=parse_hooks.sleep_forever)
    await upload_jobs(platform, SERVICE.bootstrap(platform, parser=parser)).run()

if __name__ == "__main__":
    asyncio.run(main())
"""


def worker_env(settings: Any) -> dict[str, str]:
    def value(name: str) -> str:
        raw = getattr(settings, name)
        return raw.get_secret_value() if hasattr(raw, "get_secret_value") else str(raw)

    names = ("env", "database_url", "db_schema", "redis_url", "aws_endpoint_url")
    names += ("aws_access_key_id", "aws_secret_access_key", "log_json")
    return {
        **os.environ,
        **{f"SPENDSENSE_{n.upper()}": value(n) for n in names},
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }


async def attempts_of(profile: Profile, upload_id: str) -> int:
    async with profile.db.engine.connect() as conn:
        row = (await conn.execute(select(uploads.c.attempts).where(uploads.c.upload_id == upload_id))).one()
    return int(row.attempts)


async def test_a_worker_that_dies_mid_parse_loses_nothing_and_the_upload_is_parsed_again(
    service_client, data_bucket, tmp_path: Path
):
    profile = await profile_with(service_client, data_bucket)
    await profile.grant("u1")
    response = await profile.upload("u1", work=False)
    upload_id = response.json()["upload_id"]
    script = tmp_path / "stalling_worker.py"
    script.write_text(WORKER)
    worker = subprocess.Popen(  # a worker whose parse never ends
        [sys.executable, str(script)],
        env=worker_env(profile.platform.settings),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "worker.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        while await attempts_of(profile, upload_id) == 0:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker never took the upload"
            await asyncio.sleep(0.2)
        assert await profile.work() == 0  # it holds the upload: nobody else takes it
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its parsing process die at once
        worker.wait()

    record = await profile.status(upload_id, "u1", "user")
    assert record["status"] == "received"  # nothing lost

    deadline = time.monotonic() + 30
    while not await profile.work():  # the dead worker's lock goes with its connection
        assert time.monotonic() < deadline, "the upload was never taken again"
        await asyncio.sleep(0.2)
    record = await profile.status(upload_id, "u1", "user")
    assert record["status"] == "ingested"
    assert await attempts_of(profile, upload_id) == 2
    assert [e["data"]["upload_id"] for e in await profile.upload_events()] == [upload_id]
    assert not [k for k in await profile.objects() if k.endswith("/source")]


async def test_two_workers_at_once_ingest_an_upload_once(service_client, data_bucket):
    profile = await profile_with(service_client, data_bucket)
    other = Profile(profile.client, data_bucket)  # a second worker on the same database and bucket
    await profile.grant("u1", "u2")
    for user in ("u1", "u2"):
        response = await profile.upload(user, work=False)
        assert response.status_code == 202, response.text

    done = await asyncio.gather(profile.work(), other.work(), profile.work())

    assert sum(done) >= 2
    events = await profile.upload_events()
    assert sorted(e["user_id"] for e in events) == ["u1", "u2"]  # one announcement each
    async with profile.db.engine.connect() as conn:
        rows = (await conn.execute(select(uploads.c.status, uploads.c.source_key))).all()
    assert sorted(rows) == [("ingested", None), ("ingested", None)]
    assert json.dumps(sorted(await profile.objects())).count("/source") == 0


async def test_the_parsed_tables_come_back_from_the_parsing_process_whole(service_client, data_bucket):
    """The parsing process hands its tables over as Arrow IPC files beside the upload, mapped by the
    worker: the same tables as parsed in this process, readable after the upload's directory is gone."""
    client = await service_client(SERVICE)
    store = ObjectStore(client.platform.aws, data_bucket, "profile")
    sources = S3UploadSources(store)
    users = [build_user(k, seed=5)[0] for k in range(3)]
    content = gzip.compress(to_jsonl(users))

    async def chunks() -> Any:
        yield content

    await sources.put("uploads/handover/source", chunks(), "application/gzip")
    parser = SandboxedParser(sources, {})
    outcome = await parser.parse(
        UploadSource("uploads/handover/source", "users.jsonl.gz", "application/gzip"),
        ParseBudget(cpu_seconds=60, wall_seconds=120, decompressed_bytes=64 * MiB),
        default_user_id="ops",
    )
    assert isinstance(outcome, ParsedUpload)
    expected = parse_upload(to_jsonl(users), filename="users.jsonl", default_user_id="ops")
    assert outcome.ok, outcome.problems
    assert expected.ok
    assert outcome.user_ids == expected.user_ids
    assert outcome.tables.keys() == expected.tables.keys()
    for name, table in expected.tables.items():
        assert outcome.tables[name].equals(table), name
    assert outcome.tables["transactions"].num_rows > 0
