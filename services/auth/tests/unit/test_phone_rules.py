"""Phone rules: E.164 parsing (examples and properties), codes, digests, masking, the SMS text."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_auth.domain.phone import (
    InvalidPhone,
    code_digest,
    is_code_shaped,
    mask_phone,
    new_code,
    normalize_phone,
    sms_text,
)

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# +14155552671 in look-alike digits (which the library would silently accept)
FULL_WIDTH = "\uff0b" + "".join(chr(0xFF10 + int(d)) for d in "14155552671")
ARABIC_INDIC = "+" + "".join(chr(0x0660 + int(d)) for d in "14155552671")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+14155552671", "+14155552671"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("  +1.415.555.2671 ", "+14155552671"),
        ("+44 7911 123456", "+447911123456"),
        ("+44 (0)7911 123456", "+447911123456"),  # the trunk prefix some people write
        ("+49 30 901820", "+4930901820"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_numbers_in_international_form_are_normalized_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "4155552671",  # no country code
        "0044 7911 123456",  # international prefix instead of "+"
        "+1 555 555 0100",  # fictional (555-01xx) numbers are not valid
        "+1 415",  # too short
        "+1 415 555 2671 2671 2671",  # too long
        "+999 1234567",  # no such country code
        "+1-800-FLOWERS",  # no letters
        "+1 415 555 2671 ext. 12",  # no extensions
        "+1 415 555 2671;ext=12",
        FULL_WIDTH,  # full-width look-alikes
        ARABIC_INDIC,
        "++14155552671",
        "+" + "1" * 40,
        "tel:+14155552671",
    ],
)
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_is_a_valid_e164_number_or_refused_with_invalid_phone(raw: str) -> None:
    try:
        e164 = normalize_phone(raw)
    except InvalidPhone:
        return
    assert E164.fullmatch(e164)
    assert normalize_phone(e164) == e164


_SEPARATORS = st.sampled_from(["", " ", "-", ".", "  "])


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    """A valid number of a real region, as the library's own example of a random number type."""
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
    kind = draw(
        st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    )
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None or not phonenumbers.is_valid_number(example):
        example = phonenumbers.example_number_for_type("US", phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=300, deadline=None)
@given(valid_numbers(), st.lists(_SEPARATORS, min_size=16, max_size=16), st.booleans())
def test_any_formatting_of_a_valid_number_gives_the_same_e164(e164: str, seps: list[str], pad: bool) -> None:
    digits = e164[1:]
    formatted = "+" + "".join(d + seps[i] for i, d in enumerate(digits)).rstrip(" -.")
    if pad:
        formatted = f"  {formatted} "
    if len(formatted.strip()) > 32:
        with pytest.raises(InvalidPhone):
            normalize_phone(formatted)
        return
    assert normalize_phone(formatted) == e164


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\+[0-9]{1,20}", fullmatch=True))
def test_digit_strings_never_raise_anything_but_invalid_phone(raw: str) -> None:
    try:
        e164 = normalize_phone(raw)
    except InvalidPhone:
        return
    assert E164.fullmatch(e164)
    assert len(e164) <= 16


def test_codes_are_six_digits_and_vary() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(is_code_shaped(c) for c in codes)
    assert len(codes) > 190


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", " 123456", FULL_WIDTH[1:7], ""])
def test_malformed_codes_are_not_code_shaped(code: str) -> None:
    assert not is_code_shaped(code)


def test_the_digest_depends_on_secret_number_and_code_and_hides_the_code() -> None:
    d = code_digest(b"k", "+14155552671", "123456")
    assert len(d) == 64
    assert "123456" not in d
    assert d == code_digest(b"k", "+14155552671", "123456")
    assert d != code_digest(b"other", "+14155552671", "123456")
    assert d != code_digest(b"k", "+14155552672", "123456")
    assert d != code_digest(b"k", "+14155552671", "123457")


def test_masked_numbers_keep_the_country_code_and_last_two_digits() -> None:
    assert mask_phone("+14155552671") == "+1********71"
    assert mask_phone("+447911123456") == "+44********56"
    assert "5552671" not in mask_phone("+14155552671")


def test_the_sms_text() -> None:
    assert sms_text("123456", 600) == "Your SpendSense code is 123456. It expires in 10 minutes."
    assert sms_text("000001", 60) == "Your SpendSense code is 000001. It expires in 1 minute."
