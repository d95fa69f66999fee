"""A batch read from S3 (the emulator) where one object is missing: the caller gets the error, and
nothing is left behind — no read still running on the closed client, no session left unclosed
("Unclosed client session", which aiohttp reports when it collects one)."""

from __future__ import annotations

import asyncio
import gc

import pytest
from botocore.exceptions import ClientError

from spendsense_shared.aws import Aws
from spendsense_shared.storage import ObjectStore


async def test_a_failed_read_in_a_batch_cancels_the_others_and_leaks_no_session(settings_for, topology):
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(str(context.get("message"))))
    store = ObjectStore(Aws(settings_for("profile")), topology.buckets["data"], "leaks")
    names = await store.put_many([(f"k{n}", b"x" * 50_000) for n in range(40)], "application/octet-stream")
    names = [n.removeprefix("leaks/") for n in names]

    with pytest.raises(ClientError) as raised:
        await store.get_many([*names[:20], "missing", *names[20:]], concurrency=8)

    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []  # every other read finished or was cancelled before the error came out
    gc.collect()
    await asyncio.sleep(0.1)
    assert not [m for m in reported if "Unclosed" in m], reported
