"""Phone use cases on in-memory fakes: sending codes (limits per number, hour and day, and per client
address), verifying them (attempts, expiry, single use), signing in or up, linking and unlinking."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from spendsense_auth.domain.accounts import AuthError, VerifiedIdentity
from spendsense_auth.domain.phone import (
    LinkPhone,
    PhonePolicy,
    RequestPhoneCode,
    UnlinkPhone,
    VerifyPhoneCode,
)
from spendsense_auth.handlers import phone as handlers
from spendsense_auth.handlers.identities import sign_in_with_identity
from spendsense_auth.handlers.phone import PhoneVerification
from spendsense_shared.testing.fakes import load_beside

phone_fakes = load_beside(__file__, "phone_fakes.py", "spendsense_auth_unit_phone_fakes")

NUMBER = "+14155552671"
OTHER = "+447911123456"
HOUR = 3600


class Phone:
    """The phone ports on one manual clock, and the use cases bound to them."""

    def __init__(self, policy: PhonePolicy | None = None) -> None:
        self.clock = phone_fakes.ManualClock()
        self.codes = phone_fakes.InMemoryPhoneCodeStore(self.clock)
        self.sms = phone_fakes.FakeSmsSender()
        self.limiter = phone_fakes.SlidingWindowRateLimiter(self.clock)
        self.verification = PhoneVerification(
            codes=self.codes,
            sms=self.sms,
            limiter=self.limiter,
            secret=b"test-secret",
            policy=policy or PhonePolicy(),
        )

    async def verify(self, uow: Any, tokens: Any, code: str | None = None, number: str = NUMBER) -> Any:
        code = code if code is not None else self.sms.last_code(number)
        return await handlers.verify_code(VerifyPhoneCode(number, code), uow, tokens, self.verification)

    async def link(self, uow: Any, user_id: str, code: str | None = None, number: str = NUMBER) -> Any:
        code = code if code is not None else self.sms.last_code(number)
        return await handlers.link_phone(LinkPhone(user_id, number, code), uow, self.verification)

    async def request(self, number: str = NUMBER, ip: str | None = None, resend: bool = False):
        return await handlers.request_code(
            RequestPhoneCode(number, client_ip=ip, resend=resend), self.verification
        )


@pytest.fixture
def phone() -> Phone:
    return Phone()


async def refused(awaitable, status: int, code: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        await awaitable
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    return info.value


# --- sending --------------------------------------------------------------------------------------------


async def test_a_request_sends_a_six_digit_code_and_stores_only_its_digest(phone: Phone) -> None:
    sent = await phone.request()
    assert (sent.phone, sent.expires_in) == (NUMBER, 600)
    [(to, message)] = phone.sms.sent
    code = phone.sms.last_code(NUMBER)
    assert to == NUMBER
    assert message == f"Your SpendSense code is {code}. It expires in 10 minutes."
    stored = phone.codes.codes[NUMBER]
    assert code not in stored.digest
    assert len(stored.digest) == 64


async def test_the_sixth_sms_in_an_hour_is_refused_with_retry_after(phone: Phone) -> None:
    for _ in range(5):
        await phone.request()
        phone.clock.advance(60)
    error = await refused(phone.request(resend=True), 429, "rate_limited")
    assert error.retry_after_s is not None
    assert 0 < error.retry_after_s <= HOUR - 4 * 60
    assert phone.sms.count(NUMBER) == 5
    assert (await phone.request(OTHER)).phone == OTHER  # other numbers are not affected


async def test_the_eleventh_sms_in_a_day_is_refused(phone: Phone) -> None:
    for _ in range(2):
        for _ in range(5):
            await phone.request()
        phone.clock.advance(HOUR + 1)
    error = await refused(phone.request(), 429, "rate_limited")
    assert error.retry_after_s is not None
    assert error.retry_after_s > HOUR
    assert phone.sms.count(NUMBER) == 10
    phone.clock.advance(24 * HOUR)
    await phone.request()
    assert phone.sms.count(NUMBER) == 11


async def test_a_client_address_is_limited_across_numbers() -> None:
    phone = Phone(PhonePolicy(sms_per_ip_per_hour=3))
    for i in range(3):
        await phone.request(f"+1415555267{i}", ip="203.0.113.7")
    await refused(phone.request("+14155552679", ip="203.0.113.7"), 429, "rate_limited")
    await phone.request("+14155552679", ip="198.51.100.1")
    assert len(phone.sms.sent) == 4


async def test_a_refused_request_replaces_nothing(phone: Phone) -> None:
    for _ in range(5):
        await phone.request()
    code = phone.sms.last_code(NUMBER)
    before = phone.codes.codes[NUMBER]
    await refused(phone.request(), 429, "rate_limited")
    assert phone.codes.codes[NUMBER] is before
    assert phone.sms.last_code(NUMBER) == code


async def test_an_sms_the_provider_refuses_leaves_no_code(phone: Phone) -> None:
    phone.sms.failing = True
    await refused(phone.request(), 503, "sms_unavailable")
    assert NUMBER not in phone.codes.codes


# --- verifying: sign in or up -----------------------------------------------------------------------------


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_the_right_code_signs_up_a_new_number_then_signs_in_to_it(phone: Phone, uow, tokens) -> None:
    await phone.request()
    first = await phone.verify(uow, tokens)
    assert first.created
    assert first.user.email is None
    assert uow.published_types() == ["user.registered"]
    assert uow.published[0].data["registered_via"] == "phone"
    [identity] = await uow.users.identities(first.user.id)
    assert (identity.provider, identity.subject) == ("phone", NUMBER)

    await phone.request(resend=True)
    again = await phone.verify(uow, tokens)
    assert not again.created
    assert again.user.id == first.user.id
    assert uow.published_types() == ["user.registered"]


async def test_a_wrong_code_is_refused_and_counts_down(phone: Phone, uow, tokens) -> None:
    await phone.request()
    code = phone.sms.last_code(NUMBER)
    error = await refused(phone.verify(uow, tokens, wrong(code)), 400, "invalid_code")
    assert "2 attempts left" in error.message
    assert (await phone.verify(uow, tokens, code)).created  # the right one still works after a miss


async def test_the_fourth_attempt_is_refused_even_with_the_right_code(phone: Phone, uow, tokens) -> None:
    await phone.request()
    code = phone.sms.last_code(NUMBER)
    for _ in range(3):
        await refused(phone.verify(uow, tokens, wrong(code)), 400, "invalid_code")
    await refused(phone.verify(uow, tokens, code), 429, "code_locked")
    await refused(phone.verify(uow, tokens, code), 429, "code_locked")  # burnt, not just counted
    assert uow.published == []
    await phone.request()  # a new code starts afresh
    assert (await phone.verify(uow, tokens)).created


async def test_an_expired_code_is_refused(phone: Phone, uow, tokens) -> None:
    await phone.request()
    phone.clock.advance(600)
    await refused(phone.verify(uow, tokens), 400, "code_expired")
    assert uow.published == []


async def test_a_code_still_works_just_before_it_expires(phone: Phone, uow, tokens) -> None:
    await phone.request()
    phone.clock.advance(599)
    assert (await phone.verify(uow, tokens)).created


async def test_a_code_is_single_use(phone: Phone, uow, tokens) -> None:
    await phone.request()
    code = phone.sms.last_code(NUMBER)
    await phone.verify(uow, tokens, code)
    await refused(phone.verify(uow, tokens, code), 400, "code_expired")


async def test_a_code_without_a_request_is_refused(phone: Phone, uow, tokens) -> None:
    await refused(phone.verify(uow, tokens, "123456"), 400, "code_expired")


async def test_a_code_is_good_for_its_own_number_only(phone: Phone, uow, tokens) -> None:
    await phone.request(NUMBER)
    await phone.request(OTHER)
    await refused(phone.verify(uow, tokens, phone.sms.last_code(NUMBER), OTHER), 400, "invalid_code")


async def test_a_resend_voids_the_previous_code(phone: Phone, uow, tokens) -> None:
    await phone.request()
    old = phone.sms.last_code(NUMBER)
    await phone.request(resend=True)
    new = phone.sms.last_code(NUMBER)
    if old != new:
        await refused(phone.verify(uow, tokens, old), 400, "invalid_code")
    assert (await phone.verify(uow, tokens, new)).created


async def test_code_attempts_per_client_address_are_limited(uow, tokens) -> None:
    phone = Phone(PhonePolicy(verify_per_ip_per_hour=2))
    await phone.request()
    attempt = VerifyPhoneCode(NUMBER, "000000", client_ip="203.0.113.7")
    for _ in range(2):
        with pytest.raises(AuthError):
            await handlers.verify_code(attempt, uow, tokens, phone.verification)
    await refused(handlers.verify_code(attempt, uow, tokens, phone.verification), 429, "rate_limited")


# --- linking and unlinking --------------------------------------------------------------------------------


async def a_google_user(uow: Any, tokens: Any, subject: str = "g-1") -> Any:
    result = await sign_in_with_identity(
        uow, tokens, VerifiedIdentity("google", subject, email=f"{subject}@example.com", email_verified=True)
    )
    return result.user


async def test_linking_a_free_number_adds_it(phone: Phone, uow, tokens) -> None:
    me = await a_google_user(uow, tokens)
    await phone.request()
    result = await phone.link(uow, me.id)
    assert result.merged_from is None
    assert {i.provider for i in await uow.users.identities(me.id)} == {"google", "phone"}
    await phone.request()
    assert (await phone.verify(uow, tokens)).user.id == me.id


async def test_linking_a_number_of_another_account_merges_that_account(phone: Phone, uow, tokens) -> None:
    me = await a_google_user(uow, tokens)
    await phone.request()
    other = (await phone.verify(uow, tokens)).user
    await phone.request()
    result = await phone.link(uow, me.id)
    assert result.merged_from == other.id
    assert result.user.id == me.id
    assert await uow.users.get(other.id) is None
    assert "user.merged" in uow.published_types()
    await phone.request()
    assert (await phone.verify(uow, tokens)).user.id == me.id


async def test_linking_with_a_wrong_code_links_nothing(phone: Phone, uow, tokens) -> None:
    me = await a_google_user(uow, tokens)
    await phone.request()
    await refused(phone.link(uow, me.id, wrong(phone.sms.last_code(NUMBER))), 400, "invalid_code")
    assert {i.provider for i in await uow.users.identities(me.id)} == {"google"}


async def test_linking_a_second_number_is_refused_without_burning_the_code(phone: Phone, uow, tokens) -> None:
    await phone.request(OTHER)
    me = (await phone.verify(uow, tokens, number=OTHER)).user
    await phone.request()
    await refused(phone.link(uow, me.id), 409, "provider_already_linked")
    assert NUMBER in phone.codes.codes  # still usable, e.g. after unlinking the other number


async def test_relinking_the_own_number_changes_nothing(phone: Phone, uow, tokens) -> None:
    await phone.request()
    me = (await phone.verify(uow, tokens)).user
    await phone.request()
    result = await phone.link(uow, me.id)
    assert result.merged_from is None
    assert [i.subject for i in await uow.users.identities(me.id)] == [NUMBER]


async def test_unlinking_removes_the_number_but_never_the_last_way_in(phone: Phone, uow, tokens) -> None:
    await phone.request()
    only_phone = (await phone.verify(uow, tokens)).user
    await refused(handlers.unlink_phone(UnlinkPhone(only_phone.id), uow), 409, "last_identity")

    me = await a_google_user(uow, tokens)
    await phone.request(OTHER)
    await phone.link(uow, me.id, number=OTHER)
    await handlers.unlink_phone(UnlinkPhone(me.id), uow)
    assert {i.provider for i in await uow.users.identities(me.id)} == {"google"}
    await refused(handlers.unlink_phone(UnlinkPhone(me.id), uow), 404, "not_found")


async def test_logs_never_hold_the_code_or_the_full_number(phone: Phone, uow, tokens, monkeypatch) -> None:
    # The module's own logger, captured (structlog may already be configured and cached by other tests).
    capture = LogCapture()
    monkeypatch.setattr(handlers, "log", structlog.wrap_logger(None, processors=[capture]))
    await phone.request()
    code = phone.sms.last_code(NUMBER)
    await refused(phone.verify(uow, tokens, wrong(code)), 400, "invalid_code")
    await phone.verify(uow, tokens, code)
    text = repr(capture.entries)
    assert [e["event"] for e in capture.entries] == [
        "phone_code_sent",
        "phone_code_refused",
        "phone_code_verified",
        "phone_sign_in",
    ]
    assert code not in text
    assert NUMBER[2:] not in text
    assert "+1********71" in text
