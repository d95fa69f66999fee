"""The password policy: every failed rule is named; common passwords are refused lower-cased and with
digits and symbols stripped; emails and usernames are normalized."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spendsense_auth.adapters.passwords import load_common_passwords
from spendsense_auth.domain.accounts import (
    AuthError,
    check_username,
    normalize_email,
    with_role,
    without_role,
)
from spendsense_auth.domain.passwords import PasswordPolicy, common_forms

POLICY = PasswordPolicy.with_common(load_common_passwords())
GOOD = "Vivid-Otter-42-Lamp"

letters_upper = st.text(string.ascii_uppercase, min_size=1, max_size=6)
letters_lower = st.text(string.ascii_lowercase, min_size=1, max_size=6)
digits = st.text(string.digits, min_size=1, max_size=4)
symbols = st.text("!@#$%^&*()-_=+[]{};:,.?/", min_size=1, max_size=4)


def test_a_strong_password_passes():
    assert POLICY.failed_rules(GOOD) == []
    POLICY.check(GOOD)


@pytest.mark.parametrize(
    ("password", "rules"),
    [
        ("Short-1a", ["min_length"]),
        ("alllowercase-123", ["uppercase"]),
        ("ALLUPPERCASE-123", ["lowercase"]),
        ("No-Digits-Here-At-All", ["digit"]),
        ("NoSymbols123Here", ["symbol"]),
        ("Password123!!", ["common"]),
        ("P@ssword12345", []),  # "pssword" is not on the list; stripping does not undo leetspeak
        ("", ["min_length", "uppercase", "lowercase", "digit", "symbol"]),
        ("Aa1!" + "x" * 70, ["max_length"]),
    ],
)
def test_each_failed_rule_is_named(password, rules):
    assert POLICY.failed_rules(password) == rules


def test_the_422_names_every_failed_rule():
    with pytest.raises(AuthError) as refused:
        POLICY.check("password")
    assert refused.value.status == 422
    assert refused.value.code == "weak_password"
    assert [d["rule"] for d in refused.value.details] == [
        "min_length",
        "uppercase",
        "digit",
        "symbol",
        "common",
    ]
    assert all(d["field"] == "password" for d in refused.value.details)


@pytest.mark.parametrize("password", ["Password123!!", "QWERTY123456!", "Iloveyou!!2024", "DRAGON-99999!"])
def test_common_passwords_are_refused_lower_cased_and_stripped_of_digits_and_symbols(password):
    assert "common" in POLICY.failed_rules(password)


def test_common_forms():
    assert common_forms("Password123!!") >= {"password123!!", "password"}


@given(upper=letters_upper, lower=letters_lower, digit=digits, symbol=symbols, pad=st.integers(0, 20))
def test_passwords_with_every_class_and_enough_length_pass_unless_common(upper, lower, digit, symbol, pad):
    password = (upper + lower + digit + symbol + "k" * pad)[:72]
    failed = set(PasswordPolicy().failed_rules(password))
    assert failed <= {"min_length"}
    assert ("min_length" in failed) == (len(password) < 12)


@given(password=st.text(max_size=40))
def test_rules_hold_for_any_text(password):
    failed = set(PasswordPolicy().failed_rules(password))
    assert ("min_length" in failed) == (len(password) < 12)
    assert ("uppercase" in failed) == (not any(c.isupper() for c in password))
    assert ("lowercase" in failed) == (not any(c.islower() for c in password))
    assert ("digit" in failed) == (not any(c.isdigit() for c in password))
    assert ("symbol" in failed) == (not any(not c.isalnum() and not c.isspace() for c in password))


@given(
    word=st.sampled_from(sorted(w for w in POLICY.common_passwords if w.isalpha())[:300]),
    digit=digits,
    symbol=symbols,
)
def test_any_common_word_with_digits_and_symbols_around_is_refused(word, digit, symbol):
    assert "common" in POLICY.failed_rules(word.capitalize() + digit + symbol)


def test_emails_are_validated_and_lower_cased_without_dns():
    assert normalize_email("  Foo.Bar@Example.COM ") == "foo.bar@example.com"
    with pytest.raises(AuthError) as refused:
        normalize_email("not-an-email")
    assert refused.value.status == 422


@pytest.mark.parametrize("name", ["ab", "a" * 33, "has space", "émile", "semi;colon"])
def test_bad_usernames_are_refused(name):
    with pytest.raises(AuthError):
        check_username(name)


def test_usernames_are_lower_cased():
    assert check_username("Jane.Doe_42") == "jane.doe_42"


def test_roles_stay_ordered_and_user_cannot_be_removed(clock):
    from spendsense_auth.domain.accounts import User

    user = User("u1", None, None, ("user",), clock.now())
    assert with_role(with_role(user, "admin"), "operator").roles == ("user", "operator", "admin")
    assert without_role(with_role(user, "admin"), "admin").roles == ("user",)
    with pytest.raises(AuthError):
        without_role(user, "user")
    with pytest.raises(AuthError):
        with_role(user, "superuser")
