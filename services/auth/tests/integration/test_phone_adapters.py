"""The phone adapters against the real servers: the code store on Redis, the SMS sender on the AWS
emulator's SNS (the test reads the message back from the emulator)."""

from __future__ import annotations

import asyncio
import random

import pytest

from spendsense_auth.adapters.phone_codes import RedisPhoneCodeStore
from spendsense_auth.adapters.sms import SnsSmsSender
from spendsense_auth.bootstrap import SERVICE
from spendsense_auth.domain.phone import CodeCheck
from spendsense_auth.handlers.phone import SmsDeliveryError
from spendsense_shared.aws import Aws
from spendsense_shared.cache import Cache
from spendsense_shared.testing.fakes import load_beside

inbox = load_beside(__file__, "sms_inbox.py", "spendsense_auth_sms_inbox")


def a_number() -> str:
    return f"+1415555{random.randrange(10**4):04d}"  # a valid San Francisco number, unique enough per test


@pytest.fixture
async def store(infra, isolation_id):
    cache = Cache(infra.redis_url, "auth", isolation_id)
    yield RedisPhoneCodeStore(cache)
    await cache.close()


async def test_a_code_verifies_once(store) -> None:
    phone = a_number()
    await store.put(phone, "d1", 600)
    assert (await store.check(phone, "d1", 3)).outcome is CodeCheck.ok
    assert (await store.check(phone, "d1", 3)).outcome is CodeCheck.missing


async def test_three_attempts_then_the_code_is_burnt_even_for_the_right_digest(store) -> None:
    phone = a_number()
    await store.put(phone, "d1", 600)
    results = [await store.check(phone, "wrong", 3) for _ in range(3)]
    assert [(r.outcome, r.attempts_left) for r in results] == [
        (CodeCheck.mismatch, 2),
        (CodeCheck.mismatch, 1),
        (CodeCheck.mismatch, 0),
    ]
    assert (await store.check(phone, "d1", 3)).outcome is CodeCheck.locked
    assert (await store.check(phone, "d1", 3)).outcome is CodeCheck.locked
    await store.put(phone, "d2", 600)  # a new code starts afresh
    assert (await store.check(phone, "d2", 3)).outcome is CodeCheck.ok


async def test_the_code_and_its_attempts_expire_together(store) -> None:
    phone = a_number()
    await store.put(phone, "d1", 1)
    assert (await store.check(phone, "wrong", 3)).outcome is CodeCheck.mismatch
    await asyncio.sleep(1.2)
    assert (await store.check(phone, "d1", 3)).outcome is CodeCheck.missing


async def test_concurrent_right_attempts_verify_exactly_once(store) -> None:
    phone = a_number()
    await store.put(phone, "d1", 600)
    results = await asyncio.gather(*(store.check(phone, "d1", 3) for _ in range(10)))
    assert sum(r.outcome is CodeCheck.ok for r in results) == 1


async def test_only_the_digest_is_stored(store) -> None:
    phone = a_number()
    await store.put(phone, "digest-of-the-code", 600)
    key = store.cache.key("phone", "verify", phone)
    assert await store.cache.client.hgetall(key) == {b"digest": b"digest-of-the-code", b"attempts": b"0"}
    assert 590 <= await store.cache.client.ttl(key) <= 600


async def test_the_sms_reaches_the_emulator(settings_for, infra) -> None:
    sender = SnsSmsSender(Aws(settings_for(SERVICE)))
    phone = a_number()
    await sender.send(phone, "Your SpendSense code is 123456. It expires in 10 minutes.")
    assert await inbox.sent_sms(infra.aws_endpoint_url, phone) == [
        "Your SpendSense code is 123456. It expires in 10 minutes."
    ]


async def test_a_refused_sms_is_a_delivery_error(settings_for) -> None:
    sender = SnsSmsSender(Aws(settings_for(SERVICE)))
    with pytest.raises(SmsDeliveryError):
        await sender.send("+0123", "not an E.164 number")  # the emulator refuses it as SNS does
