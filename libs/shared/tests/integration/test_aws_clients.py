"""AWS clients against the real emulator: a service's platform keeps one client per kind and loop (making
one costs far more than a small call), a plain ``Aws`` makes a new one per use; and the emulator as the
embedded stack runs it answers without logging a line per request."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from spendsense_shared.aws import Aws
from spendsense_shared.embedded.servers import free_port, moto_process, wait_for_moto
from spendsense_shared.storage import ObjectStore


async def test_a_platforms_aws_keeps_one_client_per_kind_until_closed(settings_for, topology):
    aws = Aws(settings_for("features"), keep_clients=True)
    async with aws.client("s3") as first, aws.client("s3") as second, aws.client("sqs") as sqs:
        assert first is second
        assert sqs is not first
    store = ObjectStore(aws, topology.buckets["data"], f"kept-{uuid.uuid4().hex}")
    await store.put_many([("a", b"1"), ("b", b"2")], "application/octet-stream")
    assert await store.get_many(["a", "b"]) == [b"1", b"2"]  # the kept client still works after use

    await aws.close()
    async with aws.client("s3") as after_close:
        assert after_close is not first  # closed clients are not handed out again
        await after_close.head_bucket(Bucket=topology.buckets["data"])
    await aws.close()


async def test_a_plain_aws_makes_a_new_client_each_time(settings_for):
    aws = Aws(settings_for("features"))
    async with aws.client("s3") as first:
        pass
    async with aws.client("s3") as second:
        assert second is not first


def test_the_embedded_emulator_logs_no_line_per_request(tmp_path: Path):
    port = free_port()
    log = tmp_path / "aws.log"
    emulator = moto_process(port, log).start()
    try:
        endpoint = wait_for_moto(emulator, port)
        for _ in range(5):
            assert httpx.get(f"{endpoint}/moto-api/", timeout=10).status_code == 200
    finally:
        emulator.stop()
    assert "GET /moto-api/" not in log.read_text()  # werkzeug's request lines are not written
