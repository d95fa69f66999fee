"""Cache on real Redis and ObjectStore on the S3 emulator: per-service prefixes keep services apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from botocore.exceptions import ClientError

from spendsense_shared.aws import Aws
from spendsense_shared.cache import Cache
from spendsense_shared.storage import ObjectStore


@pytest.fixture
async def caches(infra, isolation_id) -> AsyncIterator[dict[str, Cache]]:
    opened = {service: Cache(infra.redis_url, service, isolation_id) for service in ("profile", "features")}
    yield opened
    for cache in opened.values():
        keys = [k async for k in cache.client.scan_iter(match=f"{cache.prefix}*")]
        if keys:
            await cache.client.delete(*keys)
        await cache.close()


async def test_cache_set_get_delete(caches):
    cache = caches["profile"]

    await cache.set("user", "u1", "summary", value=b"\x00binary\xff")
    assert await cache.get("user", "u1", "summary") == b"\x00binary\xff"

    assert await cache.delete("user", "u1", "summary") == 1
    assert await cache.get("user", "u1", "summary") is None
    assert await cache.delete("user", "u1", "summary") == 0


async def test_cache_stores_text_as_utf8_bytes(caches):
    await caches["profile"].set("greeting", value="héllo")

    assert await caches["profile"].get("greeting") == "héllo".encode()


async def test_cache_keys_carry_the_env_and_service_prefix(caches, isolation_id):
    cache = caches["profile"]

    await cache.set("user", "u1", value=b"v")

    assert cache.key("user", "u1") == f"spendsense:{isolation_id}:profile:user:u1"
    assert await cache.client.get(f"spendsense:{isolation_id}:profile:user:u1") == b"v"
    assert await cache.client.get("user:u1") is None


async def test_cache_ttl_is_applied(caches):
    cache = caches["profile"]

    await cache.set("short", value=b"v", ttl_s=60)
    await cache.set("forever", value=b"v")

    assert 0 < await cache.client.ttl(cache.key("short")) <= 60
    assert await cache.client.ttl(cache.key("forever")) == -1


async def test_two_services_do_not_see_each_others_keys(caches):
    profile, features = caches["profile"], caches["features"]

    await profile.set("user", "u1", value=b"profile's")
    await features.set("user", "u1", value=b"features'")

    assert await profile.get("user", "u1") == b"profile's"
    assert await features.get("user", "u1") == b"features'"
    assert await features.delete("user", "u1") == 1
    assert await profile.get("user", "u1") == b"profile's"


async def test_cache_ping_answers(caches):
    assert await caches["features"].ping() is True


@pytest.fixture
def aws(settings_for) -> Aws:
    return Aws(settings_for("profile"))


async def test_buckets_exist_after_provisioning(aws, topology):
    async with aws.client("s3") as s3:
        names = {b["Name"] for b in (await s3.list_buckets())["Buckets"]}

    assert set(topology.buckets.values()) <= names


async def test_object_store_put_get_list_delete_prefix(aws, topology):
    store = ObjectStore(aws, topology.buckets["data"], "profile/uploads/")

    key = await store.put("u1/2026-01.parquet", b"PAR1 one", content_type="application/vnd.apache.parquet")
    await store.put("u1/2026-02.parquet", b"PAR1 two")
    await store.put("u2/2026-01.parquet", b"PAR1 three")

    assert key == "profile/uploads/u1/2026-01.parquet"
    assert await store.get("u1/2026-02.parquet") == b"PAR1 two"
    assert sorted(await store.list("u1/")) == ["u1/2026-01.parquet", "u1/2026-02.parquet"]
    assert sorted(await store.list()) == ["u1/2026-01.parquet", "u1/2026-02.parquet", "u2/2026-01.parquet"]

    assert await store.delete_prefix("u1/") == 2
    assert await store.list() == ["u2/2026-01.parquet"]
    assert await store.delete_prefix("nobody/") == 0
    with pytest.raises(ClientError) as missing:
        await store.get("u1/2026-01.parquet")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


async def test_object_store_writes_under_its_prefix_with_encryption(aws, topology):
    store = ObjectStore(aws, topology.buckets["data"], "profile")

    await store.put("/report.json", b"{}", content_type="application/json")

    async with aws.client("s3") as s3:
        head = await s3.head_object(Bucket=topology.buckets["data"], Key="profile/report.json")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/json"


async def test_object_stores_with_different_prefixes_do_not_see_each_other(aws, topology):
    profile = ObjectStore(aws, topology.buckets["data"], "profile")
    features = ObjectStore(aws, topology.buckets["data"], "features")
    await profile.put("u1/data.parquet", b"profile")
    await features.put("u1/data.parquet", b"features")

    assert await features.delete_prefix("u1/") == 1
    assert await profile.list() == ["u1/data.parquet"]
    assert await profile.get("u1/data.parquet") == b"profile"


async def test_delete_prefix_lists_and_deletes_past_the_1000_key_page_limit(aws, topology):
    store = ObjectStore(aws, topology.buckets["reports"], "bulk")
    async with aws.client("s3") as s3:
        await asyncio.gather(
            *(
                s3.put_object(Bucket=topology.buckets["reports"], Key=f"bulk/r/{i:04}", Body=b"")
                for i in range(1005)
            )
        )

    assert await store.delete_prefix("r/") == 1005
    assert await store.list() == []
